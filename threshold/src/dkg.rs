//! FROST(secp256k1) distributed key generation as a state machine.
//!
//! ```text
//! Round1 --all round-1 packages--> Round2 --all shares, part3 ok--> Echo --all echoes equal--> Done
//!    \____________ deadline passed / invalid proof / invalid share / views differ ______> Failed
//! ```
//!
//! The machine does no I/O: [`Dkg::handle`] and [`Dkg::tick`] take what arrived and the
//! current time and return what to send. Round one needs a broadcast channel; over
//! point-to-point links a participant could send different packages to different peers, so
//! after round two every node broadcasts a hash of its whole view (all round-one packages
//! and the resulting public key package) and finishes only if every view is equal. Every
//! failure says why and names the participants to blame: the silent ones at a deadline,
//! the sender of an invalid proof or share, a sender that sent two different messages.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use frost_secp256k1::keys::dkg::{self, round1, round2};
use frost_secp256k1::keys::{KeyPackage, PublicKeyPackage};
use frost_secp256k1::{Error as FrostError, Identifier};
use sha2::{Digest, Sha256};

/// A participant: its 1-based index in the registry's node list.
pub type Participant = u16;

/// Named states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Waiting for every round-one package (commitments and proof of knowledge).
    Round1,
    /// Waiting for every round-two package (our secret share from each peer).
    Round2,
    /// Waiting for every peer's hash of its view.
    Echo,
    /// Finished: key package and group public key.
    Done,
    /// Failed, for everyone, with a reason.
    Failed,
}

/// A protocol message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Round one, broadcast: commitments and proof of knowledge.
    Round1(Box<round1::Package>),
    /// Round two, to one peer only (it carries that peer's secret share).
    Round2(Box<round2::Package>),
    /// The sender's view hash, broadcast.
    Echo([u8; 32]),
    /// The sender's run failed (not by a deadline); everyone stops. It carries the
    /// culprits the sender found, so peers do not wait and then blame the reporter.
    Abort(Vec<Participant>),
}

/// A message to send: to one participant, or to all others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Recipient; `None` means every other participant.
    pub to: Option<Participant>,
    /// The message.
    pub message: Message,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DKG failed in {state:?}: {reason} (culprits: {culprits:?})")]
pub struct Failure {
    /// The state it failed in.
    pub state: State,
    /// What happened.
    pub reason: String,
    /// Who is to blame on this machine's own evidence (a missing message, an invalid or
    /// equivocating package); may be empty when it cannot be told.
    pub culprits: Vec<Participant>,
    /// The participant whose abort ended the run, if one did: recorded apart from the
    /// culprits, since its word is not evidence.
    pub aborted_by: Option<Participant>,
    /// Whom that participant accused (its claim, unchecked here).
    pub accused: Vec<Participant>,
}

/// Parameters that cannot start a run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `me`, the members or `t` out of range.
    #[error(
        "need distinct non-zero members including me, and 2 <= t <= members \
         (me {me}, members {n}, t {t})"
    )]
    Range {
        /// This participant.
        me: Participant,
        /// How many members.
        n: u16,
        /// Threshold.
        t: u16,
    },
    /// The library refused the parameters.
    #[error("FROST: {0}")]
    Frost(String),
}

/// The default threshold for `n` nodes: ceil(2n/3).
pub fn default_threshold(n: u16) -> u16 {
    (2 * u32::from(n))
        .div_ceil(3)
        .try_into()
        .unwrap_or(u16::MAX)
}

/// One participant's run.
pub struct Dkg {
    me: Participant,
    /// The participants of this run, sorted, `me` among them: the registry's members less
    /// any excluded for proven misconduct (identifiers stay the registry's).
    members: Vec<Participant>,
    timeout: Duration,
    state: State,
    round_started: Instant,
    secret1: Option<round1::SecretPackage>,
    secret2: Option<round2::SecretPackage>,
    own_round1: Option<round1::Package>,
    round1: BTreeMap<Participant, round1::Package>,
    round2: BTreeMap<Participant, round2::Package>,
    echoes: BTreeMap<Participant, [u8; 32]>,
    early: Vec<(Participant, Message)>,
    view: Option<[u8; 32]>,
    result: Option<(KeyPackage, PublicKeyPackage)>,
    failure: Option<Failure>,
}

fn id(p: Participant) -> Result<Identifier, FrostError> {
    Identifier::try_from(p)
}

