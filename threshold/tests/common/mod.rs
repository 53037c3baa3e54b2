//! An in-process network for DKG tests: every participant's machine, a message queue,
//! and injectable faults.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use keynet_threshold::dkg::{Dkg, Message, Participant, State};
use keynet_threshold::frost;

/// Faults to inject.
#[derive(Default)]
pub struct Faults {
    /// Never sends anything.
    pub silent: Option<Participant>,
    /// Sends a corrupted secret share to every peer in round two.
    pub bad_share: Option<Participant>,
    /// (equivocator, victim): the victim gets a different round-one package.
    pub equivocate: Option<(Participant, Participant)>,
}

pub struct Outcome {
    pub machines: BTreeMap<Participant, Dkg>,
}

/// Runs a DKG of n with threshold t; delivers messages until quiet, then advances time
/// past the deadline once.
pub fn run(n: u16, t: u16, faults: &Faults) -> Outcome {
    let now = Instant::now();
    let timeout = Duration::from_secs(5);
    let mut machines = BTreeMap::new();
    let mut queue: VecDeque<(Participant, Participant, Message)> = VecDeque::new();
    let mut spare = None;
    for p in 1..=n {
        let (m, out) = Dkg::start(p, n, t, timeout, now).unwrap();
        machines.insert(p, m);
        if faults.equivocate.map(|(e, _)| e) == Some(p) {
            // A second, different round-one package from the same participant.
            let (_, other) = Dkg::start(p, n, t, timeout, now).unwrap();
            spare = other.into_iter().next().map(|o| o.message);
        }
        enqueue(&mut queue, n, p, out, faults, &spare);
    }
    while let Some((from, to, msg)) = queue.pop_front() {
        let out = machines.get_mut(&to).unwrap().handle(from, msg, now);
        enqueue(&mut queue, n, to, out, faults, &spare);
    }
    let later = now + timeout + Duration::from_millis(1);
    for m in machines.values_mut() {
        m.tick(later);
    }
    Outcome { machines }
}

fn enqueue(
    queue: &mut VecDeque<(Participant, Participant, Message)>,
    n: u16,
    from: Participant,
    out: Vec<keynet_threshold::dkg::Outgoing>,
    faults: &Faults,
    spare: &Option<Message>,
) {
    if faults.silent == Some(from) {
        return;
    }
    for o in out {
        let targets: Vec<Participant> = match o.to {
            Some(p) => vec![p],
            None => (1..=n).filter(|p| *p != from).collect(),
        };
        for to in targets {
            let mut msg = o.message.clone();
            if faults.bad_share == Some(from) && matches!(msg, Message::Round2(_)) {
                let junk = frost::keys::SigningShare::deserialize(&[7u8; 32]).unwrap();
                msg = Message::Round2(Box::new(frost::keys::dkg::round2::Package::new(junk)));
            }
            if let (Some((e, victim)), Message::Round1(_), Some(s)) =
                (faults.equivocate, &msg, spare)
                && e == from
                && victim == to
            {
                msg = s.clone();
            }
            queue.push_back((from, to, msg));
        }
    }
}

/// Every machine's key package and the (single) public key package; panics unless all
/// are Done with the same group key.
pub fn all_done(
    o: &Outcome,
) -> (
    BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    frost::keys::PublicKeyPackage,
) {
    let mut keys = BTreeMap::new();
    let mut public: Option<frost::keys::PublicKeyPackage> = None;
    for (p, m) in &o.machines {
        assert_eq!(m.state(), State::Done, "participant {p}: {:?}", m.failure());
        let (k, pk) = m.result().unwrap();
        keys.insert(*k.identifier(), k.clone());
        match &public {
            Some(prev) => assert_eq!(prev, pk, "participant {p} has another group key"),
            None => public = Some(pk.clone()),
        }
    }
    (keys, public.unwrap())
}

/// Signs `msg` with the given signers' key packages; returns the 65-byte signature.
pub fn sign(
    keys: &BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    public: &frost::keys::PublicKeyPackage,
    signers: &[frost::Identifier],
    msg: &[u8],
) -> Vec<u8> {
    let mut rng = rand_core::OsRng;
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for id in signers {
        let (n, c) = frost::round1::commit(keys[id].signing_share(), &mut rng);
        nonces.insert(*id, n);
        commitments.insert(*id, c);
    }
    let package = frost::SigningPackage::new(commitments, msg);
    let mut shares = BTreeMap::new();
    for id in signers {
        shares.insert(
            *id,
            frost::round2::sign(&package, &nonces[id], &keys[id]).unwrap(),
        );
    }
    frost::aggregate(&package, &shares, public)
        .unwrap()
        .serialize()
        .unwrap()
}
