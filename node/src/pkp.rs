//! Who may sign with a derived key: its owner always; others only if the owner listed them
//! in a permissions request that this node verified itself. A request whose sequence
//! number is not above the stored one is refused, so an old request cannot be replayed
//! over a newer one.
//!
//! Kept sealed, one record per key (`pkp-<key id>`), so a change writes one small file
//! rather than the whole table; a sealed root (`pkp-root`) holds the XOR of every
//! record's SHA-256, so a record put back from an older copy (a lower sequence number, or
//! a key removed) no longer matches it and the node refuses to start. The root is updated
//! around each record write so that a crash at any point leaves a state that matches:
//!
//! ```text
//!   1. root file = { root: R, next: R ^ H(old) ^ H(new) }   (the intent)
//!   2. record file = new
//!   3. root file = { root: R ^ H(old) ^ H(new) }
//!   load: the XOR of the records must equal `root`, or `next` (a crash between 2 and 3)
//! ```
//!
//! What this does not catch: the host putting back *every* file as it was at an earlier
//! moment (a whole older state). Telling that apart needs a witness outside the machine
//! (the peers); see ARCHITECTURE.md.
//!
//! Budgets: keys per owner, keys and bytes in all, and changes queued for the disk; reads
//! (every `/v1/sign`) take a read lock held for a lookup only, never across a disk write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use keynet_eth::Address;
use keynet_protocol::api::{ErrorCode, PermissionsSet, Status};
use keynet_protocol::request::{Authorised, KeyRef, PermissionsRequest};
use keynet_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::NodeState;

/// Store name of the sealed root.
pub const ROOT: &str = "pkp-root";
/// Prefix of each key's sealed record.
pub const RECORD_PREFIX: &str = "pkp-";
/// The whole-table file of earlier versions, converted at start.
const LEGACY: &str = "pkp-permissions";

/// What the permissions may take.
#[derive(Clone, Copy, Debug)]
pub struct PkpLimits {
    /// Keys with permissions one owner may have.
    pub per_owner: usize,
    /// Keys with permissions in all.
    pub keys: usize,
    /// Bytes of records in all, as the disk holds them: each record counts at least one
    /// 4 KiB block (a file system's, or a RAM disk's page).
    pub bytes: usize,
    /// Changes waiting for the disk at once.
    pub queued: usize,
    /// Changes accepted per second (a burst of twice that), checked before the request is
    /// parsed: changes are rare, and each costs a signature check and three durable sealed
    /// writes, CPU that signing needs (at 50 a second a flood's accepted writes alone took
    /// signing p99 to 2.5-3x its quiet value on a 2-core machine; at 10, 1.3-2x).
    pub per_second: u32,
}

impl Default for PkpLimits {
    fn default() -> Self {
        PkpLimits {
            per_owner: 1_024,
            keys: 65_536,
            bytes: 256 << 20,
            queued: 64,
            per_second: 10,
        }
    }
}

/// Why permissions could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkpError {
    /// The sealed store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed record does not decode.
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The records do not match the sealed root: one was put back, removed or added.
    #[error(
        "the sealed permission records do not match {ROOT} ({count} records): a record was \
         put back from an older copy, removed or added outside this node; refusing to serve \
         stale permissions"
    )]
    RolledBack {
        /// Records found.
        count: usize,
    },
    /// Someone other than the owner tried to change them.
    #[error("only the key's owner {owner} may set its permissions, not {signer}")]
    NotOwner {
        /// The owner.
        owner: String,
        /// Who signed.
        signer: String,
    },
    /// A budget is used up.
    #[error("permissions limit: {0}")]
    Limit(String),
    /// Too many changes are waiting for the disk.
    #[error("{0} permission changes are waiting for the disk; retry shortly")]
    Busy(usize),
    /// More changes than the node takes per second.
    #[error("this node takes at most {0} permission changes per second; retry shortly")]
    Rate(u32),
    /// Not newer than what is stored.
    #[error("sequence number {got} is not above the current {current}")]
    Stale {
        /// The request's.
        got: u64,
        /// Stored.
        current: u64,
    },
}

