//! What the unit tests share: deterministic keys and registries.

use std::sync::Arc;

use k256::ecdsa::signature::hazmat::PrehashSigner;
use keynet_eth::address_of;
use keynet_protocol::api::{DkgBody, PeerDkg};
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry, Stake};
use keynet_threshold::dkg::Participant;

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

/// Signs a DKG message digest with the deterministic key of `seed`.
pub fn signer(seed: u8) -> crate::dkg::Sign {
    let k = key(seed);
    Arc::new(move |digest: &[u8; 32]| {
        let s: k256::ecdsa::Signature = k.sign_prehash(digest).ok()?;
        Some(s.to_bytes().into())
    })
}

/// A broadcast DKG message of attempt 0 from participant `from` (whose key is seed `from`,
/// as in [`registry`]), signed.
pub fn dkg_message(network: &str, epoch: u64, from: Participant, body: DkgBody) -> PeerDkg {
    let mut m = PeerDkg {
        network: network.into(),
        epoch,
        attempt: 0,
        excluded: vec![],
        session: "00".repeat(16),
        from,
        to: None,
        body,
        signature: String::new(),
        proofs: vec![],
    };
    resign(&mut m, u8::try_from(from).unwrap_or(0));
    m
}

/// Signs `m` again with the key of `seed` (after a test changed it).
pub fn resign(m: &mut PeerDkg, seed: u8) {
    let sign = signer(seed);
    m.signature = sign(&m.signing_digest()).map_or_else(String::new, hex::encode);
}
