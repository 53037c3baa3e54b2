//! Fresh evidence for whoever asks (`GET /v1/attestation`), metered: each report is a
//! request to the secure processor, which answers one at a time, so a stranger asking
//! thousands of times must not make an honest client wait behind them.
//!
//! ```text
//!   request ─► this connection had a report less than `per_connection` ago? ─► 429
//!           ─► metered work ([`crate::work`]): a share per address, a bounded queue,
//!              `concurrent` reports at once (FIFO) ─► report (blocking pool)
//! ```

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attestation_verifier::tls::evidence::Evidence;
use keynet_protocol::api::ErrorCode;

use crate::api::ApiError;
use crate::lock;
use crate::state::NodeState;
use crate::work::{Work, WorkLimits};

/// How fresh evidence is metered.
#[derive(Clone, Copy, Debug)]
pub struct AttestLimits {
    /// Reports made at once (the secure processor serialises them anyway), queued in all
    /// and per address.
    pub work: WorkLimits,
    /// Least time between two reports on one connection.
    pub per_connection: Duration,
}

/// The meter.
pub struct AttestMeter {
    per_connection: Duration,
    work: Work,
}

/// When a connection last had a report (kept with the connection).
#[derive(Debug, Default)]
pub struct LastReport(Mutex<Option<Instant>>);

impl AttestMeter {
    /// A meter with `limits`.
    pub fn new(limits: AttestLimits) -> AttestMeter {
        AttestMeter {
            per_connection: limits.per_connection,
            work: Work::new("fresh reports", limits.work),
        }
    }

    /// Reports made and refused since start.
    pub fn counts(&self) -> keynet_protocol::api::WorkCount {
        self.work.counts()
    }
}

/// A fresh report bound to `nonce` and the connection's `exporter`, within the limits.
pub async fn fresh(
    state: &Arc<NodeState>,
    addr: IpAddr,
    peer: bool,
    last: &LastReport,
    nonce: Vec<u8>,
    exporter: [u8; attestation_verifier::tls::binding::EXPORTER_LEN],
) -> Result<Evidence, ApiError> {
    let meter = state.attest();
    let now = Instant::now();
    if let Some(t) = *lock(&last.0)
        && now.saturating_duration_since(t) < meter.per_connection
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "one fresh report per connection every {} ms",
                meter.per_connection.as_millis()
            ),
        ));
    }
    // Counted from the request, not the report: asking again at once is refused even
    // while the first waits in the queue.
    let before = lock(&last.0).replace(now);
    // Peers (registry members, a bounded set) dial several connections at once when a run
    // starts; they share the queue but not one address's share of it.
    let st = state.clone();
    let made = meter
        .work
        .run(addr, peer, move || {
            st.tls().fresh_evidence(st.provider(), &nonce, &exporter)
        })
        .await;
    if made.is_err() {
        // Refused before any report: the connection's turn is not used up.
        *lock(&last.0) = before;
    }
    made?.map_err(|e| ApiError::new(ErrorCode::EvidenceUnavailable, e.to_string()))
}
