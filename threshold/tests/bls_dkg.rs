//! The BLS DKG: consistent keys for n = 4, 7, 10; t shares make a signature that equals
//! the signature of the secret interpolated from the shares (checked with the curve
//! arithmetic directly, not through the DKG); a dealer who sends a bad share but reveals
//! a good one stays; a dealer who cheats twice is disqualified and left out of the key;
//! the silent are named.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use blsful::{SecretKey, Signature, SignatureSchemes};
use blstrs_plus::{G2Projective, Scalar};
use keynet_threshold::bls_dkg::{Bls, BlsDkg, BlsKey, BlsMessage};
use keynet_threshold::dkg::{Participant, State, default_threshold};

#[derive(Default)]
struct Faults {
    silent: Option<Participant>,
    /// (dealer, victim): the victim gets a wrong share.
    bad_share: Option<(Participant, Participant)>,
    /// The bad dealer also reveals a wrong share.
    bad_reveal: bool,
}

fn run(n: u16, t: u16, f: &Faults) -> BTreeMap<Participant, BlsDkg> {
    let now = Instant::now();
    let timeout = Duration::from_secs(5);
    let mut machines = BTreeMap::new();
    let mut q = VecDeque::new();
    let push = |q: &mut VecDeque<(Participant, Participant, BlsMessage)>,
                from: Participant,
                out: Vec<keynet_threshold::bls_dkg::BlsOutgoing>| {
        if f.silent == Some(from) {
            return;
        }
        for o in out {
            let targets: Vec<Participant> = match o.to {
                Some(p) => vec![p],
                None => (1..=n).filter(|p| *p != from).collect(),
            };
            for to in targets {
                let mut m = o.message.clone();
                if let (Some((d, v)), BlsMessage::Share(s)) = (f.bad_share, &m)
                    && d == from
                    && v == to
                {
                    m = BlsMessage::Share(*s + Scalar::ONE);
                }
                if let (Some((d, _)), true, BlsMessage::Reveals(r)) =
                    (f.bad_share, f.bad_reveal, &m)
                    && d == from
                {
                    m = BlsMessage::Reveals(
                        r.iter().map(|(c, s)| (*c, *s + Scalar::ONE)).collect(),
                    );
                }
                q.push_back((from, to, m));
            }
        }
    };
    for p in 1..=n {
        let (m, out) = BlsDkg::start(p, n, t, timeout, now).unwrap();
        machines.insert(p, m);
        push(&mut q, p, out);
    }
    while let Some((from, to, m)) = q.pop_front() {
        let out = machines.get_mut(&to).unwrap().handle(from, m, now);
        push(&mut q, to, out);
    }
    for m in machines.values_mut() {
        m.tick(now + timeout);
    }
    machines
}

fn keys(machines: &BTreeMap<Participant, BlsDkg>) -> Vec<BlsKey> {
    machines
        .iter()
        .map(|(p, m)| {
            assert_eq!(m.state(), State::Done, "{p}: {:?}", m.failure());
            m.result().unwrap().clone()
        })
        .collect()
}

/// Lagrange interpolation at 0 of the shares of `who`.
fn interpolate(keys: &[BlsKey], who: &[usize]) -> Scalar {
    // keys[i] belongs to participant i + 1.
    let xs: Vec<Scalar> = who.iter().map(|i| Scalar::from(*i as u64 + 1)).collect();
    let mut secret = Scalar::ZERO;
    for (k, i) in who.iter().enumerate() {
        let mut l = Scalar::ONE;
        for (m, _) in who.iter().enumerate() {
            if m != k {
                l *= xs[m] * (xs[m] - xs[k]).invert().unwrap();
            }
        }
        secret += l * keys[*i].share.0.value.0;
    }
    secret
}

