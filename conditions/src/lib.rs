//! Keynet's access-control conditions: who may obtain a decryption share or a BLS signature
//! share.
//!
//! A small, typed, versioned language in JSON ([`Conditions`]):
//!
//! ```json
//! { "version": 1,
//!   "condition": { "all": [
//!       { "address_in": ["0x...", "0x..."] },
//!       { "time_before": 1767225600 },
//!       { "any": [ { "time_after": 1735689600 },
//!                  { "signed_by": { "address": "0x...", "statement": "I allow it" } } ] } ] } }
//! ```
//!
//! Kinds: `address_is`, `address_in` (the requester's address), `time_before` (the node's
//! clock, Unix seconds, strictly before), `time_after` (at or after), `signed_by` (the
//! requester presents an EIP-191 signature by `address` over `statement`), `all` and `any`
//! (non-empty), nested at most [`MAX_DEPTH`] deep. Parsing is strict: an unknown kind or
//! field, a repeated field, a wrong type, an empty list or an out-of-range value is an error
//! naming the path; nothing unknown is ever read as "allowed".
//!
//! The canonical form ([`Conditions::canonical`]) is what is hashed: JSON without
//! whitespace; object keys in a fixed order; addresses as lowercase hex; `address_in` sorted
//! and without repeats (a repeat is refused when parsing); the members of `all` and `any`
//! sorted by their own canonical bytes (both are commutative). The same conditions therefore
//! hash the same whatever key order, spacing, address case or member order the user wrote,
//! and any change of meaning changes the hash. `tests/vectors/canonical-v1.json` holds
//! vectors.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod canonical;
mod eval;
mod model;

pub use canonical::{DOMAIN, canonical_json};
pub use eval::{Context, Failure, Presented};
pub use model::{
    Condition, Conditions, ConditionsError, MAX_DEPTH, MAX_DOCUMENT, MAX_LIST, MAX_NODES, VERSION,
};
