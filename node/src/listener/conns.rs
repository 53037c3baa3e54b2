//! The connection table: how many connections the node holds, from where, and in which
//! phase, with the rule that makes room when a limit is reached.
//!
//! ```text
//!   accept ──► Handshake ──► Idle ◄──► Busy        (a peer's connection is never evicted)
//!                 │            │
//!                 └─ evictable ┘   oldest first, when a new connection meets a full table
//!                                  (or a full share for its address); a Busy one never is
//! ```
//!
//! Why evict rather than refuse: connections that are idle or still in their handshake cost
//! the node a file descriptor each and give nothing, so a stranger holding thousands of them
//! must not keep a new client out. The oldest such connection is the best guess at an
//! abandoned one; an honest client that loses an idle connection opens another. A
//! connection whose request is being answered is never dropped for room; if every one is
//! busy the newcomer is refused.
//!
//! A peer's connection is closed, though, when the registry in force no longer admits the
//! peer ([`ConnTable::drop_peers`]): a removed member or one cut below the minimum stake
//! keeps no kept-alive connection.
//!
//! No I/O here: eviction is a message on the connection's [`Kick`] channel, which the
//! connection's task obeys by dropping its socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keynet_net::verify::Admitted;
use tokio::sync::oneshot;

use crate::lock;

/// How many connections the table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// In all.
    pub total: usize,
    /// From one IP address.
    pub per_address: usize,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// TCP accepted; the TLS handshake has not finished.
    Handshake,
    /// Between requests (or reading a request's headers).
    Idle,
    /// A request is being answered.
    Busy,
}

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its address holds its share and every one of them is busy.
    Address,
    /// The table is full and every connection in it is busy or a peer's.
    Full,
}

/// Told to a connection that is evicted: drop the socket.
pub type Kick = oneshot::Receiver<()>;

struct Entry {
    addr: IpAddr,
    phase: Phase,
    /// When the phase last changed.
    since: Instant,
    /// The peer admitted on it, if a peer's.
    peer: Option<Admitted>,
    kick: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    conns: HashMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
    evicted: u64,
    refused: u64,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.conns.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&e.addr) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&e.addr);
            }
        }
        Some(e)
    }

    /// Removes connection `id` and tells its task to drop the socket.
    fn kick(&mut self, id: u64) {
        if let Some(mut e) = self.remove(id)
            && let Some(k) = e.kick.take()
        {
            let _ = k.send(());
        }
    }

    /// Evicts the oldest evictable connection (from `addr` only, if given).
    fn evict_oldest(&mut self, addr: Option<IpAddr>) -> bool {
        let victim = self
            .conns
            .iter()
            .filter(|(_, e)| {
                e.phase != Phase::Busy && e.peer.is_none() && addr.is_none_or(|a| a == e.addr)
            })
            .min_by_key(|(id, e)| (e.since, **id))
            .map(|(id, _)| *id);
        let Some(id) = victim else {
            return false;
        };
        self.kick(id);
        self.evicted += 1;
        true
    }
}

/// Every connection the node holds.
pub struct ConnTable {
    limits: ConnLimits,
    inner: Mutex<Inner>,
}

/// Counts since start, for the periodic log line and `/health`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Held now.
    pub open: usize,
    /// Dropped to make room.
    pub evicted: u64,
    /// Refused at accept.
    pub refused: u64,
}

