//! Threshold signing across nodes that each verified the user's request themselves:
//! any t of n sign; a node the user did not contact never signs and the others time out
//! naming it; a corrupted share is named by the aggregator; signatures verify with our
//! own RFC 9591 check.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keynet_threshold::aggregate::{AggregateError, aggregate};
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost;
use keynet_threshold::schnorr::verify;
use keynet_threshold::signing::{Event, MAX_HELD, SignError, Signer, VerifiedRequest};

const WAIT: Duration = Duration::from_secs(2);

type Shares = BTreeMap<Participant, (frost::round2::SignatureShare, frost::SigningPackage)>;

struct Net {
    signers: BTreeMap<Participant, Signer>,
    public: frost::keys::PublicKeyPackage,
}

fn network(n: u16, t: u16) -> Net {
    let outs = common::run(n, t, &common::Faults::default());
    let (keys, public) = common::all_done(&outs);
    let signers = keys
        .values()
        .enumerate()
        .map(|(i, k)| {
            let p = u16::try_from(i + 1).unwrap();
            (p, Signer::new(p, n, k.clone(), WAIT))
        })
        .collect();
    Net { signers, public }
}

/// The user sends `req` to `contacted`; peer messages are delivered until quiet.
fn run(
    net: &mut Net,
    req: &VerifiedRequest,
    contacted: &[Participant],
    now: Instant,
) -> (Shares, Vec<(Participant, Event)>) {
    let mut queue = Vec::new();
    for p in contacted {
        let events = net
            .signers
            .get_mut(p)
            .unwrap()
            .begin(req.clone(), now)
            .unwrap();
        queue.extend(events.into_iter().map(|e| (*p, e)));
    }
    let mut shares = BTreeMap::new();
    let mut other = Vec::new();
    while let Some((from, e)) = queue.pop() {
        match e {
            Event::Commitments {
                id,
                to,
                commitments,
            } => {
                let out =
                    net.signers
                        .get_mut(&to)
                        .unwrap()
                        .on_commitments(from, id, *commitments, now);
                queue.extend(out.into_iter().map(|e| (to, e)));
            }
            Event::Share { share, package, .. } => {
                shares.insert(from, (share, *package));
            }
            e => other.push((from, e)),
        }
    }
    (shares, other)
}

fn request(tag: u8, participants: &[Participant]) -> VerifiedRequest {
    VerifiedRequest {
        id: [tag; 32],
        message: [tag.wrapping_add(100); 32],
        participants: participants.to_vec(),
    }
}

#[test]
fn any_threshold_subset_signs_and_the_signature_verifies() {
    let mut net = network(7, 5);
    let pk = net.public.verifying_key().serialize().unwrap();
    for (tag, subset) in [
        (1u8, vec![1, 2, 3, 4, 5]),
        (2, vec![3, 4, 5, 6, 7]),
        (3, vec![1, 3, 5, 6, 7, 2]),
    ] {
        let req = request(tag, &subset);
        let (shares, other) = run(&mut net, &req, &subset, Instant::now());
        assert!(other.is_empty(), "{other:?}");
        assert_eq!(shares.len(), subset.len());
        let sig = aggregate(&net.public, &shares).unwrap();
        verify(&pk, &req.message, &sig).unwrap();
    }
    assert!(net.signers.values().all(|s| s.pending() == 0));
}

#[test]
fn a_node_the_user_did_not_contact_never_signs() {
    let mut net = network(4, 3);
    let req = request(9, &[1, 2, 3]);
    let now = Instant::now();
    // The user contacted 1 and 2 only; 3 hears of the request from its peers.
    let (shares, other) = run(&mut net, &req, &[1, 2], now);
    assert!(shares.is_empty());
    assert!(other.is_empty());
    let later = now + WAIT;
    let three = net.signers.get_mut(&3).unwrap().tick(later);
    assert!(
        three
            .iter()
            .all(|e| matches!(e, Event::Dropped { from, .. } if *from == 1 || *from == 2)),
        "{three:?}"
    );
    assert_eq!(three.len(), 2);
    for p in [1, 2] {
        let events = net.signers.get_mut(&p).unwrap().tick(later);
        match events.as_slice() {
            [
                Event::Failed {
                    error: SignError::Timeout { missing, .. },
                    ..
                },
            ] => assert_eq!(missing, &vec![3]),
            other => panic!("{p}: {other:?}"),
        }
    }
}

