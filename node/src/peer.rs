//! Talking to other nodes: mutual attested TLS (this node presents its own attested
//! certificate; the peer's is verified in full during the handshake), then the network
//! layer's one check that the node reached is the registry member meant, with fresh
//! evidence bound to the session ([`keynet_net::verify::verify_node`]), and kept-alive
//! HTTP/1.1 for the protocol messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use keynet_net::pool::{CallError, Pool};
use keynet_net::tls::TlsError;
use keynet_protocol::api::Route;
use keynet_protocol::registry::{IdentityKey, NodeEntry};

use crate::tls::NodeTls;

/// Connections to the other nodes, one pool per registry member (identity and endpoint).
pub struct Peers {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<NodeVerifier>,
    pools: Mutex<HashMap<(IdentityKey, String), Arc<Pool>>>,
    timeout: Duration,
}

impl Peers {
    /// Dials with `tls`'s certificate; `verifier` checks the peers.
    pub fn new(
        tls: &NodeTls,
        verifier: Arc<NodeVerifier>,
        timeout: Duration,
    ) -> Result<Peers, TlsError> {
        let config = keynet_net::tls::client_config(verifier.clone(), Some(tls.certified_key()))?;
        Ok(Peers {
            config: Arc::new(config),
            verifier,
            pools: Mutex::new(HashMap::new()),
            timeout,
        })
    }

    fn pool(&self, to: &NodeEntry) -> Arc<Pool> {
        let key = (to.identity_key, to.endpoint.clone());
        let mut pools = crate::lock(&self.pools);
        pools
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Pool::new(
                    to.clone(),
                    self.config.clone(),
                    self.verifier.clone(),
                    self.timeout,
                ))
            })
            .clone()
    }

    /// POSTs route `R` with a body already encoded (one encoding sent to several peers)
    /// to the member `to`.
    pub async fn call_raw<R: Route>(
        &self,
        to: &NodeEntry,
        body: Vec<u8>,
    ) -> Result<R::Response, CallError> {
        self.pool(to).call_raw::<R>(body).await
    }
}
