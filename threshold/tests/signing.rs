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
use keynet_threshold::signing::{Event, SignError, Signer, VerifiedRequest};

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

/// Delivers `from`'s commitments to `to`, and `to`'s answer (its own commitments, if it
/// has begun the request) back to `from`, as the node's HTTP exchange does. Returns the
/// events, each with the node it happened at.
fn deliver(
    net: &mut Net,
    from: Participant,
    to: Participant,
    id: [u8; 32],
    commitments: frost::round1::SigningCommitments,
) -> Vec<(Participant, Event)> {
    let taken = net
        .signers
        .get_mut(&to)
        .unwrap()
        .on_commitments(from, id, commitments);
    let mut out: Vec<_> = taken.events.into_iter().map(|e| (to, e)).collect();
    if let Some(mine) = taken.mine {
        // An answer is not answered again.
        let back = net.signers.get_mut(&from).unwrap().on_answer(to, id, mine);
        out.extend(back.into_iter().map(|e| (from, e)));
    }
    out
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
            } => queue.extend(deliver(net, from, to, id, *commitments)),
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
    // 3 dropped both at once, holding nothing.
    assert_eq!(other.len(), 2, "{other:?}");
    assert!(
        other.iter().all(|(at, e)| *at == 3
            && matches!(e, Event::Dropped { from, .. } if *from == 1 || *from == 2)),
        "{other:?}"
    );
    let later = now + WAIT;
    assert!(net.signers.get_mut(&3).unwrap().tick(later).is_empty());
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
fn a_node_the_user_reaches_last_gets_the_earlier_commitments_in_answers() {
    let mut net = network(4, 3);
    let req = request(5, &[2, 3, 4]);
    let now = Instant::now();
    // 2 and 3 begin first; 4 drops their commitments (it has not verified the request).
    let (shares, _) = run(&mut net, &req, &[2, 3], now);
    assert!(shares.is_empty());
    // ...then the user reaches 4 in time: its pushes are answered with 2's and 3's
    // commitments, and everyone completes.
    let (shares, other) = run(&mut net, &req, &[4], now);
    assert!(other.is_empty(), "{other:?}");
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
fn commitments_for_requests_not_begun_are_never_held() {
    let mut net = network(4, 3);
    let now = Instant::now();
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
    // Node 2 floods node 1 with commitments for 10,000 invented requests: each is dropped
    // at once and answered with nothing; node 1 begins nothing from peers' word.
    let one = net.signers.get_mut(&1).unwrap();
    for i in 0..10_000u64 {
        let mut rid = [0u8; 32];
        rid[..8].copy_from_slice(&i.to_be_bytes());
        let taken = one.on_commitments(2, rid, commitments);
        assert!(taken.mine.is_none());
        assert!(matches!(
            taken.events.as_slice(),
            [Event::Dropped { from: 2, id }] if *id == rid
        ));
    }
    assert_eq!(one.pending(), 0);
    // An honest request after the flood completes as if there had been none.
    let req = request(3, &[1, 3, 4]);
    let (shares, other) = run(&mut net, &req, &[1, 3, 4], now);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!(shares.len(), 3);
    aggregate(&net.public, &shares).unwrap();
}

#[test]
fn a_cancelled_session_signs_nothing_and_answers_nothing() {
    let mut net = network(4, 3);
    let now = Instant::now();
    let req = request(4, &[1, 2, 3]);
    let events = net
        .signers
        .get_mut(&1)
        .unwrap()
        .begin(req.clone(), now)
        .unwrap();
    assert_eq!(events.len(), 2);
    assert!(net.signers.get_mut(&1).unwrap().cancel(&req.id));
    assert!(!net.signers.get_mut(&1).unwrap().cancel(&req.id));
    // 2 and 3 begin; their pushes to 1 are dropped and answered with nothing.
    let (shares, other) = run(&mut net, &req, &[2, 3], now);
    assert!(shares.is_empty());
    assert_eq!(
        other
            .iter()
            .filter(|(at, e)| *at == 1 && matches!(e, Event::Dropped { .. }))
            .count(),
        2
    );
    assert_eq!(net.signers.get_mut(&1).unwrap().pending(), 0);
}

#[test]
fn a_push_after_signing_is_answered_from_what_was_kept_until_the_wait_is_over() {
    let mut net = network(4, 3);
    let req = request(6, &[1, 2, 3]);
    let now = Instant::now();
    let (shares, other) = run(&mut net, &req, &[1, 2, 3], now);
    assert_eq!(shares.len(), 3);
    assert!(other.is_empty(), "{other:?}");
    // Node 2 pushes again (its first answer lost): node 1 answers with the commitments it
    // signed with, and drops nothing.
    let signed_with = *shares[&1]
        .1
        .signing_commitments()
        .get(&frost::Identifier::try_from(1u16).unwrap())
        .unwrap();
    let again = *shares[&2]
        .1
        .signing_commitments()
        .get(&frost::Identifier::try_from(2u16).unwrap())
        .unwrap();
    let one = net.signers.get_mut(&1).unwrap();
    let taken = one.on_commitments(2, req.id, again);
    assert_eq!(taken.mine, Some(signed_with));
    assert!(taken.events.is_empty());
    // A non-participant gets nothing; the same request cannot begin again.
    assert_eq!(one.on_commitments(4, req.id, again).mine, None);
    assert!(matches!(
        one.begin(req.clone(), now),
        Err(SignError::Duplicate(_))
    ));
    // Once the wait is over it is forgotten: a push is dropped.
    assert!(one.tick(now + WAIT).is_empty());
    let late = one.on_commitments(2, req.id, again);
    assert_eq!(late.mine, None);
    assert!(matches!(
        late.events.as_slice(),
        [Event::Dropped { from: 2, .. }]
    ));
}
