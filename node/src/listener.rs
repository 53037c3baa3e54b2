//! The accept loop: attested TLS for every connection (a peer's certificate is verified in
//! full during the handshake), a peer admitted only as a registry member staked at least
//! the minimum at its registered endpoint ([`keynet_net::verify::admit_peer`]), then the
//! API, told about the connection ([`Conn`]).

use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN};
use axum::Extension;
use tokio::net::TcpListener;

use crate::api::{Conn, router};
use crate::state::NodeState;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves connections until the listener fails.
pub async fn serve(state: Arc<NodeState>, listener: TcpListener) -> anyhow::Result<()> {
    let config = state.tls().server_config(state.peer_verifier().clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = router(state.clone());
    loop {
        let (tcp, addr) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            let (tcp, session) = tls.get_ref();
            let peer = match session.peer_certificates().and_then(|c| c.first()) {
                None => None,
                Some(cert) => {
                    match keynet_net::verify::admit_peer(
                        state.peer_verifier(),
                        cert,
                        &state.registry(),
                    ) {
                        Ok(id) => Some(id),
                        Err(reason) => {
                            tracing::warn!(%addr, "{reason}");
                            return;
                        }
                    }
                }
            };
            // Small request/response messages: no Nagle delay (peer round trips are on
            // the signing path).
            let _ = tcp.set_nodelay(true);
            let mut exporter = [0u8; EXPORTER_LEN];
            if session
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
