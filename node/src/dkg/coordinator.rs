//! The node's DKG coordinator: which run the node is in, as one state machine with no I/O.
//! It owns the two protocol machines of a run ([`keynet_threshold::dkg`] for FROST,
//! [`keynet_threshold::bls_dkg`] for BLS12-381), says what to send to whom, and hands out
//! the keys when both are done; [`super::DkgService`] does the sending and sealing.
//!
//! A run is for one target: the registry's (network, epoch), its members and threshold,
//! and this node's place among them.
//!
//! ```text
//!                       keys unsealed at start
//!            Idle ───────────────────────────────────────► Unsealed
//!             │                                               │
//!             │ ensure / first peer message, for a target     │ a new target
//!             │ whose keys this node does not hold            │
//!             ▼                                               ▼
//!   ┌────► Running(run) ◄─────────────── a new target ─────────────── Done / Failed
//!   │        │    │                                               (of an older target)
//!   │        │    └── either machine failed: culprits named ──► Failed(target, attempt k)
//!   │        └── both machines done: keys handed out ─────────► Done(target)
//!   │                                                          (sealing failed ─► Failed)
//!   ├── a new target while running (the old run is dropped)
//!   └── Failed(k): after a back-off, or on a member's message of attempt k + 1
//!       ──► Running(attempt k + 1)
//! ```
//!
//! Done is final for its target (the keys exist). A failed run is retried as the next
//! attempt after a back-off (doubling, capped), without a restart; every message carries
//! its attempt, so a run never mixes messages of two attempts. The first member to retry
//! brings the others along: a message of the attempt after a node's own starts that attempt
//! there. A node follows a peer only to the attempt after its own. That does not stop a
//! member from dragging a node through attempts one at a time, or from telling two nodes
//! that have no run yet two different attempts to join; both are open (issue 13's note).
//!
//! Blame is on evidence only. Every message is signed by its sender ([`super::evidence`]).
//! When a run fails and a member's own signed packages show it cheated (an invalid proof
//! of knowledge or commitment, or a share that contradicts its commitment), the node starts
//! the next attempt at once without that member, carrying the proof in every message; a
//! member that receives a message with proofs it lacked checks them and moves to the
//! attempt after its own (never to the sender's number, which colluders could choose so
//! that members never meet again). Every attempt keeps the registry's
//! identifiers and threshold; the excluded hold no share of this epoch's keys (a resharing
//! at the next epoch can give them one), and learn of their exclusion from the proofs. A
//! member's abort without such proof stops nothing: it is recorded as its accusation
//! (`aborted_by`, `accused`). Silence and equivocation leave no transferable evidence:
//! they fail the attempt (naming the silent or the differing on this node's own view) and
//! the retry keeps every member. Every run has a generation number; deliveries of a run's
//! messages go on (retried) while their run is the latest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keynet_protocol::api::{DkgBody, DkgState, DkgStatus, Misconduct, PeerDkg};
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry};
use keynet_threshold::bls_dkg::{BlsDkg, BlsMessage, BlsOutgoing};
use keynet_threshold::dkg::{Dkg, Message, Outgoing, Participant, State};
use keynet_threshold::wire::{BlsWire, FrostWire};
use rand_core::RngCore;

use super::evidence::{self, Sign};
use crate::keys::NetworkKeys;