/// One key's permissions, as sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: KeyRef,
    seq: u64,
    allowed: Vec<Address>,
}

/// The sealed root.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    v: u32,
    /// XOR of every record's SHA-256, hex.
    root: String,
    /// The root once the record being written is in place, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

struct Table {
    entries: HashMap<[u8; 32], Entry>,
    by_owner: HashMap<Address, usize>,
    bytes: usize,
    root: [u8; 32],
}

/// The permissions.
pub struct Permissions {
    table: RwLock<Table>,
    /// One change at a time goes to the disk.
    writer: Mutex<()>,
    queued: Arc<AtomicUsize>,
    bucket: Mutex<Bucket>,
    limits: PkpLimits,
}

/// A token bucket: `per_second` tokens a second, at most twice that held.
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

fn record_name(id: &[u8; 32]) -> String {
    format!(
        "{RECORD_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
    )
}

fn xor(a: &mut [u8; 32], b: &[u8; 32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// What a record of `len` bytes takes on disk: whole 4 KiB blocks.
fn on_disk(len: usize) -> usize {
    len.div_ceil(4096).max(1) * 4096
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn invalid(file: &str, reason: impl std::fmt::Display) -> PkpError {
    PkpError::Invalid {
        file: file.to_owned(),
        reason: reason.to_string(),
    }
}

fn write_root(store: &Store, root: &Root) -> Result<(), PkpError> {
    let bytes = serde_json::to_vec(root).map_err(|e| invalid(ROOT, e))?;
    store.write(ROOT, &bytes)?;
    Ok(())
}

impl Permissions {
    /// Reads every record from `store` and checks them against the sealed root (converting
    /// the whole-table file of earlier versions first, if there is one).
    pub fn load(store: &Store, limits: PkpLimits) -> Result<Permissions, PkpError> {
        convert_legacy(store)?;
        let mut t = Table {
            entries: HashMap::new(),
            by_owner: HashMap::new(),
            bytes: 0,
            root: [0; 32],
        };
        for name in store.names()? {
            if name == ROOT || name == LEGACY || !name.starts_with(RECORD_PREFIX) {
                continue;
            }
            let Some(bytes) = store.read(&name)? else {
                continue;
            };
            let e: Entry = serde_json::from_slice(&bytes).map_err(|e| invalid(&name, e))?;
            let id = e.key.key_id();
            // The store authenticates the name with the contents, so a record cannot be
            // renamed to another key's file; this checks the name is the key's own.
            if record_name(&id) != name {
                return Err(invalid(&name, "the record is another key's"));
            }
            xor(&mut t.root, &digest(&bytes));
            t.bytes += on_disk(bytes.len());
            *t.by_owner.entry(e.key.owner()).or_default() += 1;
            t.entries.insert(id, e);
        }
        let sealed: Root = match store.read(ROOT)? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| invalid(ROOT, e))?,
            None if t.entries.is_empty() => Root {
                v: 1,
                root: hex::encode([0u8; 32]),
                next: None,
            },
            None => {
                return Err(PkpError::RolledBack {
                    count: t.entries.len(),
                });
            }
        };
        let found = hex::encode(t.root);
        if found != sealed.root && Some(&found) != sealed.next.as_ref() {
            return Err(PkpError::RolledBack {
                count: t.entries.len(),
            });
        }
        if sealed.next.is_some() {
            // A crash between the two root writes: finish the second.
            write_root(
                store,
                &Root {
                    v: 1,
                    root: found,
                    next: None,
                },
            )?;
        }
        Ok(Permissions {
            table: RwLock::new(t),
            writer: Mutex::new(()),
            queued: Arc::new(AtomicUsize::new(0)),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(limits.per_second) * 2.0,
                at: std::time::Instant::now(),
            }),
            limits,
        })
    }

    /// Keys with permissions.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// True if no key has permissions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    /// True if `user` may sign with `key`.
    pub fn may_sign(&self, key: &KeyRef, user: &Address) -> bool {
        key.owner() == *user
            || self
                .read()
                .entries
                .get(&key.key_id())
                .is_some_and(|e| e.allowed.contains(user))
    }

    /// Takes one change from the rate budget, or says it is used up.
    pub fn admit(&self) -> Result<(), PkpError> {
        let rate = f64::from(self.limits.per_second);
        let mut b = crate::lock(&self.bucket);
        let now = std::time::Instant::now();
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(rate * 2.0);
        b.at = now;
        if b.tokens < 1.0 {
            return Err(PkpError::Rate(self.limits.per_second));
        }
        b.tokens -= 1.0;
        Ok(())
    }

    /// Takes a place in the queue for the disk, or says the queue is full.
    pub fn enqueue(&self) -> Result<Queued, PkpError> {
        let n = self.queued.fetch_add(1, Ordering::AcqRel);
        let q = Queued(self.queued.clone());
        if n >= self.limits.queued {
            return Err(PkpError::Busy(n));
        }
        Ok(q)
    }

    /// Applies a permissions request the node verified was signed by `signer`: durable
    /// first, then in force (a crash never leaves a permission that was not kept).
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
        let _writer = crate::lock(&self.writer);
        let id = req.key().key_id();
        let next = Entry {
            key: req.key().clone(),
            seq: req.seq(),
            allowed: req.allowed().to_vec(),
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| invalid(&record_name(&id), e))?;
        let (root, old) = {
            let t = self.read();
            let old = t.entries.get(&id);
            let current = old.map_or(0, |e| e.seq);
            if req.seq() <= current {
                return Err(PkpError::Stale {
                    got: req.seq(),
                    current,
                });
            }
            let old_bytes = old
                .map(serde_json::to_vec)
                .transpose()
                .map_err(|e| invalid(&record_name(&id), e))?;
            self.check_budget(
                &t,
                &owner,
                old_bytes.as_ref().map(|o| on_disk(o.len())),
                on_disk(bytes.len()),
            )?;
            (t.root, old_bytes)
        };
        let mut next_root = root;
        if let Some(o) = &old {
            xor(&mut next_root, &digest(o));
        }
        xor(&mut next_root, &digest(&bytes));
        write_root(
            store,
            &Root {
                v: 1,
                root: hex::encode(root),
                next: Some(hex::encode(next_root)),
            },
        )?;
        store.write(&record_name(&id), &bytes)?;
        write_root(
            store,
            &Root {
                v: 1,
                root: hex::encode(next_root),
                next: None,
            },
        )?;
        let mut t = self.table.write().unwrap_or_else(|p| p.into_inner());
        t.root = next_root;
        t.bytes = t.bytes - old.as_ref().map_or(0, |o| on_disk(o.len())) + on_disk(bytes.len());
        if old.is_none() {
            *t.by_owner.entry(owner).or_default() += 1;
        }
        t.entries.insert(id, next);
        Ok(())
    }

    fn check_budget(
        &self,
        t: &Table,
        owner: &Address,
        old: Option<usize>,
        new: usize,
    ) -> Result<(), PkpError> {
        let l = &self.limits;
        if old.is_none() {
            let owned = t.by_owner.get(owner).copied().unwrap_or(0);
            if owned >= l.per_owner {
                return Err(PkpError::Limit(format!(
                    "{} already set permissions for {owned} keys (at most {})",
                    owner.to_checksum(),
                    l.per_owner
                )));
            }
            if t.entries.len() >= l.keys {
                return Err(PkpError::Limit(format!(
                    "this node holds permissions for {} keys (at most {})",
                    t.entries.len(),
                    l.keys
                )));
            }
        }
        if t.bytes - old.unwrap_or(0) + new > l.bytes {
            return Err(PkpError::Limit(format!(
                "this node's permission records take {} bytes on disk (at most {})",
                t.bytes, l.bytes
            )));
        }
        Ok(())
    }
}

