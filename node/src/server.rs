//! The node's HTTPS API over attested TLS. Users connect without a certificate; peers
//! present theirs, which the handshake verifies in full and which must then belong to a
//! registry member, staked at least the minimum, at the endpoint the registry lists.
//!
//! Routes: `GET /health`, `GET /v1/attestation?nonce=HEX` (fresh evidence bound to the
//! nonce and this connection), `POST /v1/handshake` (network, epoch, identity, registry
//! entry, the network's public keys and the DKG's state), `POST /v1/sign` (a threshold
//! signature share for a request the user authorised), `POST /v1/pkp/permissions` (the
//! owner of a derived key sets who else may sign with it). Peers only: `POST
//! /v1/peer/dkg`, `POST /v1/peer/commitments`. Errors are JSON `{"code", "message"}` with
//! a stable code.

use std::sync::{Arc, RwLock};

use keynet_protocol::auth::AuthVerifier;
use keynet_protocol::registry::NodeEntry;
use keynet_protocol::request::{Authorised, PermissionsRequest};
use keynet_store::Store;

use crate::bls::BlsCounters;
use crate::dkg::{DkgRefusal, DkgRunner, PeerDkg};
use crate::keys::NetworkKeys;
use crate::peer::Peers;
use crate::pkp::{Permissions, PkpError};
use crate::sign::SignService;
use std::time::{Duration, SystemTime};

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN};
use attestation_verifier::tls::evidence::Platform;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use keynet_protocol::registry::{Address, IdentityKey, Registry, SignedRegistry};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::RegistrySource;
use crate::evidence::EvidenceProvider;
use crate::tls::NodeTls;

/// Everything a running node holds.
pub struct NodeState {
    /// TLS certificate and key.
    pub tls: NodeTls,
    /// Evidence source.
    pub provider: Box<dyn EvidenceProvider>,
    /// This node's identity key.
    pub identity: IdentityKey,
    /// The endpoint bound into the evidence.
    pub endpoint: String,
    /// The current registry.
    pub registry: RwLock<Registry>,
    /// Verifies peers' certificates.
    pub peers: Arc<NodeVerifier>,
    /// Sealed state: identity, network keys, permissions.
    pub store: Store,
    /// This node's share of the network's keys, once the DKG is done.
    pub keys: RwLock<Option<Arc<NetworkKeys>>>,
    /// The key generation.
    pub dkg: DkgRunner,
    /// Signing sessions.
    pub signing: SignService,
    /// Counters of the conditional BLS operations.
    pub bls: BlsCounters,
    /// Checks users' authorisations (and remembers their nonces).
    pub auth: AuthVerifier,
    /// Who may sign with each derived key.
    pub pkp: Permissions,
    /// Connections to the other nodes.
    pub peer_client: Peers,
}

impl NodeState {
    /// The network keys, if the DKG is done.
    pub fn keys(&self) -> Option<Arc<NetworkKeys>> {
        self.keys.read().ok().and_then(|k| k.clone())
    }

    /// Puts keys in force (after a DKG, or loaded at start) and opens signing.
    pub fn install_keys(&self, keys: NetworkKeys) {
        self.signing.install(keys.me, keys.n, keys.frost.clone());
        if let Ok(mut k) = self.keys.write() {
            *k = Some(Arc::new(keys));
        }
    }

    /// The network keys in force for a request naming `network`: 503 while there are none
    /// or while they belong to another registry epoch (participant numbers come from the
    /// registry; a new epoch has its own DKG), 400 for another network.
    pub fn keys_for(&self, network: &str) -> Result<Arc<NetworkKeys>, ApiError> {
        let keys = self.keys().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_keys",
                format!(
                    "this node holds no network keys yet (DKG {})",
                    self.dkg.status().state
                ),
            )
        })?;
        let epoch = self.registry.read().map(|r| r.epoch).unwrap_or(0);
        if keys.epoch != epoch {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_stale",
                format!(
                    "this node's keys are for epoch {}, the registry is at epoch {epoch} (DKG {})",
                    keys.epoch,
                    self.dkg.status().state
                ),
            ));
        }
        if network != keys.network {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "wrong_network",
                format!("this node serves {}, not {network}", keys.network),
            ));
        }
        Ok(keys)
    }

    /// The registry's nodes and threshold.
    pub fn members(&self) -> Result<(Vec<NodeEntry>, u16), ApiError> {
        let reg = self.registry.read().map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "registry lock poisoned",
            )
        })?;
        Ok((
            reg.nodes.clone(),
            u16::try_from(reg.threshold()).unwrap_or(u16::MAX),
        ))
    }
}

