//! The DKG state machine: consistent group keys for n = 4, 7, 10; silent, cheating and
//! equivocating participants named; nobody finishes when the run fails.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use keynet_threshold::dkg::{ConfigError, Dkg, State, default_threshold, run_local};

#[test]
fn honest_runs_agree_for_4_7_10() {
    for n in [4u16, 7, 10] {
        let t = default_threshold(n);
        let outs = common::run(n, t, &common::Faults::default());
        let (keys, public) = common::all_done(&outs);
        assert_eq!(keys.len(), usize::from(n));
        assert_eq!(public.verifying_shares().len(), usize::from(n));
        assert_eq!(public.min_signers(), Some(t));
    }
    assert_eq!(
        (
            default_threshold(4),
            default_threshold(7),
            default_threshold(10)
        ),
        (3, 5, 7)
    );
}

#[test]
fn a_silent_node_is_named_at_the_deadline() {
    let outs = common::run(
        4,
        3,
        &common::Faults {
            silent: Some(3),
            ..Default::default()
        },
    );
    for (p, m) in &outs.machines {
        if *p == 3 {
            continue;
        }
        assert_eq!(m.state(), State::Failed, "{p}");
        let f = m.failure().unwrap();
        assert_eq!(f.state, State::Round1);
        assert_eq!(f.culprits, vec![3], "{f}");
        assert!(m.result().is_none());
    }
}

#[test]
fn an_invalid_share_names_its_sender() {
    let outs = common::run(
        7,
        5,
        &common::Faults {
            bad_share: Some(5),
            ..Default::default()
        },
    );
    for (p, m) in &outs.machines {
        if *p == 5 {
            continue;
        }
        let f = m.failure().unwrap_or_else(|| panic!("{p} finished"));
        assert_eq!(f.state, State::Round2, "{f}");
        assert_eq!(f.culprits, vec![5], "{f}");
    }
}

#[test]
fn equivocation_in_round_one_fails_everyone() {
    let outs = common::run(
        4,
        3,
        &common::Faults {
            equivocate: Some((2, 4)),
            ..Default::default()
        },
    );
    for (p, m) in &outs.machines {
        assert_eq!(
            m.state(),
            State::Failed,
            "participant {p} finished despite equivocation"
        );
        assert!(m.result().is_none());
        let f = m.failure().unwrap();
        if *p == 4 {
            // The victim finds 2's share inconsistent with the package it got: evidence.
            assert_eq!(f.culprits, vec![2], "{f:?}");
        } else if *p != 2 {
            // Its abort tells everyone, so nobody waits for the victim and then blames it;
            // the others saw no evidence, so they record the accusation and blame nobody.
            assert_eq!(
                (f.culprits.as_slice(), f.aborted_by, f.accused.as_slice()),
                (&[][..], Some(4), &[2][..]),
                "{f:?}"
            );
        }
    }
}

#[test]
fn an_unfounded_abort_blames_nobody() {
    // Participant 2 aborts at once, accusing 3, who did nothing wrong.
    let now = Instant::now();
    let timeout = Duration::from_secs(60);
    let (mut one, _) = Dkg::start(1, 4, 3, timeout, now).unwrap();
    let out = one.handle(2, keynet_threshold::dkg::Message::Abort(vec![3]), now);
    assert!(out.is_empty(), "an abort is not echoed");
    let f = one.failure().unwrap();
    assert_eq!(f.culprits, Vec::<u16>::new(), "{f}");
    assert_eq!((f.aborted_by, f.accused.clone()), (Some(2), vec![3]));
}

#[test]
fn parameters_are_checked() {
    let now = Instant::now();
    let d = Duration::from_secs(1);
    for (me, n, t) in [(0, 4, 3), (5, 4, 3), (1, 4, 1), (1, 4, 5)] {
        assert!(matches!(
            Dkg::start(me, n, t, d, now),
            Err(ConfigError::Range { .. })
        ));
    }
}

#[test]
fn the_local_runner_gives_one_group_key() {
    let keys = run_local(5, 4).unwrap();
    assert_eq!(keys.len(), 5);
    assert!(keys.iter().all(|(_, p)| *p == keys[0].1));
    assert!(run_local(3, 4).is_err());
}

/// Runs both DKGs among `members` only (identifiers kept), messages delivered in order.
fn run_among(
    members: &[u16],
    t: u16,
) -> (
    Vec<keynet_threshold::dkg::Dkg>,
    Vec<keynet_threshold::bls_dkg::BlsDkg>,
) {
    use keynet_threshold::bls_dkg::BlsDkg;
    use std::collections::VecDeque;
    let now = Instant::now();
    let d = Duration::from_secs(60);
    let mut frost = std::collections::BTreeMap::new();
    let mut bls = std::collections::BTreeMap::new();
    let mut fq = VecDeque::new();
    let mut bq = VecDeque::new();
    for p in members {
        let (m, out) = Dkg::start_among(*p, members, t, d, now).unwrap();
        frost.insert(*p, m);
        fq.extend(out.into_iter().map(|o| (*p, o)));
        let (m, out) = BlsDkg::start_among(*p, members, t, d, now).unwrap();
        bls.insert(*p, m);
        bq.extend(out.into_iter().map(|o| (*p, o)));
    }
    let to_all = |from: u16, to: Option<u16>| -> Vec<u16> {
        members
            .iter()
            .copied()
            .filter(|p| *p != from && to.is_none_or(|to| to == *p))
            .collect()
    };
    while let Some((from, o)) = fq.pop_front() {
        for to in to_all(from, o.to) {
            let out = frost
                .get_mut(&to)
                .unwrap()
                .handle(from, o.message.clone(), now);
            fq.extend(out.into_iter().map(|x| (to, x)));
        }
    }
    while let Some((from, o)) = bq.pop_front() {
        for to in to_all(from, o.to) {
            let out = bls
                .get_mut(&to)
                .unwrap()
                .handle(from, o.message.clone(), now);
            bq.extend(out.into_iter().map(|x| (to, x)));
        }
    }
    (frost.into_values().collect(), bls.into_values().collect())
}

