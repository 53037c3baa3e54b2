//! Talking to other nodes: mutual attested TLS (this node presents its own attested
//! certificate; the peer's is verified in full during the handshake), then a check that
//! the node reached is the registry member we meant (same identity key, same endpoint),
//! and kept-alive HTTP/1.1 for the protocol messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use keynet::http::{Pool, send};
use keynet_protocol::registry::NodeEntry;

use crate::server::unix_now;
use crate::tls::NodeTls;

/// Why a peer could not be reached or did not accept a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// No connection, or no answer.
    #[error(transparent)]
    Transport(#[from] keynet::http::HttpError),
    /// The node that answered is not the registry member we dialled.
    #[error("{endpoint}: the node there is not the registry member {expected}")]
    Impostor {
        /// Where we dialled.
        endpoint: String,
        /// Whom we expected.
        expected: String,
    },
    /// The peer answered with an error.
    #[error("{endpoint} answered {status}: {body}")]
    Refused {
        /// The peer.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Its JSON error.
        body: String,
    },
    /// The TLS configuration could not be built.
    #[error("peer TLS: {0}")]
    Tls(String),
}

/// Connections to the other nodes.
pub struct Peers {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<NodeVerifier>,
    pools: Mutex<HashMap<(String, String), Arc<Pool>>>,
    timeout: Duration,
}

impl Peers {
    /// Dials with `tls`'s certificate; `verifier` checks the peers.
    pub fn new(
        tls: &NodeTls,
        verifier: Arc<NodeVerifier>,
        timeout: Duration,
    ) -> Result<Peers, PeerError> {
        let config = tls
            .peer_client_config(verifier.clone())
            .map_err(|e| PeerError::Tls(e.to_string()))?;
        Ok(Peers {
            config: Arc::new(config),
            verifier,
            pools: Mutex::new(HashMap::new()),
            timeout,
        })
    }

    fn pool(&self, to: &NodeEntry) -> Arc<Pool> {
        let key = (to.identity_key.to_string(), to.endpoint.clone());
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools
            .entry(key)
            .or_insert_with(|| Arc::new(Pool::new(&to.endpoint, self.config.clone(), self.timeout)))
            .clone()
    }

    /// POSTs `body` (JSON) to `path` on `to`; the answer's body if it is a 2xx.
    pub async fn post(
        &self,
        to: &NodeEntry,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, PeerError> {
        let pool = self.pool(to);
        let (mut sender, cert) = pool.take().await?;
        if let Some((cert, _)) = cert {
            // The handshake proved a genuine node; it must also be the member we dialled.
            let ok = self.verifier.cached(&cert, unix_now()).is_some_and(|n| {
                n.evidence.identity.as_slice() == to.identity_key.as_bytes().as_slice()
                    && n.evidence.endpoint.eq_ignore_ascii_case(&to.endpoint)
            });
            if !ok {
                return Err(PeerError::Impostor {
                    endpoint: to.endpoint.clone(),
                    expected: to.identity_key.to_string(),
                });
            }
        }
        let (status, answer) =
            send(&mut sender, &to.endpoint, "POST", path, body, self.timeout).await?;
        pool.put(sender);
        if !(200..300).contains(&status) {
            return Err(PeerError::Refused {
                endpoint: to.endpoint.clone(),
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            });
        }
        Ok(answer)
    }
}
