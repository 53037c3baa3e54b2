//! Keynet's threshold cryptography on secp256k1.
//!
//! - [`dkg`]: FROST's distributed key generation as a state machine with named states,
//!   a deadline per round, an echo round that catches a participant who sent different
//!   round-one packages to different peers, and every failure naming its culprits.
//! - [`misconduct`]: the faults a DKG member's own round-one and round-two packages show
//!   to anyone (wrong degree, failed proof of knowledge, share against its commitment).
//! - [`reshare`]: moving a threshold secret to a new member set, or refreshing its shares,
//!   with every dealing checked against the old public shares; generic over the group.
//! - [`derive`]: user keys derived from the root key by a public tweak from a key id, so
//!   each node derives its share locally and anyone derives the public key.
//! - [`schnorr`]: the RFC 9591 verification equation for FROST(secp256k1, SHA-256),
//!   written from the RFC, independent of the signing library.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aggregate;
pub mod bls_batch;
pub mod bls_dkg;
pub mod derive;
pub mod dkg;
pub mod h2f;
pub mod misconduct;
pub mod reshare;
pub mod schnorr;
pub mod signing;
pub mod wire;

pub use frost_secp256k1 as frost;
