//! Types every Keynet party shares: the signed staking registry and the API messages.
#![forbid(unsafe_code)]

pub mod auth;
pub mod registry;
pub mod request;

pub use registry::{
    Address, IdentityKey, MAX_EPOCH, NodeEntry, PeerRefusal, Registry, RegistryError,
    SignedRegistry, Stake, ValueError, address_of, eip191_hash, eip191_recover, eip191_sign, sign,
    validate_endpoint,
};
