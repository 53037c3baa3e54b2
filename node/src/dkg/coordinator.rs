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
//! there. Jumps of more than one attempt are refused, so one member cannot drag the others
//! through attempts they never failed. Blame is on evidence only: a member's abort is
//! recorded as its accusation (`aborted_by`, `accused`), not as culprits. Every run has a
//! generation number; deliveries of a run's messages go on (retried) while their run is
//! the latest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keynet_protocol::api::{DkgBody, DkgState, DkgStatus, PeerDkg};
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry};
use keynet_threshold::bls_dkg::{BlsDkg, BlsMessage, BlsOutgoing};
use keynet_threshold::dkg::{Dkg, Message, Outgoing, Participant, State};
use keynet_threshold::wire::{BlsWire, FrostWire};

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
    /// The message does not decode.
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

struct Run {
    target: Target,
    attempt: u32,
    frost: Dkg,
    bls: BlsDkg,
    started: Instant,
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
    },
    Failed {
        target: Target,
        attempt: u32,
        at: Instant,
        reason: String,
        culprits: Vec<String>,
        aborted_by: Option<String>,
        accused: Vec<String>,
    },
}

/// The node's DKG: at most one run at a time.
pub struct Coordinator {
    phase: Phase,
    generation: u64,
    /// The target and attempt of the last run that finished (for a sealing failure after it).
    last: Option<(Target, u32)>,
    timeout: Duration,
}

