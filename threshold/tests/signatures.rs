//! FROST signatures checked with our own RFC 9591 equation (src/schnorr.rs): the RFC's
//! test vector, signatures from a DKG'd key and from derived keys, and forgeries.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use keynet_threshold::derive::{derive_key_package, derive_public, derive_public_package};
use keynet_threshold::frost;
use keynet_threshold::schnorr::{SchnorrError, verify};

fn rfc_vector() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/rfc9591-secp256k1.json")).unwrap();
    let h = |p: &str| hex::decode(v.pointer(p).unwrap().as_str().unwrap()).unwrap();
    (
        h("/inputs/verifying_key_key"),
        h("/inputs/message"),
        h("/final_output/sig"),
    )
}

#[test]
fn rfc9591_vector_verifies_and_tampering_does_not() {
    let (pk, msg, sig) = rfc_vector();
    verify(&pk, &msg, &sig).unwrap();
    for i in 0..sig.len() {
        let mut bad = sig.clone();
        bad[i] ^= 1;
        assert!(
            verify(&pk, &msg, &bad).is_err(),
            "flip of byte {i} accepted"
        );
    }
    assert_eq!(verify(&pk, b"tesu", &sig), Err(SchnorrError::Invalid));
    assert_eq!(verify(&pk, &msg, &sig[..64]), Err(SchnorrError::Length(64)));
    let mut high_z = sig.clone();
    high_z[33..].fill(0xff);
    assert_eq!(verify(&pk, &msg, &high_z), Err(SchnorrError::Scalar));
}

#[test]
fn dkg_keys_sign_with_any_threshold_subset_and_derived_keys_work() {
    let (n, t) = (7u16, 5u16);
    let outs = common::run(n, t, &common::Faults::default());
    let (keys, public) = common::all_done(&outs);
    let pk = public.verifying_key().serialize().unwrap();
    let ids: Vec<frost::Identifier> = keys.keys().copied().collect();
    // Several different t-subsets, including the last t.
    for start in [0usize, 1, 2] {
        let subset: Vec<_> = ids[start..start + usize::from(t)].to_vec();
        let sig = common::sign(&keys, &public, &subset, b"keynet");
        verify(&pk, b"keynet", &sig).unwrap();
    }
    // Derived key: each node tweaks its own share; anyone derives the public key.
    let key_id = b"user-42/wallet-1";
    let dkeys: BTreeMap<_, _> = keys
        .iter()
        .map(|(i, k)| (*i, derive_key_package(k, key_id).unwrap()))
        .collect();
    let dpublic = derive_public_package(&public, key_id).unwrap();
    let dpk = derive_public(&pk, key_id).unwrap();
    assert_eq!(dpublic.verifying_key().serialize().unwrap(), dpk);
    assert_ne!(dpk, pk);
    let sig = common::sign(&dkeys, &dpublic, &ids[..usize::from(t)], b"derived");
    verify(&dpk, b"derived", &sig).unwrap();
    assert!(
        verify(&pk, b"derived", &sig).is_err(),
        "root key verified a derived signature"
    );
    let other = derive_public(&pk, b"user-42/wallet-2").unwrap();
    assert!(verify(&other, b"derived", &sig).is_err());
}

#[test]
fn fewer_than_t_signers_cannot_sign() {
    let outs = common::run(4, 3, &common::Faults::default());
    let (keys, _) = common::all_done(&outs);
    let ids: Vec<_> = keys.keys().copied().collect();
    let mut rng = rand_core::OsRng;
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for id in &ids[..2] {
        let (n, c) = frost::round1::commit(keys[id].signing_share(), &mut rng);
        nonces.insert(*id, n);
        commitments.insert(*id, c);
    }
    let package = frost::SigningPackage::new(commitments, b"m");
    // The library refuses to sign with fewer than min_signers commitments.
    assert!(frost::round2::sign(&package, &nonces[&ids[0]], &keys[&ids[0]]).is_err());
}
