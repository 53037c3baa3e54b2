//! Running the network's distributed key generation over mutual attested TLS: FROST
//! (secp256k1) and BLS12-381 side by side, one run per (network id, epoch) of the registry.
//!
//! A node starts a run when the registry lists it and it holds no keys for the registry's
//! (network, epoch): at start, when the registry changes, or when a peer's first DKG message
//! for that very (network, epoch) arrives (so nodes started at different times meet). The
//! [`Coordinator`] decides (a state machine without I/O, its transitions drawn there); this
//! service carries its messages, each to its recipients, retried until delivered or the run
//! is over (duplicates are harmless, the machines ignore an identical message), and seals
//! the keys when both protocols finish. A failure is recorded with its reason and culprits
//! and served by `/v1/handshake`.

mod coordinator;
mod evidence;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use keynet_net::pool::CallError;
use keynet_protocol::api::{DkgStatus, ErrorCode, PeerDkg, route};
use keynet_protocol::registry::NodeEntry;
use keynet_threshold::dkg::Participant;
use zeroize::Zeroizing;

pub use coordinator::{Coordinator, DkgRefusal, Target};
pub use evidence::Sign;

use crate::api::ApiError;
use crate::state::NodeState;

/// The node's DKG: the coordinator under one lock, and a snapshot of what it says, so
/// that `/health`, the handshake and refusals never wait for DKG work (crypto, sealing).
pub struct DkgService {
    coordinator: Mutex<Coordinator>,
    status: RwLock<DkgStatus>,
    generation: AtomicU64,
}

impl DkgService {
    /// A service whose runs' rounds each have `timeout`, signing its messages with `sign`
    /// (the node's identity key).
    pub fn new(timeout: Duration, sign: Sign) -> Self {
        let coordinator = Coordinator::new(timeout, sign);
        DkgService {
            status: RwLock::new(coordinator.status()),
            generation: AtomicU64::new(coordinator.generation()),
            coordinator: Mutex::new(coordinator),
        }
    }

    /// Runs `f` on the coordinator, then refreshes the snapshot.
    fn with<R>(&self, f: impl FnOnce(&mut Coordinator) -> R) -> R {
        let mut c = crate::lock(&self.coordinator);
        let r = f(&mut c);
        self.publish(&c);
        r
    }

    /// Refreshes the snapshot from `c`. Also before a step's messages go out: a delivery
    /// that fails at once must already see its run as the latest, or it would not retry.
    fn publish(&self, c: &Coordinator) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = c.status();
        self.generation.store(c.generation(), Ordering::Relaxed);
    }

    /// What the node says about its key generation.
    pub fn status(&self) -> DkgStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True while run `generation` is the latest one.
    fn is_latest(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Relaxed) == generation
    }

    /// Records that this node's keys for (network, epoch) came from its sealed store.
    pub fn unsealed(&self, network: &str, epoch: u64) {
        self.with(|c| c.unsealed(network, epoch));
    }
}

