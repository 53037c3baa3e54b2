//! Verifying a node from its TLS certificate: the evidence extension, the report and its
//! chain, the policy, and the binding of REPORT_DATA to the certificate's key. Accepted
//! certificates are cached, so a second handshake with the same node costs a hash lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use x509_parser::prelude::*;

use crate::Verifier;
use crate::abi::Report;
use crate::tls::binding::cert_report_data;
use crate::tls::evidence::{CertRole, EVIDENCE_OID, Evidence, EvidenceError, Platform};
use crate::validate::Policy;
use crate::verdict::{Check, Status, Verdict};
use crate::verify::roots::TrustStore;
use crate::verify::{Inputs, Vek, VerifyError};

/// A node whose certificate was verified.
#[derive(Clone, Debug)]
pub struct AttestedNode {
    /// The full verdict (accepted).
    pub verdict: Verdict,
    /// The evidence from the certificate.
    pub evidence: Evidence,
    /// DER SubjectPublicKeyInfo of the TLS key.
    pub spki: Vec<u8>,
    /// When it was verified (Unix seconds).
    pub verified_at: i64,
}

/// Why a node's certificate was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The certificate is not X.509 DER.
    #[error("node certificate is not X.509: {0}")]
    Certificate(String),
    /// No evidence extension.
    #[error("node certificate carries no attestation evidence (extension {EVIDENCE_OID})")]
    NoEvidence,
    /// The evidence could not be decoded.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
    /// The report or a certificate in the evidence is unusable.
    #[error("node evidence unusable: {0}")]
    Unusable(String),
    /// Verification ran and rejected the node; the verdict says why.
    #[error("node rejected: {}", summary(.0))]
    Rejected(Box<Verdict>),
}

fn summary(v: &Verdict) -> String {
    let f: Vec<String> = v
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass && c.required)
        .map(|c| format!("{}: {}", c.check, c.detail))
        .collect();
    f.join("; ")
}

impl From<VerifyError> for NodeError {
    fn from(e: VerifyError) -> Self {
        NodeError::Unusable(e.to_string())
    }
}

/// Seconds a verified certificate stays cached before it is verified again.
pub const DEFAULT_CACHE_TTL: i64 = 600;
/// Cached certificates kept at most.
const CACHE_CAP: usize = 1024;

/// Verifies nodes by their TLS certificates, with a cache of accepted ones.
#[derive(Debug)]
pub struct NodeVerifier {
    verifier: Verifier,
    crl: Option<Vec<u8>>,
    profile: Option<[u8; 32]>,
    ttl: i64,
    accepted: Mutex<HashMap<[u8; 32], Arc<AttestedNode>>>,
    rejected: Mutex<HashMap<[u8; 32], Arc<Verdict>>>,
    last_rejected: Mutex<Option<Arc<Verdict>>>,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    out
}

impl NodeVerifier {
    /// A verifier with these roots and policy. The policy should carry the published
    /// measurement manifest; simulated roots are only trusted if `trust` holds them.
    pub fn new(trust: TrustStore, policy: Policy) -> Self {
        NodeVerifier {
            verifier: Verifier::new(trust, policy),
            crl: None,
            profile: None,
            ttl: DEFAULT_CACHE_TTL,
            accepted: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
            last_rejected: Mutex::new(None),
        }
    }

    /// Checks every chain against `crl` (DER or PEM, the CRL of the network's product,
    /// signed by its ARK): a revoked ASK, or a CRL that is not current or not signed by the
    /// chain's ARK, fails the `crl` check.
    pub fn with_crl(mut self, crl: Vec<u8>) -> Self {
        self.crl = Some(crl);
        self
    }

    /// Requires the network profile `profile` (SHA-256) in every node's evidence: nodes
    /// running under other rules fail the `network_profile` check.
    pub fn with_profile(mut self, profile: [u8; 32]) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Sets how long an accepted certificate is trusted without re-verification.
    pub fn with_cache_ttl(mut self, seconds: i64) -> Self {
        self.ttl = seconds;
        self
    }

    /// The accepted node for this certificate, if it was verified and is still cached.
    pub fn cached(&self, cert_der: &[u8], now: i64) -> Option<Arc<AttestedNode>> {
        let key = sha256(cert_der);
        let map = self.accepted.lock().ok()?;
        map.get(&key)
            .filter(|n| now - n.verified_at < self.ttl)
            .cloned()
    }

    /// The verdict of the last rejection of this certificate, for reporting.
    pub fn last_rejection(&self, cert_der: &[u8]) -> Option<Arc<Verdict>> {
        self.rejected.lock().ok()?.get(&sha256(cert_der)).cloned()
    }

    /// The most recent rejection, for a client whose handshake failed (it never sees the
    /// certificate bytes then).
    pub fn last_rejected(&self) -> Option<Arc<Verdict>> {
        self.last_rejected.lock().ok()?.clone()
    }

