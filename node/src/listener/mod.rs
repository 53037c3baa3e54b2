//! The accept loop: attested TLS for every connection; a client that presents a
//! certificate is admitted as a peer only as a registry member staked at least the minimum
//! at its registered endpoint (checked first on what the certificate claims, a parse and a
//! lookup) whose certificate then verifies in full, as metered work ([`crate::work`]) off
//! the async workers ([`keynet_net::verify`]); then the API, told about the connection
//! ([`Conn`]). Peers' connections the registry in force no longer admits are closed
//! within a second.
//!
//! What a stranger can make it hold is bounded ([`conns`]): connections in all and per
//! address, each phase timed (handshake, request headers, idle between requests, whole
//! request). The loop never ends on an accept error: running out of file descriptors is
//! logged and waited out, while the table evicts idle connections to make room.

pub mod conns;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attestation_verifier::tls::binding::{EXPORTER_LABEL, EXPORTER_LEN};
use axum::Extension;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use keynet_net::verify::{self, Admitted, Claim};
use keynet_protocol::api::ErrorCode;
use tokio::net::{TcpListener, TcpStream};

use crate::api::{ApiError, Conn, router};
use crate::config::LimitsSection;
use crate::state::NodeState;
use conns::{ConnLimits, ConnTable, Held};

/// File descriptors kept out of the connection budget: sealed files, the registry, peer
/// connections this node opens, the secure processor's device.
const RESERVED_FDS: u64 = 256;

/// How often idle and stalled connections are looked for, and counts logged when changed.
const SWEEP: Duration = Duration::from_secs(1);
const REPORT: Duration = Duration::from_secs(10);

/// The timings and sizes the listener enforces.
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// Connection counts.
    pub conns: ConnLimits,
    /// A TLS handshake.
    pub handshake: Duration,
    /// A request's headers.
    pub header: Duration,
    /// Between requests.
    pub idle: Duration,
    /// A whole request.
    pub request: Duration,
}

impl Listening {
    /// The configured limits, with the connection count lowered to fit `open_files` (the
    /// process's limit of open files) less a reserve.
    pub fn new(c: &LimitsSection, open_files: u64) -> Listening {
        let fit =
            usize::try_from(open_files.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
        let total = c.max_connections.min(fit);
        if total < c.max_connections {
            tracing::warn!(
                configured = c.max_connections,
                open_files,
                "limits.max_connections lowered to {total} to fit the open-file limit"
            );
        }
        Listening {
            conns: ConnLimits {
                total,
                per_address: c.max_connections_per_address.min(total),
            },
            handshake: Duration::from_secs(c.handshake_timeout_seconds),
            header: Duration::from_secs(c.header_timeout_seconds),
            idle: Duration::from_secs(c.idle_timeout_seconds),
            request: Duration::from_secs(c.request_timeout_seconds),
        }
    }
}

/// Serves connections; returns only if the TLS configuration cannot be made.
pub async fn serve(
    state: Arc<NodeState>,
    listener: TcpListener,
    limits: Listening,
) -> anyhow::Result<()> {
    let config = state.tls().server_config(state.peer_verifier().clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = router(state.clone());
    let table = ConnTable::new(limits.conns);
    tokio::spawn(sweep(state.clone(), table.clone(), limits));
    let mut backoff = Duration::ZERO;
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(a) => {
                backoff = Duration::ZERO;
                a
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: waiting lets connections close (the
                // sweep evicts idle ones). Others (ECONNABORTED) concern one connection.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::warn!("accept: {e}; waiting {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let (held, kick) = match table.admit(addr.ip(), Instant::now()) {
            Ok(h) => h,
            // Dropping the socket refuses it; the periodic count says how many were.
            Err(_) => continue,
        };
        let conn = Connection {
            state: state.clone(),
            acceptor: acceptor.clone(),
            app: app.clone(),
            limits,
            addr,
            held: Arc::new(held),
        };
        tokio::spawn(async move {
            tokio::select! {
                () = conn.run(tcp) => {}
                // Evicted (or expired) by the table: dropping the future closes the socket.
                _ = kick => {}
            }
        });
    }
}

/// Expires stalled handshakes and idle connections, closes peers' connections the registry
/// in force no longer admits, and logs the counts when they change.
async fn sweep(state: Arc<NodeState>, table: Arc<ConnTable>, limits: Listening) {
    let mut last = table.counts();
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(SWEEP).await;
        table.expire(Instant::now(), limits.handshake, limits.idle);
        // Every sweep, not only when the registry changes: a peer admitted under the old
        // registry while the new one came in force is caught too. (A lookup per peer
        // connection, a bounded set.)
        let registry = state.registry();
        let closed = table.drop_peers(|p| registry.check_peer(&p.identity, &p.endpoint).is_ok());
        if closed > 0 {
            tracing::info!(
                closed,
                epoch = registry.epoch,
                "closed peers' connections the registry in force no longer admits"
            );
        }
        let now = table.counts();
        if last_report.elapsed() >= REPORT
            && (now.evicted, now.refused) != (last.evicted, last.refused)
        {
            tracing::warn!(
                open = now.open,
                evicted = now.evicted - last.evicted,
                refused = now.refused - last.refused,
                "connection limits reached (max {} in all, {} per address)",
                limits.conns.total,
                limits.conns.per_address
            );
            last = now;
            last_report = Instant::now();
        }
    }
}

/// One accepted connection.
struct Connection {
    state: Arc<NodeState>,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: Listening,
    addr: SocketAddr,
    held: Arc<Held>,
}

impl Connection {
    async fn run(self, tcp: TcpStream) {
        let addr = self.addr;
        let tls = match tokio::time::timeout(self.limits.handshake, self.acceptor.accept(tcp)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%addr, "TLS handshake refused: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%addr, "TLS handshake timed out");
                return;
            }
        };
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        let peer = match cert {
            None => None,
            Some(cert) => match self.admit(cert).await {
                Some(admitted) => Some(admitted),
                None => return,
            },
        };
        let (tcp, session) = tls.get_ref();
        self.held.established(peer.clone());
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
        let app = hyper_util::service::TowerToHyperService::new(self.app.layer(Extension(Conn {
            addr: addr.ip(),
            last_report: Arc::default(),
            exporter,
            peer,
        })));
        let held = self.held.clone();
        let request_timeout = self.limits.request;
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            held.busy();
            let answer = hyper::service::Service::call(&app, req);
            let held = held.clone();
            async move {
                let response = match tokio::time::timeout(request_timeout, answer).await {
                    Ok(r) => r,
                    Err(_) => Ok(timed_out(request_timeout)),
                };
                held.idle();
                response
            }
        });
        let io = hyper_util::rt::TokioIo::new(tls);
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.limits.header)
            .serve_connection(io, svc)
            .await
        {
            tracing::debug!(%addr, "connection ended: {e}");
        }
    }
}

