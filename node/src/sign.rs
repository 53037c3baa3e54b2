//! `POST /v1/sign`: a threshold FROST signature share for a user's request, given only
//! after this node checked the user's authorisation and permission itself.
//!
//! The node begins a signing session for the request it verified, sends its round-one
//! commitments to the other participants together with the user's signed request, and
//! signs once every participant's commitments are in. A peer's commitments for a request
//! this node has not verified from the user are dropped at once, and a peer's push is
//! answered with this node's own commitments when it has begun the same request
//! ([`keynet_threshold::signing`] draws the exchange): a node never signs for, and never
//! holds anything for, a request it only heard about.
//!
//! The handler waits for its session's outcome on a [`Waiter`], which owns its entry in the
//! waiting table and its session: whichever way the handler ends (share, refusal, timeout,
//! or the client gone), dropping the waiter removes the entry and ends the session, so the
//! open-session limits bound sessions (and their nonces), not only waiting handlers.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keynet_eth::Address;
use keynet_protocol::api::{
    CommitmentsAnswer, ErrorCode, PeerCommitments, SignShare, SigningCounters, route,
};
use keynet_protocol::registry::{IdentityKey, Registry};
use keynet_protocol::request::{Authorised, SignRequest, Verified};
use keynet_threshold::derive::derive_key_package;
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::round1::SigningCommitments;
use keynet_threshold::frost::round2::SignatureShare;
use keynet_threshold::frost::{SigningPackage, keys::KeyPackage};
use keynet_threshold::signing::{Event, SignError, Signer, VerifiedRequest};
use tokio::sync::oneshot;

use crate::api::ApiError;
use crate::lock;
use crate::quota::{Full, Quota};
use crate::state::NodeState;

type Outcome = Result<(SignatureShare, SigningPackage), SignError>;

/// A waiting handler's channel, with its [`Waiter`]'s token.
type Waiting = (u64, oneshot::Sender<Outcome>);

/// The node's signing sessions.
pub struct SignService {
    signer: Mutex<Option<Signer>>,
    /// Each waiting handler, by request id.
    waiters: Mutex<HashMap<[u8; 32], Waiting>>,
    /// Open sessions, per user and in all.
    open: Quota<Address>,
    tokens: AtomicU64,
    wait: Duration,
    shares_issued: AtomicU64,
    dropped_unverified: AtomicU64,
}

/// How many signing sessions may be open at once: each holds nonces and a waiting handler
/// for up to the signing wait, and sends commitments to every other participant.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// For one user address.
    pub per_address: usize,
    /// In all.
    pub total: usize,
}

/// The one handler waiting for a session's outcome; its entry leaves the table with it
/// (its own entry only: the token tells it from a later waiter of the same id), its
/// session ends if still open, and its user's open-session count goes down.
struct Waiter<'a> {
    service: &'a SignService,
    id: [u8; 32],
    user: Address,
    token: u64,
    outcome: oneshot::Receiver<Outcome>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut waiters = lock(&self.service.waiters);
        // Still its own entry: no outcome came (timeout, or the client went), so its
        // session may still be open. (An outcome removed the entry, and the session with
        // it; another waiter's entry of the same id is not this one's to end.)
        let mine = waiters.get(&self.id).is_some_and(|(t, _)| *t == self.token);
        if mine {
            waiters.remove(&self.id);
        }
        drop(waiters);
        if mine && let Some(signer) = lock(&self.service.signer).as_mut() {
            signer.cancel(&self.id);
        }
        self.service.open.give(&self.user);
    }
}

impl SignService {
    /// Sessions last at most `wait`; at most `limits` are open.
    pub fn new(wait: Duration, limits: SessionLimits) -> Self {
        SignService {
            signer: Mutex::new(None),
            waiters: Mutex::new(HashMap::new()),
            open: Quota::new(limits.per_address, limits.total),
            tokens: AtomicU64::new(0),
            wait,
            shares_issued: AtomicU64::new(0),
            dropped_unverified: AtomicU64::new(0),
        }
    }

    /// Opens signing with this node's root key package.
    pub fn install(&self, me: Participant, n: u16, key: KeyPackage) {
        *lock(&self.signer) = Some(Signer::new(me, n, key, self.wait));
    }

    /// What signing did (served in `/health`).
    pub fn counters(&self) -> SigningCounters {
        SigningCounters {
            shares_issued: self.shares_issued.load(Ordering::Relaxed),
            dropped_unverified: self.dropped_unverified.load(Ordering::Relaxed),
        }
    }

    /// Open signing sessions (each with its nonces).
    pub fn open_sessions(&self) -> usize {
        lock(&self.signer).as_ref().map_or(0, Signer::pending)
    }

    /// Requests handlers are waiting on (0 when none is in flight).
    pub fn waiting(&self) -> usize {
        lock(&self.waiters).len()
    }