impl Dkg {
    /// Starts participant `me` of `1..=n` with threshold `t`; each round must complete
    /// within `timeout`. Returns the machine and the round-one broadcast.
    pub fn start(
        me: Participant,
        n: u16,
        t: u16,
        timeout: Duration,
        now: Instant,
    ) -> Result<(Dkg, Vec<Outgoing>), ConfigError> {
        let members: Vec<Participant> = (1..=n).collect();
        Self::start_among(me, &members, t, timeout, now)
    }

    /// Starts participant `me` of a run among `members` (distinct non-zero identifiers,
    /// `me` one of them) with threshold `t`: a retry without members excluded for proven
    /// misconduct keeps everyone else's identifier.
    pub fn start_among(
        me: Participant,
        members: &[Participant],
        t: u16,
        timeout: Duration,
        now: Instant,
    ) -> Result<(Dkg, Vec<Outgoing>), ConfigError> {
        let members = check_members(me, members, t)?;
        let n = u16::try_from(members.len()).unwrap_or(u16::MAX);
        let frost = |e: FrostError| ConfigError::Frost(e.to_string());
        let (secret, package) =
            dkg::part1(id(me).map_err(frost)?, n, t, rand_core::OsRng).map_err(frost)?;
        let out = vec![Outgoing {
            to: None,
            message: Message::Round1(Box::new(package.clone())),
        }];
        Ok((
            Dkg {
                me,
                members,
                timeout,
                state: State::Round1,
                round_started: now,
                secret1: Some(secret),
                secret2: None,
                own_round1: Some(package),
                round1: BTreeMap::new(),
                round2: BTreeMap::new(),
                echoes: BTreeMap::new(),
                early: Vec::new(),
                view: None,
                result: None,
                failure: None,
            },
            out,
        ))
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The key package and group public key package, once [`State::Done`].
    pub fn result(&self) -> Option<&(KeyPackage, PublicKeyPackage)> {
        self.result.as_ref()
    }

    /// Why it failed, once [`State::Failed`].
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The participants of this run.
    pub fn members(&self) -> &[Participant] {
        &self.members
    }

    fn peers(&self) -> impl Iterator<Item = Participant> + '_ {
        self.members.iter().copied().filter(move |p| *p != self.me)
    }

    fn is_member(&self, p: Participant) -> bool {
        self.members.binary_search(&p).is_ok()
    }

    /// Whether `len` messages from peers are all of them.
    fn all_peers(&self, len: usize) -> bool {
        len + 1 == self.members.len()
    }

    /// The round-one package `p` sent in this run, if it arrived.
    pub fn round1_of(&self, p: Participant) -> Option<&round1::Package> {
        self.round1.get(&p)
    }

    /// The round-two package `p` sent to this participant in this run, if it arrived.
    pub fn round2_of(&self, p: Participant) -> Option<&round2::Package> {
        self.round2.get(&p)
    }

    fn fail(&mut self, reason: String, culprits: Vec<Participant>) -> Vec<Outgoing> {
        let abort = vec![Outgoing {
            to: None,
            message: Message::Abort(culprits.clone()),
        }];
        self.failure = Some(Failure {
            state: self.state,
            reason,
            culprits,
            aborted_by: None,
            accused: vec![],
        });
        self.state = State::Failed;
        // A failed run leaves no key behind, even one computed before the failure.
        self.result = None;
        // Secrets are dropped (and zeroized by the library) as soon as the run is over.
        self.secret1 = None;
        self.secret2 = None;
        abort
    }

    /// Fails the run if the current round's deadline has passed, naming who is missing.
    pub fn tick(&mut self, now: Instant) -> Vec<Outgoing> {
        if matches!(self.state, State::Done | State::Failed)
            || now.saturating_duration_since(self.round_started) < self.timeout
        {
            return Vec::new();
        }
        let have: BTreeSet<Participant> = match self.state {
            State::Round1 => self.round1.keys().copied().collect(),
            State::Round2 => self.round2.keys().copied().collect(),
            _ => self.echoes.keys().copied().collect(),
        };
        let missing: Vec<Participant> = self.peers().filter(|p| !have.contains(p)).collect();
        let reason = format!(
            "no {:?} message within {:?} from {missing:?}",
            self.state, self.timeout
        );
        self.fail(reason, missing)
    }

