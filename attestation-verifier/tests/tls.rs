//! Attested TLS: a node certificate carrying evidence is accepted during the handshake only
//! if the report is genuine (here: a self-made chain trusted explicitly), its measurement
//! allowed, its policy acceptable, and REPORT_DATA bound to this very certificate's key.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use attestation_verifier::tls::binding::cert_report_data;
use attestation_verifier::tls::evidence::{
    CertRole, EVIDENCE_OID_ARCS, Evidence, EvidenceCert, Platform,
};
use attestation_verifier::tls::{
    AttestedClientVerifier, AttestedServerVerifier, NodeError, NodeVerifier,
};
use attestation_verifier::validate::Policy;
use attestation_verifier::verdict::Status;
use attestation_verifier::verify::roots::TrustStore;
use common::synth::{Synthetic, sign_report};
use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const ENDPOINT: &str = "127.0.0.1:7001";

struct NodeCert {
    der: Vec<u8>,
    key: Vec<u8>,
}

fn identity() -> Vec<u8> {
    let k = k256::ecdsa::SigningKey::random(&mut p384::elliptic_curve::rand_core::OsRng);
    k.verifying_key().to_encoded_point(true).as_bytes().to_vec()
}

/// A node certificate whose report binds `bind_spki` (its own key's SPKI when `None`).
fn node_cert(
    s: &Synthetic,
    platform: Platform,
    policy: u64,
    measurement: [u8; 48],
    bind_spki: Option<Vec<u8>>,
) -> NodeCert {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| panic!("{e}"));
    let spki = bind_spki.unwrap_or_else(|| key.subject_public_key_info());
    let id = identity();
    let rd = cert_report_data(&spki, &id, ENDPOINT, &[7; 32]);
    let report = sign_report(&s.vcek_key, &s.chip_id, &measurement, rd, policy);
    let ev = Evidence {
        v: 2,
        platform,
        report,
        certs: vec![
            EvidenceCert {
                kind: CertRole::Vcek,
                der: s.vcek_der.clone(),
            },
            EvidenceCert {
                kind: CertRole::Ask,
                der: s.ask_der.clone(),
            },
        ],
        identity: id,
        endpoint: ENDPOINT.into(),
        profile: vec![7; 32],
    };
    let mut p =
        CertificateParams::new(vec!["keynode".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &EVIDENCE_OID_ARCS,
        ev.encode(),
    ));
    let cert = p.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
    NodeCert {
        der: cert.der().to_vec(),
        key: key.serialize_der(),
    }
}

