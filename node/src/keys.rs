//! The network's keys as this node holds them: its FROST(secp256k1) key package and the
//! group's public key package, its BLS12-381 key share and the BLS public keys, for one
//! (network, epoch). Sealed in the node's store, so a restart needs no new DKG.

use keynet_protocol::api::{BlsPublic, FrostPublic, PublicKeys};
use keynet_store::{Store, StoreError};
use keynet_threshold::bls_dkg::BlsKey;
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::keys::{KeyPackage, PublicKeyPackage};
use keynet_threshold::wire::BlsKeyWire;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why stored keys could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The sealed store refused (I/O, tampered, foreign).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed value does not decode.
    #[error("stored keys {name}: {reason}")]
    Invalid {
        /// The file.
        name: String,
        /// Why.
        reason: String,
    },
}

/// This node's share of the network's keys.
pub struct NetworkKeys {
    /// The registry's network id.
    pub network: String,
    /// The registry epoch the keys were made for.
    pub epoch: u64,
    /// This node's participant index (1-based position in the registry).
    pub me: Participant,
    /// Participants.
    pub n: u16,
    /// FROST key package (secret share inside; the library zeroizes it on drop).
    pub frost: KeyPackage,
    /// FROST group public key package.
    pub frost_public: PublicKeyPackage,
    /// BLS key share and public keys.
    pub bls: BlsKey,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: u32,
    network: String,
    epoch: u64,
    me: Participant,
    n: u16,
    frost: String,
    frost_public: String,
    bls: BlsKeyWire,
}

impl Drop for Stored {
    fn drop(&mut self) {
        // The hex of the secret share.
        zeroize::Zeroize::zeroize(&mut self.frost);
    }
}

const FORMAT: u32 = 1;

/// The store name of the keys of (network, epoch): network ids may hold characters file
/// names may not, so the name carries a hash of it.
pub fn store_name(network: &str, epoch: u64) -> String {
    format!("{}{epoch}", store_prefix(network))
}

fn store_prefix(network: &str) -> String {
    let h = Sha256::digest(network.as_bytes());
    format!("keys-{}-", hex::encode(&h[..8]))
}

/// The highest epoch of `network` whose keys this node keeps sealed, if any (read from the
/// names only: a registry older than it would take the node back).
pub fn highest_epoch(store: &Store, network: &str) -> Result<Option<u64>, KeysError> {
    let prefix = store_prefix(network);
    Ok(store
        .names()?
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix)?.parse::<u64>().ok())
        .max())
}

impl NetworkKeys {
    /// Seals the keys into `store`.
    pub fn save(&self, store: &Store) -> Result<(), KeysError> {
        let name = store_name(&self.network, self.epoch);
        let invalid = |reason: String| KeysError::Invalid {
            name: name.clone(),
            reason,
        };
        let stored = Stored {
            format: FORMAT,
            network: self.network.clone(),
            epoch: self.epoch,
            me: self.me,
            n: self.n,
            frost: hex::encode(Zeroizing::new(
                self.frost.serialize().map_err(|e| invalid(e.to_string()))?,
            )),
            frost_public: hex::encode(
                self.frost_public
                    .serialize()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            bls: BlsKeyWire::encode(&self.bls),
        };
        let bytes =
            Zeroizing::new(serde_json::to_vec(&stored).map_err(|e| invalid(e.to_string()))?);
        store.write(&name, &bytes)?;
        Ok(())
    }

    /// Removes the sealed keys of this network's earlier epochs (a superseded epoch's shares
    /// must not outlive it here); returns how many files went.
    pub fn erase_superseded(&self, store: &Store) -> Result<usize, KeysError> {
        let prefix = store_prefix(&self.network);
        let mut erased = 0;
        for name in store.names()? {
            let Some(epoch) = name
                .strip_prefix(&prefix)
                .and_then(|e| e.parse::<u64>().ok())
            else {
                continue;
            };
            if epoch < self.epoch {
                store.remove(&name)?;
                erased += 1;
            }
        }
        Ok(erased)
    }

    /// The sealed keys of (network, epoch), if this node has them.
    pub fn load(
        store: &Store,
        network: &str,
        epoch: u64,
    ) -> Result<Option<NetworkKeys>, KeysError> {
        let name = store_name(network, epoch);
        let Some(bytes) = store.read(&name)? else {
            return Ok(None);
        };
        let invalid = |reason: String| KeysError::Invalid {
            name: name.clone(),
            reason,
        };
        let s: Stored = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if s.format != FORMAT {
            return Err(invalid(format!("format {} (expected {FORMAT})", s.format)));
        }
        if s.network != network || s.epoch != epoch {
            return Err(invalid(format!(
                "holds the keys of {} epoch {}, not {network} epoch {epoch}",
                s.network, s.epoch
            )));
        }
        let frost_bytes =
            Zeroizing::new(hex::decode(&s.frost).map_err(|e| invalid(format!("frost: {e}")))?);
        let frost =
            KeyPackage::deserialize(&frost_bytes).map_err(|e| invalid(format!("frost: {e}")))?;
        let frost_public = PublicKeyPackage::deserialize(
            &hex::decode(&s.frost_public).map_err(|e| invalid(format!("frost_public: {e}")))?,
        )
        .map_err(|e| invalid(format!("frost_public: {e}")))?;
        let bls = s.bls.decode().map_err(|e| invalid(e.to_string()))?;
        Ok(Some(NetworkKeys {
            network: s.network.clone(),
            epoch: s.epoch,
            me: s.me,
            n: s.n,
            frost,
            frost_public,
            bls,
        }))
    }

    /// The public part, as `/v1/handshake` serves it.
    pub fn public_keys(&self) -> PublicKeys {
        use keynet_threshold::wire::g2_hex;
        PublicKeys {
            epoch: self.epoch,
            threshold: self.bls.threshold,
            frost_secp256k1: FrostPublic {
                group_key: self
                    .frost_public
                    .verifying_key()
                    .serialize()
                    .map(hex::encode)
                    .unwrap_or_default(),
                public_key_package: self
                    .frost_public
                    .serialize()
                    .map(hex::encode)
                    .unwrap_or_default(),
            },
            bls12_381_g2: BlsPublic {
                public_key: g2_hex(&self.bls.public.0),
                public_shares: self
                    .bls
                    .public_shares
                    .iter()
                    .map(|(p, v)| (*p, g2_hex(v)))
                    .collect(),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keynet_store::{KeySource, SealingKey};

    #[test]
    fn keys_of_earlier_epochs_are_erased_and_other_networks_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), SealingKey::new([3; 32], KeySource::Simulated)).unwrap();
        let frost = keynet_threshold::dkg::run_local(4, 3).unwrap();
        let bls = keynet_threshold::bls_dkg::run_local(4, 3).unwrap();
        let keys = |network: &str, epoch| NetworkKeys {
            network: network.into(),
            epoch,
            me: 1,
            n: 4,
            frost: frost[0].0.clone(),
            frost_public: frost[0].1.clone(),
            bls: bls[0].clone(),
        };
        for (net, epoch) in [("a", 1), ("a", 2), ("b", 1), ("a", 3)] {
            keys(net, epoch).save(&store).unwrap();
        }
        assert_eq!(keys("a", 3).erase_superseded(&store).unwrap(), 2);
        assert_eq!(highest_epoch(&store, "a").unwrap(), Some(3));
        assert!(NetworkKeys::load(&store, "a", 2).unwrap().is_none());
        assert!(NetworkKeys::load(&store, "a", 3).unwrap().is_some());
        assert!(NetworkKeys::load(&store, "b", 1).unwrap().is_some());
    }
}
