//! Verification of AMD SEV-SNP attestation reports.
//!
//! Layers, as in go-sev-guest: [`abi`] (byte layout of reports and certificate tables),
//! [`kds`] (AMD key-distribution conventions and certificate fetching), [`verify`]
//! (cryptographic checks up to AMD's pinned roots) and [`validate`] (policy). A
//! [`verdict::Verdict`] lists every check made, passed, failed or skipped.
#![forbid(unsafe_code)]

pub mod abi;
pub mod kds;
pub mod tls;
pub mod validate;
pub mod verdict;
pub mod verify;

use abi::Report;
use validate::Policy;
use verdict::{Checks, Verdict};
use verify::roots::TrustStore;
use verify::{ChainCache, Inputs, VerifyError};

/// Verifies a report: every authenticity check, then every policy item. Returns an error
/// only for unusable input (a certificate or CRL that cannot be parsed); everything else
/// is a verdict whose checks say what passed, failed or was skipped.
pub fn verify_report(
    report: &Report,
    inputs: &Inputs,
    policy: &Policy,
    trust: &TrustStore,
) -> Result<Verdict, VerifyError> {
    verify_with_cache(report, inputs, policy, trust, None)
}

/// A verifier that remembers verified certificate chains, so repeated reports from the
/// same chip cost one ECDSA verification plus parsing.
#[derive(Debug, Default)]
pub struct Verifier {
    /// The roots chains may end at.
    pub trust: TrustStore,
    /// The policy applied after authenticity.
    pub policy: Policy,
    cache: ChainCache,
}

impl Verifier {
    /// A verifier with these roots and this policy.
    pub fn new(trust: TrustStore, policy: Policy) -> Self {
        Verifier {
            trust,
            policy,
            cache: ChainCache::new(),
        }
    }

    /// Verifies a report, reusing cached chain checks.
    pub fn verify(&self, report: &Report, inputs: &Inputs) -> Result<Verdict, VerifyError> {
        verify_with_cache(report, inputs, &self.policy, &self.trust, Some(&self.cache))
    }

    /// Number of chains cached.
    pub fn cached_chains(&self) -> usize {
        self.cache.len()
    }
}

fn verify_with_cache(
    report: &Report,
    inputs: &Inputs,
    policy: &Policy,
    trust: &TrustStore,
    cache: Option<&ChainCache>,
) -> Result<Verdict, VerifyError> {
    let mut checks = Checks::default();
    let outcome = verify::check_authenticity(report, inputs, trust, cache, &mut checks)?;
    if outcome.simulated {
        checks.skip(
            "root",
            "SIMULATED platform root, trusted only because it was given explicitly: not AMD hardware",
        );
    }
    if policy.require_crl && inputs.crl.is_none() {
        checks.require(
            "crl_required",
            false,
            "a CRL is required and none was given",
        );
    }
    policy.check(report, outcome.product, &mut checks);
    Ok(Verdict {
        accepted: checks.accepted(),
        product: outcome.product,
        simulated: outcome.simulated,
        report: abi::json::report_json(report, outcome.product),
        checks: checks.0,
    })
}