/// An API error: HTTP status, stable code, message, and optional structured detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    detail: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// An error with `status`, stable `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds a structured field `key` to the JSON error (e.g. which condition failed).
    pub fn with(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.detail = Some((key, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some((k, v)), Some(o)) = (self.detail, body.as_object_mut()) {
            o.insert(k.to_owned(), v);
        }
        (self.status, Json(body)).into_response()
    }
}

/// What the API knows about the connection a request came on.
#[derive(Clone)]
struct Conn {
    exporter: [u8; EXPORTER_LEN],
    /// The peer node's identity, if the client presented an admitted node certificate.
    peer: Option<IdentityKey>,
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A JSON error with a stable code.
fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message.into() })),
    )
        .into_response()
}

fn platform_fields(state: &NodeState) -> serde_json::Value {
    match state.provider.platform() {
        Platform::Snp => json!({ "platform": "snp" }),
        _ => json!({ "platform": "snp-simulated", "warning": crate::evidence::simulated::WARNING }),
    }
}

async fn health(State(s): State<Arc<NodeState>>) -> Response {
    use std::sync::atomic::Ordering;
    let mut v = json!({
        "status": "ok",
        "endpoint": s.endpoint,
        "dkg": s.dkg.status().state,
        "signing": {
            "shares_issued": s.signing.shares_issued.load(Ordering::Relaxed),
            "dropped_unverified": s.signing.dropped_unverified.load(Ordering::Relaxed),
        },
        "bls": s.bls.json(),
    });
    if let (Some(o), Some(p)) = (v.as_object_mut(), platform_fields(&s).as_object()) {
        o.extend(p.clone());
    }
    Json(v).into_response()
}

#[derive(serde::Deserialize)]
struct NonceQuery {
    nonce: Option<String>,
}