/// Why a peer's DKG message, or a start, was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkgRefusal {
    /// Another network or epoch than this node's registry.
    #[error("this node's registry is {network} epoch {epoch}")]
    WrongRun {
        /// Ours.
        network: String,
        /// Ours.
        epoch: u64,
    },
    /// This node already has the keys of that run.
    #[error("this node already holds the keys of {network} epoch {epoch}")]
    Done {
        /// The run.
        network: String,
        /// The run.
        epoch: u64,
    },
    /// The message does not decode, is not signed by its sender, or carries a proof that
    /// proves nothing.
    #[error("malformed DKG message: {0}")]
    Malformed(String),
    /// A message of another attempt than this node's, or the next.
    #[error("DKG attempt {got}: this node is at attempt {mine} (it joins {mine} + 1 only)")]
    WrongAttempt {
        /// The message's.
        got: u32,
        /// Ours.
        mine: u32,
    },
    /// The sender, or this node, is excluded from the run for proven misconduct.
    #[error("excluded from the DKG: {0}")]
    Excluded(String),
    /// No run can start (this node is not a member, the registry is too small, or the run
    /// for this target failed here).
    #[error("no DKG here: {0}")]
    Unavailable(String),
}

/// What a run is for: the registry (its network and epoch, its members in their signed
/// order, its threshold) and this node's participant index in it.
#[derive(Clone, Debug)]
pub struct Target {
    registry: Arc<Registry>,
    me: Participant,
}

impl Target {
    /// The target of `registry` for the node `me`.
    pub fn of(registry: &Arc<Registry>, me: &IdentityKey) -> Result<Target, DkgRefusal> {
        let me = registry
            .participant(me)
            .ok_or_else(|| DkgRefusal::Unavailable("this node is not in the registry".into()))?;
        Ok(Target {
            registry: registry.clone(),
            me,
        })
    }

    /// The registry's (network, epoch) the run is for.
    pub fn run(&self) -> (&str, u64) {
        (&self.registry.network_id, self.registry.epoch)
    }

    fn network(&self) -> &str {
        &self.registry.network_id
    }

    fn epoch(&self) -> u64 {
        self.registry.epoch
    }

    fn is(&self, network: &str, epoch: u64) -> bool {
        self.network() == network && self.epoch() == epoch
    }

    fn n(&self) -> u16 {
        u16::try_from(self.registry.nodes.len()).unwrap_or(u16::MAX)
    }

    fn t(&self) -> u16 {
        u16::try_from(self.registry.threshold()).unwrap_or(u16::MAX)
    }

    fn endpoints(&self, ps: impl IntoIterator<Item = Participant>) -> Vec<String> {
        ps.into_iter()
            .filter_map(|p| self.registry.entry(p))
            .map(|e| e.endpoint.clone())
            .collect()
    }
}

/// One message of a run and the members it goes to.
pub struct Outbound {
    /// The message.
    pub message: PeerDkg,
    /// Its recipients.
    pub to: Vec<NodeEntry>,
}

/// What a step of the coordinator asks of the service.
#[derive(Default)]
pub struct Step {
    /// Messages to deliver, each retried while `generation` is the latest run.
    pub sends: Vec<Outbound>,
    /// The run they belong to.
    pub generation: u64,
    /// Both machines finished: the keys to seal and put in force.
    pub keys: Option<NetworkKeys>,
}

/// Members excluded for proven misconduct, each with its proof.
type Exclusions = BTreeMap<Participant, Misconduct>;

/// A member's FROST packages as it signed them, kept as evidence: the first of its runs
/// (session) heard of in this attempt.
struct Received {
    session: String,
    round1: Option<PeerDkg>,
    round2: Option<PeerDkg>,
}

struct Run {
    target: Target,
    attempt: u32,
    excluded: Exclusions,
    session: String,
    frost: Dkg,
    bls: BlsDkg,
    started: Instant,
    received: BTreeMap<Participant, Received>,
    /// The last abort without proof: (its sender, whom it accused).
    unfounded: Option<(Participant, Vec<Participant>)>,
}

impl Run {
    /// The last abort without proof, as endpoints: (its sender, whom it accused).
    fn accusation(&self) -> (Option<String>, Vec<String>) {
        match &self.unfounded {
            Some((from, accused)) => (
                self.target.endpoints([*from]).pop(),
                self.target.endpoints(accused.iter().copied()),
            ),
            None => (None, vec![]),
        }
    }
}

