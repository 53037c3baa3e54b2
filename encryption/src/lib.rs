//! Encryption under access-control conditions, done by the client alone with the network's
//! BLS public key; decryption needs the network's BLS signature over the identity, which
//! the nodes release share by share only to a requester that meets the conditions.
//!
//! ```text
//! identity  = sha256("keynet/ibe-identity/v1\n" || conditions hash || sha256(plaintext))
//! data key  = 32 random bytes, IBE-encrypted to `identity` under the network key
//!             (blsful time-lock encryption, basic scheme, signatures in G1)
//! body      = the plaintext in 64 KiB chunks, each AES-256-GCM under the data key
//! ```
//!
//! The same key signs statements under conditions ([`signed_message`]); those messages are
//! longer than an identity, so a signed statement never opens a file.
//!
//! The file format, version 1 (integers big-endian):
//!
//! ```text
//! magic "KEYNET-ENC\n" (11) | version 1 (1)
//! | len (4) | conditions, canonical JSON
//! | plaintext sha256 (32)
//! | len (4) | IBE ciphertext of the data key (blsful's serde_bare form)
//! | chunk size (4)
//! | chunks: chunk size bytes + 16-byte tag each, the last shorter (possibly empty) + tag
//! ```
//!
//! Chunk `i` is sealed with nonce `i (8 bytes) || last (4 bytes: 1 for the last chunk, 0
//! otherwise)` and associated data `sha256(header)`, the header being every byte before the
//! chunks: reordered, dropped, truncated or appended chunks, and any change to the header
//! (conditions, hash, key ciphertext), fail to decrypt. Altered conditions also change the
//! identity, so the nodes' signature no longer opens the data key.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod domain;
mod format;
mod stream;

pub use domain::{SIGN_DOMAIN, identity, signed_message};
pub use format::{Header, MAGIC, VERSION};
pub use stream::{CHUNK, DecryptError, EncryptError, decrypt, encrypt, encrypt_file};

/// The BLS flavour of the network key: public key in G2, signatures (and decryption keys)
/// in G1.
pub type Bls = blsful::Bls12381G1Impl;
