//! The sealed format:
//!
//! ```text
//! magic "KEYNET-SEALED\0" (14) | version 1 (1) | key source (1) | nonce (12) | ciphertext || tag (16)
//! AAD = magic | version | key source | len(name) (2, BE) | name
//! ```

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8; 14] = b"KEYNET-SEALED\0";
const VERSION: u8 = 1;
const HEADER: usize = MAGIC.len() + 2 + NONCE_LEN;
const TAG: usize = 16;

/// Where a sealing key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The SEV-SNP firmware's derived key (measurement and policy mixed in).
    SnpDerived,
    /// The simulated platform: protects nothing from the host. Tests and development only.
    Simulated,
}

impl KeySource {
    fn byte(self) -> u8 {
        match self {
            KeySource::SnpDerived => 1,
            KeySource::Simulated => 2,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(KeySource::SnpDerived),
            2 => Some(KeySource::Simulated),
            _ => None,
        }
    }
}

/// A 256-bit sealing key; zeroized on drop.
pub struct SealingKey {
    key: [u8; 32],
    source: KeySource,
}

impl SealingKey {
    /// A key from its bytes and source.
    pub fn new(key: [u8; 32], source: KeySource) -> Self {
        SealingKey { key, source }
    }
    /// Where the key comes from.
    pub fn source(&self) -> KeySource {
        self.source
    }
}

impl Drop for SealingKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Why a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Too short, wrong magic or unknown version: not our sealed format.
    #[error("not a sealed Keynet file: {0}")]
    Format(&'static str),
    /// Sealed under another kind of key.
    #[error("sealed under a {found:?} key, but this node's key is {expected:?}")]
    KeySource {
        /// This node's key source.
        expected: KeySource,
        /// The file's.
        found: KeySource,
    },
    /// Authentication failed: sealed under another key (another image, chip or
    /// platform), for another file name, or modified.
    #[error(
        "authentication failed: sealed by another image or chip, for another file, or modified"
    )]
    Authentication,
    /// The system gave no randomness.
    #[error("no randomness for the nonce")]
    Random,
}

fn aad(source: KeySource, name: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(MAGIC.len() + 4 + name.len());
    a.extend_from_slice(MAGIC);
    a.push(VERSION);
    a.push(source.byte());
    a.extend_from_slice(&(name.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    a.extend_from_slice(name.as_bytes());
    a
}

fn cipher(key: &SealingKey) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, &key.key)
        .map(LessSafeKey::new)
        .map_err(|_| SealError::Format("bad key length"))
}

/// Seals `plaintext` for the file `name`.
pub fn seal(key: &SealingKey, name: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Random)?;
    let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(key.source.byte());
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    cipher(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(key.source, name)),
            &mut body,
        )
        .map_err(|_| SealError::Authentication)?;
    out.extend_from_slice(&body);
    body.zeroize();
    Ok(out)
}

/// Opens a value sealed for the file `name`.
pub fn unseal(
    key: &SealingKey,
    name: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < HEADER + TAG {
        return Err(SealError::Format("too short"));
    }
    let (header, body) = sealed.split_at(HEADER);
    if &header[..MAGIC.len()] != MAGIC {
        return Err(SealError::Format("wrong magic"));
    }
    if header[MAGIC.len()] != VERSION {
        return Err(SealError::Format("unknown version"));
    }
    let found = KeySource::from_byte(header[MAGIC.len() + 1])
        .ok_or(SealError::Format("unknown key source"))?;
    if found != key.source {
        return Err(SealError::KeySource {
            expected: key.source,
            found,
        });
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[MAGIC.len() + 2..]);
    let mut buf = Zeroizing::new(body.to_vec());
    let len = cipher(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(found, name)),
            &mut buf,
        )
        .map_err(|_| SealError::Authentication)?
        .len();
    buf.truncate(len);
    Ok(buf)
}