/// How long after a failed attempt the next starts: doubling from [`RETRY_FIRST`], at most
/// [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(2);
/// The longest back-off between attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(120);

fn backoff(attempt: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1u32 << attempt.min(16))
        .min(RETRY_MAX)
}

enum Phase {
    Idle,
    Unsealed {
        network: String,
        epoch: u64,
    },
    Running(Box<Run>),
    Done {
        network: String,
        epoch: u64,
        attempt: u32,
        millis: Option<u64>,
        excluded: Vec<String>,
    },
    Failed {
        target: Target,
        attempt: u32,
        excluded: Exclusions,
        at: Instant,
        reason: String,
        culprits: Vec<String>,
        aborted_by: Option<String>,
        accused: Vec<String>,
    },
    /// This node is excluded from the target's run, on a proof it checked.
    Excluded {
        target: Target,
        attempt: u32,
        reason: String,
        excluded: Vec<String>,
    },
}

/// The node's DKG: at most one run at a time.
pub struct Coordinator {
    phase: Phase,
    generation: u64,
    /// The target and attempt of the last run that finished (for a sealing failure after it).
    last: Option<(Target, u32, Exclusions)>,
    timeout: Duration,
    sign: Sign,
}

impl Coordinator {
    /// A coordinator whose runs' rounds each have `timeout`, signing its messages with
    /// `sign` (the node's identity key).
    pub fn new(timeout: Duration, sign: Sign) -> Self {
        Coordinator {
            phase: Phase::Idle,
            generation: 0,
            last: None,
            timeout,
            sign,
        }
    }

    /// What the node says about its key generation.
    pub fn status(&self) -> DkgStatus {
        let status = |state, network: &str, epoch| DkgStatus {
            state,
            network: Some(network.to_owned()),
            epoch: Some(epoch),
            reason: None,
            culprits: vec![],
            millis: None,
            attempt: 0,
            aborted_by: None,
            accused: vec![],
            excluded: vec![],
        };
        match &self.phase {
            Phase::Idle => DkgStatus {
                network: None,
                epoch: None,
                ..status(DkgState::Idle, "", 0)
            },
            Phase::Unsealed { network, epoch } => status(DkgState::Unsealed, network, *epoch),
            Phase::Running(run) => {
                let t = &run.target;
                let (aborted_by, accused) = run.accusation();
                DkgStatus {
                    attempt: run.attempt,
                    excluded: t.endpoints(run.excluded.keys().copied()),
                    aborted_by,
                    accused,
                    ..status(DkgState::Running, t.network(), t.epoch())
                }
            }
            Phase::Done {
                network,
                epoch,
                attempt,
                millis,
                excluded,
            } => DkgStatus {
                millis: *millis,
                attempt: *attempt,
                excluded: excluded.clone(),
                ..status(DkgState::Done, network, *epoch)
            },
            Phase::Failed {
                target,
                attempt,
                excluded,
                reason,
                culprits,
                aborted_by,
                accused,
                ..
            } => DkgStatus {
                reason: Some(reason.clone()),
                culprits: culprits.clone(),
                attempt: *attempt,
                aborted_by: aborted_by.clone(),
                accused: accused.clone(),
                excluded: target.endpoints(excluded.keys().copied()),
                ..status(DkgState::Failed, target.network(), target.epoch())
            },
            Phase::Excluded {
                target,
                attempt,
                reason,
                excluded,
            } => DkgStatus {
                reason: Some(reason.clone()),
                attempt: *attempt,
                excluded: excluded.clone(),
                ..status(DkgState::Failed, target.network(), target.epoch())
            },
        }
    }

    /// True while run `generation` is the latest one.
    pub fn is_latest(&self, generation: u64) -> bool {
        self.generation == generation
    }

    /// The latest run's generation (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The round timeout (deliveries of a run's messages stop after it).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The keys of (network, epoch) were unsealed at start: no run needed.
    pub fn unsealed(&mut self, network: &str, epoch: u64) {
        self.phase = Phase::Unsealed {
            network: network.to_owned(),
            epoch,
        };
    }

