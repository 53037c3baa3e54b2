//! The node's identity key: secp256k1, generated inside the guest at first start. Peers and
//! the staking registry know a node by its compressed public key.
//!
//! Until sealed storage exists (key material encrypted under a key only this image on this
//! chip can derive), the secret is kept in the node's state directory with mode 0600.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use k256::ecdsa::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// File name of the identity secret in the state directory.
pub const FILE: &str = "identity.key";

/// Why the identity key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// File system error.
    #[error("identity key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("identity key {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The node's identity.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Loads the key from `dir`, or creates it there (atomically) if absent.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join(FILE);
        let shown = path.display().to_string();
        let io = |source| IdentityError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|e| {
                    IdentityError::Invalid {
                        path: shown.clone(),
                        reason: format!("not hex: {e}"),
                    }
                })?);
                let key = SigningKey::from_slice(&bytes).map_err(|e| IdentityError::Invalid {
                    path: shown.clone(),
                    reason: format!("not a secp256k1 secret: {e}"),
                })?;
                Ok(Identity { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let key = SigningKey::random(&mut rand_core::OsRng);
                let tmp = dir.join(format!("{FILE}.tmp"));
                let secret = Zeroizing::new(hex::encode(key.to_bytes()));
                {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&tmp)
                        .map_err(io)?;
                    f.write_all(secret.as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                }
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
                std::fs::rename(&tmp, &path).map_err(io)?;
                Ok(Identity { key })
            }
            Err(e) => Err(io(e)),
        }
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

    /// The compressed public key (33 bytes), as in the registry and the evidence.
    pub fn public_compressed(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec()
    }
}
