//! The Ethereum primitives Keynet rests on, in one leaf crate that the registry, the users'
//! authorisations and the access-control conditions share:
//!
//! - [`Address`]: 20 bytes, written with the EIP-55 checksum, read lowercase or checksummed;
//! - [`keccak256`];
//! - EIP-191 personal messages (what a wallet's `personal_sign` signs): [`eip191_hash`],
//!   [`eip191_sign`] (RFC 6979, low s, v = 27/28) and [`eip191_recover`] (as `ecrecover`
//!   and eth-account do: high s and v = 0/1 accepted);
//! - [`address_of`] a public key.
//!
//! Checked against published vectors here (`tests/vectors.rs`) and against eth-account in
//! `keynet-protocol`'s registry tests.
#![forbid(unsafe_code)]

mod address;
mod eip191;

pub use address::{Address, AddressError, address_of};
pub use eip191::{SignatureError, eip191_hash, eip191_recover, eip191_sign};

use sha3::{Digest, Keccak256};

/// Keccak-256 (Ethereum's hash, not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}
