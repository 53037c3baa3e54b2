//! Extractors that answer in the API's error shape: a JSON body of a route's type, and the
//! admitted peer behind a peer route.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use keynet_protocol::api::{self, ErrorCode};
use keynet_threshold::dkg::Participant;
use serde::de::DeserializeOwned;

use super::{ApiError, BodyLimit, Conn};
use crate::state::NodeState;

/// A JSON body of type `T`, parsed (and so checked: the request types check themselves
/// while parsing). Refused as `payload_too_large` over the route's limit, else
/// `bad_request` naming the field, line and column.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse(&read(req, state).await?).map(Body)
    }
}

/// Like [`Body`], but an empty body is `T::default()` (`POST /v1/handshake`, whose body
/// says nothing, has always been sent empty by some callers).
pub struct EmptyOr<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for EmptyOr<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read(req, state).await?;
        if bytes.is_empty() {
            return Ok(EmptyOr(T::default()));
        }
        parse(&bytes).map(EmptyOr)
    }
}

/// A body of type `T`, read within the route's limit but parsed only when asked: for a
/// route whose cheap admission check comes first (`/v1/pkp/permissions`, whose rate budget
/// refuses a flood before any parsing).
pub struct Unparsed<T>(Bytes, PhantomData<T>);

impl<T: DeserializeOwned> Unparsed<T> {
    /// The body as `T`, or `bad_request` naming the field, line and column.
    pub fn parse(&self) -> Result<T, ApiError> {
        parse(&self.0)
    }
}

impl<S: Send + Sync, T> FromRequest<S> for Unparsed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Unparsed(read(req, state).await?, PhantomData))
    }
}

/// The body as `T`, or `bad_request` naming the field, line and column.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(ApiError::bad_request)
}

/// The whole body, within the route's limit.
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(api::MAX_BODY, |l| l.0);
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than this route's {limit} bytes"),
            )
        } else {
            ApiError::bad_request(format!(
                "the body could not be read: {}",
                rejection.into_response().status()
            ))
        }
    })
}

/// The participant index of the peer node behind this connection: peer routes need an
/// admitted node certificate, of a node that is in the registry now, staked at least the
/// minimum, at the endpoint its evidence carries.
pub struct Peer(pub Participant);

impl FromRequestParts<Arc<NodeState>> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<NodeState>,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<Conn>()
            .and_then(|c| c.peer.as_ref())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PeerOnly,
                    "this route is for registry nodes presenting their attested certificate",
                )
            })?;
        // Admitted when the connection opened; checked again under the registry in force
        // now, so a node removed, cut below the minimum stake or moved is refused on a
        // connection it kept alive.
        let registry = state.registry();
        registry
            .check_peer(&peer.identity, &peer.endpoint)
            .map_err(|refusal| {
                ApiError::new(
                    ErrorCode::NotMember,
                    format!("{}: {refusal}", peer.identity),
                )
            })?;
        registry
            .participant(&peer.identity)
            .map(Peer)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotMember,
                    format!("{} is not in the registry", peer.identity),
                )
            })
    }
}
