//! The Keynet client library: connect to a node, verify it during the TLS handshake (chain,
//! report, policy, binding of the report to the TLS key), then ask for fresh evidence bound
//! to a nonce and to this very connection, so a recorded report cannot be replayed.
#![forbid(unsafe_code)]

pub mod attest;
pub mod network;

pub use attest::{AttestError, Attestation, attest, trust_store};