impl ConnTable {
    /// An empty table with `limits`.
    pub fn new(limits: ConnLimits) -> Arc<ConnTable> {
        Arc::new(ConnTable {
            limits,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Takes in a new connection from `addr`, evicting the oldest idle one where a limit is
    /// reached. The [`Kick`] fires if this connection is evicted later.
    pub fn admit(self: &Arc<Self>, addr: IpAddr, now: Instant) -> Result<(Held, Kick), Refused> {
        let mut t = lock(&self.inner);
        if t.per_address.get(&addr).copied().unwrap_or(0) >= self.limits.per_address
            && !t.evict_oldest(Some(addr))
        {
            t.refused += 1;
            return Err(Refused::Address);
        }
        if t.conns.len() >= self.limits.total && !t.evict_oldest(None) {
            t.refused += 1;
            return Err(Refused::Full);
        }
        let (tx, rx) = oneshot::channel();
        t.next += 1;
        let id = t.next;
        t.conns.insert(
            id,
            Entry {
                addr,
                phase: Phase::Handshake,
                since: now,
                peer: None,
                kick: Some(tx),
            },
        );
        *t.per_address.entry(addr).or_default() += 1;
        Ok((
            Held {
                table: self.clone(),
                id,
            },
            rx,
        ))
    }

    /// Evicts connections that have been in their handshake longer than `handshake`, or idle
    /// longer than `idle`; returns how many.
    pub fn expire(&self, now: Instant, handshake: Duration, idle: Duration) -> usize {
        let mut t = lock(&self.inner);
        let stale: Vec<u64> = t
            .conns
            .iter()
            .filter(|(_, e)| {
                let age = now.saturating_duration_since(e.since);
                match e.phase {
                    Phase::Handshake => age > handshake,
                    Phase::Idle => age > idle,
                    Phase::Busy => false,
                }
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            t.kick(*id);
        }
        stale.len()
    }

    /// Closes every peer's connection whose peer `admits` no longer admits (the registry in
    /// force changed); returns how many, busy or not.
    pub fn drop_peers(&self, admits: impl Fn(&Admitted) -> bool) -> usize {
        let mut t = lock(&self.inner);
        let gone: Vec<u64> = t
            .conns
            .iter()
            .filter(|(_, e)| e.peer.as_ref().is_some_and(|p| !admits(p)))
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            t.kick(*id);
        }
        gone.len()
    }

    /// Counts since start.
    pub fn counts(&self) -> ConnCounts {
        let t = lock(&self.inner);
        ConnCounts {
            open: t.conns.len(),
            evicted: t.evicted,
            refused: t.refused,
        }
    }

    fn set(&self, id: u64, phase: Phase, now: Instant) {
        if let Some(e) = lock(&self.inner).conns.get_mut(&id) {
            e.phase = phase;
            e.since = now;
        }
    }
}

/// A connection's place in the table; dropping it frees the place.
pub struct Held {
    table: Arc<ConnTable>,
    id: u64,
}

impl Held {
    /// The handshake is done (and `peer` admitted, if a peer's): the connection is idle,
    /// and a peer's is never evicted.
    pub fn established(&self, peer: Option<Admitted>) {
        if let Some(e) = lock(&self.table.inner).conns.get_mut(&self.id) {
            e.phase = Phase::Idle;
            e.since = Instant::now();
            e.peer = peer;
        }
    }

    /// A request is being answered.
    pub fn busy(&self) {
        self.table.set(self.id, Phase::Busy, Instant::now());
    }

    /// The answer went out.
    pub fn idle(&self) {
        self.table.set(self.id, Phase::Idle, Instant::now());
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        lock(&self.table.inner).remove(self.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn peer(endpoint: &str) -> Option<Admitted> {
        let key = k256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        Some(Admitted {
            identity: keynet_protocol::registry::IdentityKey::from_verifying_key(
                key.verifying_key(),
            ),
            endpoint: endpoint.into(),
        })
    }

    #[test]
    fn a_full_address_share_evicts_that_address_oldest_idle_connection() {
        let t = ConnTable::new(ConnLimits {
            total: 100,
            per_address: 2,
        });
        let now = Instant::now();
        let (a, mut ka) = t.admit(ip(1), now).unwrap();
        let (_b, mut kb) = t.admit(ip(1), now + Duration::from_secs(1)).unwrap();
        let (_other, mut ko) = t.admit(ip(2), now).unwrap();
        let (_c, _) = t.admit(ip(1), now + Duration::from_secs(2)).unwrap();
        assert!(ka.try_recv().is_ok(), "the oldest of 127.0.0.1 is kicked");
        assert!(kb.try_recv().is_err());
        assert!(ko.try_recv().is_err(), "another address is untouched");
        drop(a); // its place was freed already; dropping twice frees nothing more
        assert_eq!(t.counts().open, 3);
        assert_eq!(t.counts().evicted, 1);
    }

    #[test]
    fn busy_and_peer_connections_are_never_evicted() {
        let t = ConnTable::new(ConnLimits {
            total: 2,
            per_address: 2,
        });
        let now = Instant::now();
        let (busy, _) = t.admit(ip(1), now).unwrap();
        busy.busy();
        let (peers, _) = t.admit(ip(2), now).unwrap();
        peers.established(peer("127.0.0.2:7000"));
        assert_eq!(t.admit(ip(3), now).err(), Some(Refused::Full));
        assert_eq!(t.admit(ip(1), now).err(), Some(Refused::Full));
        busy.idle();
        assert!(t.admit(ip(3), now).is_ok(), "an idle connection makes room");
        assert_eq!(t.counts().refused, 2);
        let (b2, _) = t
            .admit(ip(2), now)
            .unwrap_or_else(|_| panic!("room was made"));
        b2.busy();
        // 127.0.0.2 holds its share, one a peer's and one busy: refused for the address.
        assert_eq!(t.admit(ip(2), now).err(), Some(Refused::Address));
    }

    #[test]
    fn stale_handshakes_and_idle_connections_expire_busy_ones_do_not() {
        let t = ConnTable::new(ConnLimits {
            total: 10,
            per_address: 10,
        });
        let now = Instant::now();
        let (_hs, mut k1) = t.admit(ip(1), now).unwrap();
        let (idle, mut k2) = t.admit(ip(1), now).unwrap();
        idle.established(None);
        let (busy, mut k3) = t.admit(ip(1), now).unwrap();
        busy.busy();
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            t.expire(later, Duration::from_secs(10), Duration::from_secs(10)),
            0
        );
        let much_later = later + Duration::from_secs(60);
        assert_eq!(
            t.expire(much_later, Duration::from_secs(10), Duration::from_secs(10)),
            2
        );
        assert!(k1.try_recv().is_ok() && k2.try_recv().is_ok());
        assert!(k3.try_recv().is_err());
        assert_eq!(t.counts().open, 1);
    }

    #[test]
    fn peers_no_longer_admitted_are_closed_busy_or_not_and_no_one_else() {
        let t = ConnTable::new(ConnLimits {
            total: 10,
            per_address: 10,
        });
        let now = Instant::now();
        let (kept, mut k_kept) = t.admit(ip(1), now).unwrap();
        kept.established(peer("127.0.0.1:7001"));
        let (cut, mut k_cut) = t.admit(ip(2), now).unwrap();
        cut.established(peer("127.0.0.2:7002"));
        cut.busy();
        let (user, mut k_user) = t.admit(ip(2), now).unwrap();
        user.established(None);
        let n = t.drop_peers(|p| p.endpoint != "127.0.0.2:7002");
        assert_eq!(n, 1);
        assert!(
            k_cut.try_recv().is_ok(),
            "the cut peer's busy connection is closed"
        );
        assert!(k_kept.try_recv().is_err() && k_user.try_recv().is_err());
        assert_eq!(t.counts().open, 2);
        assert_eq!(t.drop_peers(|_| true), 0);
    }
}
