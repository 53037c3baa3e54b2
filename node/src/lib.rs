//! keynode as a library: configuration, evidence providers, the node's identity, attested
//! TLS, the HTTPS API, the network's DKG, sealed keys, threshold signing, and BLS shares
//! under access-control conditions.
#![forbid(unsafe_code)]

pub mod bls;
pub mod config;
pub mod devnet;
pub mod dkg;
pub mod evidence;
pub mod identity;
pub mod keys;
pub mod peer;
pub mod pkp;
pub mod run;
pub mod server;
pub mod sign;
pub mod tls;