    /// Registers the one waiter of request `id` from `user`, within the session limits.
    fn waiter(&self, id: [u8; 32], user: Address) -> Result<Waiter<'_>, ApiError> {
        self.open.take(&user, false).map_err(|full| {
            let (per_user, total) = self.open.limits();
            match full {
                Full::Key(mine) => ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{} has {mine} signing sessions open here (at most {per_user}); retry \
                         when they are done",
                        user.to_checksum(),
                    ),
                ),
                Full::Total(all) => ApiError::new(
                    ErrorCode::Overloaded,
                    format!(
                        "{all} signing sessions are open here (at most {total}); retry shortly"
                    ),
                ),
            }
        })?;
        let (tx, rx) = oneshot::channel();
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        // From here the waiter owns its count: dropped on any path below, it gives it back.
        let waiter = Waiter {
            service: self,
            id,
            user,
            token,
            outcome: rx,
        };
        match lock(&self.waiters).entry(id) {
            Entry::Occupied(_) => {
                return Err(ApiError::new(
                    ErrorCode::Duplicate,
                    "a signing session for this request is already running",
                ));
            }
            Entry::Vacant(v) => {
                v.insert((token, tx));
            }
        }
        Ok(waiter)
    }

    /// Completes waiters and counts drops.
    fn handle(&self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Share { id, share, package } => self.complete(id, Ok((share, *package))),
                Event::Failed { id, error } => self.complete(id, Err(error)),
                Event::Dropped { id, from } => {
                    // Counted (in /health) rather than warned about one by one: a peer
                    // could otherwise fill the log.
                    self.dropped_unverified.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        request = %hex::encode(id),
                        from,
                        "dropped commitments for a request this node never received from the user"
                    );
                }
                // Only `begin` makes commitments; `sign` sends them.
                Event::Commitments { .. } => {}
                _ => {}
            }
        }
    }

    fn complete(&self, id: [u8; 32], outcome: Outcome) {
        if let Some((_, tx)) = lock(&self.waiters).remove(&id) {
            // The handler may have gone (timeout, client closed): nothing to tell then.
            let _ = tx.send(outcome);
        }
    }
}

/// Participant indices of `keys` in `registry`.
fn indices(registry: &Registry, keys: &[IdentityKey]) -> Result<Vec<Participant>, ApiError> {
    keys.iter()
        .map(|k| {
            registry.participant(k).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownParticipant,
                    format!("{k} is not in the registry"),
                )
            })
        })
        .collect()
}

/// Handles `POST /v1/sign`: checks that need no nonce first (keys, participants), then the
/// user's authorisation (which uses up its nonce), then the key's permissions; only then a
/// session.
pub async fn sign(
    state: &Arc<NodeState>,
    req: Authorised<SignRequest>,
) -> Result<SignShare, ApiError> {
    let keys = state.keys_for(req.request.network())?;
    let registry = state.registry();
    let participants = indices(&registry, req.request.participants())?;
    let threshold = registry.threshold();
    if participants.len() < threshold as usize {
        return Err(ApiError::new(
            ErrorCode::BelowThreshold,
            format!(
                "{} participants named; the threshold is {threshold}",
                participants.len()
            ),
        ));
    }
    if !participants.contains(&keys.me) {
        return Err(ApiError::new(
            ErrorCode::NotAParticipant,
            "this node is not among the request's participants",
        ));
    }
    let verified = req.verify(state.auth(), keynet_net::unix_now())?;
    let key = verified.request().key();
    let user = verified.user();
    if !state.pkp().may_sign(key, &user) {
        return Err(ApiError::new(
            ErrorCode::NotAllowed,
            format!(
                "{} may not sign with key {}/{} (neither its owner nor allowed by it)",
                user.to_checksum(),
                key.owner().to_checksum(),
                key.name()
            ),
        ));
    }
    let package = derive_key_package(&keys.frost, &key.key_id()).map_err(ApiError::internal)?;
    let svc = state.signing();
    let mut waiter = svc.waiter(verified.id(), user)?;
    let begun = match lock(&svc.signer).as_mut() {
        None => {
            return Err(ApiError::new(ErrorCode::NoKeys, "signing is not open yet"));
        }
        Some(signer) => signer.begin_with(
            VerifiedRequest {
                id: verified.id(),
                message: verified.request().message(),
                participants,
            },
            package,
            Instant::now(),
        ),
    };
    let events = begun.map_err(|e| match e {
        SignError::Duplicate(_) => ApiError::new(ErrorCode::Duplicate, e.to_string()),
        other => ApiError::bad_request(other),
    })?;
    let mut rest = Vec::new();
    for e in events {
        match e {
            Event::Commitments {
                to, commitments, ..
            } => send_commitments(state, &registry, to, &verified, &commitments),
            other => rest.push(other),
        }
    }
    svc.handle(rest);
    let outcome =
        tokio::time::timeout(svc.wait + Duration::from_secs(1), &mut waiter.outcome).await;
    let (share, package) = match outcome {
        Ok(Ok(Ok(x))) => x,
        Ok(Ok(Err(SignError::Timeout { missing, wait, .. }))) => {
            let who: Vec<String> = missing
                .iter()
                .filter_map(|p| registry.entry(*p))
                .map(|e| e.endpoint.clone())
                .collect();
            return Err(ApiError::new(
                ErrorCode::PeersTimeout,
                format!("no commitments within {wait:?} from {}", who.join(", ")),
            ));
        }
        // The library refused what the peers sent (e.g. malformed commitments).
        Ok(Ok(Err(e))) => return Err(ApiError::new(ErrorCode::SigningFailed, e.to_string())),
        _ => {
            return Err(ApiError::new(
                ErrorCode::PeersTimeout,
                "the signing session did not finish",
            ));
        }
    };
    svc.shares_issued.fetch_add(1, Ordering::Relaxed);
    Ok(SignShare {
        node: state.identity(),
        participant: keys.me,
        share: hex::encode(share.serialize()),
        package: hex::encode(package.serialize().map_err(ApiError::internal)?),
    })
}

