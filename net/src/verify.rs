//! "Is this the node I meant?", answered once for everyone who opens a connection to a node
//! (the client, `keynet attest`, a node dialling a peer), and "may this peer in?" for a node
//! accepting one.
//!
//! Dialling ([`verify_node`]), in order, each step only if the one before passed:
//! 1. the TLS handshake verified the node's certificate in full ([`NodeVerifier`]: evidence,
//!    chain to AMD's pinned roots, report, policy and published measurement, REPORT_DATA
//!    binding the certificate's key, identity key and endpoint);
//! 2. when a registry member was meant, the certificate's identity key and endpoint are
//!    that member's (a genuine node elsewhere in the network is still the wrong node);
//! 3. the node answers `GET /v1/attestation?nonce=N` for a fresh random N on this very
//!    connection with evidence that is authentic, from the same chip, image, identity and
//!    endpoint as the certificate's, and whose REPORT_DATA commits to N and to this TLS
//!    session's exporter value ([`check_fresh`]): a recorded report, or a certificate and
//!    key copied out of a node, cannot answer it.
//!
//! Accepting: a client that presented a certificate (the handshake proved only that it
//! holds the certificate's key) must be the registry member its evidence names, staked at
//! least the minimum, at the endpoint the registry lists for it ([`claim_peer`], a parse
//! and a lookup), and its certificate must then verify in full ([`admit_peer`], cached:
//! the expensive part, which the server meters).

use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::abi::Report;
use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::binding::fresh_report_data;
use attestation_verifier::tls::evidence::{CertRole, Evidence};
use attestation_verifier::tls::node::AttestedNode;
use attestation_verifier::verdict::{Check, Status, Verdict};
use attestation_verifier::verify::{Inputs, Vek};
use base64::Engine;
use keynet_protocol::api::{self, Attestation};
use keynet_protocol::registry::{IdentityKey, NodeEntry, PeerRefusal, Registry};

use crate::http::{HttpError, Opened, error_body, send};
use crate::verifier_now;

