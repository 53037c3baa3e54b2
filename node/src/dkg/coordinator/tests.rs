//! The coordinator's transitions, with no network: coordinators exchange their messages in
//! memory.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use keynet_protocol::api::{DkgBody, DkgState, PeerDkg};
use keynet_protocol::registry::Registry;
use keynet_threshold::wire::FrostWire;

use super::*;
use crate::testing::{dkg_message, registry, resign, signer};

const TIMEOUT: Duration = Duration::from_secs(30);

fn targets(r: &Registry) -> Vec<Target> {
    let r = Arc::new(r.clone());
    r.nodes
        .iter()
        .map(|e| Target::of(&r, &e.identity_key).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Coordinators for nodes 1..=n, each signing with its registry key.
fn coordinators(n: u8) -> Vec<Coordinator> {
    (1..=n)
        .map(|i| Coordinator::new(TIMEOUT, signer(i)))
        .collect()
}

/// Runs every coordinator to the end of its run: ensure, then messages delivered until none
/// is left. Returns each node's keys.
fn run_all(coords: &mut [Coordinator], targets: &[Target], now: Instant) -> Vec<NetworkKeys> {
    let queue = ensure_all(coords, targets, now);
    all_keys(deliver_all(coords, targets, queue, now, &mut |_, _| {}))
}

/// Every coordinator started; their first messages.
fn ensure_all(
    coords: &mut [Coordinator],
    targets: &[Target],
    now: Instant,
) -> VecDeque<(usize, Outbound)> {
    let mut queue: VecDeque<(usize, Outbound)> = VecDeque::new();
    for (i, c) in coords.iter_mut().enumerate() {
        let step = c
            .ensure(&targets[i], false, now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(step.keys.is_none());
        queue.extend(step.sends.into_iter().map(|o| (i, o)));
        assert_eq!(c.status().state, DkgState::Running);
    }
    queue
}

/// Every node's keys; panics if one has none.
fn all_keys(keys: Vec<Option<NetworkKeys>>) -> Vec<NetworkKeys> {
    keys.into_iter()
        .map(|k| k.unwrap_or_else(|| panic!("a node finished without keys")))
        .collect()
}

/// Delivers `queue` (and everything it causes) until nothing is left, each message first
/// shown to `tamper` (with the index of the node it goes to); returns each node's keys.
fn deliver_all(
    coords: &mut [Coordinator],
    targets: &[Target],
    mut queue: VecDeque<(usize, Outbound)>,
    now: Instant,
    tamper: &mut dyn FnMut(usize, &mut PeerDkg),
) -> Vec<Option<NetworkKeys>> {
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
            let mut message = out.message.clone();
            tamper(j, &mut message);
            match coords[j].handle(&targets[j], holds, from as u16 + 1, &message, now) {
                Ok(step) => {
                    queue.extend(step.sends.into_iter().map(|o| (j, o)));
                    if let Some(k) = step.keys {
                        assert!(keys[j].replace(k).is_none(), "keys handed out once");
                    }
                }
                // Late messages to a node that holds its keys are refused as final, and
                // those of an attempt the node left behind as another run's.
                Err(DkgRefusal::Done { .. }) if holds => {}
                Err(DkgRefusal::WrongAttempt { .. } | DkgRefusal::Excluded(_)) => {}
                Err(e) => panic!("node {j}: {e}"),
            }
        }
    }
    keys
}

#[test]
fn a_run_goes_from_idle_to_done_and_every_node_gets_the_same_keys() {
    let r = registry(4, 3);
    let ts = targets(&r);
    let mut coords: Vec<Coordinator> = coordinators(4);
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
    let mut coords: Vec<Coordinator> = coordinators(4);
    run_all(&mut coords, &ts, Instant::now());
    let generation = coords[0].generation;
    // Even before its keys are in force (sealing), a done run does not start again.
    let step = coords[0]
        .ensure(&ts[0], false, Instant::now())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(step.sends.is_empty() && step.keys.is_none());
    assert!(coords[0].is_latest(generation), "no new run");
    let msg = dkg_message(
        "keynet-test",
        1,
        2,
        DkgBody::Frost(FrostWire::Abort(vec![2])),
    );
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
    let mut c = Coordinator::new(TIMEOUT, signer(1));
    let other_epoch = dkg_message(
        "keynet-test",
        1,
        2,
        DkgBody::Frost(FrostWire::Round1("00".into())),
    );
    assert!(matches!(
        c.handle(&ts[0], false, 2, &other_epoch, Instant::now()),
        Err(DkgRefusal::WrongRun { epoch: 2, .. })
    ));
    let mut junk = PeerDkg {
        epoch: 2,
        ..other_epoch
    };
    resign(&mut junk, 2);
    assert!(matches!(
        c.handle(&ts[0], false, 2, &junk, Instant::now()),
        Err(DkgRefusal::Malformed(_))
    ));
    // A session that is not 16 bytes of hex, or a body larger than any DKG message of this
    // registry (it would swell every proof made of it).
    let mut odd = junk.clone();
    odd.session = "zz".repeat(16);
    resign(&mut odd, 2);
    let mut huge = junk.clone();
    huge.body = DkgBody::Frost(FrostWire::Round1("00".repeat(4096)));
    resign(&mut huge, 2);
    for (m, why) in [(odd, "session"), (huge, "at most")] {
        assert!(matches!(
            c.handle(&ts[0], false, 2, &m, Instant::now()),
            Err(DkgRefusal::Malformed(e)) if e.contains(why)
        ));
    }
    // Signed by another member than the sender, or not signed at all.
    let mut forged = junk.clone();
    resign(&mut forged, 3);
    let unsigned = PeerDkg {
        signature: String::new(),
        ..junk.clone()
    };
    for m in [forged, unsigned] {
        assert!(matches!(
            c.handle(&ts[0], false, 2, &m, Instant::now()),
            Err(DkgRefusal::Malformed(e)) if e.contains("signature")
        ));
    }
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
    let mut c = Coordinator::new(TIMEOUT, signer(1));
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
    let late = dkg_message(
        "keynet-test",
        5,
        2,
        DkgBody::Frost(FrostWire::Abort(vec![])),
    );
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
    let mut ahead = PeerDkg {
        attempt: 3,
        ..late.clone()
    };
    resign(&mut ahead, 2);
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
fn an_unfounded_abort_stops_nothing_names_nobody_and_the_run_completes() {
    let r = registry(4, 7);
    let ts = targets(&r);
    let mut coords = coordinators(4);
    let now = Instant::now();
    let queue = ensure_all(&mut coords, &ts, now);
    // Node 2 aborts at once, accusing node 3, who did nothing wrong.
    let abort = dkg_message(
        "keynet-test",
        7,
        2,
        DkgBody::Frost(FrostWire::Abort(vec![3])),
    );
    for j in [0, 2, 3] {
        coords[j]
            .handle(&ts[j], false, 2, &abort, now)
            .unwrap_or_else(|e| panic!("{e}"));
        let st = coords[j].status();
        assert_eq!(
            st.state,
            DkgState::Running,
            "an abort without proof stops nothing"
        );
        assert!(st.culprits.is_empty() && st.excluded.is_empty(), "{st:?}");
        assert_eq!(st.aborted_by.as_deref(), Some(r.nodes[1].endpoint.as_str()));
        assert_eq!(st.accused, vec![r.nodes[2].endpoint.clone()]);
    }
    let keys = all_keys(deliver_all(&mut coords, &ts, queue, now, &mut |_, _| {}));
    for (i, c) in coords.iter().enumerate() {
        let st = c.status();
        assert_eq!((st.state, st.attempt), (DkgState::Done, 0), "node {i}");
        assert_eq!(
            keys[i].frost_public.verifying_key(),
            keys[0].frost_public.verifying_key()
        );
    }
}

/// Replaces the FROST share participant `dealer` sends to the node of index `victim` with
/// junk, signed by the dealer (a member that cheats signs what it sends).
fn bad_share(dealer: u16, victim: usize) -> impl FnMut(usize, &mut PeerDkg) {
    move |to, m| {
        if m.from == dealer
            && to == victim
            && matches!(m.body, DkgBody::Frost(FrostWire::Round2(_)))
        {
            let junk = keynet_threshold::frost::keys::SigningShare::deserialize(&[7u8; 32])
                .unwrap_or_else(|e| panic!("{e}"));
            let package = keynet_threshold::frost::keys::dkg::round2::Package::new(junk);
            let wire = FrostWire::encode(&Message::Round2(Box::new(package)))
                .unwrap_or_else(|e| panic!("{e}"));
            m.body = DkgBody::Frost(wire);
            resign(m, u8::try_from(dealer).unwrap_or(0));
        }
    }
}

#[test]
fn a_member_who_deals_a_bad_share_is_excluded_on_its_own_signed_packages() {
    let r = registry(5, 9);
    let ts = targets(&r);
    let mut coords = coordinators(5);
    let now = Instant::now();
    let queue = ensure_all(&mut coords, &ts, now);
    // Participant 2 sends participant 4 a share that contradicts its commitment.
    let mut cheat_2 = bad_share(2, 3);
    let mut with_proof: Option<PeerDkg> = None;
    let keys = deliver_all(&mut coords, &ts, queue, now, &mut |to, m| {
        if to == 0 && m.from == 3 && !m.proofs.is_empty() {
            with_proof.get_or_insert_with(|| m.clone());
        }
        cheat_2(to, m);
    });
    let cheat = r.nodes[1].endpoint.clone();
    for (i, c) in coords.iter().enumerate() {
        let st = c.status();
        assert_eq!(st.excluded, vec![cheat.clone()], "node {i}: {st:?}");
        if i == 1 {
            assert_eq!(st.state, DkgState::Failed);
            assert!(
                st.reason.as_deref().unwrap_or("").contains("excluded"),
                "{st:?}"
            );
            assert!(keys[i].is_none(), "the excluded member holds no share");
            continue;
        }
        // Everyone else goes on at once to attempt 1 without it, and completes.
        assert_eq!(
            (st.state, st.attempt),
            (DkgState::Done, 1),
            "node {i}: {st:?}"
        );
        assert!(st.culprits.is_empty(), "{st:?}");
    }
    // Proofs move a running node to the attempt after its own, whatever number the sender
    // gives (two colluders could otherwise send members to attempts that never meet).
    let with_proof = with_proof.unwrap_or_else(|| panic!("no message carried the proof"));
    let mut far = with_proof.clone();
    far.attempt = 1_000;
    resign(&mut far, 3);
    let mut running = Coordinator::new(TIMEOUT, signer(1));
    running
        .ensure(&ts[0], false, now)
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = running.handle(&ts[0], false, 3, &far, now);
    let st = running.status();
    assert_eq!((st.state, st.attempt), (DkgState::Running, 1), "{st:?}");
    assert_eq!(st.excluded, vec![cheat.clone()]);
    // A node that learns the exclusion from a member's message keeps the proof it checked:
    // the same exclusion sent again with a "proof" that proves nothing does not replace it
    // (it would make this node's own messages refused).
    let mut one = Coordinator::new(TIMEOUT, signer(1));
    one.handle(&ts[0], false, 3, &with_proof, now)
        .unwrap_or_else(|e| panic!("{e}"));
    // Its attempt fails (nobody else answers); a member's next attempt brings the poison.
    one.tick(now + TIMEOUT * 3);
    assert_eq!(one.status().state, DkgState::Failed);
    let mut poison = dkg_message(
        "keynet-test",
        9,
        3,
        DkgBody::Frost(FrostWire::Abort(vec![])),
    );
    poison.attempt = with_proof.attempt + 1;
    poison.excluded = vec![2];
    poison.session = with_proof.session.clone();
    poison.proofs = vec![Misconduct {
        evidence: vec![dkg_message(
            "keynet-test",
            9,
            2,
            DkgBody::Frost(FrostWire::Abort(vec![])),
        )],
    }];
    resign(&mut poison, 3);
    one.handle(&ts[0], false, 3, &poison, now + TIMEOUT * 3)
        .unwrap_or_else(|e| panic!("{e}"));
    let Phase::Running(run) = &one.phase else {
        panic!("not running");
    };
    assert_eq!(run.excluded.get(&2), with_proof.proofs.first());
    assert!(super::evidence::verify(&r, &run.excluded[&2]).is_ok());
    let held: Vec<&NetworkKeys> = keys.iter().flatten().collect();
    assert_eq!(held.len(), 4);
    let two = keynet_threshold::frost::Identifier::try_from(2u16).unwrap_or_else(|e| panic!("{e}"));
    for k in &held {
        assert_eq!(k.frost_public, held[0].frost_public);
        assert_eq!(k.bls.public, held[0].bls.public);
        assert_eq!(k.frost_public.verifying_shares().len(), 4);
        assert!(!k.frost_public.verifying_shares().contains_key(&two));
        assert!(!k.bls.public_shares.contains_key(&2));
        // Identifiers stay the registry's.
        assert_eq!(
            *k.frost.identifier(),
            keynet_threshold::frost::Identifier::try_from(k.me).unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(
            k.frost.min_signers(),
            &r.threshold().try_into().unwrap_or(0u16)
        );
    }
}

#[test]
fn proofs_that_prove_nothing_are_refused_and_cannot_frame_an_honest_member() {
    let r = registry(4, 11);
    let ts = targets(&r);
    let mut coords = coordinators(4);
    let now = Instant::now();
    let queue = ensure_all(&mut coords, &ts, now);
    // Every message participant 3 sends, as sent.
    let mut sent_by_3: Vec<(usize, PeerDkg)> = Vec::new();
    let _ = deliver_all(&mut coords, &ts, queue, now, &mut |to, m| {
        if m.from == 3 {
            sent_by_3.push((to, m.clone()));
        }
    });
    let frost = |m: &&(usize, PeerDkg), round1: bool| match &m.1.body {
        DkgBody::Frost(FrostWire::Round1(_)) => round1,
        DkgBody::Frost(FrostWire::Round2(_)) => !round1 && m.0 == 0,
        _ => false,
    };
    let round1 = sent_by_3
        .iter()
        .find(|m| frost(m, true))
        .map(|m| m.1.clone());
    let share_to_1 = sent_by_3
        .iter()
        .find(|m| frost(m, false))
        .map(|m| m.1.clone());
    let (Some(round1), Some(share_to_1)) = (round1, share_to_1) else {
        panic!("participant 3 sent no packages");
    };
    // Participant 3 restarts: a new run at the same attempt, with another polynomial.
    let mut again = Coordinator::new(TIMEOUT, signer(3));
    let restarted = again
        .ensure(&ts[2], false, now)
        .unwrap_or_else(|e| panic!("{e}"));
    let round1_again = restarted
        .sends
        .iter()
        .map(|o| o.message.clone())
        .find(|m| matches!(m.body, DkgBody::Frost(FrostWire::Round1(_))))
        .unwrap_or_else(|| panic!("no round one"));
    let strip = |m: &PeerDkg| PeerDkg {
        proofs: vec![],
        ..m.clone()
    };
    // Its honest packages of one run show nothing; packages of two of its runs (whose
    // share contradicts the other run's commitment) are refused as two runs; a session
    // changed to pair them breaks its signature.
    let mut spliced = strip(&round1_again);
    spliced.session = round1.session.clone();
    for (evidence, why) in [
        (vec![strip(&round1), strip(&share_to_1)], "no fault"),
        (
            vec![strip(&round1_again), strip(&share_to_1)],
            "more than one run",
        ),
        (vec![spliced, strip(&share_to_1)], "signature"),
    ] {
        let proof = Misconduct { evidence };
        let e = super::evidence::verify(&r, &proof).err();
        assert!(e.as_deref().unwrap_or("").contains(why), "{why}: {e:?}");
        // A member that sends such a "proof" is refused, and nobody is excluded.
        let mut c = Coordinator::new(TIMEOUT, signer(1));
        let mut accusation = dkg_message(
            "keynet-test",
            11,
            2,
            DkgBody::Frost(FrostWire::Abort(vec![3])),
        );
        accusation.excluded = vec![3];
        accusation.proofs = vec![proof];
        resign(&mut accusation, 2);
        assert!(matches!(
            c.handle(&ts[0], false, 2, &accusation, now),
            Err(DkgRefusal::Malformed(e)) if e.contains("proof of misconduct")
        ));
        assert_eq!(c.status().state, DkgState::Idle);
    }
    // Exclusions claimed without proofs are refused too.
    let mut c = Coordinator::new(TIMEOUT, signer(1));
    let mut claim = dkg_message(
        "keynet-test",
        11,
        2,
        DkgBody::Frost(FrostWire::Abort(vec![])),
    );
    claim.excluded = vec![3];
    resign(&mut claim, 2);
    assert!(matches!(
        c.handle(&ts[0], false, 2, &claim, now),
        Err(DkgRefusal::Malformed(e)) if e.contains("with 0 proofs")
    ));
}

#[test]
fn unsealed_keys_need_no_run_until_a_new_epoch() {
    let r = registry(4, 8);
    let ts = targets(&r);
    let mut c = Coordinator::new(TIMEOUT, signer(1));
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
    let mut coords: Vec<Coordinator> = coordinators(4);
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
