//! Resharing both root keys to a new member set, and refreshing them, with the math of
//! `keynet_threshold::reshare`: the keys come from our DKGs, and the results are checked
//! with the independent libraries (frost-secp256k1 signs under the unchanged group key, and
//! our RFC 9591 equation checks it; blsful combines BLS shares into a signature that
//! verifies under the unchanged BLS key).
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use blsful::vsss_rs::PrimeFieldShare;
use blsful::{SecretKeyShare, Signature, SignatureSchemes};
use group::{Group, GroupEncoding};
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost;
use keynet_threshold::reshare::{
    ReshareError, combine_commitments, combine_shares, constant_ok, deal, lagrange_at_zero,
    public_at, refresh_public, refresh_share, share_ok,
};

/// The old key as numbers: each member's secret share and public share, and the group key.
struct Old<G: Group> {
    shares: BTreeMap<Participant, G::Scalar>,
    public: BTreeMap<Participant, G>,
    group: G,
    t: u16,
}

/// What a resharing gives: each new member's share, and the new commitments.
struct New<G: Group> {
    shares: BTreeMap<Participant, G::Scalar>,
    commitments: Vec<G>,
}

/// Every dealer deals; every receiver checks every dealing; shares and commitments are
/// combined over the dealers.
fn reshare<G: Group>(old: &Old<G>, dealers: &[Participant], to: &[Participant], t: u16) -> New<G> {
    let mut commitments = BTreeMap::new();
    let mut received: BTreeMap<Participant, BTreeMap<Participant, G::Scalar>> = BTreeMap::new();
    for d in dealers {
        let dealing = deal::<G>(old.shares[d], t, to, rand_core::OsRng).unwrap();
        assert!(constant_ok(&dealing.commitments, &old.public[d]));
        for j in to {
            assert!(share_ok(&dealing.commitments, *j, &dealing.shares[j]));
            received
                .entry(*j)
                .or_default()
                .insert(*d, dealing.shares[j]);
        }
        commitments.insert(*d, dealing.commitments);
    }
    let joint = combine_commitments(&commitments, old.t).unwrap();
    let shares = received
        .iter()
        .map(|(j, from)| (*j, combine_shares(from, old.t).unwrap()))
        .collect();
    New {
        shares,
        commitments: joint,
    }
}

fn frost_old(n: u16, t: u16) -> Old<k256::ProjectivePoint> {
    let keys = keynet_threshold::dkg::run_local(n, t).unwrap();
    let public = &keys[0].1;
    let mut old = Old {
        shares: BTreeMap::new(),
        public: BTreeMap::new(),
        group: point(&public.verifying_key().serialize().unwrap()),
        t,
    };
    for (i, (k, _)) in keys.iter().enumerate() {
        let p = Participant::try_from(i + 1).unwrap();
        assert_eq!(*k.identifier(), frost::Identifier::try_from(p).unwrap());
        let bytes: [u8; 32] = k.signing_share().serialize().try_into().unwrap();
        let s: Option<k256::Scalar> =
            <k256::Scalar as ff::PrimeField>::from_repr(bytes.into()).into();
        old.shares.insert(p, s.unwrap());
        old.public.insert(
            p,
            point(
                &public.verifying_shares()[k.identifier()]
                    .serialize()
                    .unwrap(),
            ),
        );
    }
    old
}

fn point(b: &[u8]) -> k256::ProjectivePoint {
    let mut repr = k256::CompressedPoint::default();
    repr.copy_from_slice(b);
    Option::from(k256::ProjectivePoint::from_bytes(&repr)).unwrap()
}

