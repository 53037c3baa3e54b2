//! What the unit tests share: deterministic keys and registries.

use keynet_eth::address_of;
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry, Stake};

/// A deterministic secp256k1 key.
pub fn key(seed: u8) -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap_or_else(|e| panic!("{e}"))
}

/// A registry of network `keynet-test` at `epoch` with nodes 1..=n (identity key seed i,
/// endpoint 127.0.0.1:700i), default threshold.
pub fn registry(n: u8, epoch: u64) -> Registry {
    Registry {
        network_id: "keynet-test".into(),
        epoch,
        threshold: 0,
        min_stake: Stake::from_wei(1),
        nodes: (1..=n)
            .map(|i| NodeEntry {
                identity_key: IdentityKey::from_verifying_key(key(i).verifying_key()),
                staker: address_of(key(i + 100).verifying_key()),
                stake: Stake::from_wei(10),
                endpoint: format!("127.0.0.1:{}", 7000 + u16::from(i)),
            })
            .collect(),
    }
}
