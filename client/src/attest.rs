//! `keynet attest`: verify a node before trusting it.

use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::kds::Product;
use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::verdict::{Check, Verdict};
use attestation_verifier::verify::roots::{Anchor, TrustStore};
use keynet_net::http::HttpError;
use keynet_net::verify::verify_node;

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
    let trust = TrustStore::amd();
    match simulated_roots_pem {
        Some(pem) => Ok(trust.with_simulated(
            Anchor::simulated_from_pem(pem)
                .map_err(|e| AttestError::Usage(format!("--trust-simulated: {e}")))?,
        )),
        None => Ok(trust),
    }
}

fn transport(e: impl std::fmt::Display) -> AttestError {
    AttestError::Transport(e.to_string())
}

/// Parses `https://host:port` into (host, port).
fn parse_url(url: &str) -> Result<(String, u16), AttestError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| AttestError::Usage(format!("'{url}': expected https://HOST:PORT")))?;
    keynet_net::http::split_endpoint(rest.trim_end_matches('/'))
        .ok_or_else(|| AttestError::Usage(format!("'{url}': expected https://HOST:PORT")))
}

/// What the node says about itself in its certificate, verified.
#[derive(serde::Serialize)]
struct NodeSays<'a> {
    endpoint: &'a str,
    identity_key: String,
    platform: attestation_verifier::tls::evidence::Platform,
}

/// Verifies the node at `url`: during the handshake, then with fresh evidence
/// ([`keynet_net::verify::verify_node`]; no registry member is meant here).
pub async fn attest(url: &str, verifier: Arc<NodeVerifier>) -> Result<Attestation, AttestError> {
    let (host, port) = parse_url(url)?;
    let endpoint = format!("{host}:{port}");
    let config =
        Arc::new(keynet_net::tls::client_config(verifier.clone(), None).map_err(transport)?);
    let mut opened = match keynet_net::http::open(&endpoint, config, Duration::from_secs(10)).await
    {
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
    let checked = verify_node(
        &mut opened,
        &endpoint,
        &verifier,
        None,
        Duration::from_secs(30),
    )
    .await
    .map_err(transport)?;
    let ev = &checked.node.evidence;
    let info = serde_json::to_value(NodeSays {
        endpoint: &ev.endpoint,
        identity_key: format!("0x{}", hex::encode(&ev.identity)),
        platform: ev.platform,
    })
    .map_err(transport)?;
    Ok(from_verdict(checked.verdict, info))
}

fn from_verdict(v: Verdict, node: serde_json::Value) -> Attestation {
    Attestation {
        accepted: v.accepted,
        product: v.product,
        simulated: v.simulated,
        checks: v.checks,
        report: v.report,
        node,
    }
}
