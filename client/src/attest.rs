//! `keynet attest`: verify a node before trusting it.

use std::sync::Arc;
use std::time::Duration;

use crate::http::HttpError;
use attestation_verifier::abi::Report;
use attestation_verifier::kds::Product;
use attestation_verifier::kds::offline::pem_or_der_certs;
use attestation_verifier::tls::binding::fresh_report_data;
use attestation_verifier::tls::evidence::{CertRole, Evidence};
use attestation_verifier::tls::{AttestedServerVerifier, NodeVerifier};
use attestation_verifier::verdict::{Check, Status, Verdict};
use attestation_verifier::verify::cert::AmdCert;
use attestation_verifier::verify::roots::{Anchor, TrustStore};
use attestation_verifier::verify::{Inputs, Vek};
use base64::Engine;

/// Why a node could not be checked at all (as opposed to being rejected).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The node could not be reached or did not answer as a node does.
    #[error("{0}")]
    Transport(String),
}

/// The outcome: every check of the certificate and of the fresh evidence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attestation {
    /// True if the node is genuine: every required check passed.
    pub accepted: bool,
    /// The product whose chain was used.
    pub product: Option<Product>,
    /// True if the node runs on a simulated platform (trusted only because it was asked).
    pub simulated: bool,
    /// Every check, certificate first, then the fresh evidence.
    pub checks: Vec<Check>,
    /// The report in the certificate, every field.
    pub report: serde_json::Value,
    /// What the node says about itself, verified.
    pub node: serde_json::Value,
}

/// AMD's roots, plus a simulated platform's (ARK then ASK, PEM) only when given.
pub fn trust_store(simulated_roots_pem: Option<&[u8]>) -> Result<TrustStore, AttestError> {
    let mut trust = TrustStore::amd();
    if let Some(pem) = simulated_roots_pem {
        let certs = pem_or_der_certs(pem)
            .map_err(|e| AttestError::Usage(format!("--trust-simulated: {e}")))?;
        let (Some(ark), Some(ask)) = (certs.first(), certs.get(1)) else {
            return Err(AttestError::Usage(
                "--trust-simulated: the file must hold the simulated ARK then its ASK".into(),
            ));
        };
        let parse = |what, der: &[u8]| {
            AmdCert::parse(what, der)
                .map_err(|e| AttestError::Usage(format!("--trust-simulated: {e}")))
        };
        trust = trust.with_simulated(Anchor {
            product: Product::Milan,
            ark: parse("ARK", ark)?,
            ask: parse("ASK", ask)?,
            asvk: None,
            simulated: true,
        });
    }
    Ok(trust)
}

fn transport(e: impl std::fmt::Display) -> AttestError {
    AttestError::Transport(e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// TLS 1.3 client configuration that verifies the node in full during the handshake.
pub fn client_config(verifier: Arc<NodeVerifier>) -> Result<rustls::ClientConfig, AttestError> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(transport)?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(verifier)))
    .with_no_client_auth())
}

/// Parses `https://host:port` into (host, port).
fn parse_url(url: &str) -> Result<(String, u16), AttestError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| AttestError::Usage(format!("'{url}': expected https://HOST:PORT")))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| AttestError::Usage(format!("'{url}': missing :PORT")))?;
    let port = port
        .parse()
        .map_err(|_| AttestError::Usage(format!("'{url}': bad port")))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

