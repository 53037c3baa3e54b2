//! Types every Keynet party shares: the signed staking registry, users' authorisations and
//! requests, and the node's API ([`api`]: every route's body and answer, the error codes).
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod registry;
pub mod request;

pub use registry::{
    IdentityKey, MAX_EPOCH, NodeEntry, PeerRefusal, Registry, RegistryError, SignedRegistry, Stake,
    ValueError, sign, validate_endpoint,
};
