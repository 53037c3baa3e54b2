//! `POST /v1/decrypt-share` and `POST /v1/bls-sign`: a BLS signature share from this node's
//! share of the network's BLS key, given only after this node checked the user's
//! authorisation itself and evaluated the request's conditions for that user at its own
//! clock. No peer round: each node decides alone, and only the client combines shares.
//!
//! A decryption share signs the file's identity ([`keynet_encryption::identity`], 32 bytes);
//! a statement share signs [`keynet_encryption::signed_message`] (longer than 32 bytes), so
//! a statement signature is never a decryption key. A refusal on conditions is
//! `condition_failed` naming the condition.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use blsful::SignatureSchemes;
use keynet_conditions::{Conditions, Context, Presented};
use keynet_protocol::api::{BlsCounters as Counters, BlsShare, ErrorCode};
use keynet_protocol::request::{Authorised, BlsSignRequest, Conditional, DecryptRequest, Verified};

use crate::api::ApiError;
use crate::keys::NetworkKeys;
use crate::state::NodeState;

/// What the conditional operations did (served in `/health`).
#[derive(Default)]
pub struct BlsCounters {
    decryption_shares: AtomicU64,
    statement_shares: AtomicU64,
    refused_conditions: AtomicU64,
}

impl BlsCounters {
    /// The counters now.
    pub fn counters(&self) -> Counters {
        Counters {
            decryption_shares_issued: self.decryption_shares.load(Ordering::Relaxed),
            statement_shares_issued: self.statement_shares.load(Ordering::Relaxed),
            refused_conditions: self.refused_conditions.load(Ordering::Relaxed),
        }
    }
}

/// The checks both routes share: keys in force, the request addressed to this node, the
/// conditions parsed, the user's authorisation, the conditions holding for that user now.
/// Returns the verified request, the keys and the parsed conditions.
fn admit<R: Conditional>(
    state: &NodeState,
    req: Authorised<R>,
) -> Result<(Verified<R>, Arc<NetworkKeys>, Conditions), ApiError> {
    let keys = state.keys_for(req.request.network())?;
    let node = req.request.node();
    if *node != state.identity() {
        // Another node's request, replayed here (or misaddressed): answering it would hand
        // a share to whoever holds the request rather than to the user.
        return Err(ApiError::new(
            ErrorCode::WrongNode,
            format!(
                "this request is for node {node}, this is {}",
                state.identity()
            ),
        ));
    }
    // Parsed before the authorisation is checked (which uses up the user's nonce), so a
    // malformed document costs the user nothing.
    let parsed = Conditions::parse(req.request.conditions().as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::BadConditions, e.to_string()))?;
    let now = keynet_net::unix_now();
    let verified = req.verify(state.auth(), now)?;
    let presented: Vec<Presented> = verified
        .request()
        .presented()
        .iter()
        .map(|p| Presented {
            address: p.address(),
            statement: p.statement().to_owned(),
            signature: *p.signature(),
        })
        .collect();
    let ctx = Context {
        requester: verified.user(),
        now,
        presented: &presented,
    };
    if let Err(f) = parsed.evaluate(&ctx) {
        state
            .bls()
            .refused_conditions
            .fetch_add(1, Ordering::Relaxed);
        let message = f.to_string();
        return Err(
            ApiError::new(ErrorCode::ConditionFailed, message).with_condition(f.path, f.reason)
        );
    }
    Ok((verified, keys, parsed))
}

fn share_for(
    state: &NodeState,
    keys: &NetworkKeys,
    conditions: &Conditions,
    signed: &[u8],
) -> Result<BlsShare, ApiError> {
    let share = keys
        .bls
        .share
        .sign(SignatureSchemes::Basic, signed)
        .map_err(ApiError::internal)?;
    Ok(BlsShare {
        node: state.identity(),
        participant: keys.me,
        share: keynet_threshold::wire::bls_share_hex(&share).map_err(ApiError::internal)?,
        signed: hex::encode(signed),
        conditions_hash: hex::encode(conditions.hash()),
    })
}

/// Handles `POST /v1/decrypt-share`.
pub fn decrypt_share(
    state: &NodeState,
    req: Authorised<DecryptRequest>,
) -> Result<BlsShare, ApiError> {
    let (r, keys, conditions) = admit(state, req)?;
    let id = keynet_encryption::identity(&conditions, &r.request().plaintext_sha256());
    let answer = share_for(state, &keys, &conditions, &id)?;
    state
        .bls()
        .decryption_shares
        .fetch_add(1, Ordering::Relaxed);
    Ok(answer)
}

/// Handles `POST /v1/bls-sign`.
pub fn bls_sign(state: &NodeState, req: Authorised<BlsSignRequest>) -> Result<BlsShare, ApiError> {
    let (r, keys, conditions) = admit(state, req)?;
    let signed = keynet_encryption::signed_message(&conditions, r.request().message());
    let answer = share_for(state, &keys, &conditions, &signed)?;
    state.bls().statement_shares.fetch_add(1, Ordering::Relaxed);
    Ok(answer)
}
