//! keynode as a library. A node in rooms, each with one job (ARCHITECTURE.md draws them):
//!
//! - [`run`]: starting a node from its configuration, everything checked before the port
//!   opens; [`config`]: the host's configuration, validated; [`profile`]: its rules, hashed
//!   and bound into the evidence.
//! - [`state`]: what a running node holds, behind methods.
//! - [`listener`]: the accept loop: attested TLS, peer admission.
//! - [`api`]: the routes, their handlers and the error body (types in
//!   [`keynet_protocol::api`]); [`attest`]: fresh evidence, metered; [`quota`]: shares of
//!   a bounded resource per key and in all.
//! - [`registry`]: where the registry comes from, and the rule that it never goes back;
//!   [`replay`]: the sealed horizon that keeps authorisations single-use across restarts.
//! - services: [`dkg`] (the network's key generation), [`sign`] (threshold FROST signing),
//!   [`bls`] (decryption and statement shares under conditions), [`pkp`] (who may sign
//!   with a derived key).
//! - the node's own secrets: [`identity`], [`keys`], [`tls`], and where evidence and
//!   sealing keys come from ([`evidence`]); [`peer`]: verified connections to other nodes.
//!
//! The simulated SNP platform (and `keynode dev-network`) exist only in a build with the
//! `simulated` feature; the published image's keynode is built without it.
#![forbid(unsafe_code)]

pub mod api;
pub mod attest;
pub mod bls;
pub mod config;
#[cfg(feature = "simulated")]
pub mod devnet;
pub mod dkg;
pub mod evidence;
pub mod identity;
pub mod keys;
pub mod listener;
pub mod peer;
pub mod pkp;
pub mod profile;
pub mod quota;
pub mod registry;
pub mod replay;
pub mod run;
pub mod sign;
pub mod state;
pub mod tls;
pub mod work;

#[cfg(test)]
mod testing;

/// A lock whose poisoning is ignored: a thread that panicked holding it left a whole value
/// behind (every critical section here replaces values, never half-writes one).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
