//! The handlers: each parses what its route takes, calls the service that decides, and
//! answers the route's type or an [`ApiError`].

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use base64::Engine;
use keynet_protocol::api::{
    self, Ack, Attestation, AttestationQuery, BlsShare, CommitmentsAnswer, ErrorCode,
    HandshakeRequest, Health, NodeInfo, PeerCommitments, PeerDkg, PermissionsSet, SignShare,
};
use keynet_protocol::request::{
    Authorised, BlsSignRequest, DecryptRequest, PermissionsRequest, SignRequest,
};

use super::{ApiError, Body, Conn, EmptyOr, Peer, Unparsed};
use crate::state::NodeState;

type Answer<T> = Result<Json<T>, ApiError>;

pub(super) async fn health(State(s): State<Arc<NodeState>>) -> Json<Health> {
    Json(s.health())
}

/// Fresh evidence bound to the client's nonce and to this connection's exporter value,
/// metered ([`crate::attest`]).
pub(super) async fn attestation(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    query: Result<Query<AttestationQuery>, QueryRejection>,
) -> Answer<Attestation> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let nonce = q.nonce.ok_or_else(|| {
        ApiError::new(ErrorCode::NonceMissing, "give ?nonce=HEX (16 to 64 bytes)")
    })?;
    let nonce = hex::decode(&nonce)
        .map_err(|e| ApiError::new(ErrorCode::NonceHex, format!("nonce is not hex: {e}")))?;
    if !api::NONCE_LEN.contains(&nonce.len()) {
        return Err(ApiError::new(
            ErrorCode::NonceLength,
            format!("nonce is {} bytes; 16 to 64 required", nonce.len()),
        ));
    }
    let evidence = crate::attest::fresh(
        &s,
        conn.addr,
        conn.peer.is_some(),
        &conn.last_report,
        nonce,
        conn.exporter,
    )
    .await?;
    let (platform, warning) = s.platform();
    Ok(Json(Attestation {
        evidence: base64::engine::general_purpose::STANDARD.encode(evidence.encode()),
        platform,
        warning,
    }))
}

/// The body is `{}` (or empty): the answer depends on nothing the caller says.
pub(super) async fn handshake(
    State(s): State<Arc<NodeState>>,
    EmptyOr(_): EmptyOr<HandshakeRequest>,
) -> Json<NodeInfo> {
    Json(s.node_info())
}

pub(super) async fn sign(
    State(s): State<Arc<NodeState>>,
    Body(req): Body<Authorised<SignRequest>>,
) -> Answer<SignShare> {
    crate::sign::sign(&s, req).await.map(Json)
}

/// The rate budget comes before the body is parsed: a flood of changes beyond it costs the
/// node the read and a refusal only.
pub(super) async fn permissions(
    State(s): State<Arc<NodeState>>,
    body: Unparsed<Authorised<PermissionsRequest>>,
) -> Answer<PermissionsSet> {
    s.pkp().admit()?;
    crate::pkp::apply(&s, body.parse()?).await.map(Json)
}

/// The user's authorisation, the conditions and the BLS share are all work a stranger can
/// ask for: metered ([`crate::work`]), off the async workers.
pub(super) async fn decrypt_share(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    Body(req): Body<Authorised<DecryptRequest>>,
) -> Answer<BlsShare> {
    metered(s, &conn, move |st| crate::bls::decrypt_share(st, req)).await
}

/// Metered like [`decrypt_share`].
pub(super) async fn bls_sign(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    Body(req): Body<Authorised<BlsSignRequest>>,
) -> Answer<BlsShare> {
    metered(s, &conn, move |st| crate::bls::bls_sign(st, req)).await
}

/// Runs `job` as the connection's metered verification and signing work.
async fn metered<T, F>(s: Arc<NodeState>, conn: &Conn, job: F) -> Answer<T>
where
    T: Send + 'static,
    F: FnOnce(&NodeState) -> Result<T, ApiError> + Send + 'static,
{
    let st = s.clone();
    s.cpu()
        .run(conn.addr, conn.peer.is_some(), move || job(&st))
        .await?
        .map(Json)
}

pub(super) async fn peer_dkg(
    State(s): State<Arc<NodeState>>,
    Peer(from): Peer,
    Body(msg): Body<PeerDkg>,
) -> Answer<Ack> {
    crate::dkg::on_message(&s, from, &msg)?;
    Ok(Json(Ack::ok()))
}

pub(super) async fn peer_commitments(
    State(s): State<Arc<NodeState>>,
    Peer(from): Peer,
    Body(msg): Body<PeerCommitments>,
) -> Answer<CommitmentsAnswer> {
    crate::sign::on_commitments(&s, from, msg).map(Json)
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route takes another method (GET /health and /v1/attestation; POST the rest)",
    )
}