/// A place in the queue for the disk; dropping it leaves.
pub struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Converts the whole-table file of earlier versions into records and a root.
fn convert_legacy(store: &Store) -> Result<(), PkpError> {
    let Some(bytes) = store.read(LEGACY)? else {
        return Ok(());
    };
    let table: std::collections::BTreeMap<String, Entry> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(LEGACY, e))?;
    let mut root = [0u8; 32];
    for e in table.values() {
        let b = serde_json::to_vec(e).map_err(|e| invalid(LEGACY, e))?;
        xor(&mut root, &digest(&b));
        store.write(&record_name(&e.key.key_id()), &b)?;
    }
    write_root(
        store,
        &Root {
            v: 1,
            root: hex::encode(root),
            next: None,
        },
    )?;
    store.remove(LEGACY)?;
    tracing::info!(
        "permissions converted to one sealed record per key ({} keys)",
        table.len()
    );
    Ok(())
}

impl From<PkpError> for ApiError {
    fn from(e: PkpError) -> Self {
        let code = match e {
            PkpError::Limit(_) => ErrorCode::PkpLimit,
            PkpError::Busy(_) | PkpError::Rate(_) => ErrorCode::Overloaded,
            PkpError::NotOwner { .. } => ErrorCode::NotOwner,
            PkpError::Stale { .. } => ErrorCode::StaleSeq,
            PkpError::Store(_) | PkpError::Invalid { .. } | PkpError::RolledBack { .. } => {
                ErrorCode::Internal
            }
        };
        ApiError::new(code, e.to_string())
    }
}

