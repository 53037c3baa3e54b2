//! The network's BLS12-381 key: a joint-Feldman DKG with complaints (Pedersen's DKG as
//! made robust by Gennaro, Jarecki, Krawczyk and Rabin), producing `blsful` key shares
//! (signatures in G1, public keys in G2).
//!
//! ```text
//! Deal --commitments + own share from all--> Complain --all complaint lists-->
//!   Reveal --all reveals--> (QUAL, shares) --> Echo --all views equal--> Done
//! ```
//!
//! Every dealer commits to a random polynomial of degree t-1 (broadcast) and sends each
//! participant its share (point to point). A share that does not match its dealer's
//! commitments is complained about (broadcast); the dealer must reveal that share publicly;
//! a dealer whose revealed share is also wrong, or who does not answer, is disqualified.
//! The key is the sum over the qualified dealers. Like the FROST DKG, it ends with an echo
//! of everyone's view, so a dealer who broadcast different commitments to different peers
//! fails the run for everyone. Silence past a round's deadline names the silent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use blsful::vsss_rs::PrimeFieldShare;
use blsful::{Bls12381G1Impl, PublicKey, SecretKeyShare};
use blstrs_plus::{G2Projective, Scalar};
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::dkg::{Failure, Participant, State};

/// The BLS flavour: signatures in G1 (48 bytes), public keys in G2 (96 bytes).
pub type Bls = Bls12381G1Impl;

/// A protocol message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlsMessage {
    /// Broadcast: the dealer's polynomial commitments (t points of G2).
    Commit(Vec<G2Projective>),
    /// To one participant: its share from the sender's polynomial.
    Share(Scalar),
    /// Broadcast: the dealers whose shares to the sender were wrong (often none).
    Complaints(Vec<Participant>),
    /// Broadcast: the sender's shares for those who complained about it.
    Reveals(Vec<(Participant, Scalar)>),
    /// Broadcast: hash of the sender's final view.
    Echo([u8; 32]),
}

/// A message to send; `to: None` is every other participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlsOutgoing {
    /// Recipient.
    pub to: Option<Participant>,
    /// The message.
    pub message: BlsMessage,
}

/// The result for one participant.
#[derive(Clone, Debug)]
pub struct BlsKey {
    /// This participant's secret key share.
    pub share: SecretKeyShare<Bls>,
    /// The network's public key.
    pub public: PublicKey<Bls>,
    /// Every participant's public key share.
    pub public_shares: BTreeMap<Participant, G2Projective>,
    /// The dealers whose polynomials make up the key.
    pub qualified: Vec<Participant>,
    /// The threshold.
    pub threshold: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Deal,
    Complain,
    Reveal,
    Echo,
    Done,
    Failed,
}

/// One participant's run.
pub struct BlsDkg {
    me: Participant,
    /// The participants, sorted, `me` among them (see [`crate::dkg::Dkg::start_among`]).
    members: Vec<Participant>,
    t: u16,
    timeout: Duration,
    phase: Phase,
    started: Instant,
    poly: Vec<Scalar>,
    commits: BTreeMap<Participant, Vec<G2Projective>>,
    shares: BTreeMap<Participant, Scalar>,
    complaints: BTreeMap<Participant, Vec<Participant>>,
    reveals: BTreeMap<Participant, Vec<(Participant, Scalar)>>,
    /// Dealers whose commitment broadcast has the wrong degree: disqualified by everyone
    /// who got it (one who sent it to some peers only makes the views differ).
    malformed: BTreeSet<Participant>,
    echoes: BTreeMap<Participant, [u8; 32]>,
    early: Vec<(Participant, BlsMessage)>,
    view: Option<[u8; 32]>,
    result: Option<BlsKey>,
    failure: Option<Failure>,
}

fn x(p: Participant) -> Scalar {
    Scalar::from(u64::from(p))
}

fn random_scalar() -> Scalar {
    let mut wide = [0u8; 64];
    rand_core::OsRng.fill_bytes(&mut wide);
    let s = Scalar::from_bytes_wide(&wide);
    wide.fill(0);
    s
}

/// f(x) by Horner's rule.
fn eval(poly: &[Scalar], at: Scalar) -> Scalar {
    poly.iter()
        .rev()
        .fold(Scalar::from(0u64), |acc, c| acc * at + c)
}

/// The public value of a polynomial at `at` from its commitments: sum C_k at^k.
fn eval_commit(commits: &[G2Projective], at: Scalar) -> G2Projective {
    commits
        .iter()
        .rev()
        .fold(G2Projective::IDENTITY, |acc, c| acc * at + c)
}

fn share_ok(commits: &[G2Projective], me: Participant, s: &Scalar) -> bool {
    G2Projective::GENERATOR * s == eval_commit(commits, x(me))
}