#[test]
fn honest_runs_agree_and_threshold_signatures_equal_the_interpolated_key() {
    for n in [4u16, 7, 10] {
        let t = default_threshold(n);
        let keys = keys(&run(n, t, &Faults::default()));
        assert!(
            keys.iter()
                .all(|k| k.public == keys[0].public && k.qualified.len() == usize::from(n))
        );
        let who: Vec<usize> = (usize::from(n - t)..usize::from(n)).collect();
        let secret = interpolate(&keys, &who);
        assert_eq!(G2Projective::GENERATOR * secret, keys[0].public.0, "n={n}");
        let msg = b"keynet bls";
        let shares: Vec<_> = who
            .iter()
            .map(|i| keys[*i].share.sign(SignatureSchemes::Basic, msg).unwrap())
            .collect();
        let sig = Signature::<Bls>::from_shares(&shares).unwrap();
        sig.verify(&keys[0].public, msg).unwrap();
        let direct = SecretKey::<Bls>(secret)
            .sign(SignatureSchemes::Basic, msg)
            .unwrap();
        assert_eq!(sig, direct, "n={n}");
        // t-1 shares do not make a valid signature.
        let few = Signature::<Bls>::from_shares(&shares[1..]).unwrap();
        assert!(few.verify(&keys[0].public, msg).is_err());
    }
}

#[test]
fn a_bad_share_answered_by_a_good_reveal_keeps_the_dealer() {
    let keys = keys(&run(
        4,
        3,
        &Faults {
            bad_share: Some((2, 3)),
            ..Default::default()
        },
    ));
    assert!(keys.iter().all(|k| k.qualified == vec![1, 2, 3, 4]));
    assert!(keys.iter().all(|k| k.public == keys[0].public));
    let secret = interpolate(&keys, &[0, 2, 3]);
    assert_eq!(G2Projective::GENERATOR * secret, keys[0].public.0);
}

#[test]
fn a_dealer_who_cheats_twice_is_disqualified_and_left_out() {
    let ms = run(
        7,
        5,
        &Faults {
            bad_share: Some((6, 1)),
            bad_reveal: true,
            ..Default::default()
        },
    );
    // The cheater itself does not finish; everyone else agrees without it.
    for (p, m) in &ms {
        if *p == 6 {
            assert_eq!(m.state(), State::Failed);
            continue;
        }
        let k = m
            .result()
            .unwrap_or_else(|| panic!("{p}: {:?}", m.failure()));
        assert_eq!(k.qualified, vec![1, 2, 3, 4, 5, 7], "{p}");
    }
}

#[test]
fn the_silent_are_named() {
    let ms = run(
        4,
        3,
        &Faults {
            silent: Some(4),
            ..Default::default()
        },
    );
    for p in 1..=3 {
        let f = ms[&p].failure().unwrap();
        assert_eq!(f.culprits, vec![4], "{f}");
    }
}

#[test]
fn signature_shares_verify_against_their_public_share_only() {
    use keynet_threshold::wire::{bls_public_share, bls_share_from_hex, bls_share_hex};
    let keys = keynet_threshold::bls_dkg::run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
    let msg = b"a statement";
    for (i, k) in keys.iter().enumerate() {
        let p = Participant::try_from(i + 1).unwrap_or_else(|e| panic!("{e}"));
        let share = k
            .share
            .sign(SignatureSchemes::Basic, msg)
            .unwrap_or_else(|e| panic!("{e}"));
        // Through the wire form and back.
        let share = bls_share_from_hex(&bls_share_hex(&share).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let mine = bls_public_share(p, &keys[0].public_shares[&p]);
        assert!(share.verify(&mine, msg).is_ok(), "participant {p}");
        assert!(share.verify(&mine, b"another statement").is_err());
        let q = p % 4 + 1;
        let theirs = bls_public_share(q, &keys[0].public_shares[&q]);
        assert!(share.verify(&theirs, msg).is_err(), "{p} verified as {q}");
        // The same point claimed by another participant index.
        let relabelled = bls_public_share(q, &keys[0].public_shares[&p]);
        assert!(share.verify(&relabelled, msg).is_err());
    }
    let pop = keys[0]
        .share
        .sign(SignatureSchemes::ProofOfPossession, msg)
        .unwrap_or_else(|e| panic!("{e}"));
    let hexed = bls_share_hex(&pop).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bls_share_from_hex(&hexed).is_err(),
        "another scheme accepted"
    );
    assert!(bls_share_from_hex("00").is_err());
}

