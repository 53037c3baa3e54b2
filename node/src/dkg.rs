//! Running the network's distributed key generation over mutual attested TLS: FROST
//! (secp256k1) and BLS12-381 side by side, one run per (network id, epoch) of the registry.
//!
//! A node starts a run when the registry lists it and it holds no keys for the registry's
//! (network, epoch): at start, when the registry changes, or when a peer's first DKG message
//! for that very (network, epoch) arrives (so nodes started at different times meet). The
//! state machines ([`keynet_threshold::dkg`], [`keynet_threshold::bls_dkg`]) decide; this
//! module only carries their messages: each to its recipients, retried until delivered or
//! the run is over (duplicates are harmless, the machines ignore an identical message).
//! When both finish the keys are sealed to disk and signing opens; a failure is recorded
//! with its reason and culprits and served by `/v1/handshake`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keynet_protocol::registry::NodeEntry;
use keynet_threshold::bls_dkg::{BlsDkg, BlsOutgoing};
use keynet_threshold::dkg::{Dkg, Outgoing, Participant, State};
use keynet_threshold::wire::{BlsWire, FrostWire};
use serde::{Deserialize, Serialize};

use crate::keys::NetworkKeys;
use crate::server::NodeState;

/// The peer route DKG messages go to.
pub const ROUTE: &str = "/v1/peer/dkg";

/// A DKG message between nodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerDkg {
    /// The registry's network id.
    pub network: String,
    /// The registry epoch the run is for.
    pub epoch: u64,
    /// The message.
    pub body: DkgBody,
}

/// Which protocol a message belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DkgBody {
    /// FROST(secp256k1).
    Frost(FrostWire),
    /// BLS12-381.
    Bls(BlsWire),
}

/// What the node says about its key generation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DkgStatus {
    /// `idle`, `running`, `done`, `failed`, or `unsealed` (the keys of this run were
    /// unsealed at start: no DKG ran in this process).
    pub state: &'static str,
    /// The run's network id.
    pub network: Option<String>,
    /// The run's epoch.
    pub epoch: Option<u64>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Who was blamed (endpoints).
    pub culprits: Vec<String>,
    /// How long the run took here, from its start to the sealed keys, milliseconds.
    pub millis: Option<u64>,
}

struct Run {
    network: String,
    epoch: u64,
    members: Vec<NodeEntry>,
    frost: Dkg,
    bls: BlsDkg,
    generation: u64,
    started: Instant,
}

/// The node's DKG: at most one run at a time.
pub struct DkgRunner {
    run: Mutex<Option<Run>>,
    status: Mutex<DkgStatus>,
    generation: std::sync::atomic::AtomicU64,
    timeout: Duration,
}

