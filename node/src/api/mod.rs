//! The node's HTTPS API: the routes of [`keynet_protocol::api`], each handler a thin step
//! from a parsed body to a service and back (`Result<Json<T>, ApiError>`), and the limits
//! every route shares, as layers.
//!
//! Users connect without a certificate; peers present theirs, which the handshake
//! verified and [`crate::listener`] admitted: it reaches the handlers as [`Conn`]. Peer
//! routes check that first ([`Peer`]), before the body is read.

mod error;
mod extract;
mod handlers;

use std::sync::Arc;

use attestation_verifier::tls::binding::EXPORTER_LEN;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use keynet_protocol::api::{self, Route, route};
use keynet_protocol::registry::IdentityKey;

pub use error::ApiError;
pub use extract::{Body, EmptyOr, Peer};

use crate::state::NodeState;

/// What the API knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The TLS exporter value of the session (fresh evidence is bound to it).
    pub exporter: [u8; EXPORTER_LEN],
    /// The peer node's identity, if the client presented an admitted node certificate.
    pub peer: Option<IdentityKey>,
}

/// Every route, with the shared limits. Requests need a [`Conn`] extension (the listener
/// adds it per connection).
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route(api::HEALTH, get(handlers::health))
        .route(api::ATTESTATION, get(handlers::attestation))
        .route(route::Handshake::PATH, post(handlers::handshake))
        .route(route::Sign::PATH, post(handlers::sign))
        .route(route::Permissions::PATH, post(handlers::permissions))
        .route(route::DecryptShare::PATH, post(handlers::decrypt_share))
        .route(route::BlsSign::PATH, post(handlers::bls_sign))
        .route(route::PeerDkg::PATH, post(handlers::peer_dkg))
        .route(
            route::PeerCommitments::PATH,
            post(handlers::peer_commitments),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .with_state(state)
}

#[cfg(test)]
mod tests;