    /// Starts a run for `target` unless the node holds its keys, is running it, or it is
    /// done here; a failed run is refused here (an error naming when it is retried).
    pub fn ensure(
        &mut self,
        target: &Target,
        holds_keys: bool,
        now: Instant,
    ) -> Result<Step, DkgRefusal> {
        if holds_keys {
            return Ok(Step::default());
        }
        match &self.phase {
            Phase::Running(run) if run.target.is(target.network(), target.epoch()) => {
                return Ok(Step::default());
            }
            Phase::Done { network, epoch, .. } if target.is(network, *epoch) => {
                return Ok(Step::default());
            }
            Phase::Failed {
                target: failed,
                attempt,
                at,
                reason,
                ..
            } if target.is(failed.network(), failed.epoch()) => {
                let left = (*at + backoff(*attempt)).saturating_duration_since(now);
                return Err(DkgRefusal::Unavailable(format!(
                    "attempt {attempt} for {} epoch {} failed here ({reason}); the next \
                     starts in {} s",
                    target.network(),
                    target.epoch(),
                    left.as_secs()
                )));
            }
            Phase::Excluded {
                target: t, reason, ..
            } if target.is(t.network(), t.epoch()) => {
                return Err(DkgRefusal::Excluded(reason.clone()));
            }
            _ => {}
        }
        self.start(target, 0, Exclusions::new(), now)
    }