/// Why a peer's DKG message was not taken.
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
    /// No run can start (this node is not a member, or the registry is too small).
    #[error("no DKG here: {0}")]
    Unavailable(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DkgRunner {
    /// A runner whose rounds each have `timeout`.
    pub fn new(timeout: Duration) -> Self {
        DkgRunner {
            run: Mutex::new(None),
            status: Mutex::new(DkgStatus {
                state: "idle",
                network: None,
                epoch: None,
                reason: None,
                culprits: vec![],
                millis: None,
            }),
            generation: std::sync::atomic::AtomicU64::new(0),
            timeout,
        }
    }

    /// The current status.
    pub fn status(&self) -> DkgStatus {
        lock(&self.status).clone()
    }

    /// Records that this node's keys for (network, epoch) came from its sealed store.
    pub fn unsealed(&self, network: &str, epoch: u64) {
        *lock(&self.status) = DkgStatus {
            state: "unsealed",
            network: Some(network.to_owned()),
            epoch: Some(epoch),
            reason: None,
            culprits: vec![],
            millis: None,
        };
    }
}

/// Starts a run for the current registry if this node is a member and holds no keys for
/// it (and none is running for it).
pub fn ensure(state: &Arc<NodeState>) {
    if let Err(e) = start_if_needed(state) {
        tracing::warn!("DKG: {e}");
    }
}

/// What a run needs from the current registry, read once.
struct Current {
    network: String,
    epoch: u64,
    members: Vec<NodeEntry>,
    n: u16,
    t: u16,
    me: Participant,
}

/// The current registry's network, epoch, members, size, threshold and this node's index.
fn current(state: &NodeState) -> Result<Current, String> {
    let reg = state
        .registry
        .read()
        .map_err(|_| "registry lock poisoned".to_owned())?;
    let n = u16::try_from(reg.nodes.len()).map_err(|_| "too many nodes".to_owned())?;
    let me = reg
        .nodes
        .iter()
        .position(|e| e.identity_key == state.identity)
        .ok_or_else(|| "this node is not in the registry".to_owned())?;
    let me = Participant::try_from(me + 1).map_err(|_| "too many nodes".to_owned())?;
    Ok(Current {
        network: reg.network_id.clone(),
        epoch: reg.epoch,
        members: reg.nodes.clone(),
        n,
        t: u16::try_from(reg.threshold()).unwrap_or(u16::MAX),
        me,
    })
}

fn start_if_needed(state: &Arc<NodeState>) -> Result<(), DkgRefusal> {
    let Current {
        network,
        epoch,
        members,
        n,
        t,
        me,
    } = current(state).map_err(DkgRefusal::Unavailable)?;
    if state
        .keys()
        .is_some_and(|k| k.network == network && k.epoch == epoch)
    {
        return Ok(());
    }
    let mut run = lock(&state.dkg.run);
    if run
        .as_ref()
        .is_some_and(|r| r.network == network && r.epoch == epoch)
    {
        return Ok(());
    }
    // Checked again under the run lock: a run that just finished leaves no run behind.
    if state
        .keys()
        .is_some_and(|k| k.network == network && k.epoch == epoch)
    {
        return Ok(());
    }
    {
        // A failed run is not restarted by a late peer message (that would start runs
        // nobody else is in); restarting the node starts a new one. A done one is final.
        let st = lock(&state.dkg.status);
        let this_run = st.network.as_ref() == Some(&network) && st.epoch == Some(epoch);
        if this_run && st.state == "done" {
            return Ok(());
        }
        if this_run && st.state == "failed" {
            return Err(DkgRefusal::Unavailable(format!(
                "the run for {network} epoch {epoch} failed here: {}",
                st.reason.clone().unwrap_or_default()
            )));
        }
    }
    let now = Instant::now();
    let timeout = state.dkg.timeout;
    let (frost, f_out) = Dkg::start(me, n, t, timeout, now)
        .map_err(|e| DkgRefusal::Unavailable(format!("FROST: {e}")))?;
    let (bls, b_out) = BlsDkg::start(me, n, t, timeout, now)
        .map_err(|e| DkgRefusal::Unavailable(format!("BLS: {e}")))?;
    let generation = state
        .dkg
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    tracing::info!(%network, epoch, me, n, t, "DKG started (FROST secp256k1 and BLS12-381)");
    *lock(&state.dkg.status) = DkgStatus {
        state: "running",
        network: Some(network.clone()),
        epoch: Some(epoch),
        reason: None,
        culprits: vec![],
        millis: None,
    };
    let r = Run {
        network,
        epoch,
        members,
        frost,
        bls,
        generation,
        started: now,
    };
    dispatch(state, &r, f_out, b_out);
    *run = Some(r);
    Ok(())
}

/// Takes a peer's DKG message (`from` is its participant index, from its verified
/// certificate and the registry).
pub fn on_message(
    state: &Arc<NodeState>,
    from: Participant,
    msg: PeerDkg,
) -> Result<(), DkgRefusal> {
    let Current { network, epoch, .. } = current(state).map_err(DkgRefusal::Unavailable)?;
    if msg.network != network || msg.epoch != epoch {
        return Err(DkgRefusal::WrongRun { network, epoch });
    }
    if state
        .keys()
        .is_some_and(|k| k.network == network && k.epoch == epoch)
    {
        return Err(DkgRefusal::Done { network, epoch });
    }
    // Decode before anything can start: junk must not start a run.
    let body = match &msg.body {
        DkgBody::Frost(w) => Decoded::Frost(
            w.decode()
                .map_err(|e| DkgRefusal::Malformed(e.to_string()))?,
        ),
        DkgBody::Bls(w) => Decoded::Bls(
            w.decode()
                .map_err(|e| DkgRefusal::Malformed(e.to_string()))?,
        ),
    };
    start_if_needed(state)?;
    let mut guard = lock(&state.dkg.run);
    let Some(run) = guard.as_mut() else {
        return Err(DkgRefusal::Unavailable("no run".into()));
    };
    let now = Instant::now();
    let (f_out, b_out) = match body {
        Decoded::Frost(m) => (run.frost.handle(from, m, now), vec![]),
        Decoded::Bls(m) => (vec![], run.bls.handle(from, m, now)),
    };
    dispatch(state, run, f_out, b_out);
    finish_if_over(state, &mut guard);
    Ok(())
}

enum Decoded {
    Frost(keynet_threshold::dkg::Message),
    Bls(keynet_threshold::bls_dkg::BlsMessage),
}

/// Applies the rounds' deadlines; runs until the node stops.
pub async fn ticker(state: Arc<NodeState>) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        every.tick().await;
        let mut guard = lock(&state.dkg.run);
        if let Some(run) = guard.as_mut() {
            let now = Instant::now();
            let f = run.frost.tick(now);
            let b = run.bls.tick(now);
            dispatch(&state, run, f, b);
            finish_if_over(&state, &mut guard);
        }
    }
}

fn is_over(s: State) -> bool {
    matches!(s, State::Done | State::Failed)
}

