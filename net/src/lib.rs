//! Keynet's network layer, one for the client and for the nodes' connections to each other.
//!
//! - [`tls`]: the attested TLS 1.3 configurations. A server presents its attested
//!   certificate; a client verifies it in full during the handshake (chain to AMD's pinned
//!   roots, report, published measurement, REPORT_DATA binding the TLS key); a node dialling
//!   a peer presents its own, which the peer verifies the same way after the handshake
//!   (metered, so a stranger cannot make it do that work unbounded).
//! - [`http`]: HTTP/1.1 over such a connection: open, send, answers size-capped.
//! - [`verify`]: the one answer to "is this the node I meant?": the handshake's verdict, the
//!   registry member's identity key and endpoint, and fresh evidence bound to a new nonce
//!   and to this very TLS session ([`verify::verify_node`]); and, for a server, whether a
//!   peer that presented a certificate may be admitted ([`verify::claim_peer`], then
//!   [`verify::admit_peer`]).
//! - [`pool`]: kept-alive connections to one registry member, each verified when opened,
//!   and typed calls of the node API ([`keynet_protocol::api`]).
//! - [`fetch`]: a plain `http(s)://` GET with a time budget and a size cap, for documents
//!   whose integrity comes from their own signature (the registry).
#![forbid(unsafe_code)]

pub mod fetch;
pub mod http;
pub mod pool;
pub mod tls;
pub mod verify;

/// Unix seconds now (0 before 1970): the one clock of users' authorisations, conditions
/// and certificate checks.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// [`unix_now`] as the verifier counts time (signed seconds).
pub(crate) fn verifier_now() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}
