//! Where the node's registry comes from: a file or an `http(s)` URL from the host (fetched
//! with the network layer's bounded [`keynet_net::fetch`]), verified against the
//! authority's signature, and put in force only if [`Tracker`] accepts it: never an older
//! epoch, never other content for the epoch held, at start-up as on every reload.

mod tracker;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use keynet_eth::Address;
use keynet_protocol::registry::{Registry, SignedRegistry};
use keynet_store::{Store, StoreError};

pub use tracker::{Held, Offered, Refusal, Tracker};

use crate::config::RegistrySource;
use crate::state::NodeState;

/// Largest registry document read, bytes (a registry of hundreds of nodes is tens of KiB).
pub const MAX_REGISTRY_BYTES: usize = 4 << 20;
/// Time budget of one fetch of a registry URL, every retry included.
pub const FETCH_BUDGET: Duration = Duration::from_secs(10);
/// Store name of the sealed record of the registry held.
pub const HELD: &str = "registry-held";

/// Why the registry could not be read, verified or kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Not readable from its source.
    #[error("registry {origin}: {reason}")]
    Read {
        /// Where it came from.
        origin: String,
        /// Why.
        reason: String,
    },
    /// Not a registry the authority signed.
    #[error("registry {origin}: {error}")]
    Verify {
        /// Where it came from.
        origin: String,
        /// Why.
        error: keynet_protocol::RegistryError,
    },
    /// Refused by the never-go-back rule.
    #[error("registry {origin}: {refusal}; refusing to go back to it")]
    Refused {
        /// Where it came from.
        origin: String,
        /// Why.
        refusal: Refusal,
    },
    /// The sealed record of the registry held could not be read or written.
    #[error("the sealed record of the registry held: {0}")]
    Sealed(String),
}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        SourceError::Sealed(e.to_string())
    }
}

/// Reads the registry document from its source.
pub async fn read(source: &RegistrySource) -> Result<Vec<u8>, SourceError> {
    let failed = |reason: String| SourceError::Read {
        origin: source.to_string(),
        reason,
    };
    match source {
        RegistrySource::File(p) => {
            let p = p.clone();
            // Read at most one byte past the cap: the path is the host's to choose.
            let bytes = tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                std::fs::File::open(&p)
                    .and_then(|f| {
                        f.take(MAX_REGISTRY_BYTES as u64 + 1)
                            .read_to_end(&mut bytes)
                    })
                    .map(|_| bytes)
            })
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
            if bytes.len() > MAX_REGISTRY_BYTES {
                return Err(failed(format!("larger than {MAX_REGISTRY_BYTES} bytes")));
            }
            Ok(bytes)
        }
        RegistrySource::Url(u) => keynet_net::fetch::fetch(u, FETCH_BUDGET, MAX_REGISTRY_BYTES)
            .await
            .map_err(|e| failed(e.reason)),
    }
}

/// The sealed record of the registry this node held last, if any.
pub fn held(store: &Store) -> Result<Option<Held>, SourceError> {
    match store.read(HELD)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SourceError::Sealed(e.to_string())),
        None => Ok(None),
    }
}

fn keep(store: &Store, held: &Held) -> Result<(), SourceError> {
    let bytes = serde_json::to_vec(held).map_err(|e| SourceError::Sealed(e.to_string()))?;
    store.write(HELD, &bytes)?;
    Ok(())
}

/// The registry a node starts with: read, verified, and accepted by a tracker that starts
/// from the sealed record (and never below the newest keys the node keeps sealed); the
/// record then names it.
pub async fn load(
    source: &RegistrySource,
    authority: &Address,
    store: &Store,
) -> Result<(Registry, Tracker), SourceError> {
    let bytes = read(source).await?;
    let registry = verify(source, &bytes, authority)?;
    let floor = crate::keys::highest_epoch(store, &registry.network_id)
        .map_err(|e| SourceError::Sealed(e.to_string()))?
        .unwrap_or(0);
    let mut tracker = Tracker::new(held(store)?, floor);
    let offered = tracker
        .offer(&registry)
        .map_err(|refusal| SourceError::Refused {
            origin: source.to_string(),
            refusal,
        })?;
    if let (Offered::Newer, Some(h)) = (offered, tracker.held()) {
        keep(store, h)?;
    }
    Ok((registry, tracker))
}

fn verify(
    source: &RegistrySource,
    bytes: &[u8],
    authority: &Address,
) -> Result<Registry, SourceError> {
    SignedRegistry::verify(bytes, authority).map_err(|error| SourceError::Verify {
        origin: source.to_string(),
        error,
    })
}

/// Reloads the registry when its document changes; a document that fails verification or
/// the tracker is logged and ignored (the one in force stays).
pub async fn watch(
    state: Arc<NodeState>,
    source: RegistrySource,
    authority: Address,
    every: Duration,
    mut tracker: Tracker,
) {
    let mut last: Option<Vec<u8>> = None;
    loop {
        tokio::time::sleep(every).await;
        let bytes = match read(&source).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        if last.as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        last = Some(bytes.clone());
        let registry = match verify(&source, &bytes, &authority) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("not reloaded: {e}");
                continue;
            }
        };
        match tracker.offer(&registry) {
            Ok(Offered::Same) => {}
            Ok(Offered::Newer) => {
                if let Some(h) = tracker.held().cloned() {
                    let st = state.clone();
                    let kept = tokio::task::spawn_blocking(move || keep(st.store(), &h)).await;
                    if let Ok(Err(e)) | Err(e) =
                        kept.map_err(|e| SourceError::Sealed(e.to_string()))
                    {
                        tracing::error!("registry reloaded but not recorded: {e}");
                    }
                }
                tracing::info!(
                    epoch = registry.epoch,
                    nodes = registry.nodes.len(),
                    "registry reloaded"
                );
                state.set_registry(registry);
                crate::dkg::ensure(&state);
            }
            Err(refusal) => tracing::warn!("registry {source} not reloaded: {refusal}"),
        }
    }
}