fn phase_of(m: &BlsMessage) -> Phase {
    match m {
        BlsMessage::Commit(_) | BlsMessage::Share(_) => Phase::Deal,
        BlsMessage::Complaints(_) => Phase::Complain,
        BlsMessage::Reveals(_) => Phase::Reveal,
        BlsMessage::Echo(_) => Phase::Echo,
    }
}

impl BlsDkg {
    /// Starts participant `me` of `1..=n`, threshold `t` (2 <= t <= n); returns its deal.
    pub fn start(
        me: Participant,
        n: u16,
        t: u16,
        timeout: Duration,
        now: Instant,
    ) -> Result<(BlsDkg, Vec<BlsOutgoing>), crate::dkg::ConfigError> {
        let members: Vec<Participant> = (1..=n).collect();
        Self::start_among(me, &members, t, timeout, now)
    }

    /// Starts participant `me` of a run among `members` (identifiers kept; see
    /// [`crate::dkg::Dkg::start_among`]); returns its deal.
    pub fn start_among(
        me: Participant,
        members: &[Participant],
        t: u16,
        timeout: Duration,
        now: Instant,
    ) -> Result<(BlsDkg, Vec<BlsOutgoing>), crate::dkg::ConfigError> {
        let members = crate::dkg::check_members(me, members, t)?;
        let poly: Vec<Scalar> = (0..t).map(|_| random_scalar()).collect();
        let commits: Vec<G2Projective> = poly.iter().map(|c| G2Projective::GENERATOR * c).collect();
        let mut out = vec![BlsOutgoing {
            to: None,
            message: BlsMessage::Commit(commits.clone()),
        }];
        for p in members.iter().copied().filter(|p| *p != me) {
            out.push(BlsOutgoing {
                to: Some(p),
                message: BlsMessage::Share(eval(&poly, x(p))),
            });
        }
        let mut d = BlsDkg {
            me,
            members,
            t,
            timeout,
            phase: Phase::Deal,
            started: now,
            poly,
            commits: BTreeMap::new(),
            shares: BTreeMap::new(),
            complaints: BTreeMap::new(),
            reveals: BTreeMap::new(),
            malformed: BTreeSet::new(),
            echoes: BTreeMap::new(),
            early: Vec::new(),
            view: None,
            result: None,
            failure: None,
        };
        d.commits.insert(me, commits);
        let own = eval(&d.poly, x(me));
        d.shares.insert(me, own);
        Ok((d, out))
    }

