//! Fresh evidence for whoever asks (`GET /v1/attestation`), metered: each report is a
//! request to the secure processor, which answers one at a time, so a stranger asking
//! thousands of times must not make an honest client wait behind them.
//!
//! ```text
//!   request ─► this connection had a report less than `per_connection` ago? ─► 429
//!           ─► its address has `per_address` reports queued or running?       ─► 429
//!           ─► `queue` reports queued or running in all?                      ─► 503
//!           ─► wait for one of `concurrent` permits (FIFO) ─► report (blocking pool)
//! ```
//!
//! Per-address shares keep one address from filling the queue; the FIFO semaphore keeps
//! arrival order, so an honest client waits for at most the queue ahead of it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attestation_verifier::tls::evidence::Evidence;
use keynet_protocol::api::ErrorCode;
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::lock;
use crate::quota::{Full, Quota};
use crate::state::NodeState;

/// How fresh evidence is metered.
#[derive(Clone, Copy, Debug)]
pub struct AttestLimits {
    /// Reports made at once (the secure processor serialises them anyway).
    pub concurrent: usize,
    /// Reports queued or running, in all.
    pub queue: usize,
    /// Reports queued or running for one address.
    pub per_address: usize,
    /// Least time between two reports on one connection.
    pub per_connection: Duration,
}

/// The meter.
pub struct AttestMeter {
    limits: AttestLimits,
    permits: Semaphore,
    /// Reports queued or running, per address and in all.
    queue: Quota<IpAddr>,
}

/// A place in the queue; dropping it leaves.
struct Place<'a> {
    meter: &'a AttestMeter,
    addr: IpAddr,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.meter.queue.give(&self.addr);
    }
}

/// When a connection last had a report (kept with the connection).
#[derive(Debug, Default)]
pub struct LastReport(Mutex<Option<Instant>>);

impl AttestMeter {
    /// A meter with `limits`.
    pub fn new(limits: AttestLimits) -> AttestMeter {
        AttestMeter {
            limits,
            permits: Semaphore::new(limits.concurrent.max(1)),
            queue: Quota::new(limits.per_address, limits.queue),
        }
    }

    fn enter(&self, addr: IpAddr, peer: bool) -> Result<Place<'_>, ApiError> {
        match self.queue.take(&addr, peer) {
            Ok(()) => Ok(Place { meter: self, addr }),
            Err(Full::Key(mine)) => Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{addr} has {mine} fresh reports queued or running here (at most {}); \
                     retry when they are done",
                    self.limits.per_address
                ),
            )),
            Err(Full::Total(all)) => Err(ApiError::new(
                ErrorCode::Overloaded,
                format!(
                    "{all} fresh reports are queued or running here (at most {}); retry shortly",
                    self.limits.queue
                ),
            )),
        }
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
        && now.saturating_duration_since(t) < meter.limits.per_connection
    {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "one fresh report per connection every {} ms",
                meter.limits.per_connection.as_millis()
            ),
        ));
    }
    // Peers (registry members, a bounded set) dial several connections at once when a run
    // starts; they share the queue but not one address's share of it.
    let _place = meter.enter(addr, peer)?;
    *lock(&last.0) = Some(now);
    let _permit = meter
        .permits
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("attestation queue: {e}")))?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || st.tls().fresh_evidence(st.provider(), &nonce, &exporter))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::new(ErrorCode::EvidenceUnavailable, e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_per_address_and_in_all_are_kept_and_peers_share_only_the_queue() {
        let m = AttestMeter::new(AttestLimits {
            concurrent: 1,
            queue: 3,
            per_address: 2,
            per_connection: Duration::from_secs(1),
        });
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let code = |r: Result<Place<'_>, ApiError>| r.err().map(|e| e.code());
        let p1 = m.enter(a, false).unwrap();
        let p2 = m.enter(a, false).unwrap();
        assert_eq!(code(m.enter(a, false)), Some(ErrorCode::RateLimited));
        let p3 = m.enter(b, false).unwrap();
        assert_eq!(
            code(m.enter(IpAddr::from([10, 0, 0, 3]), false)),
            Some(ErrorCode::Overloaded)
        );
        drop(p1);
        let p4 = m.enter(a, false).unwrap();
        drop(p3);
        // a holds its share, but a peer on that address is held to the queue only.
        assert_eq!(code(m.enter(a, false)), Some(ErrorCode::RateLimited));
        assert!(m.enter(a, true).is_ok());
        drop((p2, p4));
    }
}