    /// Takes a message from `from`; returns what to send.
    pub fn handle(&mut self, from: Participant, message: Message, now: Instant) -> Vec<Outgoing> {
        if matches!(self.state, State::Done | State::Failed) {
            return Vec::new();
        }
        if from == self.me || !self.is_member(from) {
            // Not a participant of this run: the transport should not deliver it.
            return Vec::new();
        }
        if let Message::Abort(accused) = message {
            let accused: Vec<Participant> =
                accused.into_iter().filter(|c| self.is_member(*c)).collect();
            let reason = format!("participant {from} aborted the run, accusing {accused:?}");
            // Stop without echoing the abort again (everyone got it from the reporter). Its
            // accusation is recorded, not adopted: this machine saw no evidence of it, and a
            // dishonest member could otherwise get honest ones blamed.
            let _ = self.fail(reason, vec![]);
            if let Some(f) = self.failure.as_mut() {
                f.aborted_by = Some(from);
                f.accused = accused;
            }
            return Vec::new();
        }
        let mut out = self.accept(from, message, now);
        // Messages that came early for a later round are replayed once we get there.
        loop {
            let ready: Vec<(Participant, Message)> = {
                let state = self.state;
                let (now_ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
                    .into_iter()
                    .partition(|(_, m)| round_of(m) == state);
                self.early = later;
                now_ready
            };
            if ready.is_empty() || matches!(self.state, State::Done | State::Failed) {
                break;
            }
            for (f, m) in ready {
                out.extend(self.accept(f, m, now));
            }
        }
        out
    }

    fn accept(&mut self, from: Participant, message: Message, now: Instant) -> Vec<Outgoing> {
        let round = round_of(&message);
        if round != self.state {
            if order(round) > order(self.state) {
                self.early.push((from, message));
            }
            // A message for a finished round: duplicates are ignored.
            return Vec::new();
        }
        match message {
            Message::Round1(p) => {
                if let Some(prev) = self.round1.get(&from) {
                    if *prev != *p {
                        return self.fail(
                            format!("{from} sent two different round-one packages"),
                            vec![from],
                        );
                    }
                    return Vec::new();
                }
                self.round1.insert(from, *p);
                if self.all_peers(self.round1.len()) {
                    return self.finish_round1(now);
                }
                Vec::new()
            }
            Message::Round2(p) => {
                if let Some(prev) = self.round2.get(&from) {
                    if *prev != *p {
                        return self.fail(
                            format!("{from} sent two different round-two packages"),
                            vec![from],
                        );
                    }
                    return Vec::new();
                }
                self.round2.insert(from, *p);
                if self.all_peers(self.round2.len()) {
                    return self.finish_round2(now);
                }
                Vec::new()
            }
            Message::Echo(h) => {
                if let Some(prev) = self.echoes.get(&from) {
                    if *prev != h {
                        return self.fail(format!("{from} sent two different echoes"), vec![from]);
                    }
                    return Vec::new();
                }
                self.echoes.insert(from, h);
                if self.all_peers(self.echoes.len()) {
                    return self.finish_echo();
                }
                Vec::new()
            }
            // Handled in `handle` before anything is buffered.
            Message::Abort(_) => Vec::new(),
        }
    }

    fn blame(&mut self, what: &str, e: &FrostError) -> Vec<Outgoing> {
        let culprits: Vec<Participant> = e
            .culprits()
            .iter()
            .filter_map(|c| {
                self.members
                    .iter()
                    .copied()
                    .find(|p| id(*p).ok().as_ref() == Some(c))
            })
            .collect();
        self.fail(format!("{what}: {e}"), culprits)
    }

    fn frost_map<V: Clone>(
        m: &BTreeMap<Participant, V>,
    ) -> Result<BTreeMap<Identifier, V>, FrostError> {
        m.iter().map(|(p, v)| Ok((id(*p)?, v.clone()))).collect()
    }

    fn finish_round1(&mut self, now: Instant) -> Vec<Outgoing> {
        let Some(secret) = self.secret1.take() else {
            return self.fail("round-one secret missing".into(), vec![]);
        };
        let r1 = match Self::frost_map(&self.round1) {
            Ok(m) => m,
            Err(e) => return self.blame("identifiers", &e),
        };
        let (secret2, packages) = match dkg::part2(secret, &r1) {
            Ok(x) => x,
            Err(e) => return self.blame("round one", &e),
        };
        self.secret2 = Some(secret2);
        self.state = State::Round2;
        self.round_started = now;
        let mut out = Vec::new();
        for p in self.peers().collect::<Vec<_>>() {
            let Some(pkg) = id(p).ok().and_then(|i| packages.get(&i)) else {
                return self.fail(format!("no round-two package made for {p}"), vec![]);
            };
            out.push(Outgoing {
                to: Some(p),
                message: Message::Round2(Box::new(pkg.clone())),
            });
        }
        out
    }

    fn finish_round2(&mut self, now: Instant) -> Vec<Outgoing> {
        let (r1, r2) = match (Self::frost_map(&self.round1), Self::frost_map(&self.round2)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return self.blame("identifiers", &e),
        };
        let Some(secret) = self.secret2.take() else {
            return self.fail("round-two secret missing".into(), vec![]);
        };
        let (key, public) = match dkg::part3(&secret, &r1, &r2) {
            Ok(x) => x,
            Err(e) => return self.blame("round two", &e),
        };
        let view = match self.view_hash(&public) {
            Ok(v) => v,
            Err(e) => return self.fail(format!("serializing the view: {e}"), vec![]),
        };
        self.view = Some(view);
        self.result = Some((key, public));
        self.state = State::Echo;
        self.round_started = now;
        vec![Outgoing {
            to: None,
            message: Message::Echo(view),
        }]
    }

    /// Hash of everything that must be the same at every honest node: every round-one
    /// package (ours included) and the resulting public key package.
    fn view_hash(&self, public: &PublicKeyPackage) -> Result<[u8; 32], FrostError> {
        let mut h = Sha256::new();
        h.update(b"keynet-dkg-view-v1");
        let mut all = self.round1.clone();
        if let Some(own) = &self.own_round1 {
            all.insert(self.me, own.clone());
        }
        for (p, pkg) in &all {
            let b = pkg.serialize()?;
            h.update(p.to_be_bytes());
            h.update((b.len() as u64).to_be_bytes());
            h.update(&b);
        }
        let b = public.serialize()?;
        h.update((b.len() as u64).to_be_bytes());
        h.update(&b);
        Ok(h.finalize().into())
    }

    fn finish_echo(&mut self) -> Vec<Outgoing> {
        let Some(mine) = self.view else {
            return self.fail("own view missing".into(), vec![]);
        };
        let differ: Vec<Participant> = self
            .echoes
            .iter()
            .filter(|(_, h)| **h != mine)
            .map(|(p, _)| *p)
            .collect();
        if differ.is_empty() {
            self.state = State::Done;
            return Vec::new();
        }
        // With a broadcast channel this cannot happen; without one, some participant sent
        // different round-one packages to different peers. From here it cannot be told who:
        // the nodes whose view differs from ours are named, and nobody keeps the key.
        self.fail(
            format!(
                "views of the DKG differ (equivocation in round one); {differ:?} saw another view"
            ),
            differ,
        )
    }
}

/// The members sorted, checked: distinct, non-zero, `me` among them, `2 <= t <= len`.
pub(crate) fn check_members(
    me: Participant,
    members: &[Participant],
    t: u16,
) -> Result<Vec<Participant>, ConfigError> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let n = u16::try_from(sorted.len()).unwrap_or(u16::MAX);
    if sorted.len() != members.len()
        || sorted.first() == Some(&0)
        || sorted.binary_search(&me).is_err()
        || t < 2
        || t > n
    {
        return Err(ConfigError::Range { me, n, t });
    }
    Ok(sorted)
}

fn round_of(m: &Message) -> State {
    match m {
        Message::Round1(_) => State::Round1,
        Message::Round2(_) => State::Round2,
        Message::Echo(_) => State::Echo,
        Message::Abort(_) => State::Failed,
    }
}

fn order(s: State) -> u8 {
    match s {
        State::Round1 => 1,
        State::Round2 => 2,
        State::Echo => 3,
        State::Done | State::Failed => 4,
    }
}

/// Runs a whole DKG of `n` participants with threshold `t` in this process (development
/// networks and benchmarks): every machine, messages delivered in order, no faults.
pub fn run_local(n: u16, t: u16) -> Result<Vec<(KeyPackage, PublicKeyPackage)>, Failure> {
    let now = Instant::now();
    let timeout = Duration::from_secs(60);
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
        let (m, out) = Dkg::start(p, n, t, timeout, now).map_err(|e| setup(e.to_string()))?;
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
            (Some(r), _) => Ok(r),
            (None, Some(f)) => Err(f),
            (None, None) => Err(setup("did not finish".into())),
        })
        .collect()
}