impl Coordinator {
    /// A coordinator whose runs' rounds each have `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Coordinator {
            phase: Phase::Idle,
            generation: 0,
            last: None,
            timeout,
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
        };
        match &self.phase {
            Phase::Idle => DkgStatus {
                state: DkgState::Idle,
                network: None,
                epoch: None,
                reason: None,
                culprits: vec![],
                millis: None,
                attempt: 0,
                aborted_by: None,
                accused: vec![],
            },
            Phase::Unsealed { network, epoch } => status(DkgState::Unsealed, network, *epoch),
            Phase::Running(run) => DkgStatus {
                attempt: run.attempt,
                ..status(DkgState::Running, run.target.network(), run.target.epoch())
            },
            Phase::Done {
                network,
                epoch,
                attempt,
                millis,
            } => DkgStatus {
                millis: *millis,
                attempt: *attempt,
                ..status(DkgState::Done, network, *epoch)
            },
            Phase::Failed {
                target,
                attempt,
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
            _ => {}
        }
        self.start(target, 0, now)
    }

    /// Starts attempt `attempt` of a run for `target`, dropping any run in progress.
    fn start(&mut self, target: &Target, attempt: u32, now: Instant) -> Result<Step, DkgRefusal> {
        let (frost, f_out) = Dkg::start(target.me, target.n(), target.t(), self.timeout, now)
            .map_err(|e| DkgRefusal::Unavailable(format!("FROST: {e}")))?;
        let (bls, b_out) = BlsDkg::start(target.me, target.n(), target.t(), self.timeout, now)
            .map_err(|e| DkgRefusal::Unavailable(format!("BLS: {e}")))?;
        self.generation += 1;
        tracing::info!(
            network = %target.network(),
            epoch = target.epoch(),
            attempt,
            me = target.me,
            n = target.n(),
            t = target.t(),
            "DKG started (FROST secp256k1 and BLS12-381)"
        );
        let run = Run {
            target: target.clone(),
            attempt,
            frost,
            bls,
            started: now,
        };
        let step = self.step(&run, f_out, b_out);
        self.phase = Phase::Running(Box::new(run));
        Ok(step)
    }

    /// The attempt this node is at for `target`, if it ran or is running one.
    fn attempt_for(&self, target: &Target) -> Option<u32> {
        match &self.phase {
            Phase::Running(run) if run.target.is(target.network(), target.epoch()) => {
                Some(run.attempt)
            }
            Phase::Failed {
                target: t, attempt, ..
            } if t.is(target.network(), target.epoch()) => Some(*attempt),
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
        // Decoded before anything can start: junk must not start a run.
        let decoded = Decoded::of(&msg.body)?;
        let mut step = match (self.attempt_for(target), &self.phase) {
            (_, Phase::Done { network, epoch, .. }) if target.is(network, *epoch) => {
                return Err(DkgRefusal::Done {
                    network: network.clone(),
                    epoch: *epoch,
                });
            }
            // A node that never ran this target (or restarted) joins the attempt it hears of.
            (None, _) => self.start(target, msg.attempt, now)?,
            (Some(mine), phase) => {
                let running = matches!(phase, Phase::Running(_));
                if msg.attempt == mine && running {
                    Step::default()
                } else if msg.attempt == mine + 1 || (msg.attempt == mine && !running) {
                    if msg.attempt == mine {
                        return Err(DkgRefusal::Unavailable(format!(
                            "attempt {mine} failed here; the next is {}",
                            mine + 1
                        )));
                    }
                    self.start(target, msg.attempt, now)?
                } else {
                    return Err(DkgRefusal::WrongAttempt {
                        got: msg.attempt,
                        mine,
                    });
                }
            }
        };
        let Phase::Running(run) = &mut self.phase else {
            return Err(DkgRefusal::Done {
                network: target.network().to_owned(),
                epoch: target.epoch(),
            });
        };
        let (f_out, b_out) = match decoded {
            Decoded::Frost(m) => (run.frost.handle(from, m, now), vec![]),
            Decoded::Bls(m) => (vec![], run.bls.handle(from, m, now)),
        };
        let more = self.after(f_out, b_out, now);
        step.sends.extend(more.sends);
        step.generation = more.generation;
        step.keys = more.keys;
        Ok(step)
    }

    /// Applies the rounds' deadlines, and starts the next attempt once a failed one's
    /// back-off is over.
    pub fn tick(&mut self, now: Instant) -> Step {
        if let Phase::Failed {
            target,
            attempt,
            at,
            ..
        } = &self.phase
        {
            if now.saturating_duration_since(*at) < backoff(*attempt) {
                return Step::default();
            }
            let (target, next) = (target.clone(), attempt.saturating_add(1));
            return self.start(&target, next, now).unwrap_or_default();
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
        let Some((target, attempt)) = self.last.clone() else {
            return;
        };
        if !matches!(&self.phase, Phase::Done { network, epoch, .. } if target.is(network, *epoch))
        {
            return;
        }
        self.phase = Phase::Failed {
            target,
            attempt,
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
            let endpoints = |ps: &[Participant]| -> Vec<String> {
                ps.iter()
                    .filter_map(|p| run.target.registry.entry(*p))
                    .map(|e| e.endpoint.clone())
                    .collect()
            };
            let culprits = endpoints(&f.culprits);
            let accused = endpoints(&f.accused);
            let aborted_by = f
                .aborted_by
                .and_then(|p| run.target.registry.entry(p))
                .map(|e| e.endpoint.clone());
            tracing::error!(
                network = %run.target.network(),
                epoch = run.target.epoch(),
                attempt = run.attempt,
                ?culprits,
                ?aborted_by,
                ?accused,
                "DKG failed: {f}; retrying in {} s",
                backoff(run.attempt).as_secs()
            );
            self.phase = Phase::Failed {
                target: run.target.clone(),
                attempt: run.attempt,
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
        self.last = Some((run.target.clone(), run.attempt));
        self.phase = Phase::Done {
            network: t.network().to_owned(),
            epoch: t.epoch(),
            attempt: run.attempt,
            millis: u64::try_from(run.started.elapsed().as_millis()).ok(),
        };
        step
    }

    /// Each message with its recipients: every other member, or the one it is for.
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
        let sends = bodies
            .into_iter()
            .map(|(to, body)| Outbound {
                message: PeerDkg {
                    network: t.network().to_owned(),
                    epoch: t.epoch(),
                    attempt: run.attempt,
                    body,
                },
                to: t
                    .registry
                    .participants()
                    .filter(|(p, _)| *p != t.me && to.is_none_or(|to| to == *p))
                    .map(|(_, e)| e.clone())
                    .collect(),
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
}

#[cfg(test)]
mod tests;