/// Verifies the node at `url`: during the handshake, then with fresh evidence.
pub async fn attest(url: &str, verifier: Arc<NodeVerifier>) -> Result<Attestation, AttestError> {
    let (host, port) = parse_url(url)?;
    let endpoint = format!("{host}:{port}");
    let config = Arc::new(client_config(verifier.clone())?);
    let mut opened = match crate::http::open(&endpoint, config, Duration::from_secs(10)).await {
        Ok(o) => o,
        // Rejected during the handshake: report the verdict if there is one.
        Err(e @ HttpError::Handshake { .. }) => {
            return match verifier.last_rejected() {
                Some(v) => Ok(from_verdict((*v).clone(), serde_json::Value::Null)),
                None => Err(transport(e)),
            };
        }
        Err(e) => return Err(transport(e)),
    };
    let node = verifier
        .cached(&opened.cert, now())
        .ok_or_else(|| transport("certificate verified but not cached"))?;

    // Fresh evidence over the same connection.
    let mut nonce = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| transport("no randomness"))?;
    let (status, body) = crate::http::send(
        &mut opened.sender,
        &endpoint,
        "GET",
        &format!("/v1/attestation?nonce={}", hex::encode(nonce)),
        vec![],
        Duration::from_secs(30),
    )
    .await
    .map_err(transport)?;
    if status != 200 {
        return Err(transport(format!(
            "node answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| transport(format!("/v1/attestation: {e}")))?;
    let fresh_b64 = json["evidence"]
        .as_str()
        .ok_or_else(|| transport(format!("/v1/attestation: {json}")))?;
    let fresh_bytes = base64::engine::general_purpose::STANDARD
        .decode(fresh_b64)
        .map_err(transport)?;
    let exporter = opened.exporter;

    let mut verdict = node.verdict.clone();
    check_fresh(
        &mut verdict,
        &verifier,
        &node.evidence,
        &node.spki,
        &fresh_bytes,
        &nonce,
        &exporter,
    );
    let info = serde_json::json!({
        "endpoint": node.evidence.endpoint,
        "identity_key": format!("0x{}", hex::encode(&node.evidence.identity)),
        "platform": node.evidence.platform,
    });
    Ok(from_verdict(verdict, info))
}

fn from_verdict(mut v: Verdict, node: serde_json::Value) -> Attestation {
    v.accepted = v.accepted
        && v.checks
            .iter()
            .all(|c| c.status != Status::Fail && (!c.required || c.status == Status::Pass));
    Attestation {
        accepted: v.accepted,
        product: v.product,
        simulated: v.simulated,
        checks: v.checks,
        report: v.report,
        node,
    }
}

fn push(v: &mut Verdict, check: &str, ok: bool, detail: String) {
    v.checks.push(Check {
        check: check.into(),
        status: if ok { Status::Pass } else { Status::Fail },
        detail,
        required: true,
    });
}

/// Checks fresh evidence: authentic, from the same chip and image as the certificate's,
/// and REPORT_DATA bound to our nonce and this connection's exporter value.
pub fn check_fresh(
    v: &mut Verdict,
    verifier: &NodeVerifier,
    cert_evidence: &Evidence,
    spki: &[u8],
    fresh: &[u8],
    nonce: &[u8],
    exporter: &[u8],
) {
    let ev = match Evidence::decode(fresh) {
        Ok(e) => e,
        Err(e) => return push(v, "fresh_evidence", false, e.to_string()),
    };
    let report = match Report::parse(&ev.report) {
        Ok(r) => r,
        Err(e) => return push(v, "fresh_evidence", false, format!("report: {e}")),
    };
    let vek = match (ev.cert(CertRole::Vcek), ev.cert(CertRole::Vlek)) {
        (Some(d), _) => Vek::Vcek(d.to_vec()),
        (None, Some(d)) => Vek::Vlek(d.to_vec()),
        _ => return push(v, "fresh_evidence", false, "no VCEK or VLEK".into()),
    };
    let inputs = Inputs {
        vek,
        ark: ev.cert(CertRole::Ark).map(<[u8]>::to_vec),
        intermediate: ev
            .cert(CertRole::Ask)
            .or(ev.cert(CertRole::Asvk))
            .map(<[u8]>::to_vec),
        crl: None,
        at: now(),
        product: None,
    };
    match verifier.report_verifier().verify(&report, &inputs) {
        Ok(fv) => push(
            v,
            "fresh_report_authentic",
            fv.accepted,
            if fv.accepted {
                "fresh report verified (chain, signature, policy)".into()
            } else {
                fv.checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                    .map(|c| format!("{}: {}", c.check, c.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        Err(e) => push(v, "fresh_report_authentic", false, e.to_string()),
    }
    let same_node = ev.identity == cert_evidence.identity && ev.endpoint == cert_evidence.endpoint;
    let cert_report = Report::parse(&cert_evidence.report).ok();
    let same_guest = cert_report
        .is_some_and(|c| c.chip_id == report.chip_id && c.measurement == report.measurement);
    push(
        v,
        "fresh_same_node",
        same_node && same_guest,
        if same_node && same_guest {
            "same identity, endpoint, chip and measurement as the certificate".into()
        } else {
            "fresh evidence comes from another node, chip or image than the certificate".into()
        },
    );
    let want = fresh_report_data(
        spki,
        &cert_evidence.identity,
        &cert_evidence.endpoint,
        nonce,
        exporter,
    );
    let bound = report.report_data == want;
    push(
        v,
        "fresh_binding",
        bound,
        if bound {
            "REPORT_DATA commits to our nonce and this TLS session's exporter value".into()
        } else {
            "REPORT_DATA does not commit to our nonce and this session: replayed or forged".into()
        },
    );
}
