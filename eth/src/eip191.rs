//! EIP-191 personal-message signatures (version 0x45), as wallets make them with
//! `personal_sign` and contracts check them with `ecrecover`.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::{Address, address_of};

/// Why a signature cannot be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SignatureError {
    reason: String,
}

impl SignatureError {
    fn new(reason: impl Into<String>) -> Self {
        SignatureError {
            reason: reason.into(),
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The EIP-191 (version 0x45) hash a wallet's `personal_sign` signs:
/// keccak256(`"\x19Ethereum Signed Message:\n"` + decimal byte length of `msg` + `msg`).
pub fn eip191_hash(msg: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(msg.len().to_string().as_bytes());
    hasher.update(msg);
    hasher.finalize().into()
}

/// Signs `msg` as a wallet's `personal_sign` does: the EIP-191 hash, RFC 6979 nonce,
/// low s, `r || s || v` with v = 27/28.
pub fn eip191_sign(msg: &[u8], key: &SigningKey) -> Result<[u8; 65], SignatureError> {
    let (signature, recovery) = key
        .sign_prehash_recoverable(&eip191_hash(msg))
        .map_err(|e| SignatureError::new(format!("signing failed: {e}")))?;
    if recovery.is_x_reduced() {
        // Probability about 2^-128; Ethereum's v cannot express it.
        return Err(SignatureError::new(
            "the signature needs an x-reduced recovery id, which v cannot express",
        ));
    }
    let (signature, y_odd) = low_s(signature, recovery.is_y_odd());
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&signature.to_bytes());
    out[64] = 27 + u8::from(y_odd);
    Ok(out)
}

/// The address whose key signed `msg` as an EIP-191 personal message, as `ecrecover`
/// and eth-account find it: `signature` is `r || s || v` with v = 27/28 or 0/1; a high s
/// is accepted (normalised first, as k256 refuses it). A wrong message or key yields
/// another address, not an error.
pub fn eip191_recover(msg: &[u8], signature: &[u8; 65]) -> Result<Address, SignatureError> {
    let y_odd = match signature[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => {
            return Err(SignatureError::new(format!(
                "recovery byte v is {v}, expected 27 or 28 (or 0 or 1)"
            )));
        }
    };
    let parsed = Signature::from_slice(&signature[..64])
        .map_err(|_| SignatureError::new("r or s is zero or not below the curve order"))?;
    let (parsed, y_odd) = low_s(parsed, y_odd);
    let key = VerifyingKey::recover_from_prehash(
        &eip191_hash(msg),
        &parsed,
        RecoveryId::new(y_odd, false),
    )
    .map_err(|_| SignatureError::new("no public key recovers from it"))?;
    Ok(address_of(&key))
}

/// The low-s form of a signature and its recovery parity: negating s is the signature
/// of the same key with R mirrored, so the parity flips.
fn low_s(signature: Signature, y_odd: bool) -> (Signature, bool) {
    match signature.normalize_s() {
        Some(normalised) => (normalised, !y_odd),
        None => (signature, y_odd),
    }
}
