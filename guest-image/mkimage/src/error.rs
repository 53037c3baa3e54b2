//! Errors of image assembly: each names the file, field or entry and why.

use std::path::PathBuf;

/// An image assembly error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A path inside the archive is not acceptable.
    #[error("archive path '{path}': {reason}")]
    ArchivePath {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A file changed size while it was being archived.
    #[error("{path}: size changed while archiving (expected {expected} bytes, read {actual})")]
    SizeChanged {
        /// The file.
        path: PathBuf,
        /// Size when the header was written.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
    /// A value does not fit the newc header's 32-bit fields.
    #[error("archive entry '{path}': {field} {value} does not fit in 32 bits")]
    TooLarge {
        /// The entry.
        path: String,
        /// The header field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A line of `modules.dep` or of the module list is malformed.
    #[error("{file} line {line}: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A requested module is not in `modules.dep`.
    #[error("module '{0}' is not in modules.dep")]
    UnknownModule(String),
    /// Module dependencies form a cycle.
    #[error("module dependency cycle through '{0}'")]
    DependencyCycle(String),
    /// A record of the lock file is missing or malformed.
    #[error("lock file {file}: {reason}")]
    Lock {
        /// The lock file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Computing a launch digest failed.
    #[error("launch digest: {0}")]
    Measure(#[from] snp_measure::Error),
    /// snp-measure does not know a vCPU type.
    #[error("vCPU type '{0}' unknown to snp-measure")]
    UnknownVcpuType(&'static str),
    /// A build record is not valid JSON of the right shape.
    #[error("build record {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// A build record has another schema.
    #[error("build record {path}: schema '{found}', expected '{expected}'")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What it says.
        found: String,
        /// What this tool reads.
        expected: &'static str,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