impl Connection {
    /// Admits the client that presented `cert` as a peer, or says why not (debug: a
    /// stranger must not be able to fill the log) and closes.
    async fn admit(&self, cert: Vec<u8>) -> Option<Admitted> {
        let addr = self.addr;
        let state = &self.state;
        match verify::claim_peer(state.peer_verifier(), &cert, &state.registry()) {
            Ok(Claim::Admitted(a)) => return Some(a),
            Ok(_) => {}
            Err(reason) => {
                tracing::debug!(%addr, "peer refused: {reason}");
                return None;
            }
        }
        let st = state.clone();
        let verified = state
            .cpu()
            .run(addr.ip(), false, move || {
                verify::admit_peer(st.peer_verifier(), &cert, &st.registry())
            })
            .await;
        match verified {
            Ok(Ok(a)) => Some(a),
            Ok(Err(reason)) => {
                // A misconfigured peer is worth a warning; a stranger claiming a member's
                // identity with made-up evidence must not fill the log.
                if warn_now() {
                    tracing::warn!(%addr, "peer refused: {reason} (more within 10 s: debug)");
                } else {
                    tracing::debug!(%addr, "peer refused: {reason}");
                }
                None
            }
            Err(busy) => {
                tracing::debug!(%addr, "peer not verified now: {}", busy.message());
                None
            }
        }
    }
}

/// Whether a warning about a refused peer may go out now (at most one per [`REPORT`]).
fn warn_now() -> bool {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut last = crate::lock(&LAST);
    let now = Instant::now();
    if last.is_some_and(|t| now.saturating_duration_since(t) < REPORT) {
        return false;
    }
    *last = Some(now);
    true
}

fn timed_out(limit: Duration) -> Response {
    ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the request took longer than {} s (body and answer together)",
            limit.as_secs()
        ),
    )
    .into_response()
}

/// The process's limit of open files, raised first to the hard limit (init gives keynode
/// 65,536 in the image); `None` if it cannot be read.
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!("raising the open-file limit to {:?}: {e}", l.maximum);
        }
    }
    getrlimit(Resource::Nofile).current
}
