//! Errors of the byte-layout layer: each names the structure and field.

/// Why bytes could not be parsed as a report, a wrapper or a certificate table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbiError {
    /// The input has the wrong length for the structure.
    #[error("{what}: expected {expected} bytes, found {actual}")]
    Length {
        /// The structure.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// A field holds a value the structure does not allow.
    #[error("{field}: {reason}")]
    Field {
        /// The field, e.g. `version` or `certificate table entry 2 offset`.
        field: &'static str,
        /// What is wrong, with expected vs actual.
        reason: String,
    },
    /// The bytes match none of the accepted containers.
    #[error("unrecognised report container ({len} bytes): {reason}")]
    Container {
        /// Input length.
        len: usize,
        /// What was tried.
        reason: String,
    },
}
