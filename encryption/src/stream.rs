//! Encrypting and decrypting a stream: the header, then authenticated chunks (see the crate
//! documentation). Memory stays at two chunks whatever the size of the data.

use std::io::{Read, Write};
use std::path::Path;

use blsful::{PublicKey, Signature, SignatureSchemes, TimeCryptCiphertext};
use keynet_conditions::Conditions;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Bls;
use crate::format::{Header, identity};

/// Plaintext bytes per chunk.
pub const CHUNK: u32 = 64 * 1024;
/// Largest chunk a reader accepts.
pub(crate) const MAX_CHUNK: u32 = 16 << 20;
const TAG: usize = 16;

/// Why encryption failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// Reading the plaintext or writing the ciphertext.
    #[error("encrypt: {0}")]
    Io(#[from] std::io::Error),
    /// The IBE encryption of the data key.
    #[error("encrypt: data key: {0}")]
    Key(String),
    /// No randomness.
    #[error("encrypt: no randomness")]
    Random,
}

/// Why decryption failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The header is malformed.
    #[error("decrypt: header: {0}")]
    Header(String),
    /// The signature does not open the data key: not the network's signature over this
    /// file's identity (conditions or file altered, or the wrong network).
    #[error("decrypt: the signature does not open this file's data key")]
    Key,
    /// A chunk failed authentication: the file was altered, truncated or extended.
    #[error("decrypt: chunk {0} failed authentication (altered, reordered or truncated)")]
    Chunk(u64),
    /// The decrypted data does not hash to the header's plaintext hash.
    #[error("decrypt: the plaintext does not match the header's hash")]
    Hash,
    /// Reading or writing.
    #[error("decrypt: {0}")]
    Io(#[from] std::io::Error),
}

fn nonce(i: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&i.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encrypts the file at `path` (hashed first, then streamed) to `output`.
pub fn encrypt_file(
    network: &PublicKey<Bls>,
    conditions: &Conditions,
    path: &Path,
    output: &mut impl Write,
) -> Result<(), EncryptError> {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK as usize];
    loop {
        let n = fill(&mut f, &mut buf)?;
        h.update(&buf[..n]);
        if n < buf.len() {
            break;
        }
    }
    let digest: [u8; 32] = h.finalize().into();
    encrypt(
        network,
        conditions,
        &digest,
        &mut std::fs::File::open(path)?,
        output,
    )
}

/// Encrypts `input`, whose sha256 is `plaintext_sha256`, to `output`. (A wrong hash makes
/// a file nobody can decrypt: the identity names it and decryption checks it.)
pub fn encrypt(
    network: &PublicKey<Bls>,
    conditions: &Conditions,
    plaintext_sha256: &[u8; 32],
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<(), EncryptError> {
    let mut data_key = Zeroizing::new([0u8; 32]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut data_key[..])
        .map_err(|_| EncryptError::Random)?;
    let id = identity(conditions, plaintext_sha256);
    let ct = network
        .encrypt_time_lock(SignatureSchemes::Basic, &data_key[..], id)
        .map_err(|e| EncryptError::Key(e.to_string()))?;
    let ct_bytes = Vec::<u8>::try_from(&ct).map_err(|e| EncryptError::Key(e.to_string()))?;
    let header = Header::encode(conditions, plaintext_sha256, &ct_bytes, CHUNK);
    output.write_all(&header)?;
    let aad: [u8; 32] = Sha256::digest(&header).into();
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &data_key[..]).map_err(|_| EncryptError::Random)?,
    );
    let size = CHUNK as usize;
    let mut cur = vec![0u8; size];
    let mut next = vec![0u8; size];
    let mut cur_len = fill(input, &mut cur)?;
    let mut i: u64 = 0;
    let mut sealed = Vec::with_capacity(size + TAG);
    loop {
        // The last chunk is the one with nothing after it (it may be full, or empty).
        let next_len = if cur_len == size {
            fill(input, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        sealed.clear();
        sealed.extend_from_slice(&cur[..cur_len]);
        key.seal_in_place_append_tag(nonce(i, last), Aad::from(aad), &mut sealed)
            .map_err(|_| EncryptError::Random)?;
        output.write_all(&sealed)?;
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        i += 1;
    }
    cur.fill(0);
    next.fill(0);
    output.flush()?;
    Ok(())
}

/// Decrypts the chunks that follow `header` in `input` to `output`, with the network's
/// signature over the header's identity (combined from the nodes' shares).
pub fn decrypt(
    header: &Header,
    signature: &Signature<Bls>,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<(), DecryptError> {
    let ct = TimeCryptCiphertext::<Bls>::try_from(header.key_ciphertext.as_slice())
        .map_err(|e| DecryptError::Header(format!("key ciphertext: {e}")))?;
    if ct.scheme != SignatureSchemes::Basic {
        return Err(DecryptError::Header(
            "key ciphertext: not the basic scheme".into(),
        ));
    }
    let opened = Option::<Vec<u8>>::from(ct.decrypt(signature)).ok_or(DecryptError::Key)?;
    let data_key = Zeroizing::new(opened);
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).map_err(|_| DecryptError::Key)?);
    let size = header.chunk as usize + TAG;
    let mut cur = vec![0u8; size];
    let mut next = vec![0u8; size];
    let mut cur_len = fill(input, &mut cur)?;
    let mut h = Sha256::new();
    let mut i: u64 = 0;
    loop {
        let next_len = if cur_len == size {
            fill(input, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        if cur_len < TAG {
            return Err(DecryptError::Chunk(i));
        }
        let plain = key
            .open_in_place(
                nonce(i, last),
                Aad::from(header.digest),
                &mut cur[..cur_len],
            )
            .map_err(|_| DecryptError::Chunk(i))?;
        h.update(&*plain);
        output.write_all(plain)?;
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        i += 1;
    }
    cur.fill(0);
    next.fill(0);
    output.flush()?;
    if <[u8; 32]>::from(h.finalize()) != header.plaintext_sha256 {
        return Err(DecryptError::Hash);
    }
    Ok(())
}
