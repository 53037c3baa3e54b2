//! Attested TLS: the evidence a node carries in its certificate, the REPORT_DATA bindings,
//! and rustls verifiers that check a node during the handshake.

pub mod binding;
pub mod evidence;
pub mod node;
pub mod rustls_verifiers;

pub use node::{AttestedNode, NodeError, NodeVerifier};
pub use rustls_verifiers::{AttestedClientVerifier, AttestedServerVerifier};
