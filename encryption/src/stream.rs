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
use crate::domain::identity;
use crate::format::Header;

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
    /// The conditions are larger than a node accepts in a request: nobody could decrypt.
    #[error(
        "encrypt: the conditions are {0} bytes in canonical form; nodes accept at most {max}",
        max = keynet_conditions::MAX_DOCUMENT
    )]
    ConditionsTooLarge(usize),
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

/// Reads an input in records of `size` bytes and knows which one is the last: the one
/// nothing follows (full, short or empty). Holds two records; zeroes them when dropped.
struct Records<R> {
    input: R,
    size: usize,
    cur: Vec<u8>,
    next: Vec<u8>,
    cur_len: usize,
    next_len: usize,
    started: bool,
    done: bool,
}

impl<R: Read> Records<R> {
    fn new(input: R, size: usize) -> Self {
        Records {
            input,
            size,
            cur: vec![0u8; size],
            next: vec![0u8; size],
            cur_len: 0,
            next_len: 0,
            started: false,
            done: false,
        }
    }

    /// The next record and whether it is the last; `None` after the last.
    fn next_record(&mut self) -> std::io::Result<Option<(&mut [u8], bool)>> {
        if self.done {
            return Ok(None);
        }
        if self.started {
            std::mem::swap(&mut self.cur, &mut self.next);
            self.cur_len = self.next_len;
        } else {
            self.cur_len = fill(&mut self.input, &mut self.cur)?;
            self.started = true;
        }
        self.next_len = if self.cur_len == self.size {
            fill(&mut self.input, &mut self.next)?
        } else {
            0
        };
        self.done = self.next_len == 0;
        Ok(Some((&mut self.cur[..self.cur_len], self.done)))
    }
}

impl<R> Drop for Records<R> {
    fn drop(&mut self) {
        self.cur.fill(0);
        self.next.fill(0);
    }
}

/// Encrypts the file at `path` (hashed first, then streamed) to `output`; returns the
/// plaintext's sha256 (with the conditions, it names the file's identity).
pub fn encrypt_file(
    network: &PublicKey<Bls>,
    conditions: &Conditions,
    path: &Path,
    output: &mut impl Write,
) -> Result<[u8; 32], EncryptError> {
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
    )?;
    Ok(digest)
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
    let canonical = conditions.canonical().len();
    if canonical > keynet_conditions::MAX_DOCUMENT {
        return Err(EncryptError::ConditionsTooLarge(canonical));
    }
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
    let mut records = Records::new(input, CHUNK as usize);
    let mut sealed = Vec::with_capacity(CHUNK as usize + TAG);
    let mut i: u64 = 0;
    while let Some((plain, last)) = records.next_record()? {
        sealed.clear();
        sealed.extend_from_slice(plain);
        key.seal_in_place_append_tag(nonce(i, last), Aad::from(aad), &mut sealed)
            .map_err(|_| EncryptError::Random)?;
        output.write_all(&sealed)?;
        i += 1;
    }
    sealed.fill(0);
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
    let mut records = Records::new(input, header.chunk as usize + TAG);
    let mut h = Sha256::new();
    let mut i: u64 = 0;
    while let Some((record, last)) = records.next_record()? {
        if record.len() < TAG {
            return Err(DecryptError::Chunk(i));
        }
        let plain = key
            .open_in_place(nonce(i, last), Aad::from(header.digest), record)
            .map_err(|_| DecryptError::Chunk(i))?;
        h.update(&*plain);
        output.write_all(plain)?;
        i += 1;
    }
    output.flush()?;
    if <[u8; 32]>::from(h.finalize()) != header.plaintext_sha256 {
        return Err(DecryptError::Hash);
    }
    Ok(())
}