/// The new members' FROST key packages, built through the library's byte forms.
fn frost_new(
    new: &New<k256::ProjectivePoint>,
    t: u16,
) -> (
    BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    frost::keys::PublicKeyPackage,
) {
    let group = frost::VerifyingKey::deserialize(&new.commitments[0].to_bytes()).unwrap();
    let mut keys = BTreeMap::new();
    let mut verifying = BTreeMap::new();
    for (j, s) in &new.shares {
        let id = frost::Identifier::try_from(*j).unwrap();
        let share = frost::keys::SigningShare::deserialize(&ff::PrimeField::to_repr(s)).unwrap();
        let public =
            frost::keys::VerifyingShare::deserialize(&public_at(&new.commitments, *j).to_bytes())
                .unwrap();
        keys.insert(
            id,
            frost::keys::KeyPackage::new(id, share, public, group, t),
        );
        verifying.insert(id, public);
    }
    let package = frost::keys::PublicKeyPackage::new(verifying, group, Some(t));
    (keys, package)
}

#[test]
fn the_frost_key_moves_to_a_new_set_and_signs_under_the_same_group_key() {
    // 4 -> 5 (a node joins; t 3 -> 4), dealt by any 3 of the old members; 5 -> 4 and
    // 4 -> 7 (t 3 -> 5) with a member replaced.
    for (n, t, dealers, to, t_new) in [
        (4u16, 3u16, &[1u16, 2, 4][..], &[1u16, 2, 3, 4, 5][..], 4u16),
        (5, 4, &[2, 3, 4, 5][..], &[1, 2, 3, 4][..], 3),
        (4, 3, &[1, 2, 3, 4][..], &[1, 2, 3, 5, 6, 7, 8][..], 5),
    ] {
        let old = frost_old(n, t);
        let new = reshare(&old, dealers, to, t_new);
        assert_eq!(new.commitments[0], old.group, "the group key is unchanged");
        assert_eq!(new.commitments.len(), usize::from(t_new));
        for (j, s) in &new.shares {
            assert_eq!(
                k256::ProjectivePoint::GENERATOR * s,
                public_at(&new.commitments, *j)
            );
        }
        let (keys, public) = frost_new(&new, t_new);
        let signers: Vec<frost::Identifier> =
            keys.keys().copied().take(usize::from(t_new)).collect();
        let sig = common::sign(&keys, &public, &signers, b"after the epoch change");
        let group = public.verifying_key().serialize().unwrap();
        keynet_threshold::schnorr::verify(&group, b"after the epoch change", &sig).unwrap();
        assert_eq!(group, old.group.to_bytes().to_vec());
        // An old share does not combine with new ones.
        let ids: Vec<Participant> = new
            .shares
            .keys()
            .copied()
            .take(usize::from(t_new))
            .collect();
        let mixed = ids.iter().fold(k256::Scalar::ZERO, |acc, j| {
            let s = if *j == ids[0] {
                old.shares[j]
            } else {
                new.shares[j]
            };
            acc + lagrange_at_zero::<k256::Scalar>(&ids, *j).unwrap() * s
        });
        assert_ne!(k256::ProjectivePoint::GENERATOR * mixed, old.group);
    }
}

#[test]
fn the_bls_key_moves_to_a_new_set_and_signs_under_the_same_key() {
    let keys = keynet_threshold::bls_dkg::run_local(4, 3).unwrap();
    let old = Old::<blstrs_plus::G2Projective> {
        shares: (1..=4u16)
            .map(|p| (p, keys[usize::from(p - 1)].share.0.value.0))
            .collect(),
        public: keys[0].public_shares.clone(),
        group: keys[0].public.0,
        t: 3,
    };
    let new = reshare(&old, &[1, 3, 4], &[1, 2, 3, 4, 5], 4);
    assert_eq!(new.commitments[0], keys[0].public.0);
    let msg = b"a statement after the epoch change";
    let shares: Vec<_> = new
        .shares
        .iter()
        .take(4)
        .map(|(j, s)| {
            let x = blstrs_plus::Scalar::from(u64::from(*j));
            SecretKeyShare(PrimeFieldShare::<blstrs_plus::Scalar>::from((x, *s)))
                .sign(SignatureSchemes::Basic, msg)
                .unwrap()
        })
        .collect();
    let combined = Signature::from_shares(&shares).unwrap();
    assert!(combined.verify(&keys[0].public, msg).is_ok());
}