async fn attestation(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    Query(q): Query<NonceQuery>,
) -> Response {
    let Some(nonce) = q.nonce else {
        return error(
            StatusCode::BAD_REQUEST,
            "nonce_missing",
            "give ?nonce=HEX (16 to 64 bytes)",
        );
    };
    let nonce = match hex::decode(&nonce) {
        Ok(n) if (16..=64).contains(&n.len()) => n,
        Ok(n) => {
            return error(
                StatusCode::BAD_REQUEST,
                "nonce_length",
                format!("nonce is {} bytes; 16 to 64 required", n.len()),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "nonce_hex",
                format!("nonce is not hex: {e}"),
            );
        }
    };
    let state = s.clone();
    let result = tokio::task::spawn_blocking(move || {
        state
            .tls
            .fresh_evidence(state.provider.as_ref(), &nonce, &conn.exporter)
    })
    .await;
    match result {
        Ok(Ok(ev)) => {
            let mut v = json!({ "evidence": base64::engine::general_purpose::STANDARD.encode(ev.encode()) });
            if let (Some(o), Some(p)) = (v.as_object_mut(), platform_fields(&s).as_object()) {
                o.extend(p.clone());
            }
            Json(v).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "evidence_unavailable",
            e.to_string(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn handshake(State(s): State<Arc<NodeState>>) -> Response {
    let Ok(reg) = s.registry.read() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "registry lock poisoned",
        );
    };
    let entry = reg.member(&s.identity).map(|e| {
        json!({
            "identity_key": e.identity_key.to_string(),
            "staker": e.staker.to_checksum(),
            "stake": e.stake.to_string(),
            "endpoint": e.endpoint,
        })
    });
    let mut v = json!({
        "network_id": reg.network_id,
        "epoch": reg.epoch,
        "threshold": reg.threshold(),
        "identity_key": s.identity.to_string(),
        "registry_entry": entry,
        "public_keys": s.keys().map(|k| k.public_json()).unwrap_or_else(|| json!({})),
        "dkg": s.dkg.status(),
    });
    if let (Some(o), Some(p)) = (v.as_object_mut(), platform_fields(&s).as_object()) {
        o.extend(p.clone());
    }
    Json(v).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn sign(State(s): State<Arc<NodeState>>, body: Bytes) -> Response {
    match crate::sign::sign(&s, &body).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn decrypt_share(State(s): State<Arc<NodeState>>, body: Bytes) -> Response {
    match crate::bls::decrypt_share(&s, &body) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn bls_sign(State(s): State<Arc<NodeState>>, body: Bytes) -> Response {
    match crate::bls::bls_sign(&s, &body) {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn permissions(State(s): State<Arc<NodeState>>, body: Bytes) -> Response {
    let req: Authorised<PermissionsRequest> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    if let Err(e) = req.request.validate() {
        return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string());
    }
    let network = s
        .registry
        .read()
        .map(|r| r.network_id.clone())
        .unwrap_or_default();
    if req.request.network != network {
        return error(
            StatusCode::BAD_REQUEST,
            "wrong_network",
            format!("this node serves {network}, not {}", req.request.network),
        );
    }
    let user = match s
        .auth
        .verify(&req.auth, &req.request.digest(), unix_now().max(0) as u64)
    {
        Ok(u) => u,
        Err(e) => return error(StatusCode::UNAUTHORIZED, "auth_refused", e.to_string()),
    };
    // A durable write (fsync): off the async workers.
    let seq = req.request.seq;
    let st = s.clone();
    let result = tokio::task::spawn_blocking(move || st.pkp.set(&st.store, &req.request, &user))
        .await
        .unwrap_or_else(|e| Err(PkpError::Invalid(format!("task: {e}"))));
    match result {
        Ok(()) => Json(json!({ "status": "ok", "seq": seq })).into_response(),
        Err(e @ PkpError::Limit(_)) => error(StatusCode::CONFLICT, "pkp_limit", e.to_string()),
        Err(e @ PkpError::NotOwner { .. }) => {
            error(StatusCode::FORBIDDEN, "not_owner", e.to_string())
        }
        Err(e @ PkpError::Stale { .. }) => error(StatusCode::CONFLICT, "stale_seq", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// The sending peer's participant index: peer routes need an admitted node certificate.
fn peer_index(s: &NodeState, conn: &Conn) -> Result<u16, ApiError> {
    let id = conn.peer.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "peer_only",
            "this route is for registry nodes presenting their attested certificate",
        )
    })?;
    let (members, _) = s.members()?;
    members
        .iter()
        .position(|e| e.identity_key == id)
        .and_then(|i| u16::try_from(i + 1).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "not_member",
                format!("{id} is not in the registry"),
            )
        })
}

async fn peer_dkg(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    body: Bytes,
) -> Response {
    let from = match peer_index(&s, &conn) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let msg: PeerDkg = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    match crate::dkg::on_message(&s, from, msg) {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e @ DkgRefusal::Malformed(_)) => {
            error(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
        }
        Err(e @ DkgRefusal::Done { .. }) => error(StatusCode::CONFLICT, "dkg_done", e.to_string()),
        Err(e @ DkgRefusal::WrongRun { .. }) => {
            error(StatusCode::CONFLICT, "wrong_run", e.to_string())
        }
        Err(e) => error(StatusCode::CONFLICT, "dkg_unavailable", e.to_string()),
    }
}

async fn peer_commitments(
    State(s): State<Arc<NodeState>>,
    Extension(conn): Extension<Conn>,
    body: Bytes,
) -> Response {
    let result =
        peer_index(&s, &conn).and_then(|from| crate::sign::on_commitments(&s, from, &body));
    match result {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => e.into_response(),
    }
}

fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/attestation", get(attestation))
        .route("/v1/handshake", post(handshake))
        .route("/v1/sign", post(sign))
        .route("/v1/pkp/permissions", post(permissions))
        .route("/v1/decrypt-share", post(decrypt_share))
        .route("/v1/bls-sign", post(bls_sign))
        .route(crate::dkg::ROUTE, post(peer_dkg))
        .route(crate::sign::PEER_ROUTE, post(peer_commitments))
        .fallback(not_found)
        .with_state(state)
}

/// Checks a peer that presented a certificate against the current registry.
fn admit_peer(state: &NodeState, cert: &[u8]) -> Result<IdentityKey, String> {
    let node = state
        .peers
        .cached(cert, unix_now())
        .ok_or("peer certificate was not verified")?;
    let id = IdentityKey::from_sec1(&node.evidence.identity)
        .map_err(|e| format!("peer identity key: {e}"))?;
    let reg = state
        .registry
        .read()
        .map_err(|_| "registry lock poisoned")?;
    reg.check_peer(&id, &node.evidence.endpoint)
        .map(|_| id)
        .map_err(|r| format!("peer {id} refused: {r}"))
}

/// Serves connections until the listener fails.
pub async fn serve(state: Arc<NodeState>, listener: TcpListener) -> anyhow::Result<()> {
    let config = state.tls.server_config(state.peers.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = router(state.clone());
    loop {
        let (tcp, addr) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%addr, "TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let conn = tls.get_ref().1;
            let peer = match conn.peer_certificates().and_then(|c| c.first()) {
                None => None,
                Some(cert) => match admit_peer(&state, cert) {
                    Ok(id) => Some(id),
                    Err(reason) => {
                        tracing::warn!(%addr, "{reason}");
                        return;
                    }
                },
            };
            let _ = peer_set_nodelay(&tls);
            let mut exporter = [0u8; EXPORTER_LEN];
            if conn
                .export_keying_material(&mut exporter, EXPORTER_LABEL, None)
                .is_err()
            {
                return;
            }
            let svc = hyper_util::service::TowerToHyperService::new(
                app.layer(Extension(Conn { exporter, peer })),
            );
            let io = hyper_util::rt::TokioIo::new(tls);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await
            {
                tracing::debug!(%addr, "connection ended: {e}");
            }
        });
    }
}

/// Small request/response messages: no Nagle delay (peer round trips are on the signing
/// path).
fn peer_set_nodelay(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> std::io::Result<()> {
    tls.get_ref().0.set_nodelay(true)
}

/// Reads the registry document from its source. A URL is fetched with a bounded time
/// budget and retries (the KDS client's HTTP machinery, no cache).
pub fn read_registry(source: &RegistrySource) -> Result<Vec<u8>, String> {
    match source {
        RegistrySource::File(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())),
        RegistrySource::Url(u) => attestation_verifier::kds::client::KdsClient::builder()
            .base_url(u.clone())
            .time_budget(Duration::from_secs(10))
            .build()
            .and_then(|c| c.fetch(u))
            .map_err(|e| e.to_string()),
    }
}

/// Reloads the registry when it changes; a document that fails verification is logged and
/// ignored (the previous one stays in force).
pub async fn watch_registry(
    state: Arc<NodeState>,
    source: RegistrySource,
    authority: Address,
    every: Duration,
) {
    let mut last = tokio::task::spawn_blocking({
        let source = source.clone();
        move || read_registry(&source).ok()
    })
    .await
    .ok()
    .flatten();
    loop {
        tokio::time::sleep(every).await;
        let src = source.clone();
        let Ok(fetched) = tokio::task::spawn_blocking(move || read_registry(&src)).await else {
            continue;
        };
        let bytes = match fetched {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("registry {source} not readable: {e}");
                continue;
            }
        };
        if last.as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        last = Some(bytes.clone());
        match SignedRegistry::verify(&bytes, &authority) {
            Ok(reg) => {
                // Signed is not fresh: an older registry (removed nodes, another key) must
                // never come back, and an epoch's content never changes.
                let (epoch, same_epoch_changed) = match state.registry.read() {
                    Ok(cur) => (
                        cur.epoch,
                        cur.epoch == reg.epoch
                            && cur.canonical_message() != reg.canonical_message(),
                    ),
                    Err(_) => continue,
                };
                if reg.epoch < epoch || same_epoch_changed {
                    tracing::warn!(
                        held = epoch,
                        offered = reg.epoch,
                        "registry {source} not reloaded: an epoch below the one held, or epoch \
                         {epoch} with other content (a new registry needs a higher epoch)"
                    );
                    continue;
                }
                tracing::info!(
                    epoch = reg.epoch,
                    nodes = reg.nodes.len(),
                    "registry reloaded"
                );
                if let Ok(mut r) = state.registry.write() {
                    *r = reg;
                }
                crate::dkg::ensure(&state);
            }
            Err(e) => tracing::warn!("registry {source} not reloaded: {e}"),
        }
    }
}
