//! Who may sign with a derived key: its owner always; others only if the owner listed them
//! in a permissions request that this node verified itself. Kept sealed in the store; a
//! request whose sequence number is not above the stored one is refused, so an old
//! request cannot be replayed over a newer one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use keynet_eth::Address;
use keynet_protocol::api::{ErrorCode, PermissionsSet, Status};
use keynet_protocol::request::{Authorised, KeyRef, PermissionsRequest};
use keynet_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::state::NodeState;

/// Store name of the permissions table.
pub const NAME: &str = "pkp-permissions";
/// Keys with permissions one owner may have.
pub const MAX_PER_OWNER: usize = 1024;
/// Keys with permissions in all (the table is rewritten on every change).
pub const MAX_KEYS: usize = 65_536;

/// Why permissions could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkpError {
    /// The sealed store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealed table does not decode.
    #[error("{NAME}: {0}")]
    Invalid(String),
    /// Someone other than the owner tried to change them.
    #[error("only the key's owner {owner} may set its permissions, not {signer}")]
    NotOwner {
        /// The owner.
        owner: String,
        /// Who signed.
        signer: String,
    },
    /// The table or the owner's part of it is full.
    #[error("permissions limit: {0}")]
    Limit(String),
    /// Not newer than what is stored.
    #[error("sequence number {got} is not above the current {current}")]
    Stale {
        /// The request's.
        got: u64,
        /// Stored.
        current: u64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: KeyRef,
    seq: u64,
    allowed: Vec<Address>,
}

/// The permissions table.
pub struct Permissions {
    table: Mutex<BTreeMap<String, Entry>>,
    max_per_owner: usize,
    max_keys: usize,
}

impl Permissions {
    /// Reads the table from `store` (empty if there is none yet).
    pub fn load(store: &Store) -> Result<Permissions, PkpError> {
        let table = match store.read(NAME)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| PkpError::Invalid(e.to_string()))?,
            None => BTreeMap::new(),
        };
        Ok(Permissions {
            table: Mutex::new(table),
            max_per_owner: MAX_PER_OWNER,
            max_keys: MAX_KEYS,
        })
    }

    /// The same table with other limits (tests reach them without thousands of keys).
    pub fn with_limits(mut self, max_per_owner: usize, max_keys: usize) -> Permissions {
        self.max_per_owner = max_per_owner;
        self.max_keys = max_keys;
        self
    }

    /// True if `user` may sign with `key`.
    pub fn may_sign(&self, key: &KeyRef, user: &Address) -> bool {
        if key.owner() == *user {
            return true;
        }
        let table = crate::lock(&self.table);
        table
            .get(&hex::encode(key.key_id()))
            .is_some_and(|e| e.allowed.contains(user))
    }

    /// Applies a permissions request the node verified was signed by `signer`.
    pub fn set(
        &self,
        store: &Store,
        req: &PermissionsRequest,
        signer: &Address,
    ) -> Result<(), PkpError> {
        let owner = req.key().owner();
        if owner != *signer {
            return Err(PkpError::NotOwner {
                owner: owner.to_checksum(),
                signer: signer.to_checksum(),
            });
        }
        let mut table = crate::lock(&self.table);
        let id = hex::encode(req.key().key_id());
        let current = table.get(&id).map_or(0, |e| e.seq);
        if req.seq() <= current {
            return Err(PkpError::Stale {
                got: req.seq(),
                current,
            });
        }
        if !table.contains_key(&id) {
            let owned = table.values().filter(|e| e.key.owner() == owner).count();
            if owned >= self.max_per_owner {
                return Err(PkpError::Limit(format!(
                    "{} already set permissions for {} keys",
                    owner.to_checksum(),
                    self.max_per_owner
                )));
            }
            if table.len() >= self.max_keys {
                return Err(PkpError::Limit(format!(
                    "this node holds permissions for {} keys",
                    self.max_keys
                )));
            }
        }
        let mut next = table.clone();
        next.insert(
            id,
            Entry {
                key: req.key().clone(),
                seq: req.seq(),
                allowed: req.allowed().to_vec(),
            },
        );
        let bytes = serde_json::to_vec(&next).map_err(|e| PkpError::Invalid(e.to_string()))?;
        // Durable first, then in force: a crash never leaves a permission that was not kept.
        store.write(NAME, &bytes)?;
        *table = next;
        Ok(())
    }
}

impl From<PkpError> for ApiError {
    fn from(e: PkpError) -> Self {
        let code = match e {
            PkpError::Limit(_) => ErrorCode::PkpLimit,
            PkpError::NotOwner { .. } => ErrorCode::NotOwner,
            PkpError::Stale { .. } => ErrorCode::StaleSeq,
            PkpError::Store(_) | PkpError::Invalid(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Handles `POST /v1/pkp/permissions`: the request for this network, the user's
/// authorisation, then the change, kept durably (off the async workers) before it is in
/// force.
pub async fn apply(
    state: &Arc<NodeState>,
    req: Authorised<PermissionsRequest>,
) -> Result<PermissionsSet, ApiError> {
    let network = state.registry().network_id.clone();
    if req.request.network() != network {
        return Err(ApiError::new(
            ErrorCode::WrongNetwork,
            format!("this node serves {network}, not {}", req.request.network()),
        ));
    }
    let verified = req.verify(state.auth(), keynet_net::unix_now())?;
    let seq = verified.request().seq();
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        st.pkp()
            .set(st.store(), verified.request(), &verified.user())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(PermissionsSet {
        status: Status::Ok,
        seq,
    })
}
