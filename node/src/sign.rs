//! `POST /v1/sign`: a threshold FROST signature share for a user's request, given only
//! after this node checked the user's authorisation and permission itself.
//!
//! The node begins a signing session for the request it verified, sends its round-one
//! commitments to the other participants together with the user's signed request, and
//! signs once every participant's commitments are in. Commitments from peers for a request
//! this node has not verified from the user are held for a bounded time and then dropped
//! ([`keynet_threshold::signing`]): a node never signs for a request it only heard about.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use keynet_protocol::registry::{IdentityKey, NodeEntry};
use keynet_protocol::request::{Authorised, SignRequest};
use keynet_threshold::derive::derive_key_package;
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::round1::SigningCommitments;
use keynet_threshold::frost::round2::SignatureShare;
use keynet_threshold::frost::{SigningPackage, keys::KeyPackage};
use keynet_threshold::signing::{Event, SignError, Signer, VerifiedRequest};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::server::{ApiError, NodeState, unix_now};

/// The peer route commitments go to.
pub const PEER_ROUTE: &str = "/v1/peer/commitments";

/// Commitments for a request, with the user's signed request they belong to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCommitments {
    /// The user's request, as the user sent it.
    pub request: Authorised<SignRequest>,
    /// The sender's commitments (hex of the library's serialization).
    pub commitments: String,
}

/// A node's answer to `/v1/sign`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareResponse {
    /// The node.
    pub node: IdentityKey,
    /// Its participant index (1-based registry position).
    pub participant: Participant,
    /// Its signature share (hex).
    pub share: String,
    /// The signing package it signed (hex): every participant's commitments and the
    /// message. The user checks all nodes signed the same one.
    pub package: String,
}

type Outcome = Result<(SignatureShare, SigningPackage), SignError>;

/// The node's signing sessions.
pub struct SignService {
    signer: Mutex<Option<Signer>>,
    waiters: Mutex<HashMap<[u8; 32], oneshot::Sender<Outcome>>>,
    wait: Duration,
    /// Signature shares handed out.
    pub shares_issued: AtomicU64,
    /// Peer commitments dropped because this node never verified their request.
    pub dropped_unverified: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SignService {
    /// Sessions and held commitments last at most `wait`.
    pub fn new(wait: Duration) -> Self {
        SignService {
            signer: Mutex::new(None),
            waiters: Mutex::new(HashMap::new()),
            wait,
            shares_issued: AtomicU64::new(0),
            dropped_unverified: AtomicU64::new(0),
        }
    }

    /// Opens signing with this node's root key package.
    pub fn install(&self, me: Participant, n: u16, key: KeyPackage) {
        *lock(&self.signer) = Some(Signer::new(me, n, key, self.wait));
    }

    /// Completes waiters and counts drops.
    fn handle(&self, events: Vec<Event>) {
        for e in events {
            match e {
                Event::Share { id, share, package } => {
                    if let Some(tx) = lock(&self.waiters).remove(&id) {
                        let _ = tx.send(Ok((share, *package)));
                    }
                }
                Event::Failed { id, error } => {
                    if let Some(tx) = lock(&self.waiters).remove(&id) {
                        let _ = tx.send(Err(error));
                    }
                }
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
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// Participant indices of `keys` in `members` (1-based registry positions).
fn indices(members: &[NodeEntry], keys: &[IdentityKey]) -> Result<Vec<Participant>, ApiError> {
    keys.iter()
        .map(|k| {
            members
                .iter()
                .position(|e| e.identity_key == *k)
                .and_then(|i| Participant::try_from(i + 1).ok())
                .ok_or_else(|| bad("unknown_participant", format!("{k} is not in the registry")))
        })
        .collect()
}

/// Handles `POST /v1/sign`.
pub async fn sign(state: &Arc<NodeState>, body: &[u8]) -> Result<ShareResponse, ApiError> {
    let req: Authorised<SignRequest> =
        serde_json::from_slice(body).map_err(|e| bad("bad_request", e.to_string()))?;
    req.request
        .validate()
        .map_err(|e| bad("bad_request", e.to_string()))?;
    let keys = state.keys_for(&req.request.network)?;
    let (members, threshold) = state.members()?;
    let participants = indices(&members, &req.request.participants)?;
    if participants.len() < usize::from(threshold) {
        return Err(bad(
            "below_threshold",
            format!(
                "{} participants named; the threshold is {threshold}",
                participants.len()
            ),
        ));
    }
    if !participants.contains(&keys.me) {
        return Err(bad(
            "not_a_participant",
            "this node is not among the request's participants",
        ));
    }
    let digest = req.request.digest();
    let user = state
        .auth
        .verify(&req.auth, &digest, unix_now().max(0) as u64)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "auth_refused", e.to_string()))?;
    if !state.pkp.may_sign(&req.request.key, &user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_allowed",
            format!(
                "{} may not sign with key {}/{} (neither its owner nor allowed by it)",
                user.to_checksum(),
                req.request.key.owner.to_checksum(),
                req.request.key.name
            ),
        ));
    }
    let key = derive_key_package(&keys.frost, &req.request.key.key_id())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let id = req.id();
    let (tx, rx) = oneshot::channel();
    let svc = &state.signing;
    lock(&svc.waiters).insert(id, tx);
    let begun = {
        let mut signer = lock(&svc.signer);
        let Some(signer) = signer.as_mut() else {
            lock(&svc.waiters).remove(&id);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_keys",
                "signing is not open yet",
            ));
        };
        signer.begin_with(
            VerifiedRequest {
                id,
                message: req.request.message.0,
                participants: participants.clone(),
            },
            key,
            Instant::now(),
        )
    };
    let events = match begun {
        Ok(e) => e,
        Err(e) => {
            lock(&svc.waiters).remove(&id);
            return Err(match e {
                SignError::Duplicate(_) => {
                    ApiError::new(StatusCode::CONFLICT, "duplicate", e.to_string())
                }
                other => bad("bad_request", other.to_string()),
            });
        }
    };
    let mut rest = Vec::new();
    for e in events {
        match e {
            Event::Commitments {
                to, commitments, ..
            } => send_commitments(state, &members, to, &req, &commitments),
            other => rest.push(other),
        }
    }
    svc.handle(rest);
    let outcome = tokio::time::timeout(svc.wait + Duration::from_secs(1), rx).await;
    let (share, package) = match outcome {
        Ok(Ok(Ok(x))) => x,
        Ok(Ok(Err(SignError::Timeout { missing, wait, .. }))) => {
            let who: Vec<String> = missing
                .iter()
                .filter_map(|p| members.get(usize::from(*p).wrapping_sub(1)))
                .map(|e| e.endpoint.clone())
                .collect();
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "peers_timeout",
                format!("no commitments within {wait:?} from {}", who.join(", ")),
            ));
        }
        Ok(Ok(Err(e))) => {
            // The library refused what the peers sent (e.g. malformed commitments).
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "signing_failed",
                e.to_string(),
            ));
        }
        _ => {
            lock(&svc.waiters).remove(&id);
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "peers_timeout",
                "the signing session did not finish",
            ));
        }
    };
    svc.shares_issued.fetch_add(1, Ordering::Relaxed);
    Ok(ShareResponse {
        node: state.identity,
        participant: keys.me,
        share: hex::encode(share.serialize()),
        package: hex::encode(package.serialize().map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?),
    })
}

