//! Kept-alive connections to one registry member, and typed calls of the node API on them.
//!
//! A connection enters the pool only after [`verify_node`] accepted the node at its other
//! end as the member meant, so every request, on a new connection or a kept one, goes to a
//! verified node. A connection that failed is dropped; the next request opens a new one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use keynet_protocol::api::{ErrorBody, ErrorCode, Route};
use keynet_protocol::registry::NodeEntry;
use serde::de::DeserializeOwned;

use crate::http::{HttpError, error_body, open, send};
use crate::verify::{VerifyError, verify_node};

/// Connections kept idle per node at most.
const MAX_IDLE: usize = 16;

/// Why a call did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No connection, no answer, or the fresh-evidence exchange failed in transit.
    #[error(transparent)]
    Unreachable(#[from] HttpError),
    /// The node reached is not (or could not be shown to be) the registry member meant.
    #[error("{endpoint}: {reason}")]
    NotTheNode {
        /// Where we dialled.
        endpoint: String,
        /// The failed checks.
        reason: String,
    },
    /// The node refused, with the API's error body.
    #[error("{endpoint} answered {status} {}: {}", .body.code, .body.message)]
    Refused {
        /// The node.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Its error (code `unknown` if the body was not the API's).
        body: ErrorBody,
    },
    /// A 200 answer that is not the route's answer type.
    #[error("{endpoint}: answer: {reason}")]
    BadAnswer {
        /// The node.
        endpoint: String,
        /// Why it does not decode.
        reason: String,
    },
    /// The request could not be encoded (nothing was sent).
    #[error("encoding the request: {0}")]
    Encode(String),
}

impl CallError {
    /// The node's error code, if the node answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            CallError::Refused { body, .. } => Some(body.code),
            _ => None,
        }
    }
}

impl From<VerifyError> for CallError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Transport(h) => CallError::Unreachable(h),
            VerifyError::Unusable { endpoint, reason } => {
                CallError::NotTheNode { endpoint, reason }
            }
        }
    }
}

/// Kept-alive, verified connections to one registry member.
pub struct Pool {
    member: NodeEntry,
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<NodeVerifier>,
    timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Pool {
    /// A pool for `member`; `config` (from [`crate::tls::client_config`] with `verifier`)
    /// verifies it during each handshake; `timeout` bounds each connect, handshake and
    /// exchange.
    pub fn new(
        member: NodeEntry,
        config: Arc<rustls::ClientConfig>,
        verifier: Arc<NodeVerifier>,
        timeout: Duration,
    ) -> Pool {
        Pool {
            member,
            config,
            verifier,
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The member this pool reaches.
    pub fn member(&self) -> &NodeEntry {
        &self.member
    }

    /// An idle connection, or a new one whose node was verified as the member.
    async fn take(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(s) if !s.is_closed() => return Ok(s),
                Some(_) => continue,
                None => break,
            }
        }
        let endpoint = &self.member.endpoint;
        let mut opened = open(endpoint, self.config.clone(), self.timeout).await?;
        let checked = verify_node(
            &mut opened,
            endpoint,
            &self.verifier,
            Some(&self.member),
            self.timeout,
        )
        .await?;
        if !checked.verdict.accepted {
            return Err(CallError::NotTheNode {
                endpoint: endpoint.clone(),
                reason: checked.failures(),
            });
        }
        Ok(opened.sender)
    }

    fn put(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    /// One request on a verified connection: (HTTP status, body), whatever the status.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), CallError> {
        let mut sender = self.take().await?;
        let answer = send(
            &mut sender,
            &self.member.endpoint,
            method,
            path,
            body,
            self.timeout,
        )
        .await?;
        self.put(sender);
        Ok(answer)
    }

    /// `POST` route `R` with `request`: its answer, or the node's refusal.
    pub async fn call<R: Route>(&self, request: &R::Request) -> Result<R::Response, CallError> {
        let body = serde_json::to_vec(request).map_err(|e| CallError::Encode(e.to_string()))?;
        self.call_raw::<R>(body).await
    }

    /// `POST` route `R` with a body already encoded (one encoding sent to many nodes).
    pub async fn call_raw<R: Route>(&self, body: Vec<u8>) -> Result<R::Response, CallError> {
        let (status, answer) = self.request("POST", R::PATH, body).await?;
        self.decode(status, &answer)
    }

    fn decode<T: DeserializeOwned>(&self, status: u16, answer: &[u8]) -> Result<T, CallError> {
        let endpoint = self.member.endpoint.clone();
        if status != 200 {
            return Err(CallError::Refused {
                endpoint,
                status,
                body: error_body(answer),
            });
        }
        serde_json::from_slice(answer).map_err(|e| CallError::BadAnswer {
            endpoint,
            reason: e.to_string(),
        })
    }
}
