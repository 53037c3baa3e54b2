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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keynet_net::pool::CallError;
use keynet_protocol::api::{DkgStatus, ErrorCode, PeerDkg, route};
use keynet_protocol::registry::NodeEntry;
use keynet_threshold::dkg::Participant;
use zeroize::Zeroizing;

pub use coordinator::{Coordinator, DkgRefusal, Target};

use crate::api::ApiError;
use crate::state::NodeState;

/// The node's DKG: the coordinator under one lock.
pub struct DkgService {
    coordinator: Mutex<Coordinator>,
}

impl DkgService {
    /// A service whose runs' rounds each have `timeout`.
    pub fn new(timeout: Duration) -> Self {
        DkgService {
            coordinator: Mutex::new(Coordinator::new(timeout)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Coordinator> {
        crate::lock(&self.coordinator)
    }

    /// What the node says about its key generation.
    pub fn status(&self) -> DkgStatus {
        self.lock().status()
    }

    /// Records that this node's keys for (network, epoch) came from its sealed store.
    pub fn unsealed(&self, network: &str, epoch: u64) {
        self.lock().unsealed(network, epoch);
    }
}

impl From<DkgRefusal> for ApiError {
    fn from(e: DkgRefusal) -> Self {
        let code = match e {
            DkgRefusal::Malformed(_) => ErrorCode::BadRequest,
            DkgRefusal::Done { .. } => ErrorCode::DkgDone,
            DkgRefusal::WrongRun { .. } => ErrorCode::WrongRun,
            _ => ErrorCode::DkgUnavailable,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Starts a run for the current registry if this node is a member and holds no keys for
/// it (and none is running for it).
pub fn ensure(state: &Arc<NodeState>) {
    let result = Target::of(&state.registry(), &state.identity()).and_then(|target| {
        let holds = holds_keys(state, &target);
        let mut c = state.dkg().lock();
        let step = c.ensure(&target, holds, Instant::now())?;
        carry_out(state, &mut c, step);
        Ok(())
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
    let target = Target::of(&state.registry(), &state.identity())?;
    let holds = holds_keys(state, &target);
    let mut c = state.dkg().lock();
    let step = c.handle(&target, holds, from, msg, Instant::now())?;
    carry_out(state, &mut c, step);
    Ok(())
}

/// Applies the rounds' deadlines; runs until the node stops.
pub async fn ticker(state: Arc<NodeState>) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        every.tick().await;
        let mut c = state.dkg().lock();
        let step = c.tick(Instant::now());
        carry_out(&state, &mut c, step);
    }
}

fn holds_keys(state: &NodeState, target: &Target) -> bool {
    let (network, epoch) = target.run();
    state.holds_keys(network, epoch)
}

/// Sends a step's messages and, if it finished a run, seals its keys (under the lock, so
/// nothing sees the run done before its keys are kept) and puts them in force.
fn carry_out(state: &Arc<NodeState>, c: &mut Coordinator, step: coordinator::Step) {
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
            state.install_keys(keys);
        }
        Err(e) => {
            tracing::error!("DKG done, but the keys could not be sealed: {e}");
            c.sealing_failed(e.to_string());
        }
    }
}

/// Delivers one message to one member, retried with backoff while its run is the node's
/// latest (even after the run finished here: a slower peer may still need its last
/// message) and its deadline has not passed. A peer that holds the keys already, or finds
/// the message malformed, has answered for good.
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
                if matches!(e.code(), Some(ErrorCode::DkgDone | ErrorCode::BadRequest)) =>
            {
                tracing::debug!(to = %to.endpoint, "DKG message refused: {e}");
                return;
            }
            Err(e) => {
                // A peer that has not yet loaded the same registry answers `wrong_run`.
                let live = state.dkg().lock().is_latest(generation);
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
