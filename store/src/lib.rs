//! Sealed node state (key shares, identity key).
//!
//! [`seal`] encrypts and authenticates a value under a [`SealingKey`] with AES-256-GCM; the
//! file name, the format version and the key's source are authenticated too, so a file
//! cannot be renamed into another's place or read under another kind of key. On SEV-SNP
//! the key is the firmware's derived key (MSG_KEY_REQ mixing in the measurement and
//! policy): only the same image on the same chip gets it. On the simulated platform it is
//! derived from the platform's own secret and says so.
//!
//! [`Store`] writes files atomically and durably (temporary file, fsync, rename, fsync of
//! the directory): a crash at any point leaves the old or the new file, never a torn one.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod format;
mod store;

pub use format::{KeySource, SealError, SealingKey, seal, unseal};
pub use store::{Store, StoreError};
