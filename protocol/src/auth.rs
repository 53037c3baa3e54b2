//! The user's authorisation of one request: a Sign-In-with-Ethereum style (EIP-4361 shaped)
//! text signed as an EIP-191 personal message, naming the node network's domain, the
//! user's address, the request's digest, a nonce and a validity window. Every node checks
//! it itself ([`AuthVerifier`]): signature (address recovered with k256), domain, network,
//! digest, time window, lifetime, and that the nonce was not used before.
//!
//! ```text
//! keynet.example wants you to sign in with your Ethereum account:
//! 0x<EIP-55 address>
//!
//! Keynet request: 0x<sha256 of the request, 64 hex digits>
//!
//! URI: keynet://<network id>
//! Version: 1
//! Chain ID: 1
//! Nonce: <8-64 letters and digits>
//! Issued At: <YYYY-MM-DDTHH:MM:SSZ>
//! Expiration Time: <YYYY-MM-DDTHH:MM:SSZ>
//! ```

mod message;
pub mod replay;
mod time;
mod verify;

pub use message::{AuthMessage, ParseError};
pub use replay::ReplayLimits;
pub use time::{format_utc, parse_utc};
pub use verify::{AuthError, AuthVerifier, SignedAuth};