#[test]
fn batch_verification_agrees_with_blsful_and_catches_one_bad_signature() {
    use keynet_threshold::bls_batch::verify_same_message;
    let keys = keynet_threshold::bls_dkg::run_local(4, 3).unwrap_or_else(|e| panic!("{e}"));
    let msg = b"one message for everyone";
    let share = |i: usize, m: &[u8]| {
        let s = keys[i]
            .share
            .sign(SignatureSchemes::Basic, m)
            .unwrap_or_else(|e| panic!("{e}"));
        keynet_threshold::bls_batch::share_point(&s)
    };
    let public = |i: usize| {
        let p = Participant::try_from(i + 1).unwrap_or_else(|e| panic!("{e}"));
        keys[0].public_shares[&p]
    };
    let mut pairs: Vec<(G2Projective, blstrs_plus::G1Projective)> =
        (0..4).map(|i| (public(i), share(i, msg))).collect();
    // The combined signature under the network key joins the same check.
    let shares: Vec<_> = (0..3)
        .map(|i| {
            keys[i]
                .share
                .sign(SignatureSchemes::Basic, msg)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let combined = Signature::from_shares(&shares).unwrap_or_else(|e| panic!("{e}"));
    assert!(combined.verify(&keys[0].public, msg).is_ok());
    pairs.push((keys[0].public.0, *combined.as_raw_value()));
    assert!(verify_same_message(&pairs, msg));
    assert!(!verify_same_message(&pairs, b"another message"));
    assert!(!verify_same_message(&[], msg));
    // Any one pair wrong: another message's share, a swapped key, infinity.
    for i in 0..pairs.len() {
        let mut bad = pairs.clone();
        bad[i].1 = share(i % 4, b"another message");
        assert!(!verify_same_message(&bad, msg), "wrong share {i}");
        let mut bad = pairs.clone();
        bad[i].0 = public((i + 1) % 4);
        assert!(!verify_same_message(&bad, msg), "wrong key {i}");
        let mut bad = pairs.clone();
        bad[i].1 = blstrs_plus::G1Projective::IDENTITY;
        assert!(!verify_same_message(&bad, msg), "infinity {i}");
    }
}

#[test]
fn a_commitment_of_the_wrong_degree_disqualifies_its_dealer_and_the_run_goes_on() {
    let now = Instant::now();
    let timeout = Duration::from_secs(5);
    let (n, t) = (4u16, 3u16);
    let mut machines = BTreeMap::new();
    let mut q = VecDeque::new();
    for p in 1..=n {
        let (m, out) = BlsDkg::start(p, n, t, timeout, now).unwrap();
        machines.insert(p, m);
        for o in out {
            q.push_back((p, o));
        }
    }
    while let Some((from, o)) = q.pop_front() {
        let targets: Vec<Participant> = match o.to {
            Some(p) => vec![p],
            None => (1..=n).filter(|p| *p != from).collect(),
        };
        for to in targets {
            let mut m = o.message.clone();
            if let (2, BlsMessage::Commit(c)) = (from, &m) {
                // Participant 2 commits to one coefficient too many, to everyone.
                let mut longer = c.clone();
                longer.push(G2Projective::GENERATOR);
                m = BlsMessage::Commit(longer);
            }
            for out in machines.get_mut(&to).unwrap().handle(from, m, now) {
                q.push_back((to, out));
            }
        }
    }
    for (p, m) in machines.iter().filter(|(p, _)| **p != 2) {
        let k = m
            .result()
            .unwrap_or_else(|| panic!("{p}: {:?}", m.failure()));
        assert_eq!(k.qualified, vec![1, 3, 4], "{p}");
    }
}

#[test]
fn a_commitment_then_another_of_the_wrong_degree_is_equivocation() {
    let now = Instant::now();
    let d = Duration::from_secs(5);
    let (mut one, _) = BlsDkg::start(1, 4, 3, d, now).unwrap();
    let (_, out) = BlsDkg::start(2, 4, 3, d, now).unwrap();
    let Some(BlsMessage::Commit(c)) = out.into_iter().next().map(|o| o.message) else {
        panic!("no commitment");
    };
    one.handle(2, BlsMessage::Commit(c.clone()), now);
    assert_eq!(one.state(), State::Round1);
    one.handle(2, BlsMessage::Commit(c[..2].to_vec()), now);
    let f = one
        .failure()
        .unwrap_or_else(|| panic!("a second commitment was taken"));
    assert_eq!(f.culprits, vec![2], "{f}");
}
