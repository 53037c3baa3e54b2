//! Byte layout of SEV-SNP attestation reports, their containers, and the extended-report
//! certificate table. Parsing only: no cryptography and no policy.

pub mod certtable;
pub mod container;
mod error;
pub mod json;
pub mod report;
pub mod tcb;

pub use container::{Container, Evidence, parse_evidence};
pub use error::AbiError;
pub use report::Report;
pub use tcb::Tcb;