    /// The underlying report verifier (same roots and policy), for fresh evidence.
    pub fn report_verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Verifies a node certificate at `now` (Unix seconds).
    pub fn verify(&self, cert_der: &[u8], now: i64) -> Result<Arc<AttestedNode>, NodeError> {
        if let Some(n) = self.cached(cert_der, now) {
            return Ok(n);
        }
        let key = sha256(cert_der);
        let result = self.verify_uncached(cert_der, now);
        match &result {
            Ok(node) => {
                if let Ok(mut m) = self.accepted.lock() {
                    if m.len() >= CACHE_CAP {
                        m.clear();
                    }
                    m.insert(key, node.clone());
                }
            }
            Err(NodeError::Rejected(v)) => {
                let v = Arc::new((**v).clone());
                if let Ok(mut m) = self.rejected.lock() {
                    if m.len() >= CACHE_CAP {
                        m.clear();
                    }
                    m.insert(key, v.clone());
                }
                if let Ok(mut l) = self.last_rejected.lock() {
                    *l = Some(v);
                }
            }
            Err(_) => {}
        }
        result
    }

    /// What a certificate claims, unchecked: its key (DER SubjectPublicKeyInfo) and the
    /// evidence it carries. Costs a parse, no cryptography: enough to refuse a certificate
    /// naming a node that is not wanted before anything is verified.
    pub fn claimed(cert_der: &[u8]) -> Result<(Vec<u8>, Evidence), NodeError> {
        let (rest, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| NodeError::Certificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(NodeError::Certificate(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        let spki = cert.public_key().raw.to_vec();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == EVIDENCE_OID)
            .ok_or(NodeError::NoEvidence)?;
        Ok((spki, Evidence::decode(ext.value)?))
    }

    fn verify_uncached(&self, cert_der: &[u8], now: i64) -> Result<Arc<AttestedNode>, NodeError> {
        let (spki, evidence) = Self::claimed(cert_der)?;
        let report = Report::parse(&evidence.report)
            .map_err(|e| NodeError::Unusable(format!("report: {e}")))?;
        let vek = match (evidence.cert(CertRole::Vcek), evidence.cert(CertRole::Vlek)) {
            (Some(v), _) => Vek::Vcek(v.to_vec()),
            (None, Some(v)) => Vek::Vlek(v.to_vec()),
            (None, None) => {
                return Err(NodeError::Unusable(
                    "evidence carries no VCEK or VLEK".into(),
                ));
            }
        };
        let intermediate = evidence
            .cert(CertRole::Ask)
            .or(evidence.cert(CertRole::Asvk))
            .map(<[u8]>::to_vec);
        let inputs = Inputs {
            vek,
            ark: evidence.cert(CertRole::Ark).map(<[u8]>::to_vec),
            intermediate,
            crl: self.crl.clone(),
            at: now,
            product: None,
        };
        let mut verdict = self.verifier.verify(&report, &inputs)?;
        let want = cert_report_data(
            &spki,
            &evidence.identity,
            &evidence.endpoint,
            &evidence.profile,
        );
        let bound = report.report_data == want;
        verdict.checks.push(Check {
            check: "tls_key_binding".into(),
            status: if bound { Status::Pass } else { Status::Fail },
            detail: if bound {
                "REPORT_DATA commits to this certificate's key, the identity key, the endpoint \
                 and the network profile"
                    .into()
            } else {
                format!(
                    "REPORT_DATA {} is not the binding {} of this certificate's key, identity, \
                     endpoint and profile",
                    hex::encode(report.report_data),
                    hex::encode(want)
                )
            },
            required: true,
        });
        verdict.checks.push(match &self.profile {
            None => Check {
                check: "network_profile".into(),
                status: Status::Skipped,
                detail: format!(
                    "none required (the node runs under {})",
                    hex::encode(&evidence.profile)
                ),
                required: false,
            },
            Some(p) => {
                let same = evidence.profile == p.as_slice();
                Check {
                    check: "network_profile".into(),
                    status: if same { Status::Pass } else { Status::Fail },
                    detail: if same {
                        format!(
                            "the node runs under this network's profile {}",
                            hex::encode(p)
                        )
                    } else {
                        format!(
                            "the node runs under profile {}, this network's is {}",
                            hex::encode(&evidence.profile),
                            hex::encode(p)
                        )
                    },
                    required: true,
                }
            }
        });
        let simulated_claim = evidence.platform == Platform::SnpSimulated;
        if simulated_claim != verdict.simulated {
            verdict.checks.push(Check {
                check: "platform".into(),
                status: Status::Fail,
                detail: format!(
                    "evidence says {:?} but the chain ends at {} roots",
                    evidence.platform,
                    if verdict.simulated {
                        "simulated"
                    } else {
                        "AMD"
                    }
                ),
                required: true,
            });
        }
        verdict.accepted = verdict.accepted
            && verdict
                .checks
                .iter()
                .all(|c| c.status != Status::Fail && (!c.required || c.status == Status::Pass));
        if !verdict.accepted {
            return Err(NodeError::Rejected(Box::new(verdict)));
        }
        Ok(Arc::new(AttestedNode {
            verdict,
            evidence,
            spki,
            verified_at: now,
        }))
    }
}
