//! The coordinator's transitions, with no network: coordinators exchange their messages in
//! memory.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use keynet_protocol::api::{DkgBody, DkgState, PeerDkg};
use keynet_protocol::registry::Registry;
use keynet_threshold::wire::FrostWire;

use super::*;
use crate::testing::registry;

const TIMEOUT: Duration = Duration::from_secs(30);

fn targets(r: &Registry) -> Vec<Target> {
    let r = Arc::new(r.clone());
    r.nodes
        .iter()
        .map(|e| Target::of(&r, &e.identity_key).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Runs every coordinator to the end of its run: ensure, then messages delivered until none
/// is left. Returns each node's keys.
fn run_all(coords: &mut [Coordinator], targets: &[Target], now: Instant) -> Vec<NetworkKeys> {
    let mut queue: VecDeque<(usize, Outbound)> = VecDeque::new();
    for (i, c) in coords.iter_mut().enumerate() {
        let step = c
            .ensure(&targets[i], false, now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(step.keys.is_none());
        queue.extend(step.sends.into_iter().map(|o| (i, o)));
        assert_eq!(c.status().state, DkgState::Running);
    }
    deliver_all(coords, targets, queue, now)
}

/// Delivers `queue` (and everything it causes) until nothing is left; every node must end
/// with keys.
fn deliver_all(
    coords: &mut [Coordinator],
    targets: &[Target],
    mut queue: VecDeque<(usize, Outbound)>,
    now: Instant,
) -> Vec<NetworkKeys> {
    let mut keys: Vec<Option<NetworkKeys>> = (0..coords.len()).map(|_| None).collect();
    while let Some((from, out)) = queue.pop_front() {
        for to in &out.to {
            let j = targets[0]
                .registry
                .nodes
                .iter()
                .position(|e| e.identity_key == to.identity_key)
                .unwrap_or_else(|| panic!("recipient not a member"));
            assert_ne!(j, from, "nobody is sent its own message");
            let holds = keys[j].is_some();
            match coords[j].handle(&targets[j], holds, from as u16 + 1, &out.message, now) {
                Ok(step) => {
                    queue.extend(step.sends.into_iter().map(|o| (j, o)));
                    if let Some(k) = step.keys {
                        assert!(keys[j].replace(k).is_none(), "keys handed out once");
                    }
                }
                // Late messages to a node that holds its keys are refused as final, and
                // those of an attempt the node left behind as another run's.
                Err(DkgRefusal::Done { .. }) if holds => {}
                Err(DkgRefusal::WrongAttempt { .. }) => {}
                Err(e) => panic!("node {j}: {e}"),
            }
        }
    }
    keys.into_iter()
        .map(|k| k.unwrap_or_else(|| panic!("a node finished without keys")))
        .collect()
}

#[test]
fn a_run_goes_from_idle_to_done_and_every_node_gets_the_same_keys() {
    let r = registry(4, 3);
    let ts = targets(&r);
    let mut coords: Vec<Coordinator> = (0..4).map(|_| Coordinator::new(TIMEOUT)).collect();
    assert_eq!(coords[0].status().state, DkgState::Idle);
    let keys = run_all(&mut coords, &ts, Instant::now());
    for (i, (c, k)) in coords.iter().zip(&keys).enumerate() {
        let st = c.status();
        assert_eq!(st.state, DkgState::Done, "node {i}");
        assert_eq!(
            (st.network.as_deref(), st.epoch),
            (Some("keynet-test"), Some(3))
        );
        assert!(st.millis.is_some());
        assert_eq!((k.me, k.n, k.epoch), (i as u16 + 1, 4, 3));
        assert_eq!(
            k.frost_public.verifying_key(),
            keys[0].frost_public.verifying_key()
        );
        assert_eq!(k.bls.public, keys[0].bls.public);
    }
}

#[test]
fn done_is_final_for_its_target() {
    let r = registry(4, 1);
    let ts = targets(&r);
    let mut coords: Vec<Coordinator> = (0..4).map(|_| Coordinator::new(TIMEOUT)).collect();
    run_all(&mut coords, &ts, Instant::now());
    let generation = coords[0].generation;
    // Even before its keys are in force (sealing), a done run does not start again.
    let step = coords[0]
        .ensure(&ts[0], false, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(step.sends.is_empty() && step.keys.is_none());
    assert!(coords[0].is_latest(generation), "no new run");
    let msg = PeerDkg {
        network: "keynet-test".into(),
        epoch: 1,
        attempt: 0,
        body: DkgBody::Frost(FrostWire::Abort(vec![2])),
    };
    assert!(matches!(
        coords[0].handle(&ts[0], true, 2, &msg, Instant::now()),
        Err(DkgRefusal::Done { .. })
    ));
    assert!(matches!(
        coords[0].handle(&ts[0], false, 2, &msg, Instant::now()),
        Err(DkgRefusal::Done { .. })
    ));
    assert_eq!(coords[0].status().state, DkgState::Done);
}

#[test]
fn wrong_runs_and_junk_start_nothing() {
    let r = registry(4, 2);
    let ts = targets(&r);
    let mut c = Coordinator::new(TIMEOUT);
    let other_epoch = PeerDkg {
        network: "keynet-test".into(),
        epoch: 1,
        attempt: 0,
        body: DkgBody::Frost(FrostWire::Round1("00".into())),
    };
    assert!(matches!(
        c.handle(&ts[0], false, 2, &other_epoch, Instant::now()),
        Err(DkgRefusal::WrongRun { epoch: 2, .. })
    ));
    let junk = PeerDkg {
        epoch: 2,
        ..other_epoch
    };
    assert!(matches!(
        c.handle(&ts[0], false, 2, &junk, Instant::now()),
        Err(DkgRefusal::Malformed(_))
    ));
    assert_eq!(c.status().state, DkgState::Idle, "nothing started");
    assert_eq!(c.generation, 0);
    let outsider = registry(5, 2);
    let not_member = &outsider.nodes[4].identity_key;
    assert!(matches!(
        Target::of(&Arc::new(r), not_member),
        Err(DkgRefusal::Unavailable(_))
    ));
}

#[test]
fn a_failed_run_is_retried_after_a_back_off_and_a_new_epoch_starts_anew() {
    let r = registry(4, 5);
    let ts = targets(&r);
    let mut c = Coordinator::new(TIMEOUT);
    let start = Instant::now();
    let first = c
        .ensure(&ts[0], false, start)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!first.sends.is_empty(), "round one goes to the others");
    assert!(
        first
            .sends
            .iter()
            .all(|o| o.to.len() == 3 || o.to.len() == 1)
    );
    // Nobody answers: the round's deadline passes.
    let failed_at = start + TIMEOUT * 2;
    let step = c.tick(failed_at);
    assert!(step.keys.is_none());
    let st = c.status();
    assert_eq!((st.state, st.attempt), (DkgState::Failed, 0), "{st:?}");
    assert!(
        !st.culprits.is_empty(),
        "the silent nodes are named: {st:?}"
    );
    assert!(st.culprits.iter().all(|e| e.starts_with("127.0.0.1:")));
    assert!(matches!(
        c.ensure(&ts[0], false, failed_at),
        Err(DkgRefusal::Unavailable(m)) if m.contains("failed here")
    ));
    let late = PeerDkg {
        network: "keynet-test".into(),
        epoch: 5,
        attempt: 0,
        body: DkgBody::Frost(FrostWire::Abort(vec![])),
    };
    assert!(matches!(
        c.handle(&ts[0], false, 2, &late, failed_at),
        Err(DkgRefusal::Unavailable(_))
    ));
    // Before the back-off nothing starts; after it, attempt 1 does, without a restart.
    assert!(c.tick(failed_at + RETRY_FIRST / 2).sends.is_empty());
    let retry = c.tick(failed_at + RETRY_FIRST);
    assert!(!retry.sends.is_empty());
    assert!(retry.sends.iter().all(|o| o.message.attempt == 1));
    assert_eq!(
        (c.status().state, c.status().attempt),
        (DkgState::Running, 1)
    );
    // A member cannot drag the node several attempts ahead.
    let ahead = PeerDkg {
        attempt: 3,
        ..late.clone()
    };
    assert!(matches!(
        c.handle(&ts[0], false, 2, &ahead, failed_at),
        Err(DkgRefusal::WrongAttempt { got: 3, mine: 1 })
    ));
    let old = retry.generation;
    let next = targets(&registry(4, 6));
    let step = c
        .ensure(&next[0], false, start)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!step.sends.is_empty());
    assert_eq!(c.status().state, DkgState::Running);
    assert_eq!((c.status().epoch, c.status().attempt), (Some(6), 0));
    assert!(!c.is_latest(old) && c.is_latest(step.generation));
}

#[test]
fn an_unfounded_abort_names_no_honest_node_and_the_retry_completes() {
    let r = registry(4, 7);
    let ts = targets(&r);
    let mut coords: Vec<Coordinator> = (0..4).map(|_| Coordinator::new(TIMEOUT)).collect();
    let now = Instant::now();
    for (i, c) in coords.iter_mut().enumerate() {
        c.ensure(&ts[i], false, now)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Node 2 aborts at once, accusing node 3, who did nothing wrong.
    let abort = PeerDkg {
        network: "keynet-test".into(),
        epoch: 7,
        attempt: 0,
        body: DkgBody::Frost(FrostWire::Abort(vec![3])),
    };
    for j in [0, 2, 3] {
        coords[j]
            .handle(&ts[j], false, 2, &abort, now)
            .unwrap_or_else(|e| panic!("{e}"));
        let st = coords[j].status();
        assert_eq!(st.state, DkgState::Failed);
        assert!(st.culprits.is_empty(), "blame without evidence: {st:?}");
        assert_eq!(st.aborted_by.as_deref(), Some(r.nodes[1].endpoint.as_str()));
        assert_eq!(st.accused, vec![r.nodes[2].endpoint.clone()]);
    }
    // Node 1's back-off ends first; its attempt 1 brings the others along (node 2 from its
    // still-running attempt 0, nodes 3 and 4 from their failed one) and completes.
    let retry = coords[0].tick(now + RETRY_FIRST);
    let queue = retry.sends.into_iter().map(|o| (0, o)).collect();
    let keys = deliver_all(&mut coords, &ts, queue, now + RETRY_FIRST);
    for (i, c) in coords.iter().enumerate() {
        let st = c.status();
        assert_eq!((st.state, st.attempt), (DkgState::Done, 1), "node {i}");
        assert_eq!(
            keys[i].frost_public.verifying_key(),
            keys[0].frost_public.verifying_key()
        );
    }
}

#[test]
fn unsealed_keys_need_no_run_until_a_new_epoch() {
    let r = registry(4, 8);
    let ts = targets(&r);
    let mut c = Coordinator::new(TIMEOUT);
    c.unsealed("keynet-test", 8);
    assert_eq!(c.status().state, DkgState::Unsealed);
    let step = c
        .ensure(&ts[1], true, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(step.sends.is_empty());
    assert_eq!(c.status().state, DkgState::Unsealed);
    let next = targets(&registry(4, 9));
    c.ensure(&next[1], false, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.status().state, DkgState::Running);
}

#[test]
fn keys_that_cannot_be_sealed_fail_the_run() {
    let r = registry(4, 1);
    let ts = targets(&r);
    let mut coords: Vec<Coordinator> = (0..4).map(|_| Coordinator::new(TIMEOUT)).collect();
    run_all(&mut coords, &ts, Instant::now());
    coords[2].sealing_failed("disk full".into(), Instant::now());
    let st = coords[2].status();
    assert_eq!(st.state, DkgState::Failed);
    assert!(
        st.reason
            .as_deref()
            .unwrap_or("")
            .contains("sealing the keys: disk full"),
        "{st:?}"
    );
}