#[test]
fn a_refresh_changes_every_share_and_no_key() {
    let old = frost_old(4, 3);
    let members = [1u16, 2, 3, 4];
    let mut commitments = BTreeMap::new();
    let mut to: BTreeMap<Participant, BTreeMap<Participant, k256::Scalar>> = BTreeMap::new();
    for d in members {
        let dealing =
            deal::<k256::ProjectivePoint>(k256::Scalar::ZERO, 3, &members, rand_core::OsRng)
                .unwrap();
        assert!(constant_ok(
            &dealing.commitments,
            &k256::ProjectivePoint::IDENTITY
        ));
        for j in members {
            to.entry(j).or_default().insert(d, dealing.shares[&j]);
        }
        commitments.insert(d, dealing.commitments);
    }
    let mut shares = BTreeMap::new();
    for j in members {
        let s = refresh_share(old.shares[&j], &to[&j]);
        assert_ne!(s, old.shares[&j], "member {j}'s share changed");
        let public = refresh_public(old.public[&j], &commitments, j);
        assert_eq!(k256::ProjectivePoint::GENERATOR * s, public);
        shares.insert(j, s);
    }
    // Any 3 refreshed shares give the same key; 2 refreshed and 1 old do not.
    let ids = [1u16, 3, 4];
    let at_zero = |pick: &dyn Fn(Participant) -> k256::Scalar| {
        ids.iter().fold(k256::Scalar::ZERO, |acc, j| {
            acc + lagrange_at_zero::<k256::Scalar>(&ids, *j).unwrap() * pick(*j)
        })
    };
    assert_eq!(
        k256::ProjectivePoint::GENERATOR * at_zero(&|j| shares[&j]),
        old.group
    );
    let stale = at_zero(&|j| if j == 1 { old.shares[&j] } else { shares[&j] });
    assert_ne!(k256::ProjectivePoint::GENERATOR * stale, old.group);
}

#[test]
fn bad_dealings_are_caught_and_too_few_dealers_refused() {
    let old = frost_old(4, 3);
    let to = [1u16, 2, 3, 4, 5];
    // A dealer that deals another value than its share: its constant does not match.
    let other = deal::<k256::ProjectivePoint>(old.shares[&2], 4, &to, rand_core::OsRng).unwrap();
    assert!(!constant_ok(&other.commitments, &old.public[&1]));
    // A share off by one does not match the commitments; nor a share checked at another j.
    let good = deal::<k256::ProjectivePoint>(old.shares[&1], 4, &to, rand_core::OsRng).unwrap();
    let off = good.shares[&3] + k256::Scalar::ONE;
    assert!(!share_ok(&good.commitments, 3, &off));
    assert!(!share_ok(&good.commitments, 4, &good.shares[&3]));
    // Fewer dealers than the old threshold; commitments of different degrees; bad indices.
    let two: BTreeMap<Participant, k256::Scalar> =
        [(1u16, good.shares[&3]), (2, other.shares[&3])].into();
    assert_eq!(
        combine_shares(&two, 3),
        Err(ReshareError::TooFewDealers { have: 2, need: 3 })
    );
    let mut uneven = BTreeMap::new();
    uneven.insert(1u16, good.commitments.clone());
    uneven.insert(2, good.commitments[..3].to_vec());
    uneven.insert(3, good.commitments.clone());
    assert!(matches!(
        combine_commitments(&uneven, 3),
        Err(ReshareError::Degree { dealer: 2, .. })
    ));
    for (t, to) in [
        (0u16, &[1u16, 2][..]),
        (3, &[1, 2][..]),
        (2, &[1, 1][..]),
        (1, &[0, 1][..]),
    ] {
        assert!(deal::<k256::ProjectivePoint>(k256::Scalar::ONE, t, to, rand_core::OsRng).is_err());
    }
}
