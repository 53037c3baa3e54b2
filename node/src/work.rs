//! Metered blocking work: expensive things a stranger can ask for (a fresh report from the
//! secure processor, verifying a peer's certificate, BLS shares and the checks before
//! them) run off the async workers, a few at a time, with a bounded queue shared fairly
//! between client addresses.
//!
//! ```text
//!   job ─► its address has `per_address` jobs queued or running? ─► 429 rate_limited
//!       ─► `queue` jobs queued or running in all?                 ─► 503 overloaded
//!       ─► wait for one of `concurrent` permits (FIFO) ─► run on the blocking pool
//! ```
//!
//! Per-address shares keep one address from filling the queue; the FIFO semaphore keeps
//! arrival order, so an honest client waits for at most the queue ahead of it, and the
//! async workers (handshakes, cheap routes, peers' messages) are never all busy with it.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use keynet_protocol::api::{ErrorCode, WorkCount};
use tokio::sync::Semaphore;

use crate::api::ApiError;
use crate::quota::{Full, Quota};

/// How much of one kind of work may be queued or running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkLimits {
    /// Jobs running at once.
    pub concurrent: usize,
    /// Jobs queued or running, in all.
    pub queue: usize,
    /// Jobs queued or running for one address.
    pub per_address: usize,
}

/// One kind of metered work.
pub struct Work {
    /// What the jobs are, plural, for refusals ("fresh reports").
    what: &'static str,
    limits: WorkLimits,
    permits: Arc<Semaphore>,
    queue: Arc<Quota<IpAddr>>,
    ran: AtomicU64,
    refused: AtomicU64,
}

/// A place in the queue; dropping it leaves. Owned, so a job that keeps running after its
/// caller went (a closed connection) keeps its place until it ends.
struct Place {
    queue: Arc<Quota<IpAddr>>,
    addr: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.queue.give(&self.addr);
    }
}

impl Work {
    /// Metered work called `what` (plural, for refusals), within `limits`.
    pub fn new(what: &'static str, limits: WorkLimits) -> Work {
        Work {
            what,
            limits,
            permits: Arc::new(Semaphore::new(limits.concurrent.max(1))),
            queue: Arc::new(Quota::new(limits.per_address, limits.queue)),
            ran: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Jobs run and refused since start.
    pub fn counts(&self) -> WorkCount {
        WorkCount {
            ran: self.ran.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Runs `job` for a client at `addr` once a permit is free; refused at once if `addr`'s
    /// share or the queue is full. `exempt` (a peer: a registry member, a bounded set that
    /// dials several connections at once) is held to the queue only.
    pub async fn run<T, F>(&self, addr: IpAddr, exempt: bool, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let place = self.enter(addr, exempt).inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal(format!("{}: {e}", self.what)))?;
        self.ran.fetch_add(1, Ordering::Relaxed);
        // The place and the permit go with the job: if the caller goes (its connection
        // closed, its request timed out), the job still counts until it has ended.
        tokio::task::spawn_blocking(move || {
            let _held = (place, permit);
            job()
        })
        .await
        .map_err(ApiError::internal)
    }

    fn enter(&self, addr: IpAddr, exempt: bool) -> Result<Place, ApiError> {
        match self.queue.take(&addr, exempt) {
            Ok(()) => Ok(Place {
                queue: self.queue.clone(),
                addr,
            }),
            Err(Full::Key(mine)) => Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{addr} has {mine} {} queued or running here (at most {}); retry when \
                     they are done",
                    self.what, self.limits.per_address
                ),
            )),
            Err(Full::Total(all)) => Err(ApiError::new(
                ErrorCode::Overloaded,
                format!(
                    "{all} {} are queued or running here (at most {}); retry shortly",
                    self.what, self.limits.queue
                ),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn shares_per_address_and_in_all_are_kept_and_exempt_callers_share_only_the_queue() {
        let w = Work::new(
            "jobs",
            WorkLimits {
                concurrent: 1,
                queue: 3,
                per_address: 2,
            },
        );
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let code = |r: Result<Place, ApiError>| r.err().map(|e| e.code());
        let p1 = w.enter(a, false).unwrap();
        let p2 = w.enter(a, false).unwrap();
        assert_eq!(code(w.enter(a, false)), Some(ErrorCode::RateLimited));
        let p3 = w.enter(b, false).unwrap();
        assert_eq!(
            code(w.enter(IpAddr::from([10, 0, 0, 3]), false)),
            Some(ErrorCode::Overloaded)
        );
        drop(p1);
        let p4 = w.enter(a, false).unwrap();
        drop(p3);
        // a holds its share, but an exempt caller on that address is held to the queue only.
        assert_eq!(code(w.enter(a, false)), Some(ErrorCode::RateLimited));
        assert!(w.enter(a, true).is_ok());
        drop((p2, p4));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_permits_run_at_once_and_places_come_back() {
        let w = Arc::new(Work::new(
            "jobs",
            WorkLimits {
                concurrent: 2,
                queue: 64,
                per_address: 64,
            },
        ));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut all = Vec::new();
        for i in 0..16u8 {
            let (w, running, most) = (w.clone(), running.clone(), most.clone());
            all.push(tokio::spawn(async move {
                w.run(IpAddr::from([10, 0, 0, i]), false, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
            }));
        }
        for (i, h) in all.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), i as u8);
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(
            w.counts(),
            WorkCount {
                ran: 16,
                refused: 0
            }
        );
        // Every place was given back: a full queue's worth fits again.
        let places: Vec<_> = (0..64u8)
            .map(|i| w.enter(IpAddr::from([10, 0, 1, i]), false).unwrap())
            .collect();
        assert_eq!(places.len(), 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_whose_caller_went_keeps_its_permit_until_it_ends() {
        let w = Arc::new(Work::new(
            "jobs",
            WorkLimits {
                concurrent: 1,
                queue: 8,
                per_address: 8,
            },
        ));
        let a = IpAddr::from([10, 0, 0, 1]);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let w = w.clone();
            tokio::spawn(async move {
                w.run(a, false, move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        // The caller goes; its job still runs and still holds the one permit.
        first.abort();
        let _ = first.await;
        let second = {
            let w = w.clone();
            tokio::spawn(async move { w.run(a, false, || 2).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished(), "a second job ran beside the first");
        release_tx.send(()).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 2);
    }
}
