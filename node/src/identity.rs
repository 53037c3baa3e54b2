//! The node's identity key: secp256k1, generated inside the guest at first start. Peers and
//! the staking registry know a node by its compressed public key.
//!
//! The secret is kept sealed in the node's state directory ([`keynet_store::Store`]): it
//! opens only inside the same image on the same chip.

use k256::ecdsa::{SigningKey, VerifyingKey};
use keynet_store::{Store, StoreError};
use zeroize::Zeroizing;

/// Name of the sealed identity secret in the node's store.
pub const NAME: &str = "identity";

/// Why the identity key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The sealed store refused (I/O, tampered, or sealed by another image or chip).
    #[error("identity key: {0}")]
    Store(#[from] StoreError),
    /// The sealed value is not a valid key.
    #[error("identity key: {0}")]
    Invalid(String),
}

/// The node's identity.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Loads the key from the sealed store, or creates it there if absent.
    pub fn load_or_create(store: &Store) -> Result<Identity, IdentityError> {
        if let Some(bytes) = store.read(NAME)? {
            let key = SigningKey::from_slice(&bytes)
                .map_err(|e| IdentityError::Invalid(format!("not a secp256k1 secret: {e}")))?;
            return Ok(Identity { key });
        }
        let key = SigningKey::random(&mut rand_core::OsRng);
        store.write(NAME, &Zeroizing::new(key.to_bytes().to_vec()))?;
        Ok(Identity { key })
    }

    /// A fresh in-memory identity (tests, dev tools).
    pub fn generate() -> Identity {
        Identity {
            key: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// The public key.
    pub fn public(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// Signs a 32-byte digest (ECDSA, RFC 6979 nonces): 64 bytes, r || s.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Option<[u8; 64]> {
        use k256::ecdsa::signature::hazmat::PrehashSigner;
        let signature: k256::ecdsa::Signature = self.key.sign_prehash(digest).ok()?;
        Some(signature.to_bytes().into())
    }

    /// The compressed public key (33 bytes), as in the registry and the evidence.
    pub fn public_compressed(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec()
    }
}