fn allowing(s: &Synthetic) -> Policy {
    Policy {
        measurements: vec![s.measurement],
        ..Policy::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs a TLS 1.3 handshake in memory and one request/response; returns the client's
/// error if the handshake failed.
fn handshake(
    server: &NodeCert,
    client_verifier: Arc<NodeVerifier>,
    client_cert: Option<(&NodeCert, Arc<NodeVerifier>)>,
) -> Result<Vec<u8>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| panic!("{e}"));
    let server_builder = match &client_cert {
        Some((_, v)) => server_builder
            .with_client_cert_verifier(Arc::new(AttestedClientVerifier::new(v.clone()))),
        None => server_builder.with_no_client_auth(),
    };
    let scfg = server_builder
        .with_single_cert(
            vec![CertificateDer::from(server.der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.clone())),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let client_builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| panic!("{e}"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(client_verifier)));
    let ccfg = match &client_cert {
        Some((c, _)) => client_builder
            .with_client_auth_cert(
                vec![CertificateDer::from(c.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone())),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        None => client_builder.with_no_client_auth(),
    };
    let mut client = rustls::ClientConnection::new(
        Arc::new(ccfg),
        ServerName::try_from("keynode").unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut srv = rustls::ServerConnection::new(Arc::new(scfg)).unwrap_or_else(|e| panic!("{e}"));
    client
        .writer()
        .write_all(b"ping")
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..20 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        srv.read_tls(&mut buf.as_slice())
            .unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = srv.process_new_packets() {
            let mut alert = Vec::new();
            let _ = srv.write_tls(&mut alert);
            let _ = client.read_tls(&mut alert.as_slice());
            let _ = client.process_new_packets();
            return Err(e);
        }
        let mut got = Vec::new();
        let _ = srv.reader().read_to_end(&mut got);
        if got == b"ping" {
            srv.writer()
                .write_all(b"pong")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut buf = Vec::new();
        srv.write_tls(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        client
            .read_tls(&mut buf.as_slice())
            .unwrap_or_else(|e| panic!("{e}"));
        client.process_new_packets()?;
        let mut reply = Vec::new();
        let _ = client.reader().read_to_end(&mut reply);
        if !reply.is_empty() {
            return Ok(reply);
        }
    }
    panic!("handshake did not finish")
}

fn trusting(s: &Synthetic, policy: Policy) -> Arc<NodeVerifier> {
    Arc::new(NodeVerifier::new(
        TrustStore::amd().with_simulated(s.anchor()),
        policy,
    ))
}

#[test]
fn an_attested_node_is_accepted_and_can_be_talked_to() {
    let s = common::synth::build();
    let node = node_cert(&s, Platform::SnpSimulated, 0x30000, s.measurement, None);
    let v = trusting(&s, allowing(&s));
    assert_eq!(
        handshake(&node, v.clone(), None).ok().as_deref(),
        Some(&b"pong"[..])
    );
    let n = v
        .cached(&node.der, now())
        .unwrap_or_else(|| panic!("not cached"));
    assert!(n.verdict.accepted && n.verdict.simulated);
    assert!(
        n.verdict
            .checks
            .iter()
            .any(|c| c.check == "tls_key_binding" && c.status == Status::Pass)
    );
    // A second handshake is served from the cache.
    assert!(handshake(&node, v, None).is_ok());
}

fn rejected_by(s: &Synthetic, node: &NodeCert, v: Arc<NodeVerifier>, check: &str) {
    let err = handshake(node, v.clone(), None)
        .err()
        .unwrap_or_else(|| panic!("{check}: accepted"));
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err}");
    let verdict = v
        .last_rejection(&node.der)
        .unwrap_or_else(|| panic!("{check}: no verdict"));
    assert!(
        verdict
            .checks
            .iter()
            .any(|c| c.check == check && c.status != Status::Pass),
        "{check}: {:#?}",
        verdict
            .checks
            .iter()
            .filter(|c| c.status != Status::Pass)
            .collect::<Vec<_>>()
    );
    let _ = s;
}

#[test]
fn nodes_are_refused_for_each_reason() {
    let s = common::synth::build();
    // Another measurement than the published one.
    let other = node_cert(&s, Platform::SnpSimulated, 0x30000, [7u8; 48], None);
    rejected_by(&s, &other, trusting(&s, allowing(&s)), "measurement");
    // A debug policy.
    let debug = node_cert(
        &s,
        Platform::SnpSimulated,
        0x30000 | (1 << 19),
        s.measurement,
        None,
    );
    rejected_by(&s, &debug, trusting(&s, allowing(&s)), "policy_debug");
    // A report bound to another key (e.g. evidence copied from another node's certificate).
    let stranger = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| panic!("{e}"));
    let copied = node_cert(
        &s,
        Platform::SnpSimulated,
        0x30000,
        s.measurement,
        Some(stranger.subject_public_key_info()),
    );
    rejected_by(&s, &copied, trusting(&s, allowing(&s)), "tls_key_binding");
    // The simulated root not given: AMD roots only.
    let node = node_cert(&s, Platform::SnpSimulated, 0x30000, s.measurement, None);
    let amd_only = Arc::new(NodeVerifier::new(TrustStore::amd(), allowing(&s)));
    rejected_by(&s, &node, amd_only, "ask_signed_by_ark");
    // A simulated report claiming to come from real hardware.
    let liar = node_cert(&s, Platform::Snp, 0x30000, s.measurement, None);
    rejected_by(&s, &liar, trusting(&s, allowing(&s)), "platform");
}

#[test]
fn mutual_tls_checks_both_sides() {
    let s = common::synth::build();
    let a = node_cert(&s, Platform::SnpSimulated, 0x30000, s.measurement, None);
    let b = node_cert(&s, Platform::SnpSimulated, 0x30000, s.measurement, None);
    let v = trusting(&s, allowing(&s));
    assert!(handshake(&a, v.clone(), Some((&b, v.clone()))).is_ok());
    // A client whose evidence the server rejects cannot complete the handshake.
    let bad = node_cert(&s, Platform::SnpSimulated, 0x30000, [9u8; 48], None);
    assert!(handshake(&a, v.clone(), Some((&bad, v))).is_err());
}

#[test]
fn certificates_without_or_with_broken_evidence_are_refused() {
    let s = common::synth::build();
    let v = trusting(&s, allowing(&s));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap_or_else(|e| panic!("{e}"));
    let plain = CertificateParams::new(vec!["keynode".to_string()])
        .unwrap_or_else(|e| panic!("{e}"))
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        v.verify(plain.der(), now()),
        Err(NodeError::NoEvidence)
    ));
    let mut p =
        CertificateParams::new(vec!["keynode".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &EVIDENCE_OID_ARCS,
        vec![0xa1, 0x61],
    ));
    let broken = p.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        v.verify(broken.der(), now()),
        Err(NodeError::Evidence(_))
    ));
    let _ = s;
}
