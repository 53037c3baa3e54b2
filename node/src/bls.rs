//! `POST /v1/decrypt-share` and `POST /v1/bls-sign`: a BLS signature share from this node's
//! share of the network's BLS key, given only after this node checked the user's
//! authorisation itself and evaluated the request's conditions for that user at its own
//! clock. No peer round: each node decides alone, and only the client combines shares.
//!
//! A decryption share signs the file's identity ([`keynet_encryption::identity`], 32 bytes);
//! a statement share signs [`keynet_encryption::signed_message`] (longer than 32 bytes), so
//! a statement signature is never a decryption key. A refusal on conditions is 403
//! `condition_failed` with `{"condition": {"path", "reason"}}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use blsful::SignatureSchemes;
use keynet_conditions::{Conditions, Context, Presented};
use keynet_protocol::registry::{Address, IdentityKey};
use keynet_protocol::request::{
    Authorised, BlsSignRequest, DecryptRequest, PresentedSignature, RequestError,
};
use keynet_threshold::dkg::Participant;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::keys::NetworkKeys;
use crate::server::{ApiError, NodeState, unix_now};

/// A node's answer: its BLS signature share and what it signed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlsShareResponse {
    /// The node.
    pub node: IdentityKey,
    /// Its participant index (1-based registry position).
    pub participant: Participant,
    /// The signature share (hex of blsful's byte form, basic scheme, G1).
    pub share: String,
    /// The bytes signed (hex): the identity, or the domain-separated statement.
    pub signed: String,
    /// The canonical conditions' hash (hex) the node evaluated.
    pub conditions_hash: String,
}

/// What the conditional operations did (served in `/health`).
#[derive(Default)]
pub struct BlsCounters {
    decryption_shares: AtomicU64,
    statement_shares: AtomicU64,
    refused_conditions: AtomicU64,
}

impl BlsCounters {
    /// The counters as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "decryption_shares_issued": self.decryption_shares.load(Ordering::Relaxed),
            "statement_shares_issued": self.statement_shares.load(Ordering::Relaxed),
            "refused_conditions": self.refused_conditions.load(Ordering::Relaxed),
        })
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// What the two conditional requests share, for [`admit`].
trait Conditional: serde::de::DeserializeOwned {
    /// Network, addressed node, conditions text, presented signatures.
    fn parts(&self) -> (&str, &IdentityKey, &str, &[PresentedSignature]);
    fn checked(&self) -> Result<(), RequestError>;
    fn digest_of(&self) -> [u8; 32];
}

impl Conditional for DecryptRequest {
    fn parts(&self) -> (&str, &IdentityKey, &str, &[PresentedSignature]) {
        (&self.network, &self.node, &self.conditions, &self.presented)
    }
    fn checked(&self) -> Result<(), RequestError> {
        self.validate()
    }
    fn digest_of(&self) -> [u8; 32] {
        self.digest()
    }
}

impl Conditional for BlsSignRequest {
    fn parts(&self) -> (&str, &IdentityKey, &str, &[PresentedSignature]) {
        (&self.network, &self.node, &self.conditions, &self.presented)
    }
    fn checked(&self) -> Result<(), RequestError> {
        self.validate()
    }
    fn digest_of(&self) -> [u8; 32] {
        self.digest()
    }
}

/// Parses a request and runs the checks both routes share: keys in force, the request
/// addressed to this node, the user's authorisation, the conditions parsed and holding for
/// that user now. Returns the request, the keys and the parsed conditions.
fn admit<R: Conditional>(
    state: &NodeState,
    body: &[u8],
) -> Result<(R, Arc<NetworkKeys>, Conditions), ApiError> {
    let req: Authorised<R> =
        serde_json::from_slice(body).map_err(|e| bad("bad_request", e.to_string()))?;
    req.request
        .checked()
        .map_err(|e| bad("bad_request", e.to_string()))?;
    let (network, node, conditions, presented) = req.request.parts();
    let keys = state.keys_for(network)?;
    if *node != state.identity {
        // Another node's request, replayed here (or misaddressed): answering it would hand
        // a share to whoever holds the request rather than to the user.
        return Err(bad(
            "wrong_node",
            format!(
                "this request is for node {node}, this is {}",
                state.identity
            ),
        ));
    }
    // Parsed before the authorisation is checked (which uses up the user's nonce), so a
    // malformed document costs the user nothing.
    let parsed = Conditions::parse(conditions.as_bytes())
        .map_err(|e| bad("bad_conditions", e.to_string()))?;
    let presented = presented
        .iter()
        .map(|p| {
            Ok(Presented {
                address: p.address,
                statement: p.statement.clone(),
                signature: p
                    .signature_bytes()
                    .map_err(|e| bad("bad_request", e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let now = unix_now().max(0) as u64;
    let user: Address = state
        .auth
        .verify(&req.auth, &req.request.digest_of(), now)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "auth_refused", e.to_string()))?;
    let ctx = Context {
        requester: user,
        now,
        presented: &presented,
    };
    if let Err(f) = parsed.evaluate(&ctx) {
        state.bls.refused_conditions.fetch_add(1, Ordering::Relaxed);
        return Err(
            ApiError::new(StatusCode::FORBIDDEN, "condition_failed", f.to_string())
                .with("condition", json!({ "path": f.path, "reason": f.reason })),
        );
    }
    Ok((req.request, keys, parsed))
}

fn share_for(
    state: &NodeState,
    keys: &NetworkKeys,
    conditions: &Conditions,
    signed: &[u8],
) -> Result<BlsShareResponse, ApiError> {
    let internal = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let share = keys
        .bls
        .share
        .sign(SignatureSchemes::Basic, signed)
        .map_err(|e| internal(e.to_string()))?;
    Ok(BlsShareResponse {
        node: state.identity,
        participant: keys.me,
        share: keynet_threshold::wire::bls_share_hex(&share)
            .map_err(|e| internal(e.to_string()))?,
        signed: hex::encode(signed),
        conditions_hash: hex::encode(conditions.hash()),
    })
}

/// Handles `POST /v1/decrypt-share`.
pub fn decrypt_share(state: &NodeState, body: &[u8]) -> Result<BlsShareResponse, ApiError> {
    let (r, keys, conditions) = admit::<DecryptRequest>(state, body)?;
    let id = keynet_encryption::identity(&conditions, &r.plaintext_sha256.0);
    let answer = share_for(state, &keys, &conditions, &id)?;
    state.bls.decryption_shares.fetch_add(1, Ordering::Relaxed);
    Ok(answer)
}

/// Handles `POST /v1/bls-sign`.
pub fn bls_sign(state: &NodeState, body: &[u8]) -> Result<BlsShareResponse, ApiError> {
    let (r, keys, conditions) = admit::<BlsSignRequest>(state, body)?;
    let message = r
        .message_bytes()
        .map_err(|e| bad("bad_request", e.to_string()))?;
    let signed = keynet_encryption::signed_message(&conditions, &message);
    let answer = share_for(state, &keys, &conditions, &signed)?;
    state.bls.statement_shares.fetch_add(1, Ordering::Relaxed);
    Ok(answer)
}
