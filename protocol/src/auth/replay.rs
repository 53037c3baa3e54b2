//! Which authorisations a node has accepted, so none is accepted twice: bounded, expired in
//! order, and safe across restarts through a horizon.
//!
//! The rule, and why it is sound:
//!
//! - Within one process, an (address, nonce) pair is remembered until its authorisation
//!   expires; a second use before then is a replay. After it expires the authorisation is
//!   refused as expired anyway, so forgetting it is safe.
//! - Across restarts, memory is lost, so the node keeps a *horizon* `H` in sealed state and
//!   accepts an authorisation only if it was issued at or before `H`; `H` is raised (sealed
//!   first, then used) ahead of the clock. After a restart the last sealed `H` becomes the
//!   *floor*: anything issued at or before it may have been accepted before, so it is
//!   refused; anything issued after it cannot have been. This holds whatever the clock does
//!   (a host may move it), since `H` and the floor are compared with the authorisation's
//!   own issue time only.
//! - The cost: after a restart, authorisations issued up to the horizon's lead (seconds)
//!   before are refused once, and a user's clock may run ahead of the node's by at most
//!   that lead. Both errors say so.
//! - The memory is bounded: per address and in all, a full table refuses (never evicts,
//!   which would forget a nonce that is still valid).

use std::collections::{BTreeSet, HashMap};

use keynet_eth::Address;

use super::verify::AuthError;

/// How many unexpired authorisations are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayLimits {
    /// For one user address.
    pub per_address: usize,
    /// In all.
    pub total: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            per_address: 4_096,
            total: 262_144,
        }
    }
}

/// The accepted, unexpired (address, nonce) pairs, and the window of issue times accepted.
#[derive(Debug)]
pub struct Seen {
    limits: ReplayLimits,
    /// Issued at or before this: refused (possibly accepted before a restart).
    floor: u64,
    /// Issued after this: refused until the horizon is raised.
    horizon: u64,
    expiry: HashMap<(Address, String), u64>,
    /// The same entries in expiry order, so expiring never scans the rest.
    by_expiry: BTreeSet<(u64, Address, String)>,
    per_address: HashMap<Address, usize>,
}

impl Seen {
    /// Nothing seen; issue times in `(floor, horizon]` are accepted.
    pub fn new(limits: ReplayLimits, floor: u64, horizon: u64) -> Seen {
        Seen {
            limits,
            floor,
            horizon,
            expiry: HashMap::new(),
            by_expiry: BTreeSet::new(),
            per_address: HashMap::new(),
        }
    }

    /// Raises the horizon (only ever up); call after the new value is sealed.
    pub fn raise_horizon(&mut self, horizon: u64) {
        self.horizon = self.horizon.max(horizon);
    }

    /// The horizon in force.
    pub fn horizon(&self) -> u64 {
        self.horizon
    }

    /// How many pairs are remembered.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// True if none is.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Records (address, nonce), issued at `issued_at` and valid until `expires_at`, at
    /// time `now`; refuses a replay, an issue time outside the window, or a full table.
    pub fn record(
        &mut self,
        address: Address,
        nonce: &str,
        issued_at: u64,
        expires_at: u64,
        now: u64,
    ) -> Result<(), AuthError> {
        if issued_at <= self.floor {
            return Err(AuthError::BeforeRestart {
                issued_at,
                floor: self.floor,
            });
        }
        if issued_at > self.horizon {
            return Err(AuthError::BeyondHorizon {
                issued_at,
                horizon: self.horizon,
            });
        }
        self.expire(now);
        let key = (address, nonce.to_owned());
        if self.expiry.contains_key(&key) {
            return Err(AuthError::Replay {
                address: address.to_checksum(),
                nonce: key.1,
            });
        }
        let mine = self.per_address.get(&address).copied().unwrap_or(0);
        if mine >= self.limits.per_address {
            return Err(AuthError::AddressBusy {
                address: address.to_checksum(),
                limit: self.limits.per_address,
            });
        }
        if self.expiry.len() >= self.limits.total {
            return Err(AuthError::NodeBusy {
                limit: self.limits.total,
            });
        }
        self.by_expiry.insert((expires_at, address, key.1.clone()));
        self.expiry.insert(key, expires_at);
        *self.per_address.entry(address).or_default() += 1;
        Ok(())
    }

    /// Forgets pairs that expired at or before `now` (in expiry order: no scan of the rest).
    fn expire(&mut self, now: u64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            let Some((_, address, nonce)) = self.by_expiry.pop_first() else {
                break;
            };
            self.expiry.remove(&(address, nonce));
            if let Some(n) = self.per_address.get_mut(&address) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&address);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::from_bytes([b; 20])
    }

    #[test]
    fn a_pair_is_refused_until_it_expires_then_forgotten() {
        let mut s = Seen::new(ReplayLimits::default(), 0, u64::MAX);
        s.record(addr(1), "nonce0001", 100, 200, 100).unwrap();
        assert!(matches!(
            s.record(addr(1), "nonce0001", 100, 200, 150),
            Err(AuthError::Replay { .. })
        ));
        s.record(addr(2), "nonce0001", 100, 200, 150).unwrap();
        s.record(addr(1), "nonce0002", 100, 300, 250).unwrap();
        assert_eq!(s.len(), 1, "the two expired at 200 are forgotten");
    }

    #[test]
    fn full_shares_refuse_rather_than_forget() {
        let mut s = Seen::new(
            ReplayLimits {
                per_address: 2,
                total: 3,
            },
            0,
            u64::MAX,
        );
        s.record(addr(1), "aaaaaaaa", 1, 100, 1).unwrap();
        s.record(addr(1), "bbbbbbbb", 1, 100, 1).unwrap();
        assert!(matches!(
            s.record(addr(1), "cccccccc", 1, 100, 1),
            Err(AuthError::AddressBusy { limit: 2, .. })
        ));
        s.record(addr(2), "aaaaaaaa", 1, 100, 1).unwrap();
        assert!(matches!(
            s.record(addr(3), "aaaaaaaa", 1, 100, 1),
            Err(AuthError::NodeBusy { limit: 3 })
        ));
        // Once they expire there is room again.
        s.record(addr(1), "cccccccc", 1, 200, 100).unwrap();
    }

    #[test]
    fn only_issue_times_after_the_floor_and_within_the_horizon_are_accepted() {
        let mut s = Seen::new(ReplayLimits::default(), 1_000, 1_010);
        assert!(matches!(
            s.record(addr(1), "aaaaaaaa", 1_000, 1_100, 1_005),
            Err(AuthError::BeforeRestart { floor: 1_000, .. })
        ));
        assert!(matches!(
            s.record(addr(1), "aaaaaaaa", 1_011, 1_100, 1_005),
            Err(AuthError::BeyondHorizon { horizon: 1_010, .. })
        ));
        s.record(addr(1), "aaaaaaaa", 1_001, 1_100, 1_005).unwrap();
        s.raise_horizon(1_020);
        s.raise_horizon(900);
        assert_eq!(s.horizon(), 1_020, "the horizon never goes down");
        s.record(addr(1), "bbbbbbbb", 1_011, 1_100, 1_005).unwrap();
    }
}