/// Why a node could not be checked at all (as opposed to being found not genuine, which is
/// a verdict with failed checks).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The fresh-evidence exchange failed in transit.
    #[error(transparent)]
    Transport(#[from] HttpError),
    /// The node did not answer as a node does.
    #[error("{endpoint}: {reason}")]
    Unusable {
        /// The node.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// A node checked on a new connection.
#[derive(Clone, Debug)]
pub struct Checked {
    /// What its certificate proved.
    pub node: Arc<AttestedNode>,
    /// Every check: the certificate's, then the registry member's, then the fresh
    /// evidence's. `accepted` only if all required ones passed.
    pub verdict: Verdict,
}

impl Checked {
    /// The failed checks, `check: detail; ...` (empty when accepted).
    pub fn failures(&self) -> String {
        self.verdict
            .checks
            .iter()
            .filter(|c| failed(c))
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Checks the node at the other end of `opened`, a connection to `endpoint` whose handshake
/// verified the node's certificate; `meant` is the registry member the caller dialled, if
/// any. See the module documentation for the steps.
pub async fn verify_node(
    opened: &mut Opened,
    endpoint: &str,
    verifier: &NodeVerifier,
    meant: Option<&NodeEntry>,
    timeout: Duration,
) -> Result<Checked, VerifyError> {
    let unusable = |reason: String| VerifyError::Unusable {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let node = verifier
        .cached(&opened.cert, verifier_now())
        .ok_or_else(|| unusable("certificate verified but not cached".into()))?;
    let mut verdict = node.verdict.clone();
    if let Some(entry) = meant {
        let same = node.evidence.identity.as_slice() == entry.identity_key.as_bytes().as_slice()
            && node.evidence.endpoint.eq_ignore_ascii_case(&entry.endpoint);
        push(
            &mut verdict,
            "registry_member",
            same,
            if same {
                format!(
                    "the registry member {} at {}",
                    entry.identity_key, entry.endpoint
                )
            } else {
                format!(
                    "the node there is not the registry member {} (it is {} at {})",
                    entry.identity_key,
                    hex::encode(&node.evidence.identity),
                    node.evidence.endpoint
                )
            },
        );
        if !same {
            return Ok(finish(node, verdict));
        }
    }
    let mut nonce = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| unusable("no randomness for a nonce".into()))?;
    // A node meters fresh reports; `overloaded` and `rate_limited` mean "shortly": asked
    // again (same nonce, same connection) for up to three seconds.
    let mut wait = std::time::Duration::from_millis(50);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (status, body) = loop {
        let (status, body) = send(
            &mut opened.sender,
            endpoint,
            "GET",
            &api::attestation_path(&nonce),
            vec![],
            timeout,
        )
        .await?;
        let busy = matches!(
            error_body(&body).code,
            api::ErrorCode::Overloaded | api::ErrorCode::RateLimited
        );
        if status == 200 || !busy || std::time::Instant::now() + wait > give_up {
            break (status, body);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_millis(800));
    };
    if status != 200 {
        return Err(unusable(format!(
            "{} answered {status}: {}",
            api::ATTESTATION,
            error_body(&body).message
        )));
    }
    let answer: Attestation = serde_json::from_slice(&body)
        .map_err(|e| unusable(format!("{}: {e}", api::ATTESTATION)))?;
    let fresh = base64::engine::general_purpose::STANDARD
        .decode(&answer.evidence)
        .map_err(|e| unusable(format!("{}: evidence: {e}", api::ATTESTATION)))?;
    check_fresh(
        &mut verdict,
        verifier,
        &node.evidence,
        &node.spki,
        &fresh,
        &nonce,
        &opened.exporter,
    );
    Ok(finish(node, verdict))
}

/// A check that failed, or a required one that did not pass.
fn failed(c: &Check) -> bool {
    c.status == Status::Fail || (c.required && c.status != Status::Pass)
}

fn finish(node: Arc<AttestedNode>, mut verdict: Verdict) -> Checked {
    verdict.accepted = verdict.accepted && !verdict.checks.iter().any(failed);
    Checked { node, verdict }
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
/// and REPORT_DATA bound to our nonce and this connection's exporter value. Adds its
/// checks to `v`.
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
        at: verifier_now(),
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
        &cert_evidence.profile,
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

/// Why a peer that presented a certificate is not admitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmitError {
    /// The certificate is not a node's, or does not verify.
    #[error("peer certificate: {0}")]
    Certificate(String),
    /// The evidence's identity key is not a key.
    #[error("peer identity key: {0}")]
    Identity(String),
    /// The registry refuses it.
    #[error("peer {identity} refused: {refusal}")]
    Refused {
        /// Who it says it is.
        identity: IdentityKey,
        /// Why the registry refuses it.
        refusal: PeerRefusal,
    },
}

/// A peer admitted on a connection: who it is and the endpoint its evidence carries (so
/// each request on the connection can be checked again against the registry then in force,
/// with [`Registry::check_peer`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Its identity key.
    pub identity: IdentityKey,
    /// The endpoint in its evidence.
    pub endpoint: String,
}

/// What a peer's certificate claims, checked against the registry without cryptography.
#[derive(Debug)]
#[non_exhaustive]
pub enum Claim {
    /// Verified before (the verifier's cache): admitted.
    Admitted(Admitted),
    /// A member staked at its registered endpoint, by its claim: [`admit_peer`] decides.
    Unverified,
}

/// Checks what peer certificate `cert` claims against `registry` (a parse and a lookup):
/// a certificate naming no member, or a member at another endpoint or cut below the
/// minimum stake, is refused before anything is verified.
pub fn claim_peer(
    verifier: &NodeVerifier,
    cert: &[u8],
    registry: &Registry,
) -> Result<Claim, AdmitError> {
    if let Some(node) = verifier.cached(cert, verifier_now()) {
        return admitted(&node.evidence, registry).map(Claim::Admitted);
    }
    let (_, evidence) =
        NodeVerifier::claimed(cert).map_err(|e| AdmitError::Certificate(e.to_string()))?;
    admitted(&evidence, registry).map(|_| Claim::Unverified)
}

/// Admits a peer by its certificate `cert`: verified in full (or found in the verifier's
/// cache), then the registry member its evidence names, staked at least the minimum, at
/// the endpoint its evidence carries. CPU-heavy when not cached: run it metered.
pub fn admit_peer(
    verifier: &NodeVerifier,
    cert: &[u8],
    registry: &Registry,
) -> Result<Admitted, AdmitError> {
    let node = verifier
        .verify(cert, verifier_now())
        .map_err(|e| AdmitError::Certificate(e.to_string()))?;
    admitted(&node.evidence, registry)
}

fn admitted(evidence: &Evidence, registry: &Registry) -> Result<Admitted, AdmitError> {
    let identity = IdentityKey::from_sec1(&evidence.identity)
        .map_err(|e| AdmitError::Identity(e.to_string()))?;
    registry
        .check_peer(&identity, &evidence.endpoint)
        .map_err(|refusal| AdmitError::Refused { identity, refusal })?;
    Ok(Admitted {
        identity,
        endpoint: evidence.endpoint.clone(),
    })
}
