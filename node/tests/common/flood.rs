//! A flood of permission writes from fresh wallets, as an attacker would send it: shared
//! by the limits test (which checks signing keeps working) and the network bench (which
//! measures signing latency during it, with release-built nodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use keynet::network::Network;
use keynet_eth::address_of;
use keynet_protocol::api::{Route, route};
use keynet_protocol::request::{Authorised, KeyRef, PermissionsRequest, UserRequest};

/// Writers sending at once.
const WRITERS: u64 = 8;

/// How the flood is made.
#[derive(Clone, Copy, Debug)]
pub enum Flood {
    /// Eight writers as fast as they can, each signing a fresh wallet's request as it goes:
    /// the attacker's own signing shares the machine with the nodes.
    OnTheFly,
    /// Requests signed by fresh wallets beforehand (an attacker signs on its own machines),
    /// sent by eight writers at `per_second` writes in all, each write to every node.
    Presigned {
        /// Writes a second, in all.
        per_second: u64,
    },
}

/// A running flood.
pub struct Running {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    started: Instant,
    thread: JoinHandle<()>,
}

/// What a flood did.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// Writes sent (each to every node).
    pub sent: usize,
    /// Node answers that took a write.
    pub written: usize,
    /// How long it ran.
    pub took: Duration,
}

impl Running {
    /// Stops the writers and says what they did.
    pub fn stop(self) -> Done {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        Done {
            sent: self.sent.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            took: self.started.elapsed(),
        }
    }
}

/// A fresh wallet for writer `w`'s `i`th write (`tag` keeps floods apart).
fn wallet(tag: u8, w: u64, i: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(w * 1_000_000 + i).to_be_bytes());
    seed[8] = tag;
    seed[31] = 1;
    SigningKey::from_slice(&seed).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `flood` against the `n` nodes of `network_id`, one connection set per writer
/// (`nets`, eight), on a thread and runtime of its own so the measuring client is not
/// scheduled behind it. A presigned flood signs enough for `seconds` first.
pub fn start(nets: Vec<Network>, n: u16, network_id: &str, flood: Flood, seconds: u64) -> Running {
    assert_eq!(nets.len() as u64, WRITERS);
    // Each flood of a process its own wallets: a wallet written before would only be
    // refused as stale, which is not the flood asked for.
    static FLOODS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    let tag = FLOODS.fetch_add(1, Ordering::Relaxed);
    let presigned: Vec<Vec<Vec<u8>>> = match flood {
        Flood::OnTheFly => vec![vec![]; WRITERS as usize],
        Flood::Presigned { per_second } => (0..WRITERS)
            .map(|w| {
                (0..per_second * seconds / WRITERS + 1)
                    .map(|i| {
                        let owner = wallet(tag, w, i);
                        let key = KeyRef::new(address_of(owner.verifying_key()), "k")
                            .unwrap_or_else(|e| panic!("{e}"));
                        let request =
                            PermissionsRequest::new(network_id.to_owned(), key, 1, vec![])
                                .unwrap_or_else(|e| panic!("{e}"));
                        let auth = nets[0]
                            .authorise(&owner, &request.digest())
                            .unwrap_or_else(|e| panic!("{e}"));
                        serde_json::to_vec(&Authorised { request, auth })
                            .unwrap_or_else(|e| panic!("{e}"))
                    })
                    .collect()
            })
            .collect(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let thread = {
        let (stop, written, sent) = (stop.clone(), written.clone(), sent.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(async move {
                let mut set = tokio::task::JoinSet::new();
                for ((w, net), bodies) in (0u64..).zip(nets).zip(presigned) {
                    let (stop, written, sent) = (stop.clone(), written.clone(), sent.clone());
                    set.spawn(async move {
                        let every = match flood {
                            Flood::OnTheFly => Duration::ZERO,
                            Flood::Presigned { per_second } => {
                                Duration::from_micros(1_000_000 * WRITERS / per_second.max(1))
                            }
                        };
                        let mut next = Instant::now();
                        for i in 0u64.. {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let ok = match flood {
                                Flood::OnTheFly => net
                                    .set_permissions(&wallet(tag, w, i), "k", vec![], 1)
                                    .await
                                    .map(|a| a.iter().filter(|(_, a)| a.is_ok()).count())
                                    .unwrap_or(0),
                                Flood::Presigned { .. } => {
                                    let Some(body) =
                                        usize::try_from(i).ok().and_then(|i| bodies.get(i))
                                    else {
                                        break;
                                    };
                                    let sends = (1..=n).map(|p| {
                                        net.request(
                                            p,
                                            "POST",
                                            route::Permissions::PATH,
                                            body.clone(),
                                        )
                                    });
                                    futures_util::future::join_all(sends)
                                        .await
                                        .into_iter()
                                        .filter(|r| matches!(r, Ok((200, _))))
                                        .count()
                                }
                            };
                            sent.fetch_add(1, Ordering::Relaxed);
                            written.fetch_add(ok, Ordering::Relaxed);
                            next += every;
                            tokio::time::sleep_until(next.into()).await;
                        }
                    });
                }
                while set.join_next().await.is_some() {}
            })
        })
    };
    Running {
        stop,
        written,
        sent,
        started: Instant::now(),
        thread,
    }
}
