//! A simulated dev network on loopback: clients accept a node only with the published
//! measurement and the simulated root given; peers are admitted only if they are registry
//! members, staked at least the minimum, at their registered endpoint; a registry with a
//! bad signature stops the node, and so does an older one than the node held before a
//! restart; fresh evidence cannot be replayed into another session;
//! without an SNP platform the node refuses to serve.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN};
use attestation_verifier::validate::{Manifest, Policy};
use attestation_verifier::verdict::Status;
use keynet_protocol::registry::{SignedRegistry, Stake, sign};
use keynode::config::Config;
use keynode::evidence::SimulatedProvider;
use keynode::evidence::simulated::{SimulatedPlatform, SimulatedState};
use keynode::identity::Identity;
use keynode::tls::NodeTls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::free_ports;

struct Net {
    dir: tempfile::TempDir,
    base: u16,
}

impl Net {
    fn new(n: usize) -> Net {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let base = free_ports(n as u16);
        keynode::devnet::create(n, dir.path(), base, 2048, None)
            .unwrap_or_else(|e| panic!("{e:#}"));
        Net { dir, base }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn config(&self, i: usize) -> Config {
        Config::load(&self.path(&format!("node-{i}/keynode.toml")))
            .unwrap_or_else(|e| panic!("{e}"))
    }
    fn url(&self, i: u16) -> String {
        format!("https://127.0.0.1:{}", self.base + i)
    }
    fn client_verifier(&self, simulated: bool, manifest: &Path) -> Arc<NodeVerifier> {
        let pem = std::fs::read(self.path("simulated-ark.pem")).unwrap_or_default();
        let trust = keynet::trust_store(simulated.then_some(pem.as_slice()))
            .unwrap_or_else(|e| panic!("{e}"));
        let m = Manifest::parse(&std::fs::read(manifest).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(NodeVerifier::new(
            trust,
            Policy {
                manifest: Some(m),
                ..Policy::default()
            },
        ))
    }
    /// A client's verifier for this network (its simulated root and manifest), with the
    /// other checks of `policy`.
    fn verifier_with(&self, policy: Policy) -> NodeVerifier {
        let pem = std::fs::read(self.path("simulated-ark.pem")).unwrap_or_default();
        let trust = keynet::trust_store(Some(pem.as_slice())).unwrap_or_else(|e| panic!("{e}"));
        let m = Manifest::parse(&std::fs::read(self.path("manifest.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        NodeVerifier::new(
            trust,
            Policy {
                manifest: Some(m),
                ..policy
            },
        )
    }
    /// The registry the nodes serve.
    fn registry(&self) -> keynet_protocol::registry::Registry {
        SignedRegistry::parse_unverified(
            &std::fs::read(self.path("registry.json")).unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .registry
    }
    /// Node `i`'s identity, unsealed with its simulated chip's key.
    fn identity(&self, i: usize) -> Identity {
        use keynode::evidence::EvidenceProvider;
        let text = std::fs::read_to_string(self.path(&format!("node-{i}/simulated-platform.json")))
            .unwrap_or_default();
        let state: SimulatedState = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let p = SimulatedPlatform::from_state(&state).unwrap_or_else(|e| panic!("{e}"));
        let key = SimulatedProvider(p)
            .sealing_key()
            .unwrap_or_else(|e| panic!("{e}"));
        let store = keynet_store::Store::open(self.path(&format!("node-{i}/state")), key)
            .unwrap_or_else(|e| panic!("{e}"));
        Identity::load_or_create(&store).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A node TLS identity on this network's simulated platform (a new chip).
    fn peer_tls(&self, identity: &Identity, endpoint: &str) -> NodeTls {
        let text = std::fs::read_to_string(self.path("node-1/simulated-platform.json"))
            .unwrap_or_default();
        let state: SimulatedState = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let p = SimulatedPlatform::from_state(&state).unwrap_or_else(|e| panic!("{e}"));
        // Under the network's own rules, so only what a test changes differs.
        let profile = keynode::profile::of(&self.config(0)).unwrap_or_else(|e| panic!("{e}"));
        NodeTls::create(
            &SimulatedProvider(p),
            &identity.public_compressed(),
            endpoint,
            &profile,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

async fn get(
    connector: tokio_rustls::TlsConnector,
    port: u16,
    path: &str,
) -> Result<(String, [u8; EXPORTER_LEN]), String> {
    request(connector, port, "GET", path).await
}

async fn get_post(
    connector: tokio_rustls::TlsConnector,
    port: u16,
    path: &str,
) -> Result<(String, [u8; EXPORTER_LEN]), String> {
    request(connector, port, "POST", path).await
}

/// A new attested connection to the node at `port`.
async fn connect(
    connector: tokio_rustls::TlsConnector,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    connector
        .connect(
            ServerName::try_from("keynode").map_err(|e| e.to_string())?,
            tcp,
        )
        .await
        .map_err(|e| e.to_string())
}

/// A client presenting `tls` (a node's certificate and key), verifying with `verifier`.
fn as_peer(verifier: &Arc<NodeVerifier>, tls: &NodeTls) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(Arc::new(
        keynet_net::tls::client_config(verifier.clone(), Some(tls.certified_key()))
            .unwrap_or_else(|e| panic!("{e}")),
    ))
}

/// One HTTP/1.1 request on a new attested connection: the response and the exporter value.
async fn request(
    connector: tokio_rustls::TlsConnector,
    port: u16,
    method: &str,
    path: &str,
) -> Result<(String, [u8; EXPORTER_LEN]), String> {
    let mut s = connect(connector, port).await?;
    let mut exporter = [0u8; EXPORTER_LEN];
    s.get_ref()
        .1
        .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    if out.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok((String::from_utf8_lossy(&out).into_owned(), exporter))
}

fn failed(a: &keynet::Attestation, check: &str) -> bool {
    a.checks
        .iter()
        .any(|c| c.check == check && c.status == Status::Fail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_peers_on_a_dev_network() {
    let net = Net::new(3);
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let manifest = net.path("manifest.json");

    // A client with the published measurement and the simulated root: genuine.
    let a = keynet::attest(&net.url(0), net.client_verifier(true, &manifest))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(a.accepted, "{:#?}", a.checks);
    assert!(a.simulated);
    for c in [
        "tls_key_binding",
        "fresh_binding",
        "fresh_same_node",
        "measurement",
    ] {
        assert!(
            a.checks
                .iter()
                .any(|x| x.check == c && x.status == Status::Pass),
            "{c}"
        );
    }
    // Without the simulated root: rejected.
    let a = keynet::attest(&net.url(0), net.client_verifier(false, &manifest))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!a.accepted);
    // Another measurement published: rejected by the measurement check.
    let other = net.path("other-manifest.json");
    std::fs::write(
        &other,
        format!(
            r#"{{"schema":"keynet.measurements/v1","measurements":[{{"digest":"{}"}}]}}"#,
            "ab".repeat(48)
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = keynet::attest(&net.url(0), net.client_verifier(true, &other))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!a.accepted && failed(&a, "measurement"), "{:#?}", a.checks);

    // A registered peer (node 1's identity and endpoint) is admitted and can be talked to.
    let peer_v = net.client_verifier(true, &manifest);
    let id1 = net.identity(1);
    let ep1 = format!("127.0.0.1:{}", net.base + 1);
    let t1 = net.peer_tls(&id1, &ep1);
    let c1 = as_peer(&peer_v, &t1);
    let (resp, _) = get(c1.clone(), net.base, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let (resp, _) = get_post(c1.clone(), net.base, "/v1/handshake")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        resp.starts_with("HTTP/1.1 200")
            && resp.contains("\"network_id\":\"keynet-dev\"")
            && resp.contains("registry_entry"),
        "{resp}"
    );

    // A peer that is not in the registry is refused.
    let stranger = net.peer_tls(&Identity::generate(), &ep1);
    let cs = as_peer(&peer_v, &stranger);
    assert!(get(cs, net.base, "/health").await.is_err());
    // A registered identity presenting another endpoint is refused.
    let moved = net.peer_tls(&id1, "127.0.0.1:9");
    let cm = as_peer(&peer_v, &moved);
    assert!(get(cm, net.base, "/health").await.is_err());

    // Node 1 keeps a connection open (one request answered, kept alive, idle).
    let mut kept = open_kept_alive(c1.clone(), net.base).await;
    let mut probe = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kept.read(&mut probe))
            .await
            .is_err(),
        "the kept-alive connection is open and quiet"
    );

    // Node 1's stake drops below the minimum in a new registry: refused after the reload.
    let key_hex = std::fs::read_to_string(net.path("authority.key")).unwrap_or_default();
    let key = k256::ecdsa::SigningKey::from_slice(&hex::decode(key_hex.trim()).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let signed = SignedRegistry::parse_unverified(
        &std::fs::read(net.path("registry.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut reg = signed.registry;
    reg.epoch += 1;
    reg.nodes[1].stake = Stake::from_wei(1);
    std::fs::write(
        net.path("registry.json"),
        sign(reg, &key).unwrap_or_else(|e| panic!("{e}")).to_json(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut refused = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if get(c1.clone(), net.base, "/health").await.is_err() {
            refused = true;
            break;
        }
    }
    assert!(
        refused,
        "a peer staked below the minimum was still admitted"
    );
    // ...and the connection it had open was closed by the node, with no request on it.
    let closed = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut probe)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the cut peer's kept-alive connection is still open: {closed:?}"
    );
    n0.task.abort();
}

/// A connection on which one request was answered and which is kept alive.
async fn open_kept_alive(
    connector: tokio_rustls::TlsConnector,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut s = connect(connector, port)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = vec![0u8; 64 << 10];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_peer_evidence_is_refused_after_the_handshake_and_a_flood_of_it_is_metered() {
    // Evidence from a platform whose roots nobody trusts, naming member 1 at its endpoint:
    // what the certificate claims passes the registry check, so the node must verify it
    // (its cryptography: a report signature, a certificate chain) to refuse it. That work
    // runs metered after the handshake, so a flood of such handshakes is refused cheaply
    // and leaves the node serving.
    let net = Net::new(3);
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let manifest = net.path("manifest.json");
    let peer_v = net.client_verifier(true, &manifest);
    let id1 = net.identity(1);
    let ep1 = format!("127.0.0.1:{}", net.base + 1);
    let elsewhere = SimulatedPlatform::generate(keynode::evidence::simulated::SimulatedOptions {
        rsa_bits: 2048,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let profile = keynode::profile::of(&net.config(0)).unwrap_or_else(|e| panic!("{e}"));
    let forged = NodeTls::create(
        &SimulatedProvider(elsewhere),
        &id1.public_compressed(),
        &ep1,
        &profile,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cf = as_peer(&peer_v, &forged);
    let one = get(cf.clone(), net.base, "/health").await;
    assert!(one.is_err(), "made-up evidence admitted: {one:?}");

    let genuine = as_peer(&peer_v, &net.peer_tls(&id1, &ep1));
    // The genuine peer connected before (as peers do at start): its certificate is in the
    // node's cache, so its later connections need no verification work at all. (Its first,
    // from the flood's own address, would wait behind that address's share.)
    let (resp, _) = get(genuine.clone(), net.base, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = metered_verifications(&resp);
    let flood: Vec<_> = (0..300)
        .map(|_| {
            let cf = cf.clone();
            let port = net.base;
            tokio::spawn(async move { get(cf, port, "/health").await.is_ok() })
        })
        .collect();
    // During the flood, a client and the genuine peer are served.
    let a = keynet::attest(&net.url(0), net.client_verifier(true, &manifest))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(a.accepted, "{:#?}", a.checks);
    let (resp, _) = get(genuine.clone(), net.base, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let mut admitted = 0;
    for f in flood {
        admitted += usize::from(f.await.unwrap_or(true));
    }
    assert_eq!(admitted, 0, "no forged connection was served");
    let (resp, _) = get(genuine, net.base, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Every forged certificate went through the meter: verified there, or refused at it.
    let after = metered_verifications(&resp);
    assert!(
        after >= before + 300,
        "{} forged certificates were metered, 300 were presented",
        after - before
    );
    n0.task.abort();
}

/// Verification jobs a node ran or refused, from its `/health` answer.
fn metered_verifications(response: &str) -> u64 {
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let h: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let v = &h["work"]["verifications"];
    v["ran"].as_u64().unwrap_or_default() + v["refused"].as_u64().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_evidence_cannot_be_replayed_into_another_session() {
    let net = Net::new(1);
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let v = net.client_verifier(true, &net.path("manifest.json"));
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap_or_else(|e| panic!("{e}"))
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(
        attestation_verifier::tls::AttestedServerVerifier::new(v.clone()),
    ))
    .with_no_client_auth();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let nonce = [7u8; 32];
    let path = format!("/v1/attestation?nonce={}", hex::encode(nonce));
    let (resp_a, exporter_a) = get(conn.clone(), net.base, &path)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, exporter_b) = get(conn.clone(), net.base, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(exporter_a, exporter_b);
    let body = resp_a.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp_a}"));
    use base64::Engine;
    let fresh = base64::engine::general_purpose::STANDARD
        .decode(json["evidence"].as_str().unwrap_or(""))
        .unwrap_or_default();
    assert_eq!(json["platform"], "snp-simulated");
    assert!(json["warning"].as_str().unwrap_or("").contains("SIMULATED"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let node = v
        .cached(n0.state.tls().cert_der(), now)
        .unwrap_or_else(|| panic!("node not verified"));
    // In its own session the fresh report binds; replayed into another it does not.
    let mut ok = node.verdict.clone();
    keynet_net::verify::check_fresh(
        &mut ok,
        &v,
        &node.evidence,
        &node.spki,
        &fresh,
        &nonce,
        &exporter_a,
    );
    assert!(
        ok.checks
            .iter()
            .any(|c| c.check == "fresh_binding" && c.status == Status::Pass)
    );
    let mut replay = node.verdict.clone();
    keynet_net::verify::check_fresh(
        &mut replay,
        &v,
        &node.evidence,
        &node.spki,
        &fresh,
        &nonce,
        &exporter_b,
    );
    assert!(
        replay
            .checks
            .iter()
            .any(|c| c.check == "fresh_binding" && c.status == Status::Fail)
    );
    // Bad nonces are JSON errors with stable codes.
    let (resp, _) = get(conn.clone(), net.base, "/v1/attestation?nonce=zz")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        resp.starts_with("HTTP/1.1 400") && resp.contains("\"code\":\"nonce_hex\""),
        "{resp}"
    );
    let (resp, _) = get(conn, net.base, "/nope")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        resp.starts_with("HTTP/1.1 404") && resp.contains("not_found"),
        "{resp}"
    );
    n0.task.abort();
}

#[tokio::test]
async fn a_registry_with_a_bad_signature_stops_the_node() {
    let net = Net::new(1);
    let text = std::fs::read_to_string(net.path("registry.json")).unwrap_or_default();
    // Re-sign with another key: the configured authority no longer matches.
    let signed =
        SignedRegistry::parse_unverified(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let other = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    std::fs::write(
        net.path("registry.json"),
        sign(signed.registry, &other)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_json(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = keynode::run::start(net.config(0))
        .await
        .err()
        .unwrap_or_else(|| panic!("started"));
    assert!(format!("{err:#}").contains("registry"), "{err:#}");
}

/// A genuine node of the network, answering where another member is listed, is not the
/// node meant: every party that dials (client, `keynet attest`'s routine, a node dialling
/// a peer) goes through `keynet_net::verify::verify_node`, which refuses it before any
/// request leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_node_at_another_members_endpoint_is_not_the_node_meant() {
    let net = Net::new(2);
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let n1 = keynode::run::start(net.config(1))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let registry = SignedRegistry::parse_unverified(
        &std::fs::read(net.path("registry.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .registry;
    let verifier = net.client_verifier(true, &net.path("manifest.json"));
    // As the registry says: both nodes are the members meant.
    let honest = keynet::network::Network::with(registry.clone(), "keynet.local", verifier.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let st = honest.status().await;
    assert!(st.iter().all(|s| s.verified), "{st:?}");
    // The two endpoints swapped: each dial reaches a genuine node, but the other member.
    let mut swapped = registry;
    let e0 = swapped.nodes[0].endpoint.clone();
    swapped.nodes[0].endpoint = swapped.nodes[1].endpoint.clone();
    swapped.nodes[1].endpoint = e0;
    let fooled = keynet::network::Network::with(swapped, "keynet.local", verifier)
        .unwrap_or_else(|e| panic!("{e}"));
    for s in fooled.status().await {
        assert!(!s.verified, "{s:?}");
        let e = s.error.unwrap_or_default();
        assert!(
            e.contains("registry_member") && e.contains("is not the registry member"),
            "{e}"
        );
    }
    let refused = fooled.request(1, "GET", "/health", vec![]).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("registry_member")),
        "{refused:?}"
    );
    n0.task.abort();
    n1.task.abort();
}

/// The registry never goes back, across restarts too: a node that held epoch 2 refuses to
/// start with the (validly signed) epoch 1 its host hands it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_refuses_an_older_registry() {
    let net = Net::new(1);
    let original = std::fs::read(net.path("registry.json")).unwrap_or_default();
    let authority = {
        let text = std::fs::read_to_string(net.path("authority.key")).unwrap_or_default();
        let bytes = hex::decode(text.trim()).unwrap_or_else(|e| panic!("{e}"));
        k256::ecdsa::SigningKey::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
    };
    let mut next = SignedRegistry::parse_unverified(&original)
        .unwrap_or_else(|e| panic!("{e}"))
        .registry;
    next.epoch = 2;
    let next = sign(next, &authority).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(net.path("registry.json"), next.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(n0.state.registry().epoch, 2);
    n0.task.abort();
    drop(n0);
    std::fs::write(net.path("registry.json"), &original).unwrap_or_else(|e| panic!("{e}"));
    let err = keynode::run::start(net.config(0))
        .await
        .err()
        .unwrap_or_else(|| panic!("started with an older registry"));
    let text = format!("{err:#}");
    assert!(
        text.contains("epoch 1 is an epoch below the one held (2)"),
        "{text}"
    );
    // The epoch it held still starts it.
    std::fs::write(net.path("registry.json"), next.to_json()).unwrap_or_else(|e| panic!("{e}"));
    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    n0.task.abort();
}

#[test]
fn without_a_platform_the_node_refuses_to_serve() {
    let net = Net::new(1);
    let cfg = std::fs::read_to_string(net.path("node-0/keynode.toml")).unwrap_or_default();
    let cfg = cfg.replace("provider = \"simulated\"", "provider = \"auto\"");
    let cfg: String = cfg
        .lines()
        .filter(|l| !l.starts_with("simulated_state"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = net.path("auto.toml");
    std::fs::write(&path, cfg).unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keynode"))
        .args(["run", "--config", &path.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to serve"));
    // And malformed configuration is refused with the field named, exit 2.
    std::fs::write(&path, "[node]\nlisten = \"nope\"\n").unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keynode"))
        .args(["run", "--config", &path.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serves one file over plain HTTP on loopback, to every request, `count` times.
fn serve_file(body: Vec<u8>, count: usize) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for s in l.incoming().take(count).flatten() {
            let mut s = s;
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_can_come_from_a_url() {
    let net = Net::new(1);
    let port = serve_file(
        std::fs::read(net.path("registry.json")).unwrap_or_default(),
        50,
    );
    let cfg = std::fs::read_to_string(net.path("node-0/keynode.toml")).unwrap_or_default();
    let registry_line = cfg
        .lines()
        .find(|l| l.starts_with("file = "))
        .unwrap_or("")
        .to_owned();
    let with_url = cfg.replace(
        &registry_line,
        &format!("url = \"http://127.0.0.1:{port}/registry.json\""),
    );
    let c = Config::parse(&with_url).unwrap_or_else(|e| panic!("{e}"));
    let n0 = keynode::run::start(c)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(n0.state.registry().network_id, "keynet-dev");
    n0.task.abort();
    // Both or neither source is a configuration error naming the field.
    let both = cfg.replace(
        &registry_line,
        &format!("{registry_line}\nurl = \"http://127.0.0.1:1/r\""),
    );
    assert!(
        Config::parse(&both)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("registry")
    );
    let ftp = cfg.replace(&registry_line, "url = \"ftp://x/r\"");
    assert!(
        Config::parse(&ftp)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("registry.url")
    );
}

/// The network's minimum TCB: a node whose reports state less (the simulated chips report
/// snp 24) is refused by clients and by peers configured with it, naming the component;
/// at the level the chips report, both accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_below_the_networks_minimum_tcb_is_refused_by_peers_and_clients() {
    let net = Net::new(2);
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut c = net.config(i);
        c.peers.min_tcb = Some("bl=4,tee=0,snp=25,ucode=219".into());
        nodes.push(
            keynode::run::start(c)
                .await
                .unwrap_or_else(|e| panic!("{e:#}")),
        );
    }
    let registry = net.registry();
    let client = |min: &str| {
        Arc::new(net.verifier_with(Policy {
            min_tcb: Some(min.parse().unwrap_or_else(|e| panic!("{e}"))),
            ..Policy::default()
        }))
    };
    // A client requiring snp 25, and node 2 dialling node 1 with its own verifier (as it
    // does for DKG and signing): both refuse, naming the TCB.
    for (who, verifier) in [
        ("client", client("snp=25")),
        ("peer", nodes[1].state.peer_verifier().clone()),
    ] {
        let n = keynet::network::Network::with(registry.clone(), "keynet.local", verifier)
            .unwrap_or_else(|e| panic!("{e}"));
        let st = n.status().await;
        assert!(!st[0].verified, "{who}: {st:?}");
        let why = st[0].error.clone().unwrap_or_default();
        assert!(
            why.contains("min_tcb") && why.contains("snp 24 < minimum 25"),
            "{who}: {why}"
        );
    }
    // At the level the chips report, accepted.
    let n = keynet::network::Network::with(registry, "keynet.local", client("snp=24"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(n.status().await.iter().all(|s| s.verified));
}

/// A CRL, when given, is used: AMD's Milan CRL (real, the copy in the verifier's test data) is not signed
/// by the simulated chain's ARK, so a client and a peer given it refuse the node, naming the
/// `crl` check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_given_is_checked_by_peers_and_clients() {
    let crl_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../attestation-verifier/tests/data/snp/amd-roots/milan/crl-2025-05-06.pem");
    let crl = std::fs::read(&crl_path).unwrap_or_else(|e| panic!("{}: {e}", crl_path.display()));
    let net = Net::new(2);
    let mut c = net.config(1);
    c.peers.crl = Some(crl_path.clone());
    let n1 = keynode::run::start(c)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let _n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let registry = net.registry();
    let client = Arc::new(net.verifier_with(Policy::default()).with_crl(crl));
    for (who, verifier) in [
        ("client", client),
        ("peer", n1.state.peer_verifier().clone()),
    ] {
        let n = keynet::network::Network::with(registry.clone(), "keynet.local", verifier)
            .unwrap_or_else(|e| panic!("{e}"));
        let st = n.status().await;
        let why = st[0].error.clone().unwrap_or_default();
        assert!(!st[0].verified, "{who}: {st:?}");
        assert!(
            why.contains("crl") && why.contains("not signed by"),
            "{who}: {why}"
        );
    }
}

/// The network profile: every node binds the hash of the rules it runs under into its
/// evidence. A node whose host configured other rules (here, another connection limit) is
/// refused by a client holding the network file's profile and by a peer, naming the check;
/// `keynode profile` prints what the network file holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_under_other_rules_is_refused_by_peers_and_clients() {
    let net = Net::new(2);
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_keynode"))
        .args(["profile", "--json", "--config"])
        .arg(net.path("node-0/keynode.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let printed: serde_json::Value =
        serde_json::from_slice(&printed.stdout).unwrap_or_else(|e| panic!("{e}"));
    let file = keynet::network::NetworkFile::load(&net.path("network.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(printed["profile"].as_str(), file.profile.as_deref());

    let n0 = keynode::run::start(net.config(0))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut other = net.config(1);
    other.limits.max_connections = 1000;
    let _n1 = keynode::run::start(other)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let client = keynet::network::Network::open(&file).unwrap_or_else(|e| panic!("{e}"));
    let registry = client.registry().clone();
    let peer =
        keynet::network::Network::with(registry, "keynet.local", n0.state.peer_verifier().clone())
            .unwrap_or_else(|e| panic!("{e}"));
    for (who, n) in [("client", client), ("peer", peer)] {
        let st = n.status().await;
        assert!(
            st[0].verified,
            "{who}: node 1 runs under the network's rules: {st:?}"
        );
        let why = st[1].error.clone().unwrap_or_default();
        assert!(!st[1].verified, "{who}: {st:?}");
        assert!(
            why.contains("network_profile") && why.contains("this network's is"),
            "{who}: {why}"
        );
    }
}
