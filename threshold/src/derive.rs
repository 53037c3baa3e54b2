//! User keys ("programmable key pairs") derived from the network's root key by a public
//! tweak: `t = H("KEYNET-PKP-v1", key id)` (hash to scalar, domain separated), derived public
//! key `Y + t·G`, derived share `s_i + t`. Adding the same `t` to every share keeps them a
//! sharing of `s + t` (Lagrange coefficients at 0 sum to one), so each node derives its
//! share locally and anyone derives the public key from the root public key.

use std::collections::BTreeMap;

use frost_secp256k1::keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare};
use frost_secp256k1::{Identifier, VerifyingKey};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};

use crate::h2f::hash_to_scalar;

/// Domain separation tag of the derivation.
pub const DST: &[u8] = b"KEYNET-PKP-v1";

/// Why a derivation failed (a malformed key package; never for a well-formed one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeriveError {
    /// A FROST value could not be (de)serialized.
    #[error("{what}: {reason}")]
    Encoding {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn enc(what: &'static str) -> impl Fn(frost_secp256k1::Error) -> DeriveError {
    move |e| DeriveError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// The tweak of `key_id`.
pub fn tweak(key_id: &[u8]) -> Scalar {
    hash_to_scalar(&[key_id], DST)
}

fn add_point(what: &'static str, compressed: &[u8], t: &Scalar) -> Result<Vec<u8>, DeriveError> {
    let bad = || DeriveError::Encoding {
        what,
        reason: "not a compressed point".into(),
    };
    let ep = EncodedPoint::from_bytes(compressed).map_err(|_| bad())?;
    let p = Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&ep)).ok_or_else(bad)?;
    let q = ProjectivePoint::from(p) + ProjectivePoint::GENERATOR * t;
    Ok(q.to_affine().to_encoded_point(true).as_bytes().to_vec())
}

/// The derived public key (33 bytes compressed) of `key_id` under `root` (33 bytes).
pub fn derive_public(root: &[u8], key_id: &[u8]) -> Result<Vec<u8>, DeriveError> {
    add_point("root public key", root, &tweak(key_id))
}

/// This node's key package for `key_id`.
pub fn derive_key_package(root: &KeyPackage, key_id: &[u8]) -> Result<KeyPackage, DeriveError> {
    let t = tweak(key_id);
    let share_bytes = root.signing_share().serialize();
    let arr: [u8; 32] = share_bytes
        .as_slice()
        .try_into()
        .map_err(|_| DeriveError::Encoding {
            what: "signing share",
            reason: "not 32 bytes".into(),
        })?;
    let s = Option::<Scalar>::from(Scalar::from_repr(arr.into())).ok_or(DeriveError::Encoding {
        what: "signing share",
        reason: "not a scalar".into(),
    })?;
    let derived = SigningShare::deserialize(&(s + t).to_bytes()).map_err(enc("signing share"))?;
    let vshare = root
        .verifying_share()
        .serialize()
        .map_err(enc("verifying share"))?;
    let vshare = VerifyingShare::deserialize(&add_point("verifying share", &vshare, &t)?)
        .map_err(enc("verifying share"))?;
    let vkey = root
        .verifying_key()
        .serialize()
        .map_err(enc("verifying key"))?;
    let vkey = VerifyingKey::deserialize(&add_point("verifying key", &vkey, &t)?)
        .map_err(enc("verifying key"))?;
    Ok(KeyPackage::new(
        *root.identifier(),
        derived,
        vshare,
        vkey,
        *root.min_signers(),
    ))
}

/// The public key package for `key_id` (what the aggregator needs).
pub fn derive_public_package(
    root: &PublicKeyPackage,
    key_id: &[u8],
) -> Result<PublicKeyPackage, DeriveError> {
    let t = tweak(key_id);
    let mut shares = BTreeMap::<Identifier, VerifyingShare>::new();
    for (id, v) in root.verifying_shares() {
        let b = v.serialize().map_err(enc("verifying share"))?;
        shares.insert(
            *id,
            VerifyingShare::deserialize(&add_point("verifying share", &b, &t)?)
                .map_err(enc("verifying share"))?,
        );
    }
    let vkey = root
        .verifying_key()
        .serialize()
        .map_err(enc("verifying key"))?;
    let vkey = VerifyingKey::deserialize(&add_point("verifying key", &vkey, &t)?)
        .map_err(enc("verifying key"))?;
    Ok(PublicKeyPackage::new(shares, vkey, root.min_signers()))
}