#[test]
fn commitments_that_arrive_before_the_user_are_used_once_the_user_arrives() {
    let mut net = network(4, 3);
    let req = request(5, &[2, 3, 4]);
    let now = Instant::now();
    // 2 and 3 begin first; 4 only holds their commitments.
    let (shares, _) = run(&mut net, &req, &[2, 3], now);
    assert!(shares.is_empty());
    // ...then the user reaches 4 in time: everyone completes.
    let events = net
        .signers
        .get_mut(&4)
        .unwrap()
        .begin(req.clone(), now)
        .unwrap();
    let mut shares: Shares = BTreeMap::new();
    let mut queue: Vec<(Participant, Event)> = events.into_iter().map(|e| (4, e)).collect();
    while let Some((from, e)) = queue.pop() {
        match e {
            Event::Commitments {
                id,
                to,
                commitments,
            } => {
                let out =
                    net.signers
                        .get_mut(&to)
                        .unwrap()
                        .on_commitments(from, id, *commitments, now);
                queue.extend(out.into_iter().map(|e| (to, e)));
            }
            Event::Share { share, package, .. } => {
                shares.insert(from, (share, *package));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(shares.len(), 3);
    aggregate(&net.public, &shares).unwrap();
}

#[test]
fn a_corrupted_share_is_named() {
    let mut net = network(4, 3);
    let req = request(7, &[1, 2, 4]);
    let (mut shares, _) = run(&mut net, &req, &[1, 2, 4], Instant::now());
    // Node 2 returns another share (a share for another request's package).
    let (other, _) = run(
        &mut net,
        &request(8, &[1, 2, 4]),
        &[1, 2, 4],
        Instant::now(),
    );
    let pkg = shares[&2].1.clone();
    shares.insert(2, (other[&2].0, pkg));
    assert_eq!(
        aggregate(&net.public, &shares),
        Err(AggregateError::BadShares { culprits: vec![2] })
    );
    // A node that signed another package is named too.
    let (mut shares, _) = run(
        &mut net,
        &request(10, &[1, 2, 4]),
        &[1, 2, 4],
        Instant::now(),
    );
    let foreign = other[&4].clone();
    shares.insert(4, foreign);
    assert_eq!(
        aggregate(&net.public, &shares),
        Err(AggregateError::PackageMismatch(4))
    );
}

#[test]
fn bad_participant_lists_are_refused() {
    let mut net = network(4, 3);
    let s = net.signers.get_mut(&1).unwrap();
    let now = Instant::now();
    for list in [vec![1, 2], vec![2, 3, 4], vec![1, 2, 2], vec![1, 2, 5]] {
        assert!(
            matches!(
                s.begin(request(1, &list), now),
                Err(SignError::Participants { .. })
            ),
            "{list:?}"
        );
    }
    s.begin(request(1, &[1, 2, 3]), now).unwrap();
    assert!(matches!(
        s.begin(request(1, &[1, 2, 3]), now),
        Err(SignError::Duplicate(_))
    ));
}

#[test]
fn held_commitments_are_capped() {
    let mut net = network(4, 3);
    let now = Instant::now();
    // Node 2's real commitments for a request node 1 never verified...
    let (_, _) = run(&mut net, &request(1, &[2, 3, 4]), &[2, 3, 4], now);
    let commitments = {
        let events = net
            .signers
            .get_mut(&2)
            .unwrap()
            .begin(request(2, &[1, 2, 3]), now)
            .unwrap();
        match events.into_iter().next() {
            Some(Event::Commitments { commitments, .. }) => *commitments,
            other => panic!("{other:?}"),
        }
    };
    // Node 3 sent its commitments for a real request ahead of the user's request to node 1.
    let honest_rid = [0xAA; 32];
    let one = net.signers.get_mut(&1).unwrap();
    assert!(
        one.on_commitments(3, honest_rid, commitments, now)
            .is_empty()
    );
    // ...then node 2 floods node 1 under MAX_HELD + 3 invented request ids: it only ever
    // holds its own share of the room (MAX_HELD / n), the oldest of its own dropped first.
    let mut dropped = Vec::new();
    for i in 0..MAX_HELD + 3 {
        let mut rid = [0u8; 32];
        rid[..8].copy_from_slice(&(i as u64).to_be_bytes());
        for e in one.on_commitments(2, rid, commitments, now) {
            if let Event::Dropped { id, from } = e {
                dropped.push((from, id));
            }
        }
    }
    assert_eq!(dropped.len(), MAX_HELD + 3 - MAX_HELD / 4);
    assert!(
        dropped.iter().all(|(from, _)| *from == 2),
        "only the flooder's are dropped"
    );
    assert!(
        !dropped.iter().any(|(_, id)| *id == honest_rid),
        "the honest peer's commitments survive the flood"
    );
    assert_eq!(one.pending(), 0, "nothing was begun from peers' word");
}
