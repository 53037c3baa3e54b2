//! Verification of AMD SEV-SNP attestation reports.
//!
//! Layers, as in go-sev-guest: [`abi`] (byte layout of reports and certificate tables),
//! [`kds`] (AMD key-distribution conventions and certificate fetching), [`verify`]
//! (cryptographic checks up to AMD's pinned roots) and [`validate`] (policy). A
//! [`verdict::Verdict`] lists every check made, passed, failed or skipped.
#![forbid(unsafe_code)]

pub mod abi;
pub mod kds;
pub mod validate;
pub mod verdict;
pub mod verify;

use abi::Report;
use validate::Policy;
use verdict::{Checks, Verdict};
use verify::roots::TrustStore;
use verify::{Inputs, VerifyError};

/// Verifies a report: every authenticity check, then every policy item. Returns an error
/// only for unusable input (a certificate or CRL that cannot be parsed); everything else
/// is a verdict whose checks say what passed, failed or was skipped.
pub fn verify_report(
    report: &Report,
    inputs: &Inputs,
    policy: &Policy,
    trust: &TrustStore,
) -> Result<Verdict, VerifyError> {
    let mut checks = Checks::default();
    let outcome = verify::check_authenticity(report, inputs, trust, &mut checks)?;
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