fn finish_if_over(state: &Arc<NodeState>, guard: &mut Option<Run>) {
    let Some(run) = guard.as_ref() else { return };
    let failure = run.frost.failure().or(run.bls.failure()).cloned();
    if let Some(f) = failure {
        let culprits: Vec<String> = f
            .culprits
            .iter()
            .filter_map(|p| run.members.get(usize::from(*p).wrapping_sub(1)))
            .map(|e| e.endpoint.clone())
            .collect();
        tracing::error!(network = %run.network, epoch = run.epoch, ?culprits, "DKG failed: {f}");
        *lock(&state.dkg.status) = DkgStatus {
            state: "failed",
            network: Some(run.network.clone()),
            epoch: Some(run.epoch),
            reason: Some(f.to_string()),
            culprits,
            millis: None,
        };
        *guard = None;
        return;
    }
    if !(is_over(run.frost.state()) && is_over(run.bls.state())) {
        return;
    }
    let (Some((frost, frost_public)), Some(bls)) = (run.frost.result(), run.bls.result()) else {
        return;
    };
    let keys = NetworkKeys {
        network: run.network.clone(),
        epoch: run.epoch,
        me: frost_me(run, state),
        n: u16::try_from(run.members.len()).unwrap_or(u16::MAX),
        frost: frost.clone(),
        frost_public: frost_public.clone(),
        bls: bls.clone(),
    };
    let (network, epoch) = (run.network.clone(), run.epoch);
    let millis = u64::try_from(run.started.elapsed().as_millis()).ok();
    match keys.save(&state.store) {
        Ok(()) => {
            tracing::info!(%network, epoch, ?millis, "DKG done: keys sealed");
            state.install_keys(keys);
            *lock(&state.dkg.status) = DkgStatus {
                state: "done",
                network: Some(network),
                epoch: Some(epoch),
                reason: None,
                culprits: vec![],
                millis,
            };
        }
        Err(e) => {
            tracing::error!("DKG done, but the keys could not be sealed: {e}");
            *lock(&state.dkg.status) = DkgStatus {
                state: "failed",
                network: Some(network),
                epoch: Some(epoch),
                reason: Some(format!("sealing the keys: {e}")),
                culprits: vec![],
                millis: None,
            };
        }
    }
    *guard = None;
}

fn frost_me(run: &Run, state: &NodeState) -> Participant {
    run.members
        .iter()
        .position(|e| e.identity_key == state.identity)
        .and_then(|i| Participant::try_from(i + 1).ok())
        .unwrap_or(0)
}

/// Sends each message to its recipients, each delivery retried in its own task until it
/// lands, the run is replaced, or a round's time has passed.
fn dispatch(state: &Arc<NodeState>, run: &Run, frost: Vec<Outgoing>, bls: Vec<BlsOutgoing>) {
    let me = frost_me(run, state);
    let mut sends: Vec<(Option<Participant>, DkgBody)> = Vec::new();
    for o in frost {
        match FrostWire::encode(&o.message) {
            Ok(w) => sends.push((o.to, DkgBody::Frost(w))),
            Err(e) => tracing::error!("DKG: cannot encode a FROST message: {e}"),
        }
    }
    for o in bls {
        sends.push((o.to, DkgBody::Bls(BlsWire::encode(&o.message))));
    }
    for (to, body) in sends {
        let msg = PeerDkg {
            network: run.network.clone(),
            epoch: run.epoch,
            body,
        };
        // Round-two and BLS messages carry secret shares: zeroized when the last send ends.
        let Ok(bytes) = serde_json::to_vec(&msg).map(|b| Arc::new(zeroize::Zeroizing::new(b)))
        else {
            continue;
        };
        let targets: Vec<NodeEntry> = run
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let p = Participant::try_from(i + 1).unwrap_or(0);
                p != me && to.is_none_or(|t| t == p)
            })
            .map(|(_, e)| e.clone())
            .collect();
        for target in targets {
            tokio::spawn(deliver(
                state.clone(),
                target,
                bytes.clone(),
                run.generation,
            ));
        }
    }
}

async fn deliver(
    state: Arc<NodeState>,
    to: NodeEntry,
    body: Arc<zeroize::Zeroizing<Vec<u8>>>,
    generation: u64,
) {
    let deadline = Instant::now() + state.dkg.timeout;
    let mut backoff = Duration::from_millis(100);
    loop {
        match state.peer_client.post(&to, ROUTE, body.to_vec()).await {
            Ok(_) => return,
            Err(crate::peer::PeerError::Refused { status, body, .. })
                if body.contains("\"dkg_done\"") || body.contains("\"bad_request\"") =>
            {
                // Final: the peer holds the keys already, or the message is not one.
                tracing::debug!(to = %to.endpoint, status, "DKG message refused: {body}");
                return;
            }
            Err(e) => {
                // Retried while this run is the node's latest, even after it finished here
                // (a slower peer may still need its last message), until the deadline. A
                // peer that has not yet loaded the same registry answers `wrong_run`.
                let live = state
                    .dkg
                    .generation
                    .load(std::sync::atomic::Ordering::Relaxed)
                    == generation;
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
