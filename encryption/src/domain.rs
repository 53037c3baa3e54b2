//! What the network's BLS key signs, kept apart by domain: the identity of an encrypted
//! file (its decryption key) and a statement signed under conditions. An IBE identity is
//! exactly 32 bytes and a signed statement is longer than 32 bytes (domain tag, conditions
//! hash, message), so a `bls-sign` signature can never be a file's decryption key.

use keynet_conditions::Conditions;
use sha2::{Digest, Sha256};

/// Domain of the identity hash.
const IDENTITY_DOMAIN: &[u8] = b"keynet/ibe-identity/v1\n";
/// Prefix of every message the network signs through `/v1/bls-sign`.
pub const SIGN_DOMAIN: &[u8] = b"keynet/bls-sign/v1\n";

/// The identity a file is encrypted to: conditions and plaintext, hashed together.
pub fn identity(conditions: &Conditions, plaintext_sha256: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(IDENTITY_DOMAIN);
    h.update(conditions.hash());
    h.update(plaintext_sha256);
    h.finalize().into()
}

/// The bytes the network signs for `message` under `conditions`:
/// `"keynet/bls-sign/v1\n" || conditions hash || message`. A verifier of the signature
/// learns which conditions the signers checked.
pub fn signed_message(conditions: &Conditions, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGN_DOMAIN.len() + 32 + message.len());
    out.extend_from_slice(SIGN_DOMAIN);
    out.extend_from_slice(&conditions.hash());
    out.extend_from_slice(message);
    out
}