    /// The state, in the FROST DKG's names ([`State::Round1`] is the deal,
    /// [`State::Round2`] complaints and reveals).
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Deal => State::Round1,
            Phase::Complain | Phase::Reveal => State::Round2,
            Phase::Echo => State::Echo,
            Phase::Done => State::Done,
            Phase::Failed => State::Failed,
        }
    }

    /// The key, once done.
    pub fn result(&self) -> Option<&BlsKey> {
        self.result.as_ref()
    }

    /// Why it failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    fn peers(&self) -> Vec<Participant> {
        self.members
            .iter()
            .copied()
            .filter(|p| *p != self.me)
            .collect()
    }

    /// The other qualified dealers (everyone before qualification): a disqualified dealer's
    /// view is not waited for nor compared.
    fn qualified_peers(&self) -> Vec<Participant> {
        match &self.result {
            Some(k) => k
                .qualified
                .iter()
                .copied()
                .filter(|p| *p != self.me)
                .collect(),
            None => self.peers(),
        }
    }

    fn fail(&mut self, reason: String, culprits: Vec<Participant>) -> Vec<BlsOutgoing> {
        self.failure = Some(Failure {
            state: self.state(),
            reason,
            culprits,
            aborted_by: None,
            accused: vec![],
        });
        self.phase = Phase::Failed;
        self.result = None;
        for c in &mut self.poly {
            *c = Scalar::from(0u64);
        }
        Vec::new()
    }

    /// Fails the run when the current round's deadline has passed, naming the silent.
    pub fn tick(&mut self, now: Instant) -> Vec<BlsOutgoing> {
        if self.phase >= Phase::Done || now.saturating_duration_since(self.started) < self.timeout {
            return Vec::new();
        }
        let missing: Vec<Participant> = self
            .peers()
            .into_iter()
            .filter(|p| match self.phase {
                Phase::Deal => !(self.commits.contains_key(p) && self.shares.contains_key(p)),
                Phase::Complain => !self.complaints.contains_key(p),
                Phase::Reveal => !self.reveals.contains_key(p),
                _ => self.qualified_peers().contains(p) && !self.echoes.contains_key(p),
            })
            .collect();
        let reason = format!(
            "no {:?} message within {:?} from {missing:?}",
            self.phase, self.timeout
        );
        self.fail(reason, missing)
    }

    /// Takes a message from `from`; returns what to send.
    pub fn handle(&mut self, from: Participant, m: BlsMessage, now: Instant) -> Vec<BlsOutgoing> {
        if self.phase >= Phase::Done
            || from == self.me
            || self.members.binary_search(&from).is_err()
        {
            return Vec::new();
        }
        let mut out = self.accept(from, m, now);
        loop {
            let phase = self.phase;
            let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
                .into_iter()
                .partition(|(_, m)| phase_of(m) == phase);
            self.early = later;
            if ready.is_empty() || self.phase >= Phase::Done {
                break;
            }
            for (f, m) in ready {
                out.extend(self.accept(f, m, now));
            }
        }
        out
    }

    fn accept(&mut self, from: Participant, m: BlsMessage, now: Instant) -> Vec<BlsOutgoing> {
        let p = phase_of(&m);
        if p != self.phase {
            if p > self.phase {
                self.early.push((from, m));
            }
            return Vec::new();
        }
        let dup = |name: &str| format!("{from} sent two different {name} messages");
        match m {
            BlsMessage::Commit(c) => {
                let bad = c.len() != usize::from(self.t);
                let malformed = self.malformed.contains(&from);
                match self.commits.get(&from) {
                    // The same commitment again, or another of the wrong degree.
                    Some(old) if (malformed && bad) || (!malformed && *old == c) => {}
                    Some(_) => return self.fail(dup("commitment"), vec![from]),
                    // Everyone it sent this to disqualifies it; the run goes on.
                    None if bad => {
                        self.malformed.insert(from);
                        self.commits.insert(from, Vec::new());
                    }
                    None => {
                        self.commits.insert(from, c);
                    }
                }
            }
            BlsMessage::Share(s) => {
                if self.shares.get(&from).is_some_and(|old| *old != s) {
                    return self.fail(dup("share"), vec![from]);
                }
                self.shares.insert(from, s);
            }
            BlsMessage::Complaints(c) => {
                if self.complaints.get(&from).is_some_and(|old| *old != c) {
                    return self.fail(dup("complaint"), vec![from]);
                }
                self.complaints.insert(from, c);
            }
            BlsMessage::Reveals(r) => {
                if self.reveals.get(&from).is_some_and(|old| *old != r) {
                    return self.fail(dup("reveal"), vec![from]);
                }
                self.reveals.insert(from, r);
            }
            BlsMessage::Echo(h) => {
                if self.echoes.get(&from).is_some_and(|old| *old != h) {
                    return self.fail(dup("echo"), vec![from]);
                }
                self.echoes.insert(from, h);
            }
        }
        let full = |len: usize| len == self.members.len();
        match self.phase {
            Phase::Deal if full(self.commits.len()) && full(self.shares.len()) => {
                self.complain(now)
            }
            // Our own complaint list and reveals are in the maps already.
            Phase::Complain if full(self.complaints.len()) => self.reveal(now),
            Phase::Reveal if full(self.reveals.len()) => self.qualify(now),
            Phase::Echo
                if self
                    .qualified_peers()
                    .iter()
                    .all(|p| self.echoes.contains_key(p)) =>
            {
                self.finish()
            }
            _ => Vec::new(),
        }
    }

    fn complain(&mut self, now: Instant) -> Vec<BlsOutgoing> {
        let mine: Vec<Participant> = self
            .peers()
            .into_iter()
            .filter(|d| match (self.commits.get(d), self.shares.get(d)) {
                (Some(c), Some(s)) => !share_ok(c, self.me, s),
                _ => true,
            })
            .collect();
        self.complaints.insert(self.me, mine.clone());
        self.phase = Phase::Complain;
        self.started = now;
        vec![BlsOutgoing {
            to: None,
            message: BlsMessage::Complaints(mine),
        }]
    }

    fn reveal(&mut self, now: Instant) -> Vec<BlsOutgoing> {
        let against_me: Vec<(Participant, Scalar)> = self
            .complaints
            .iter()
            .filter(|(_, list)| list.contains(&self.me))
            .map(|(c, _)| (*c, eval(&self.poly, x(*c))))
            .collect();
        self.reveals.insert(self.me, against_me.clone());
        self.phase = Phase::Reveal;
        self.started = now;
        vec![BlsOutgoing {
            to: None,
            message: BlsMessage::Reveals(against_me),
        }]
    }

    fn qualify(&mut self, now: Instant) -> Vec<BlsOutgoing> {
        let mut disqualified = self.malformed.clone();
        for (complainer, list) in &self.complaints {
            for dealer in list {
                let revealed = self
                    .reveals
                    .get(dealer)
                    .and_then(|r| r.iter().find(|(c, _)| c == complainer).map(|(_, s)| *s));
                let ok = match (revealed, self.commits.get(dealer)) {
                    (Some(s), Some(c)) => share_ok(c, *complainer, &s),
                    _ => false,
                };
                if !ok {
                    disqualified.insert(*dealer);
                } else if *complainer == self.me
                    && let Some(s) = revealed
                {
                    self.shares.insert(*dealer, s);
                }
            }
        }
        let qualified: Vec<Participant> = self
            .members
            .iter()
            .copied()
            .filter(|p| !disqualified.contains(p))
            .collect();
        if qualified.len() < usize::from(self.t) {
            return self.fail(
                format!(
                    "only {} qualified dealers, threshold {}",
                    qualified.len(),
                    self.t
                ),
                disqualified.into_iter().collect(),
            );
        }
        if disqualified.contains(&self.me) {
            return self.fail("this node was disqualified".into(), vec![self.me]);
        }
        let mut share = Scalar::from(0u64);
        let mut public = G2Projective::IDENTITY;
        for d in &qualified {
            let (Some(s), Some(c)) = (self.shares.get(d), self.commits.get(d)) else {
                return self.fail(
                    format!("no share or commitment from qualified dealer {d}"),
                    vec![*d],
                );
            };
            share += s;
            public += c.first().copied().unwrap_or(G2Projective::IDENTITY);
        }
        // The key's polynomial commitments: the qualified dealers' summed coefficient-wise.
        let mut joint = vec![G2Projective::IDENTITY; usize::from(self.t)];
        for c in qualified.iter().filter_map(|d| self.commits.get(d)) {
            for (j, ck) in joint.iter_mut().zip(c) {
                *j += ck;
            }
        }
        let public_shares: BTreeMap<Participant, G2Projective> = self
            .members
            .iter()
            .map(|p| (*p, eval_commit(&joint, x(*p))))
            .collect();
        if public_shares.get(&self.me) != Some(&(G2Projective::GENERATOR * share)) {
            return self.fail("own share does not match the public shares".into(), vec![]);
        }
        let mut h = Sha256::new();
        h.update(b"keynet-bls-dkg-view-v1");
        for d in &qualified {
            h.update(d.to_be_bytes());
            for c in self.commits.get(d).into_iter().flatten() {
                h.update(c.to_compressed());
            }
        }
        let view: [u8; 32] = h.finalize().into();
        self.view = Some(view);
        self.result = Some(BlsKey {
            share: SecretKeyShare(PrimeFieldShare::<Scalar>::from((x(self.me), share))),
            public: PublicKey(public),
            public_shares,
            qualified,
            threshold: self.t,
        });
        self.phase = Phase::Echo;
        self.started = now;
        vec![BlsOutgoing {
            to: None,
            message: BlsMessage::Echo(view),
        }]
    }

    fn finish(&mut self) -> Vec<BlsOutgoing> {
        let Some(mine) = self.view else {
            return self.fail("own view missing".into(), vec![]);
        };
        let qualified = self.qualified_peers();
        let differ: Vec<Participant> = self
            .echoes
            .iter()
            .filter(|(p, h)| qualified.contains(p) && **h != mine)
            .map(|(p, _)| *p)
            .collect();
        if differ.is_empty() {
            self.phase = Phase::Done;
            for c in &mut self.poly {
                *c = Scalar::from(0u64);
            }
            return Vec::new();
        }
        self.fail(
            format!("views of the DKG differ; {differ:?} saw another view"),
            differ,
        )
    }
}