fn send_commitments(
    state: &Arc<NodeState>,
    members: &[NodeEntry],
    to: Participant,
    req: &Authorised<SignRequest>,
    commitments: &SigningCommitments,
) {
    let Some(target) = members.get(usize::from(to).wrapping_sub(1)).cloned() else {
        return;
    };
    let body = match commitments.serialize() {
        Ok(c) => PeerCommitments {
            request: req.clone(),
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
    let state = state.clone();
    tokio::spawn(async move {
        // A dropped kept-alive connection is retried once on a new one.
        for attempt in 0..2 {
            match state
                .peer_client
                .post(&target, PEER_ROUTE, bytes.clone())
                .await
            {
                Ok(_) => return,
                Err(e) if attempt == 0 => {
                    tracing::debug!(to = %target.endpoint, "commitments: {e}; retrying")
                }
                Err(e) => tracing::warn!(to = %target.endpoint, "commitments not delivered: {e}"),
            }
        }
    });
}

/// Handles a peer's commitments (`from` comes from its verified certificate).
pub fn on_commitments(
    state: &Arc<NodeState>,
    from: Participant,
    body: &[u8],
) -> Result<(), ApiError> {
    let msg: PeerCommitments =
        serde_json::from_slice(body).map_err(|e| bad("bad_request", e.to_string()))?;
    let bytes = hex::decode(&msg.commitments).map_err(|e| bad("bad_request", e.to_string()))?;
    let commitments = SigningCommitments::deserialize(&bytes)
        .map_err(|e| bad("bad_request", format!("commitments: {e}")))?;
    let (members, _) = state.members()?;
    let listed = indices(&members, &msg.request.request.participants)?;
    if !listed.contains(&from) {
        return Err(bad(
            "not_a_participant",
            "the sender is not among the request's participants",
        ));
    }
    let id = msg.request.id();
    let events = {
        let mut signer = lock(&state.signing.signer);
        match signer.as_mut() {
            Some(s) => s.on_commitments(from, id, commitments, Instant::now()),
            None => vec![],
        }
    };
    state.signing.handle(events);
    Ok(())
}

/// Expires sessions and held commitments; runs until the node stops.
pub async fn ticker(state: Arc<NodeState>) {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        let events = {
            let mut signer = lock(&state.signing.signer);
            match signer.as_mut() {
                Some(s) => s.tick(Instant::now()),
                None => vec![],
            }
        };
        state.signing.handle(events);
    }
}