/// Handles `POST /v1/pkp/permissions` once the rate budget took it ([`Permissions::admit`],
/// before the body is parsed): the request for this network, the user's authorisation, a
/// place in the queue for the disk, then the change, kept durably (off the async workers)
/// before it is in force.
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
    let place = state.pkp().enqueue()?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let _place = place;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keynet_store::{KeySource, SealingKey};

    fn store(dir: &std::path::Path) -> Store {
        Store::open(dir, SealingKey::new([7; 32], KeySource::Simulated)).unwrap()
    }

    fn owner(b: u8) -> Address {
        Address::from_bytes([b; 20])
    }

    fn request(o: u8, name: &str, seq: u64) -> PermissionsRequest {
        PermissionsRequest::new(
            "net",
            KeyRef::new(owner(o), name).unwrap(),
            seq,
            vec![owner(99)],
        )
        .unwrap()
    }

    #[test]
    fn a_record_put_back_from_an_older_copy_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let p = Permissions::load(&s, PkpLimits::default()).unwrap();
        p.set(&s, &request(1, "k", 1), &owner(1)).unwrap();
        p.set(&s, &request(1, "other", 1), &owner(1)).unwrap();
        let file = dir
            .path()
            .join(record_name(&request(1, "k", 1).key().key_id()));
        let old = std::fs::read(&file).unwrap();
        p.set(&s, &request(1, "k", 2), &owner(1)).unwrap();
        drop(p);
        assert_eq!(
            Permissions::load(&s, PkpLimits::default()).unwrap().len(),
            2
        );
        std::fs::write(&file, &old).unwrap();
        assert!(matches!(
            Permissions::load(&s, PkpLimits::default()),
            Err(PkpError::RolledBack { count: 2 })
        ));
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(
            Permissions::load(&s, PkpLimits::default()),
            Err(PkpError::RolledBack { count: 1 })
        ));
    }

    #[test]
    fn a_crash_between_the_writes_leaves_a_state_that_loads() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let p = Permissions::load(&s, PkpLimits::default()).unwrap();
        p.set(&s, &request(1, "k", 1), &owner(1)).unwrap();
        let root_before = std::fs::read(dir.path().join(ROOT)).unwrap();
        let record = dir
            .path()
            .join(record_name(&request(1, "k", 1).key().key_id()));
        let record_before = std::fs::read(&record).unwrap();
        p.set(&s, &request(1, "k", 2), &owner(1)).unwrap();
        // Crash after step 2 (record written, root still the intent): the intent of the
        // change is what step 1 wrote, which is the final root's `next`.
        let final_root: Root = serde_json::from_slice(&s.read(ROOT).unwrap().unwrap()).unwrap();
        let intent = Root {
            v: 1,
            root: "00".repeat(32),
            next: Some(final_root.root.clone()),
        };
        write_root(&s, &intent).unwrap();
        let p = Permissions::load(&s, PkpLimits::default()).unwrap();
        assert!(p.may_sign(request(1, "k", 2).key(), &owner(99)));
        let healed: Root = serde_json::from_slice(&s.read(ROOT).unwrap().unwrap()).unwrap();
        assert_eq!((healed.root, healed.next), (final_root.root, None));
        // Crash after step 1 (intent written, record not): the old record and the old root.
        std::fs::write(&record, &record_before).unwrap();
        std::fs::write(dir.path().join(ROOT), &root_before).unwrap();
        let root_old: Root = serde_json::from_slice(&s.read(ROOT).unwrap().unwrap()).unwrap();
        write_root(
            &s,
            &Root {
                v: 1,
                root: root_old.root,
                next: Some("11".repeat(32)),
            },
        )
        .unwrap();
        assert_eq!(
            Permissions::load(&s, PkpLimits::default()).unwrap().len(),
            1
        );
    }

    #[test]
    fn budgets_per_owner_in_keys_and_in_bytes_and_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let limits = PkpLimits {
            per_owner: 2,
            keys: 3,
            bytes: 1 << 20,
            queued: 1,
            per_second: 1,
        };
        let p = Permissions::load(&s, limits).unwrap();
        p.set(&s, &request(1, "a", 1), &owner(1)).unwrap();
        p.set(&s, &request(1, "b", 1), &owner(1)).unwrap();
        assert!(matches!(
            p.set(&s, &request(1, "c", 1), &owner(1)),
            Err(PkpError::Limit(m)) if m.contains("at most 2")
        ));
        p.set(&s, &request(1, "a", 2), &owner(1)).unwrap();
        p.set(&s, &request(2, "a", 1), &owner(2)).unwrap();
        assert!(matches!(
            p.set(&s, &request(3, "a", 1), &owner(3)),
            Err(PkpError::Limit(m)) if m.contains("keys")
        ));
        let tight = Permissions::load(
            &s,
            PkpLimits {
                bytes: 3 * 4096 - 1,
                ..limits
            },
        )
        .unwrap();
        assert!(matches!(
            tight.set(&s, &request(1, "a", 3), &owner(1)),
            Err(PkpError::Limit(m)) if m.contains("bytes")
        ));
        let place = p.enqueue().unwrap();
        assert!(matches!(p.enqueue(), Err(PkpError::Busy(1))));
        drop(place);
        assert!(p.enqueue().is_ok());
        // One a second, a burst of two.
        assert!(p.admit().is_ok() && p.admit().is_ok());
        assert!(matches!(p.admit(), Err(PkpError::Rate(1))));
    }

    #[test]
    fn the_whole_table_of_earlier_versions_is_converted() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let r = request(4, "old", 5);
        let mut table = std::collections::BTreeMap::new();
        table.insert(
            hex::encode(r.key().key_id()),
            Entry {
                key: r.key().clone(),
                seq: 5,
                allowed: vec![owner(98)],
            },
        );
        s.write(LEGACY, &serde_json::to_vec(&table).unwrap())
            .unwrap();
        let p = Permissions::load(&s, PkpLimits::default()).unwrap();
        assert!(p.may_sign(r.key(), &owner(98)));
        assert!(s.read(LEGACY).unwrap().is_none());
        assert!(matches!(
            p.set(&s, &request(4, "old", 5), &owner(4)),
            Err(PkpError::Stale { current: 5, .. })
        ));
    }
}
