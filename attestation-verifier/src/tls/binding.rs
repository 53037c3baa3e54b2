//! REPORT_DATA bindings: what a node's report commits to.
//!
//! Both are SHA-512 (64 bytes, the size of REPORT_DATA) over a domain-separation label and
//! length-prefixed fields (u32 big-endian length, then the bytes), so no two different
//! inputs hash the same message:
//!
//! - certificate binding: `SHA-512("keynet/tls-cert/v2" || lp(spki) || lp(identity) ||
//!   lp(endpoint) || lp(profile))`, where `spki` is the DER SubjectPublicKeyInfo of the TLS
//!   certificate and `profile` the SHA-256 of the network profile the node runs under;
//! - fresh binding: `SHA-512("keynet/fresh/v2" || lp(spki) || lp(identity) || lp(endpoint) ||
//!   lp(profile) || lp(nonce) || lp(exporter))`, where `exporter` is the TLS exporter value
//!   (RFC 8446 7.5) of the very connection, label [`EXPORTER_LABEL`], no context, 32 bytes.

use ring::digest::{Context, SHA512};

/// Label of the TLS exporter used for fresh evidence.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-keynet-fresh-attestation";
/// Length of the exported keying material.
pub const EXPORTER_LEN: usize = 32;

fn digest(label: &[u8], fields: &[&[u8]]) -> [u8; 64] {
    let mut ctx = Context::new(&SHA512);
    ctx.update(label);
    for f in fields {
        ctx.update(&(f.len() as u32).to_be_bytes());
        ctx.update(f);
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// REPORT_DATA of the report in a node's certificate.
pub fn cert_report_data(spki: &[u8], identity: &[u8], endpoint: &str, profile: &[u8]) -> [u8; 64] {
    digest(
        b"keynet/tls-cert/v2",
        &[spki, identity, endpoint.as_bytes(), profile],
    )
}

/// REPORT_DATA of a fresh report bound to a client nonce and one TLS connection.
pub fn fresh_report_data(
    spki: &[u8],
    identity: &[u8],
    endpoint: &str,
    profile: &[u8],
    nonce: &[u8],
    exporter: &[u8],
) -> [u8; 64] {
    digest(
        b"keynet/fresh/v2",
        &[
            spki,
            identity,
            endpoint.as_bytes(),
            profile,
            nonce,
            exporter,
        ],
    )
}
