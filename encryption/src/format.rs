//! The header: its bytes, its parser, and the identity it names.

use std::io::Read;

use keynet_conditions::Conditions;
use sha2::{Digest, Sha256};

use crate::domain::identity;
use crate::stream::DecryptError;

/// File magic.
pub const MAGIC: &[u8; 11] = b"KEYNET-ENC\n";
/// Format version.
pub const VERSION: u8 = 1;
/// Largest conditions document or key ciphertext in a header.
const MAX_FIELD: u32 = 1 << 20;

/// A parsed header.
#[derive(Clone, Debug)]
pub struct Header {
    /// The conditions (parsed and checked; their canonical form is what the header holds).
    pub conditions: Conditions,
    /// sha256 of the plaintext.
    pub plaintext_sha256: [u8; 32],
    /// The IBE ciphertext of the data key.
    pub key_ciphertext: Vec<u8>,
    /// Chunk size.
    pub chunk: u32,
    /// sha256 of the header's bytes: every chunk's associated data.
    pub digest: [u8; 32],
}

impl Header {
    /// The identity the nodes sign to release the data key.
    pub fn identity(&self) -> [u8; 32] {
        identity(&self.conditions, &self.plaintext_sha256)
    }

    /// The header's bytes.
    pub(crate) fn encode(
        conditions: &Conditions,
        plaintext_sha256: &[u8; 32],
        key_ciphertext: &[u8],
        chunk: u32,
    ) -> Vec<u8> {
        let c = conditions.canonical();
        let mut out = Vec::with_capacity(64 + c.len() + key_ciphertext.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c.as_bytes());
        out.extend_from_slice(plaintext_sha256);
        out.extend_from_slice(&(key_ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(key_ciphertext);
        out.extend_from_slice(&chunk.to_be_bytes());
        out
    }

    /// Reads a header from the start of `input`, leaving it at the first chunk.
    pub fn read(input: &mut impl Read) -> Result<Header, DecryptError> {
        let mut raw = Vec::new();
        let mut take = |n: usize, what: &'static str| -> Result<Vec<u8>, DecryptError> {
            let mut b = vec![0u8; n];
            input
                .read_exact(&mut b)
                .map_err(|e| DecryptError::Header(format!("{what}: {e}")))?;
            raw.extend_from_slice(&b);
            Ok(b)
        };
        if take(MAGIC.len(), "magic")?.as_slice() != MAGIC {
            return Err(DecryptError::Header("not a Keynet encrypted file".into()));
        }
        let v = take(1, "version")?;
        if v != [VERSION] {
            return Err(DecryptError::Header(format!(
                "version {} (this reads {VERSION})",
                v.first().copied().unwrap_or(0)
            )));
        }
        let len = |b: Vec<u8>, what: &'static str| -> Result<usize, DecryptError> {
            let n = u32::from_be_bytes(b.try_into().unwrap_or([0xff; 4]));
            if n > MAX_FIELD {
                return Err(DecryptError::Header(format!(
                    "{what}: {n} bytes is too long"
                )));
            }
            Ok(n as usize)
        };
        let n = len(take(4, "conditions length")?, "conditions")?;
        if n > keynet_conditions::MAX_DOCUMENT {
            return Err(DecryptError::Header(format!(
                "conditions: {n} bytes; nodes accept at most {}",
                keynet_conditions::MAX_DOCUMENT
            )));
        }
        let conditions_bytes = take(n, "conditions")?;
        let conditions = Conditions::parse(&conditions_bytes)
            .map_err(|e| DecryptError::Header(e.to_string()))?;
        if conditions.canonical().as_bytes() != conditions_bytes.as_slice() {
            return Err(DecryptError::Header(
                "conditions are not in canonical form".into(),
            ));
        }
        let plaintext_sha256: [u8; 32] = take(32, "plaintext hash")?
            .try_into()
            .map_err(|_| DecryptError::Header("plaintext hash".into()))?;
        let n = len(take(4, "key ciphertext length")?, "key ciphertext")?;
        let key_ciphertext = take(n, "key ciphertext")?;
        let chunk = u32::from_be_bytes(
            take(4, "chunk size")?
                .try_into()
                .map_err(|_| DecryptError::Header("chunk size".into()))?,
        );
        if chunk == 0 || chunk > crate::stream::MAX_CHUNK {
            return Err(DecryptError::Header(format!("chunk size {chunk}")));
        }
        Ok(Header {
            conditions,
            plaintext_sha256,
            key_ciphertext,
            chunk,
            digest: Sha256::digest(&raw).into(),
        })
    }
}
