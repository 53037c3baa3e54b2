//! keynode as a library: configuration, evidence providers, the node's identity, attested
//! TLS, and the HTTPS API.
#![forbid(unsafe_code)]

pub mod config;
pub mod devnet;
pub mod evidence;
pub mod identity;
pub mod run;
pub mod server;
pub mod tls;
