//! A node's attested TLS over loopback with the simulated platform: clients accept it only
//! when given the simulated root, peers authenticate each other mutually, and fresh
//! evidence is bound to the very connection it was requested on.

use std::sync::{Arc, OnceLock};

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN, fresh_report_data};
use attestation_verifier::validate::Policy;
use attestation_verifier::verify::roots::TrustStore;
use keynode::evidence::SimulatedProvider;
use keynode::evidence::simulated::{SimulatedOptions, SimulatedPlatform};
use keynode::identity::Identity;
use keynode::tls::NodeTls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn platform() -> &'static SimulatedPlatform {
    static P: OnceLock<SimulatedPlatform> = OnceLock::new();
    // 2048-bit roots only to keep the test quick; the format and algorithm are AMD's.
    P.get_or_init(|| {
        SimulatedPlatform::generate(SimulatedOptions {
            rsa_bits: 2048,
            ..SimulatedOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn verifier(trust_simulated: bool) -> Arc<NodeVerifier> {
    let p = platform();
    let trust = if trust_simulated {
        TrustStore::amd().with_simulated(p.anchor())
    } else {
        TrustStore::amd()
    };
    Arc::new(NodeVerifier::new(
        trust,
        Policy {
            measurements: vec![p.measurement()],
            ..Policy::default()
        },
    ))
}

/// The network profile these nodes run under.
const PROFILE: [u8; 32] = [9; 32];

fn node(endpoint: &str) -> (NodeTls, SimulatedProvider) {
    let provider = SimulatedProvider(platform().clone());
    let id = Identity::generate();
    let tls = NodeTls::create(&provider, &id.public_compressed(), endpoint, &PROFILE)
        .unwrap_or_else(|e| panic!("{e}"));
    (tls, provider)
}

/// Serves one connection: answers "fresh:<nonce>" with fresh evidence, anything else with "pong".
async fn serve_once(
    listener: TcpListener,
    tls: Arc<NodeTls>,
    provider: Arc<SimulatedProvider>,
    peers: Arc<NodeVerifier>,
) -> bool {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        tls.server_config(peers).unwrap_or_else(|e| panic!("{e}")),
    ));
    let Ok((tcp, _)) = listener.accept().await else {
        return false;
    };
    let Ok(mut stream) = acceptor.accept(tcp).await else {
        return false;
    };
    let peer_presented = stream.get_ref().1.peer_certificates().is_some();
    let mut buf = vec![0u8; 256];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    let msg = &buf[..n];
    let reply = if let Some(nonce) = msg.strip_prefix(b"fresh:") {
        let mut exporter = [0u8; EXPORTER_LEN];
        let conn = stream.get_ref().1;
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None)
            .unwrap_or_else(|e| panic!("{e}"));
        tls.fresh_evidence(provider.as_ref(), nonce, &exporter)
            .unwrap_or_else(|e| panic!("{e}"))
            .encode()
    } else {
        b"pong".to_vec()
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
    peer_presented
}

async fn start(
    tls: NodeTls,
    provider: SimulatedProvider,
    peers: Arc<NodeVerifier>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let h = tokio::spawn(serve_once(
        listener,
        Arc::new(tls),
        Arc::new(provider),
        peers,
    ));
    (addr, h)
}

fn user_client(v: Arc<NodeVerifier>) -> tokio_rustls::TlsConnector {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap_or_else(|e| panic!("{e}"))
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(
        attestation_verifier::tls::AttestedServerVerifier::new(v),
    ))
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn request(
    conn: tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    msg: &[u8],
) -> Result<(Vec<u8>, [u8; EXPORTER_LEN]), std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let mut s = conn
        .connect(
            ServerName::try_from("keynode").unwrap_or_else(|e| panic!("{e}")),
            tcp,
        )
        .await?;
    let mut exporter = [0u8; EXPORTER_LEN];
    s.get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(std::io::Error::other)?;
    s.write_all(msg).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok((out, exporter))
}

#[tokio::test]
async fn a_client_accepts_the_node_only_with_the_simulated_root() {
    let (tls, provider) = node("127.0.0.1:7101");
    let (addr, h) = start(tls, provider, verifier(true)).await;
    let (reply, _) = request(user_client(verifier(true)), addr, b"ping")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply, b"pong");
    assert!(!h.await.unwrap_or(true), "a user presented no certificate");

    let (tls, provider) = node("127.0.0.1:7102");
    let (addr, h) = start(tls, provider, verifier(true)).await;
    let err = request(user_client(verifier(false)), addr, b"ping").await;
    assert!(err.is_err(), "accepted without the simulated root");
    h.abort();
}

#[tokio::test]
async fn peers_authenticate_each_other() {
    let (server_tls, provider) = node("127.0.0.1:7103");
    let (addr, h) = start(server_tls, provider, verifier(true)).await;
    let (client_tls, _) = node("127.0.0.1:7104");
    let cfg = keynet_net::tls::client_config(verifier(true), Some(client_tls.certified_key()))
        .unwrap_or_else(|e| panic!("{e}"));
    let (reply, _) = request(
        tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        addr,
        b"ping",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply, b"pong");
    assert!(
        h.await.unwrap_or(false),
        "the peer's certificate was presented and verified"
    );
}

#[tokio::test]
async fn fresh_evidence_is_bound_to_its_connection() {
    let v = verifier(true);
    let (tls, provider) = node("127.0.0.1:7105");
    let spki_node = {
        use x509_parser::prelude::*;
        let (_, c) = X509Certificate::from_der(tls.cert_der()).unwrap_or_else(|e| panic!("{e}"));
        c.public_key().raw.to_vec()
    };
    let identity = tls.evidence().identity.clone();
    let endpoint = tls.evidence().endpoint.clone();
    let (addr, h) = start(tls, provider, v.clone()).await;
    let nonce = b"0123456789abcdef";
    let (reply, exporter) = request(user_client(v.clone()), addr, b"fresh:0123456789abcdef")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = h.await;
    let ev = attestation_verifier::tls::evidence::Evidence::decode(&reply)
        .unwrap_or_else(|e| panic!("{e}"));
    let report =
        attestation_verifier::abi::Report::parse(&ev.report).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.report_data,
        fresh_report_data(&spki_node, &identity, &endpoint, &PROFILE, nonce, &exporter)
    );
    // Replayed into another session (another exporter value), the same report does not bind.
    assert_ne!(
        report.report_data,
        fresh_report_data(
            &spki_node,
            &identity,
            &endpoint,
            &PROFILE,
            nonce,
            &[0u8; EXPORTER_LEN]
        )
    );
}