#[test]
fn a_run_among_some_members_keeps_their_identifiers() {
    // Members 1, 3, 4, 5 of a registry of five (2 excluded), threshold 4.
    let members = [1u16, 3, 4, 5];
    let (frost, bls) = run_among(&members, 4);
    let (_, public) = frost[0].result().unwrap();
    let ids: Vec<keynet_threshold::frost::Identifier> = members
        .iter()
        .map(|p| keynet_threshold::frost::Identifier::try_from(*p).unwrap())
        .collect();
    assert_eq!(
        public
            .verifying_shares()
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        {
            let mut sorted = ids.clone();
            sorted.sort();
            sorted
        }
    );
    for (m, id) in frost.iter().zip(&ids) {
        assert_eq!(m.state(), State::Done, "{:?}", m.failure());
        let (k, p) = m.result().unwrap();
        assert_eq!((k.identifier(), p), (id, public));
        assert_eq!(m.members(), &members);
    }
    let key = bls[0].result().unwrap();
    assert_eq!(
        key.public_shares.keys().copied().collect::<Vec<_>>(),
        members.to_vec()
    );
    for m in &bls {
        let k = m.result().unwrap_or_else(|| panic!("{:?}", m.failure()));
        assert_eq!(k.public, key.public);
    }
    // Someone who is not a member, members that repeat or are fewer than t: refused.
    let now = Instant::now();
    let d = Duration::from_secs(1);
    for (me, ms, t) in [
        (2u16, &[1u16, 3, 4][..], 3u16),
        (1, &[1, 1, 3, 4][..], 3),
        (1, &[0, 1, 3][..], 2),
        (1, &[1, 3][..], 3),
    ] {
        assert!(matches!(
            Dkg::start_among(me, ms, t, d, now),
            Err(ConfigError::Range { .. })
        ));
    }
}

#[test]
fn misconduct_is_shown_by_a_dealers_own_packages_and_never_by_honest_ones() {
    use keynet_threshold::dkg::Message;
    use keynet_threshold::frost::keys::SigningShare;
    use keynet_threshold::frost::keys::dkg::round2;
    use keynet_threshold::misconduct::{Fault, fault};
    let now = Instant::now();
    let d = Duration::from_secs(60);
    // Honest packages of one run, collected as participant 1 gets them.
    let mut machines: Vec<Dkg> = Vec::new();
    let mut round1 = std::collections::BTreeMap::new();
    for p in 1..=4u16 {
        let (m, out) = Dkg::start(p, 4, 3, d, now).unwrap();
        machines.push(m);
        if let Some(Message::Round1(pkg)) = out.into_iter().next().map(|o| o.message) {
            round1.insert(p, *pkg);
        }
    }
    let mut shares_to_1 = std::collections::BTreeMap::new();
    for p in 2..=4u16 {
        for q in (1..=4u16).filter(|q| *q != p) {
            let pkg = Message::Round1(Box::new(round1[&q].clone()));
            for o in machines[usize::from(p - 1)].handle(q, pkg, now) {
                if let (Some(1), Message::Round2(s)) = (o.to, o.message) {
                    shares_to_1.insert(p, *s);
                }
            }
        }
    }
    assert_eq!(shares_to_1.len(), 3);
    for p in 2..=4u16 {
        assert_eq!(fault(p, 3, &round1[&p], None), None);
        assert_eq!(fault(p, 3, &round1[&p], Some((1, &shares_to_1[&p]))), None);
    }
    // A share that contradicts the dealer's commitment; a proof of knowledge made for
    // another identifier; a commitment of another degree than the threshold.
    let junk = round2::Package::new(SigningShare::deserialize(&[7u8; 32]).unwrap());
    assert_eq!(
        fault(2, 3, &round1[&2], Some((1, &junk))),
        Some(Fault::Share { receiver: 1 })
    );
    assert_eq!(
        fault(2, 3, &round1[&2], Some((3, &shares_to_1[&2]))),
        Some(Fault::Share { receiver: 3 }),
        "a share is checked at the member it was for"
    );
    assert_eq!(
        fault(3, 3, &round1[&2], None),
        Some(Fault::ProofOfKnowledge)
    );
    assert_eq!(
        fault(2, 4, &round1[&2], None),
        Some(Fault::Degree { got: 3, t: 4 })
    );
}