fn send_commitments(
    state: &Arc<NodeState>,
    registry: &Registry,
    to: Participant,
    req: &Verified<SignRequest>,
    commitments: &SigningCommitments,
) {
    let Some(target) = registry.entry(to).cloned() else {
        return;
    };
    let body = match commitments.serialize() {
        Ok(c) => PeerCommitments {
            request: req.authorised().clone(),
            commitments: hex::encode(c),
        },
        Err(e) => {
            tracing::error!("cannot encode commitments: {e}");
            return;
        }
    };
    let Ok(bytes) = serde_json::to_vec(&body) else {
        return;
    };
    let id = req.id();
    let state = state.clone();
    tokio::spawn(async move {
        // A dropped kept-alive connection is retried once on a new one.
        for attempt in 0..2 {
            match state
                .peers()
                .call_raw::<route::PeerCommitments>(&target, bytes.clone())
                .await
            {
                Ok(answer) => return on_answer(&state, to, id, answer),
                Err(e) if attempt == 0 => {
                    tracing::debug!(to = %target.endpoint, "commitments: {e}; retrying")
                }
                Err(e) => tracing::warn!(to = %target.endpoint, "commitments not delivered: {e}"),
            }
        }
    });
}

/// Commitments as they travel: hex of the library's serialization.
fn decode(hex_commitments: &str) -> Result<SigningCommitments, String> {
    let bytes = hex::decode(hex_commitments).map_err(|e| e.to_string())?;
    SigningCommitments::deserialize(&bytes).map_err(|e| format!("commitments: {e}"))
}

/// Takes the commitments peer `from` answered this node's push with (it had begun the
/// request too).
fn on_answer(state: &NodeState, from: Participant, id: [u8; 32], answer: CommitmentsAnswer) {
    let Some(hex_commitments) = answer.commitments else {
        return;
    };
    let commitments = match decode(&hex_commitments) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                from,
                "a peer answered with commitments that do not decode: {e}"
            );
            return;
        }
    };
    let events = match lock(&state.signing().signer).as_mut() {
        Some(s) => s.on_answer(from, id, commitments),
        None => vec![],
    };
    state.signing().handle(events);
}

/// Handles a peer's commitments (`from` comes from its verified certificate); answers with
/// this node's own for the same request when it has begun it.
pub fn on_commitments(
    state: &Arc<NodeState>,
    from: Participant,
    msg: PeerCommitments,
) -> Result<CommitmentsAnswer, ApiError> {
    let commitments = decode(&msg.commitments).map_err(ApiError::bad_request)?;
    let listed = indices(&state.registry(), msg.request.request.participants())?;
    if !listed.contains(&from) {
        return Err(ApiError::new(
            ErrorCode::NotAParticipant,
            "the sender is not among the request's participants",
        ));
    }
    let id = msg.request.id();
    let taken = match lock(&state.signing().signer).as_mut() {
        Some(s) => s.on_commitments(from, id, commitments),
        None => return Ok(CommitmentsAnswer { commitments: None }),
    };
    state.signing().handle(taken.events);
    let mine = taken
        .mine
        .map(|c| c.serialize().map(hex::encode))
        .transpose()
        .map_err(ApiError::internal)?;
    Ok(CommitmentsAnswer { commitments: mine })
}

/// Expires sessions; runs until the node stops.
pub async fn ticker(state: Arc<NodeState>) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let events = match lock(&state.signing().signer).as_mut() {
            Some(s) => s.tick(Instant::now()),
            None => vec![],
        };
        state.signing().handle(events);
    }
}
