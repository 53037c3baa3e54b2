//! Errors of the measurement library. Each names the input and the field at fault.

use std::path::PathBuf;

/// Everything that can go wrong while parsing inputs or computing a measurement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {what} {path:?}: {source}")]
    Io {
        /// Which input (`firmware`, `kernel`, `initrd`, ...).
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The firmware image (or SVSM binary) is malformed.
    #[error("{image}: {field}: {reason}")]
    Firmware {
        /// `firmware` or `SVSM binary`.
        image: &'static str,
        /// The structure or field at fault, e.g. `footer table entry 3 size`.
        field: String,
        /// What is wrong, with expected vs actual where there is one.
        reason: String,
    },

    /// A footer-table entry needed for this launch is absent.
    #[error("{image}: no {entry} entry (GUID {guid}) in the footer table")]
    MissingTableEntry {
        /// `firmware` or `SVSM binary`.
        image: &'static str,
        /// Human name of the entry.
        entry: &'static str,
        /// Its GUID.
        guid: String,
    },

    /// A kernel was given, but the firmware cannot measure it.
    #[error(
        "kernel given but the firmware does not support measured direct boot: {missing} is missing"
    )]
    NoKernelHashes {
        /// The missing structure (`SNP_KERNEL_HASHES metadata section`, `SEV hash table`).
        missing: &'static str,
    },

    /// A launch parameter is out of range or inconsistent with the others.
    #[error("invalid parameter {name}: {reason}")]
    Parameter {
        /// The parameter (`vcpus`, `vcpu-sig`, ...).
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },

    /// A key for the ID block could not be used.
    #[error("{which} key: {reason}")]
    Key {
        /// `ID` or `author`.
        which: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn firmware(
        image: &'static str,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Firmware {
            image,
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::Parameter {
            name,
            reason: reason.into(),
        }
    }

    /// True for errors caused by the file system rather than by content or parameters.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }
}
