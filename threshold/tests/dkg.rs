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