    /// Starts attempt `attempt` of a run for `target` among the members not `excluded`,
    /// dropping any run in progress.
    fn start(
        &mut self,
        target: &Target,
        attempt: u32,
        excluded: Exclusions,
        now: Instant,
    ) -> Result<Step, DkgRefusal> {
        let members: Vec<Participant> = target
            .registry
            .participants()
            .map(|(p, _)| p)
            .filter(|p| !excluded.contains_key(p))
            .collect();
        if members.len() < usize::from(target.t()) {
            return Err(DkgRefusal::Unavailable(format!(
                "{} members are left after excluding {:?} for proven misconduct, fewer than \
                 the threshold {}: the registry must change",
                members.len(),
                target.endpoints(excluded.keys().copied()),
                target.t()
            )));
        }
        let (frost, f_out) = Dkg::start_among(target.me, &members, target.t(), self.timeout, now)
            .map_err(|e| DkgRefusal::Unavailable(format!("FROST: {e}")))?;
        let (bls, b_out) = BlsDkg::start_among(target.me, &members, target.t(), self.timeout, now)
            .map_err(|e| DkgRefusal::Unavailable(format!("BLS: {e}")))?;
        self.generation += 1;
        tracing::info!(
            network = %target.network(),
            epoch = target.epoch(),
            attempt,
            me = target.me,
            n = target.n(),
            t = target.t(),
            excluded = ?target.endpoints(excluded.keys().copied()),
            "DKG started (FROST secp256k1 and BLS12-381)"
        );
        let mut session = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut session);
        let run = Run {
            target: target.clone(),
            attempt,
            excluded,
            session: hex::encode(session),
            frost,
            bls,
            started: now,
            received: BTreeMap::new(),
            unfounded: None,
        };
        let step = self.step(&run, f_out, b_out);
        self.phase = Phase::Running(Box::new(run));
        Ok(step)
    }

    /// Starts attempt `attempt`, or records why it cannot start (too few members left): it
    /// is tried again after the back-off.
    fn start_or_fail(
        &mut self,
        target: Target,
        attempt: u32,
        excluded: Exclusions,
        now: Instant,
    ) -> Step {
        match self.start(&target, attempt, excluded.clone(), now) {
            Ok(step) => step,
            Err(e) => {
                tracing::error!("DKG: {e}");
                self.phase = Phase::Failed {
                    target,
                    attempt,
                    excluded,
                    at: now,
                    reason: e.to_string(),
                    culprits: vec![],
                    aborted_by: None,
                    accused: vec![],
                };
                Step::default()
            }
        }
    }

    /// The attempt this node is at for `target` (if it ran or is running one), whether it
    /// is running, and the exclusions it holds.
    fn attempt_for(&self, target: &Target) -> Option<(u32, bool, &Exclusions)> {
        match &self.phase {
            Phase::Running(run) if run.target.is(target.network(), target.epoch()) => {
                Some((run.attempt, true, &run.excluded))
            }
            Phase::Failed {
                target: t,
                attempt,
                excluded,
                ..
            } if t.is(target.network(), target.epoch()) => Some((*attempt, false, excluded)),
            _ => None,
        }
    }

    /// Takes a peer's message (`from` is its participant index, from its verified
    /// certificate and the registry), starting the run if this is its first message here.
    pub fn handle(
        &mut self,
        target: &Target,
        holds_keys: bool,
        from: Participant,
        msg: &PeerDkg,
        now: Instant,
    ) -> Result<Step, DkgRefusal> {
        if !target.is(&msg.network, msg.epoch) {
            return Err(DkgRefusal::WrongRun {
                network: target.network().to_owned(),
                epoch: target.epoch(),
            });
        }
        if holds_keys {
            return Err(DkgRefusal::Done {
                network: target.network().to_owned(),
                epoch: target.epoch(),
            });
        }
        match &self.phase {
            Phase::Done { network, epoch, .. } if target.is(network, *epoch) => {
                return Err(DkgRefusal::Done {
                    network: network.clone(),
                    epoch: *epoch,
                });
            }
            Phase::Excluded {
                target: t, reason, ..
            } if target.is(t.network(), t.epoch()) => {
                return Err(DkgRefusal::Excluded(reason.clone()));
            }
            _ => {}
        }
        // Checked before anything can start: junk must not start a run.
        if msg.from != from {
            return Err(DkgRefusal::Malformed(format!(
                "sent by participant {from}, signed as {}",
                msg.from
            )));
        }
        if msg.to.is_some_and(|to| to != target.me) {
            return Err(DkgRefusal::Malformed("addressed to another member".into()));
        }
        evidence::well_formed(&target.registry, msg).map_err(DkgRefusal::Malformed)?;
        evidence::check_signature(&target.registry, msg).map_err(DkgRefusal::Malformed)?;
        let decoded = Decoded::of(&msg.body)?;
        if decoded.is_secret() != msg.to.is_some() {
            return Err(DkgRefusal::Malformed(
                "a share goes to one named member, anything else to all".into(),
            ));
        }
        let known = self
            .attempt_for(target)
            .map(|(_, _, e)| e.clone())
            .unwrap_or_default();
        let theirs = self.check_proofs(target, &known, msg)?;
        let grows = theirs.keys().any(|p| !known.contains_key(p));
        // The proofs this node checked before win: one a peer sends again is not checked.
        let mut union = theirs;
        union.extend(known);
        if let Some(proof) = union.get(&target.me) {
            let reason = match evidence::verify(&target.registry, proof) {
                Ok((_, fault)) => format!("this node's own signed packages show that {fault}"),
                Err(e) => e,
            };
            tracing::error!(
                network = %target.network(),
                epoch = target.epoch(),
                "DKG: the other members exclude this node: {reason}"
            );
            self.phase = Phase::Excluded {
                target: target.clone(),
                attempt: msg.attempt,
                excluded: target.endpoints(union.keys().copied()),
                reason: format!(
                    "this node is excluded from {} epoch {} for proven misconduct: {reason}",
                    target.network(),
                    target.epoch()
                ),
            };
            return Err(DkgRefusal::Excluded("this node".into()));
        }
        if union.contains_key(&from) {
            return Err(DkgRefusal::Excluded(format!(
                "participant {from} is excluded for proven misconduct"
            )));
        }
        let next = match self.attempt_for(target).map(|(a, running, _)| (a, running)) {
            None => Some(msg.attempt),
            // Evidence moves the node on at once, to the attempt after its own (never to the
            // sender's number: members holding the same proofs must not be split apart).
            Some((mine, _)) if grows => Some(mine.saturating_add(1)),
            Some((mine, true)) if msg.attempt == mine => None,
            Some((mine, _)) if msg.attempt == mine.saturating_add(1) => Some(msg.attempt),
            Some((mine, false)) if msg.attempt == mine => {
                return Err(DkgRefusal::Unavailable(format!(
                    "attempt {mine} failed here; the next is {}",
                    mine + 1
                )));
            }
            Some((mine, _)) => {
                return Err(DkgRefusal::WrongAttempt {
                    got: msg.attempt,
                    mine,
                });
            }
        };
        let mut step = match next {
            Some(attempt) => {
                // Too few members left: the proofs are kept with the failure, not dropped.
                let step = self.start_or_fail(target.clone(), attempt, union, now);
                if let Phase::Failed { reason, .. } = &self.phase {
                    return Err(DkgRefusal::Unavailable(reason.clone()));
                }
                step
            }
            None => Step::default(),
        };
        let Phase::Running(run) = &mut self.phase else {
            return Err(DkgRefusal::Done {
                network: target.network().to_owned(),
                epoch: target.epoch(),
            });
        };
        let excluded: Vec<Participant> = run.excluded.keys().copied().collect();
        if (msg.attempt, &msg.excluded) != (run.attempt, &excluded) {
            // A message of a run this node has moved past (or of one it has not yet
            // heard the proofs for): its sender learns them from this node's messages.
            return Ok(step);
        }
        if evidence::is_package(&msg.body) {
            let kept = run.received.entry(from).or_insert_with(|| Received {
                session: msg.session.clone(),
                round1: None,
                round2: None,
            });
            if kept.session == msg.session {
                let strip = || PeerDkg {
                    proofs: vec![],
                    ..msg.clone()
                };
                let slot = if msg.to.is_some() {
                    &mut kept.round2
                } else {
                    &mut kept.round1
                };
                slot.get_or_insert_with(strip);
            }
        }
        let (f_out, b_out) = match decoded {
            Decoded::Frost(Message::Abort(accused)) => {
                // No proof came with it (a proof would have moved this node on above): it
                // is the sender's word, recorded and not acted on.
                tracing::warn!(
                    from = ?target.endpoints([from]),
                    accused = ?target.endpoints(accused.iter().copied()),
                    "DKG: a member aborted without proof; the run goes on"
                );
                run.unfounded = Some((from, accused));
                (vec![], vec![])
            }
            Decoded::Frost(m) => (run.frost.handle(from, m, now), vec![]),
            Decoded::Bls(m) => (vec![], run.bls.handle(from, m, now)),
        };
        let more = self.after(f_out, b_out, now);
        step.sends.extend(more.sends);
        step.generation = more.generation;
        step.keys = more.keys;
        Ok(step)
    }

    /// The exclusions `msg` claims, each proven (proofs of members this node excludes
    /// already are not checked again).
    fn check_proofs(
        &self,
        target: &Target,
        known: &Exclusions,
        msg: &PeerDkg,
    ) -> Result<Exclusions, DkgRefusal> {
        if msg.proofs.len() != msg.excluded.len() || msg.proofs.len() > usize::from(target.n()) {
            return Err(DkgRefusal::Malformed(format!(
                "excludes {:?} with {} proofs",
                msg.excluded,
                msg.proofs.len()
            )));
        }
        let mut theirs = Exclusions::new();
        for proof in &msg.proofs {
            let accused = proof.evidence.first().map(|m| m.from);
            let accused = match accused {
                Some(p) if known.contains_key(&p) => p,
                _ => {
                    evidence::verify(&target.registry, proof)
                        .map_err(|e| DkgRefusal::Malformed(format!("a proof of misconduct: {e}")))?
                        .0
                }
            };
            theirs.insert(accused, proof.clone());
        }
        let listed: Vec<Participant> = theirs.keys().copied().collect();
        if listed != msg.excluded {
            return Err(DkgRefusal::Malformed(format!(
                "excludes {:?}, proves {listed:?}",
                msg.excluded
            )));
        }
        Ok(theirs)
    }

    /// Applies the rounds' deadlines, and starts the next attempt once a failed one's
    /// back-off is over.
    pub fn tick(&mut self, now: Instant) -> Step {
        if let Phase::Failed {
            target,
            attempt,
            excluded,
            at,
            ..
        } = &self.phase
        {
            if now.saturating_duration_since(*at) < backoff(*attempt) {
                return Step::default();
            }
            let (target, next, excluded) =
                (target.clone(), attempt.saturating_add(1), excluded.clone());
            return self.start_or_fail(target, next, excluded, now);
        }
        let Phase::Running(run) = &mut self.phase else {
            return Step::default();
        };
        let f = run.frost.tick(now);
        let b = run.bls.tick(now);
        self.after(f, b, now)
    }

    /// The keys handed out by the last step could not be sealed: the run failed here, and
    /// is retried like any other.
    pub fn sealing_failed(&mut self, reason: String, now: Instant) {
        let Some((target, attempt, excluded)) = self.last.clone() else {
            return;
        };
        if !matches!(&self.phase, Phase::Done { network, epoch, .. } if target.is(network, *epoch))
        {
            return;
        }
        self.phase = Phase::Failed {
            target,
            attempt,
            excluded,
            at: now,
            reason: format!("sealing the keys: {reason}"),
            culprits: vec![],
            aborted_by: None,
            accused: vec![],
        };
    }

    /// Messages the running machines produced, then the end of the run if it is over.
    fn after(&mut self, frost: Vec<Outgoing>, bls: Vec<BlsOutgoing>, now: Instant) -> Step {
        let Phase::Running(run) = &self.phase else {
            return Step::default();
        };
        let mut step = self.step(run, frost, bls);
        if let Some(f) = run.frost.failure().or(run.bls.failure()).cloned() {
            let proven = Self::proofs(run);
            let t = &run.target;
            if !proven.is_empty() {
                let (target, next) = (t.clone(), run.attempt.saturating_add(1));
                let mut excluded = run.excluded.clone();
                tracing::error!(
                    network = %t.network(),
                    epoch = t.epoch(),
                    attempt = run.attempt,
                    proven = ?t.endpoints(proven.keys().copied()),
                    "DKG failed: {f}; their own packages prove misconduct: attempt {next} \
                     starts now without them"
                );
                excluded.extend(proven);
                // The abort is not sent: the next attempt's messages carry the proofs.
                return self.start_or_fail(target, next, excluded, now);
            }
            let culprits = t.endpoints(f.culprits.iter().copied());
            let (aborted_by, accused) = run.accusation();
            tracing::error!(
                network = %t.network(),
                epoch = t.epoch(),
                attempt = run.attempt,
                ?culprits,
                "DKG failed: {f}; retrying in {} s",
                backoff(run.attempt).as_secs()
            );
            self.phase = Phase::Failed {
                target: t.clone(),
                attempt: run.attempt,
                excluded: run.excluded.clone(),
                at: now,
                reason: f.to_string(),
                culprits,
                aborted_by,
                accused,
            };
            return step;
        }
        let over = |s: State| matches!(s, State::Done | State::Failed);
        if !(over(run.frost.state()) && over(run.bls.state())) {
            return step;
        }
        let (Some((frost, frost_public)), Some(bls)) = (run.frost.result(), run.bls.result())
        else {
            return step;
        };
        let t = &run.target;
        step.keys = Some(NetworkKeys {
            network: t.network().to_owned(),
            epoch: t.epoch(),
            me: t.me,
            n: t.n(),
            frost: frost.clone(),
            frost_public: frost_public.clone(),
            bls: bls.clone(),
        });
        self.last = Some((run.target.clone(), run.attempt, run.excluded.clone()));
        self.phase = Phase::Done {
            network: t.network().to_owned(),
            epoch: t.epoch(),
            attempt: run.attempt,
            millis: u64::try_from(run.started.elapsed().as_millis()).ok(),
            excluded: t.endpoints(run.excluded.keys().copied()),
        };
        step
    }

    /// Proofs against members whose packages to this node, as they signed them, show a
    /// fault (checked whatever the machines named: a commitment of the wrong degree fails
    /// the library without naming its dealer).
    fn proofs(run: &Run) -> Exclusions {
        run.received
            .iter()
            .filter(|(p, _)| !run.excluded.contains_key(p))
            .filter_map(|(p, r)| {
                let round1 = r.round1.as_ref()?;
                evidence::build(&run.target.registry, *p, round1, r.round2.as_ref())
                    .map(|proof| (*p, proof))
            })
            .collect()
    }

    /// Each message, signed, with its recipients: every other member of the registry for
    /// a broadcast (the excluded too, so they learn why), or the one it is for.
    fn step(&self, run: &Run, frost: Vec<Outgoing>, bls: Vec<BlsOutgoing>) -> Step {
        let mut bodies: Vec<(Option<Participant>, DkgBody)> = Vec::new();
        for o in frost {
            match FrostWire::encode(&o.message) {
                Ok(w) => bodies.push((o.to, DkgBody::Frost(w))),
                Err(e) => tracing::error!("DKG: cannot encode a FROST message: {e}"),
            }
        }
        for o in bls {
            bodies.push((o.to, DkgBody::Bls(BlsWire::encode(&o.message))));
        }
        let t = &run.target;
        let excluded: Vec<Participant> = run.excluded.keys().copied().collect();
        let proofs: Vec<Misconduct> = run.excluded.values().cloned().collect();
        let sends = bodies
            .into_iter()
            .map(|(to, body)| {
                let mut message = PeerDkg {
                    network: t.network().to_owned(),
                    epoch: t.epoch(),
                    attempt: run.attempt,
                    excluded: excluded.clone(),
                    session: run.session.clone(),
                    from: t.me,
                    to,
                    body,
                    signature: String::new(),
                    proofs: proofs.clone(),
                };
                evidence::sign(&mut message, &self.sign);
                Outbound {
                    message,
                    to: t
                        .registry
                        .participants()
                        .filter(|(p, _)| *p != t.me && to.is_none_or(|to| to == *p))
                        .map(|(_, e)| e.clone())
                        .collect(),
                }
            })
            .collect();
        Step {
            sends,
            generation: self.generation,
            keys: None,
        }
    }
}

enum Decoded {
    Frost(Message),
    Bls(BlsMessage),
}

impl Decoded {
    fn of(body: &DkgBody) -> Result<Decoded, DkgRefusal> {
        let malformed = |e: keynet_threshold::wire::WireError| DkgRefusal::Malformed(e.to_string());
        match body {
            DkgBody::Frost(w) => w.decode().map(Decoded::Frost).map_err(malformed),
            DkgBody::Bls(w) => w.decode().map(Decoded::Bls).map_err(malformed),
            _ => Err(DkgRefusal::Malformed("an unknown protocol".into())),
        }
    }

    /// Whether it carries a secret share, and so goes to one member only.
    fn is_secret(&self) -> bool {
        matches!(
            self,
            Decoded::Frost(Message::Round2(_)) | Decoded::Bls(BlsMessage::Share(_))
        )
    }
}

#[cfg(test)]
mod tests;
