//! Shares of a bounded resource: at most `per_key` held for one key (a user's address, a
//! client's IP address) and `total` in all. A full share refuses; nothing is evicted, so
//! what an honest holder has is never taken away by someone else's load.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::lock;

/// Which limit a refused [`Quota::take`] met, and how many were held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The key's share (its count).
    Key(usize),
    /// The whole budget (the count in all).
    Total(usize),
}

/// Counts per key and in all, within limits.
pub struct Quota<K> {
    per_key: usize,
    total: usize,
    held: Mutex<Held<K>>,
}

struct Held<K> {
    total: usize,
    by_key: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> Quota<K> {
    /// At most `per_key` for one key and `total` in all.
    pub fn new(per_key: usize, total: usize) -> Self {
        Quota {
            per_key,
            total,
            held: Mutex::new(Held {
                total: 0,
                by_key: HashMap::new(),
            }),
        }
    }

    /// The limits: (per key, in all).
    pub fn limits(&self) -> (usize, usize) {
        (self.per_key, self.total)
    }

    /// Takes one for `key` (held to the whole budget only, if `exempt`); give it back
    /// with [`Quota::give`].
    pub fn take(&self, key: &K, exempt: bool) -> Result<(), Full> {
        let mut h = lock(&self.held);
        let mine = h.by_key.get(key).copied().unwrap_or(0);
        if mine >= self.per_key && !exempt {
            return Err(Full::Key(mine));
        }
        if h.total >= self.total {
            return Err(Full::Total(h.total));
        }
        h.total += 1;
        *h.by_key.entry(key.clone()).or_default() += 1;
        Ok(())
    }

    /// Gives back one taken for `key`.
    pub fn give(&self, key: &K) {
        let mut h = lock(&self.held);
        h.total = h.total.saturating_sub(1);
        if let Some(n) = h.by_key.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                h.by_key.remove(key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_share_per_key_and_a_budget_in_all() {
        let q = Quota::new(2, 3);
        q.take(&1, false).unwrap();
        q.take(&1, false).unwrap();
        assert_eq!(q.take(&1, false), Err(Full::Key(2)));
        q.take(&2, false).unwrap();
        assert_eq!(q.take(&3, false), Err(Full::Total(3)));
        q.give(&1);
        assert_eq!(
            q.take(&1, true),
            Ok(()),
            "exempt from its share, not the budget"
        );
        assert_eq!(q.take(&4, true), Err(Full::Total(3)));
    }
}