/// Runs a whole BLS DKG of `n` with threshold `t` in this process (development networks
/// and benchmarks).
pub fn run_local(n: u16, t: u16) -> Result<Vec<BlsKey>, Failure> {
    let now = Instant::now();
    let mut machines = BTreeMap::new();
    let mut queue = std::collections::VecDeque::new();
    let setup = |reason: String| Failure {
        state: State::Round1,
        reason,
        culprits: vec![],
        aborted_by: None,
        accused: vec![],
    };
    for p in 1..=n {
        let (m, out) = BlsDkg::start(p, n, t, Duration::from_secs(60), now)
            .map_err(|e| setup(e.to_string()))?;
        machines.insert(p, m);
        queue.extend(out.into_iter().map(|o| (p, o)));
    }
    while let Some((from, o)) = queue.pop_front() {
        let targets: Vec<Participant> = match o.to {
            Some(p) => vec![p],
            None => (1..=n).filter(|p| *p != from).collect(),
        };
        for to in targets {
            if let Some(m) = machines.get_mut(&to) {
                let out = m.handle(from, o.message.clone(), now);
                queue.extend(out.into_iter().map(|x| (to, x)));
            }
        }
    }
    machines
        .into_values()
        .map(|m| match (m.result, m.failure) {
            (Some(k), _) => Ok(k),
            (None, Some(f)) => Err(f),
            (None, None) => Err(setup("did not finish".into())),
        })
        .collect()
}
