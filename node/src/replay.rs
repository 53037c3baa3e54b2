//! The sealed replay horizon: what makes a user's authorisation usable once per node even
//! across restarts ([`keynet_protocol::auth::replay`] states the rule and why it holds).
//!
//! ```text
//!   start:  floor   = the last sealed horizon (0 on a new node)
//!           wait until now > floor (at most `lead` seconds), so an orderly restart costs
//!           start-up time rather than refusals
//!           horizon = max(now + lead, floor), sealed, then put in force
//!   every lead/4 seconds: horizon = now + lead, sealed, then put in force
//! ```
//!
//! A horizon is put in force only after it is sealed, so every authorisation the node ever
//! accepted was issued at or before the last sealed value. If sealing fails (a full disk),
//! the horizon stops moving and authorisations issued after it are refused, naming it: the
//! node fails closed rather than accept what it could not remember.

use std::sync::Arc;
use std::time::Duration;

use keynet_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::state::NodeState;

/// The sealed record's name.
pub const RECORD: &str = "replay-horizon";

/// Sealed contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    v: u32,
    horizon: u64,
}

/// Why the horizon could not be read or kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HorizonError {
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed record is not a horizon.
    #[error("{RECORD}: {0}")]
    Record(String),
}

/// The last sealed horizon: the floor after a restart (0 if there is none).
pub fn floor(store: &Store) -> Result<u64, HorizonError> {
    let Some(bytes) = store.read(RECORD)? else {
        return Ok(0);
    };
    let r: Record =
        serde_json::from_slice(&bytes).map_err(|e| HorizonError::Record(e.to_string()))?;
    if r.v != 1 {
        return Err(HorizonError::Record(format!(
            "version {} (this node reads 1)",
            r.v
        )));
    }
    Ok(r.horizon)
}

/// Seals `horizon`.
pub fn seal(store: &Store, horizon: u64) -> Result<(), HorizonError> {
    let bytes = serde_json::to_vec(&Record { v: 1, horizon })
        .map_err(|e| HorizonError::Record(e.to_string()))?;
    store.write(RECORD, &bytes)?;
    Ok(())
}

/// The horizon's lead over the clock, from the configured clock skew (at least 2 s).
pub fn lead(clock_skew: u64) -> u64 {
    clock_skew.max(2)
}

/// Waits (at most `lead` seconds) until the clock has passed `floor`: an orderly restart
/// then refuses nobody.
pub async fn wait_past(floor: u64, lead: u64) {
    let now = keynet_net::unix_now();
    if floor >= now && floor - now <= lead {
        let wait = floor - now + 1;
        tracing::info!(
            "waiting {wait} s for the clock to pass the replay floor {floor} (authorisations \
             issued before it may have been used before this restart)"
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
    } else if floor >= now {
        tracing::warn!(
            "the replay floor {floor} is {} s ahead of the clock: authorisations are refused \
             until the clock passes it",
            floor - now
        );
    }
}

/// Keeps the horizon `lead` seconds ahead of the clock.
pub async fn renew(state: Arc<NodeState>, lead: u64) {
    let every = Duration::from_secs((lead / 4).max(1));
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        let next = keynet_net::unix_now().saturating_add(lead);
        if next <= state.auth().horizon() {
            continue;
        }
        let store = state.clone();
        let sealed = tokio::task::spawn_blocking(move || seal(store.store(), next)).await;
        match sealed {
            Ok(Ok(())) => {
                state.auth().raise_horizon(next);
                if failing {
                    tracing::info!("replay horizon sealed again: authorisations accepted");
                    failing = false;
                }
            }
            Ok(Err(e)) if !failing => {
                tracing::error!(
                    "cannot seal the replay horizon ({e}): authorisations issued after {} \
                     are refused until it can",
                    state.auth().horizon()
                );
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::error!("replay horizon task: {e}"),
        }
    }
}
