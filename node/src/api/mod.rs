//! The node's HTTPS API: the routes of [`keynet_protocol::api`], each handler a thin step
//! from a parsed body to a service and back (`Result<Json<T>, ApiError>`), and the limits
//! every route shares, as layers.
//!
//! Users connect without a certificate; peers present theirs, which [`crate::listener`]
//! verified after the handshake and admitted: it reaches the handlers as [`Conn`]. Peer
//! routes check that first ([`Peer`]), before the body is read.

mod error;
mod extract;
mod handlers;

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use attestation_verifier::tls::binding::EXPORTER_LEN;
use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, get, post};
use keynet_net::verify::Admitted;
use keynet_protocol::api::{self, Route, route};

pub use error::ApiError;
pub use extract::{Body, EmptyOr, Peer, Unparsed};

use crate::attest::LastReport;
use crate::state::NodeState;

/// What the API knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The address it came from.
    pub addr: IpAddr,
    /// When it last had a fresh report.
    pub last_report: Arc<LastReport>,
    /// The TLS exporter value of the session (fresh evidence is bound to it).
    pub exporter: [u8; EXPORTER_LEN],
    /// The peer node, if the client presented an admitted node certificate (each peer
    /// request checks it again against the registry in force: membership, stake and
    /// endpoint, so a connection does not outlive a stake cut).
    pub peer: Option<Admitted>,
}

/// Every route, with the shared limits. Requests need a [`Conn`] extension (the listener
/// adds it per connection).
pub fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route(api::HEALTH, get(handlers::health))
        .route(api::ATTESTATION, get(handlers::attestation))
        .route(
            route::Handshake::PATH,
            post_with_limit::<route::Handshake, _>(handlers::handshake),
        )
        .route(
            route::Sign::PATH,
            post_with_limit::<route::Sign, _>(handlers::sign),
        )
        .route(
            route::Permissions::PATH,
            post_with_limit::<route::Permissions, _>(handlers::permissions),
        )
        .route(
            route::DecryptShare::PATH,
            post_with_limit::<route::DecryptShare, _>(handlers::decrypt_share),
        )
        .route(
            route::BlsSign::PATH,
            post_with_limit::<route::BlsSign, _>(handlers::bls_sign),
        )
        .route(
            route::PeerDkg::PATH,
            post_with_limit::<route::PeerDkg, _>(handlers::peer_dkg),
        )
        .route(
            route::PeerCommitments::PATH,
            post_with_limit::<route::PeerCommitments, _>(handlers::peer_commitments),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        // GET routes read no body.
        .layer(DefaultBodyLimit::max(0))
        .with_state(state)
}

/// `POST` to `handler`, reading at most `R::MAX_BODY` bytes of body (the extractors tell
/// the caller the limit when it is exceeded).
fn post_with_limit<R: Route, T: 'static>(
    handler: impl axum::handler::Handler<T, Arc<NodeState>>,
) -> MethodRouter<Arc<NodeState>> {
    post(handler)
        .layer::<_, Infallible>(DefaultBodyLimit::max(R::MAX_BODY))
        .layer::<_, Infallible>(Extension(BodyLimit(R::MAX_BODY)))
}

/// The body limit of the route a request came to.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

#[cfg(test)]
mod tests;
