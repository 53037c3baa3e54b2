//! Errors of the cryptographic layer that stop verification before a verdict can be
//! formed (unusable input). Failed checks are not errors: they are verdict entries.

/// Input that cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A certificate could not be parsed or uses an algorithm AMD never uses.
    #[error("{what} certificate: {reason}")]
    Certificate {
        /// Which certificate.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A CRL could not be parsed.
    #[error("CRL: {0}")]
    Crl(String),
    /// The report's bytes could not be parsed.
    #[error("report: {0}")]
    Report(#[from] crate::abi::AbiError),
    /// Something required is missing (e.g. no VCEK).
    #[error("{0}")]
    Missing(String),
}