impl From<DkgRefusal> for ApiError {
    fn from(e: DkgRefusal) -> Self {
        let code = match e {
            DkgRefusal::Malformed(_) => ErrorCode::BadRequest,
            DkgRefusal::Done { .. } => ErrorCode::DkgDone,
            DkgRefusal::WrongRun { .. } | DkgRefusal::WrongAttempt { .. } => ErrorCode::WrongRun,
            DkgRefusal::Unavailable(_) => ErrorCode::DkgUnavailable,
            DkgRefusal::Excluded(_) => ErrorCode::DkgExcluded,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The current registry's target for this node, and whether the node holds its keys. Read
/// under the coordinator's lock (by the callers), so a reload cannot slip between reading
/// the target and acting on it.
fn target(state: &NodeState) -> Result<(Target, bool), DkgRefusal> {
    let target = Target::of(&state.registry(), &state.identity())?;
    let (network, epoch) = target.run();
    let holds = state.holds_keys(network, epoch);
    Ok((target, holds))
}

/// Starts a run for the current registry if this node is a member and holds no keys for
/// it (and none is running for it).
pub fn ensure(state: &Arc<NodeState>) {
    let result = state.dkg().with(|c| {
        let (target, holds) = target(state)?;
        let step = c.ensure(&target, holds, Instant::now())?;
        carry_out(state, c, step);
        Ok::<(), DkgRefusal>(())
    });
    if let Err(e) = result {
        tracing::warn!("DKG: {e}");
    }
}

/// Takes a peer's DKG message (`from` is its participant index, from its verified
/// certificate and the registry).
pub fn on_message(
    state: &Arc<NodeState>,
    from: Participant,
    msg: &PeerDkg,
) -> Result<(), ApiError> {
    state.dkg().with(|c| {
        let (target, holds) = target(state)?;
        let step = c.handle(&target, holds, from, msg, Instant::now())?;
        carry_out(state, c, step);
        Ok(())
    })
}

/// Applies the rounds' deadlines; runs until the node stops.
pub async fn ticker(state: Arc<NodeState>) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        every.tick().await;
        state.dkg().with(|c| {
            let step = c.tick(Instant::now());
            carry_out(&state, c, step);
        });
    }
}

/// Sends a step's messages and, if it finished a run, seals its keys (under the lock, so
/// nothing sees the run done before its keys are kept) and puts them in force.
fn carry_out(state: &Arc<NodeState>, c: &mut Coordinator, step: coordinator::Step) {
    state.dkg().publish(c);
    let deadline = Instant::now() + c.timeout();
    for out in step.sends {
        // Round-two and BLS messages carry secret shares: zeroized when the last send ends.
        let Ok(bytes) = serde_json::to_vec(&out.message).map(|b| Arc::new(Zeroizing::new(b)))
        else {
            continue;
        };
        for to in out.to {
            tokio::spawn(deliver(
                state.clone(),
                to,
                bytes.clone(),
                step.generation,
                deadline,
            ));
        }
    }
    let Some(keys) = step.keys else { return };
    let (network, epoch) = (keys.network.clone(), keys.epoch);
    match keys.save(state.store()) {
        Ok(()) => {
            tracing::info!(%network, epoch, millis = ?c.status().millis, "DKG done: keys sealed");
            match keys.erase_superseded(state.store()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(%network, epoch, "erased the keys of {n} earlier epochs"),
                Err(e) => tracing::error!("erasing the keys of earlier epochs: {e}"),
            }
            state.install_keys(keys);
        }
        Err(e) => {
            tracing::error!("DKG done, but the keys could not be sealed: {e}");
            c.sealing_failed(e.to_string(), Instant::now());
        }
    }
}

/// Delivers one message to one member, retried with backoff while its run is the node's
/// latest (even after the run finished here: a slower peer may still need its last
/// message) and its deadline has not passed. A peer that holds the keys already, finds the
/// message malformed, or is excluded (or excludes this node) has answered for good.
async fn deliver(
    state: Arc<NodeState>,
    to: NodeEntry,
    body: Arc<Zeroizing<Vec<u8>>>,
    generation: u64,
    deadline: Instant,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match state
            .peers()
            .call_raw::<route::PeerDkg>(&to, body.to_vec())
            .await
        {
            Ok(_) => return,
            Err(e @ CallError::Refused { .. })
                if matches!(
                    e.code(),
                    Some(ErrorCode::DkgDone | ErrorCode::BadRequest | ErrorCode::DkgExcluded)
                ) =>
            {
                tracing::debug!(to = %to.endpoint, "DKG message refused: {e}");
                return;
            }
            Err(e) => {
                // A peer that has not yet loaded the same registry answers `wrong_run`.
                let live = state.dkg().is_latest(generation);
                if !live || Instant::now() >= deadline {
                    tracing::debug!(to = %to.endpoint, "DKG message not delivered: {e}");
                    return;
                }
                tracing::debug!(to = %to.endpoint, "DKG message: {e}; retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
