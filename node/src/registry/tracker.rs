//! The rule that the registry never goes back, as a value with no I/O: a node holds the
//! registry it last accepted (network, epoch and the hash of its signed message), and
//! accepts another only if it is the same document or of a higher epoch.
//!
//! Signed is not fresh: every registry the authority ever signed verifies, so without this
//! rule a host could hand a node an older one (nodes since removed, another threshold) and
//! restart a key generation with it. The node seals what it holds, and the tracker starts
//! from that record; where the record is missing (deleted by the host) the highest epoch
//! whose keys the node keeps sealed is a floor all the same.
//!
//! What this cannot see: a host that puts back older copies of the sealed files together
//! (the record and the keys as they were). Sealing proves a file came from this node, not
//! that it is the newest; that needs state the host cannot roll back (peers' word, or a
//! monotonic counter), which the node does not have yet.

use keynet_protocol::registry::Registry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The registry a node holds, as sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    /// Its network id.
    pub network: String,
    /// Its epoch.
    pub epoch: u64,
    /// sha256 of its canonical (signed) message, hex.
    pub message_sha256: String,
}

impl Held {
    /// What holding `registry` means.
    pub fn of(registry: &Registry) -> Held {
        Held {
            network: registry.network_id.clone(),
            epoch: registry.epoch,
            message_sha256: hex::encode(Sha256::digest(registry.canonical_message())),
        }
    }
}

/// What an offered registry is to the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// The one held.
    Same,
    /// Newer: now held; the caller puts it in force (and seals the record).
    Newer,
}

/// Why an offered registry is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Of an epoch below the one held.
    #[error("epoch {offered} is an epoch below the one held ({held})")]
    Older {
        /// The epoch held.
        held: u64,
        /// The epoch offered.
        offered: u64,
    },
    /// Of the epoch held, with other content: an epoch's registry never changes.
    #[error(
        "epoch {epoch} with other content than the registry held (a new registry needs a \
         higher epoch)"
    )]
    Rewritten {
        /// The epoch.
        epoch: u64,
    },
}

/// The registry held, and the rule.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    held: Option<Held>,
    floor: u64,
}

impl Tracker {
    /// A tracker holding `held` (the sealed record), or nothing yet; no registry below
    /// epoch `floor` is accepted either way.
    pub fn new(held: Option<Held>, floor: u64) -> Tracker {
        Tracker { held, floor }
    }

    /// What is held.
    pub fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }

    /// Offers a verified registry: the same document, a newer one (then held), or a
    /// refusal.
    pub fn offer(&mut self, registry: &Registry) -> Result<Offered, Refusal> {
        let offered = Held::of(registry);
        if offered.epoch < self.floor {
            return Err(Refusal::Older {
                held: self.floor,
                offered: offered.epoch,
            });
        }
        match &self.held {
            Some(h) if *h == offered => Ok(Offered::Same),
            Some(h) if offered.epoch < h.epoch => Err(Refusal::Older {
                held: h.epoch,
                offered: offered.epoch,
            }),
            Some(h) if offered.epoch == h.epoch => Err(Refusal::Rewritten {
                epoch: offered.epoch,
            }),
            _ => {
                self.held = Some(offered);
                Ok(Offered::Newer)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::registry;

    #[test]
    fn never_goes_back_and_an_epoch_never_changes() {
        let mut t = Tracker::new(None, 0);
        assert_eq!(t.offer(&registry(4, 5)), Ok(Offered::Newer), "first offer");
        assert_eq!(t.offer(&registry(4, 5)), Ok(Offered::Same));
        assert_eq!(
            t.offer(&registry(4, 4)),
            Err(Refusal::Older {
                held: 5,
                offered: 4
            })
        );
        assert_eq!(
            t.offer(&registry(3, 5)),
            Err(Refusal::Rewritten { epoch: 5 }),
            "a node removed without a new epoch"
        );
        assert_eq!(
            t.held(),
            Some(&Held::of(&registry(4, 5))),
            "refusals change nothing"
        );
        assert_eq!(t.offer(&registry(3, 6)), Ok(Offered::Newer));
        assert_eq!(
            t.offer(&registry(4, 5)),
            Err(Refusal::Older {
                held: 6,
                offered: 5
            })
        );
        assert!(
            Refusal::Older {
                held: 6,
                offered: 5
            }
            .to_string()
            .contains("an epoch below the one held"),
            "the wording operators and tests look for"
        );
    }

    #[test]
    fn the_sealed_record_carries_the_rule_across_restarts() {
        let mut before = Tracker::new(None, 0);
        assert_eq!(before.offer(&registry(4, 7)), Ok(Offered::Newer));
        let record = serde_json::to_vec(&before.held().cloned()).unwrap_or_default();
        let held: Option<Held> = serde_json::from_slice(&record).unwrap_or_else(|e| panic!("{e}"));
        let mut after = Tracker::new(held, 0);
        assert_eq!(after.offer(&registry(4, 7)), Ok(Offered::Same));
        assert!(matches!(
            after.offer(&registry(4, 2)),
            Err(Refusal::Older { .. })
        ));
        assert!(matches!(
            after.offer(&registry(5, 7)),
            Err(Refusal::Rewritten { .. })
        ));
    }

    #[test]
    fn without_the_record_the_keys_held_are_a_floor() {
        // The record deleted, keys of epoch 6 still sealed.
        let mut t = Tracker::new(None, 6);
        assert_eq!(
            t.offer(&registry(4, 5)),
            Err(Refusal::Older {
                held: 6,
                offered: 5
            })
        );
        assert_eq!(t.offer(&registry(4, 6)), Ok(Offered::Newer));
        assert_eq!(t.offer(&registry(4, 7)), Ok(Offered::Newer));
    }
}
