//! The SNP ID block and ID authentication structure (SNP ABI spec, SNP_LAUNCH_FINISH), in
//! the form QEMU's `sev-snp-guest` object takes as `id-block=` and `id-auth=`.
//!
//! Signatures are ECDSA P-384 with SHA-384, deterministic (RFC 6979), so the same inputs
//! give the same bytes. Integers are little-endian and zero-padded to 72 bytes, as the
//! secure processor reads them.

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::gctx::LaunchDigest;

/// Size of the ID block.
pub const ID_BLOCK_LEN: usize = 0x60;
/// Size of the ID authentication information structure.
pub const ID_AUTH_LEN: usize = 0x1000;
/// Size of a public key in SNP format.
pub const PUBKEY_LEN: usize = 0x404;
/// Size of a signature in SNP format.
pub const SIG_LEN: usize = 0x200;
/// The guest policy sev-snp-measure's `snp-create-id-block` uses: SMT allowed, and the
/// reserved bit 17 that must be one.
pub const DEFAULT_POLICY: u64 = 0x30000;

/// `ECDSA P-384 with SHA-384`, the only algorithm defined.
const ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Curve identifier of P-384 in an SNP public key.
const CURVE_P384: u32 = 2;
const COORD_LEN: usize = 0x48;

// Offsets within ID_AUTH.
const AUTH_ID_KEY_ALGO: usize = 0x00;
const AUTH_AUTHOR_KEY_ALGO: usize = 0x04;
const AUTH_ID_BLOCK_SIG: usize = 0x40;
const AUTH_ID_KEY: usize = 0x240;
const AUTH_ID_KEY_SIG: usize = 0x680;
const AUTH_AUTHOR_KEY: usize = 0x880;

/// The fields of an ID block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdBlock {
    /// The expected launch digest.
    pub launch_digest: LaunchDigest,
    /// Family ID, reported in the attestation report.
    pub family_id: [u8; 16],
    /// Image ID, reported in the attestation report.
    pub image_id: [u8; 16],
    /// Structure version (1).
    pub version: u32,
    /// Guest SVN, reported in the attestation report.
    pub guest_svn: u32,
    /// The guest policy the launch must use.
    pub policy: u64,
}

impl IdBlock {
    /// An ID block with the defaults of `snp-create-id-block`: zero IDs, version 1, SVN 0,
    /// policy [`DEFAULT_POLICY`].
    pub fn new(launch_digest: LaunchDigest) -> Self {
        IdBlock {
            launch_digest,
            family_id: [0; 16],
            image_id: [0; 16],
            version: 1,
            guest_svn: 0,
            policy: DEFAULT_POLICY,
        }
    }

    /// The 96-byte encoding.
    pub fn to_bytes(&self) -> [u8; ID_BLOCK_LEN] {
        let mut b = [0u8; ID_BLOCK_LEN];
        b[0x00..0x30].copy_from_slice(&self.launch_digest);
        b[0x30..0x40].copy_from_slice(&self.family_id);
        b[0x40..0x50].copy_from_slice(&self.image_id);
        b[0x50..0x54].copy_from_slice(&self.version.to_le_bytes());
        b[0x54..0x58].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[0x58..0x60].copy_from_slice(&self.policy.to_le_bytes());
        b
    }
}

/// An ECDSA P-384 private key used as ID key or author key.
pub struct IdKey {
    key: SigningKey,
}

impl IdKey {
    /// Reads a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, what
    /// `openssl ecparam -genkey` writes). `which` names the key in errors.
    pub fn from_pem(which: &'static str, pem: &str) -> Result<Self> {
        let pem = Zeroizing::new(pem.trim().to_owned());
        let bad = |reason: String| Error::Key { which, reason };
        let key = if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            let sk = p384::SecretKey::from_sec1_pem(&pem)
                .map_err(|e| bad(format!("not a P-384 SEC1 key: {e}")))?;
            SigningKey::from(&sk)
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                bad(format!(
                    "not a P-384 PKCS#8 key (SNP only supports P-384): {e}"
                ))
            })?
        } else {
            return Err(bad(
                "expected a PEM \"EC PRIVATE KEY\" or \"PRIVATE KEY\" (unencrypted)".into(),
            ));
        };
        Ok(IdKey { key })
    }

    /// Wraps a key.
    pub fn from_signing_key(key: SigningKey) -> Self {
        IdKey { key }
    }

    /// The public key in SNP format (curve, Qx, Qy little-endian, zero padding).
    pub fn public_bytes(&self) -> [u8; PUBKEY_LEN] {
        let point = self.key.verifying_key().to_encoded_point(false);
        let mut b = [0u8; PUBKEY_LEN];
        b[0..4].copy_from_slice(&CURVE_P384.to_le_bytes());
        if let (Some(x), Some(y)) = (point.x(), point.y()) {
            put_le(&mut b[4..4 + COORD_LEN], x);
            put_le(&mut b[4 + COORD_LEN..4 + 2 * COORD_LEN], y);
        }
        b
    }

    /// SHA-384 of [`Self::public_bytes`]: what the attestation report carries as
    /// ID_KEY_DIGEST or AUTHOR_KEY_DIGEST.
    pub fn digest(&self) -> [u8; 48] {
        Sha384::digest(self.public_bytes()).into()
    }

    /// Signs `msg` (SHA-384, RFC 6979) and encodes the signature in SNP format.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIG_LEN] {
        let sig: Signature = self.key.sign(msg);
        let (r, s) = sig.split_bytes();
        let mut b = [0u8; SIG_LEN];
        put_le(&mut b[0..COORD_LEN], &r);
        put_le(&mut b[COORD_LEN..2 * COORD_LEN], &s);
        b
    }
}

/// Writes big-endian `be` into `out` little-endian, zero-padded.
fn put_le(out: &mut [u8], be: &[u8]) {
    for (o, v) in out.iter_mut().zip(be.iter().rev()) {
        *o = *v;
    }
}

/// A signed ID block with its authentication structure.
#[derive(Clone, Debug)]
pub struct SignedIdBlock {
    /// The ID block.
    pub block: [u8; ID_BLOCK_LEN],
    /// The ID authentication information structure.
    pub auth: Vec<u8>,
    /// SHA-384 of the ID public key.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author public key, if one signed the ID key.
    pub author_key_digest: Option<[u8; 48]>,
}

/// Signs `block` with the ID key and, if given, the ID key with the author key.
pub fn sign(block: &IdBlock, id_key: &IdKey, author_key: Option<&IdKey>) -> SignedIdBlock {
    let block = block.to_bytes();
    let id_pub = id_key.public_bytes();
    let mut auth = vec![0u8; ID_AUTH_LEN];
    auth[AUTH_ID_KEY_ALGO..AUTH_ID_KEY_ALGO + 4]
        .copy_from_slice(&ALGO_ECDSA_P384_SHA384.to_le_bytes());
    auth[AUTH_ID_BLOCK_SIG..AUTH_ID_BLOCK_SIG + SIG_LEN].copy_from_slice(&id_key.sign(&block));
    auth[AUTH_ID_KEY..AUTH_ID_KEY + PUBKEY_LEN].copy_from_slice(&id_pub);
    if let Some(author) = author_key {
        auth[AUTH_AUTHOR_KEY_ALGO..AUTH_AUTHOR_KEY_ALGO + 4]
            .copy_from_slice(&ALGO_ECDSA_P384_SHA384.to_le_bytes());
        auth[AUTH_ID_KEY_SIG..AUTH_ID_KEY_SIG + SIG_LEN].copy_from_slice(&author.sign(&id_pub));
        auth[AUTH_AUTHOR_KEY..AUTH_AUTHOR_KEY + PUBKEY_LEN].copy_from_slice(&author.public_bytes());
    }
    SignedIdBlock {
        block,
        auth,
        id_key_digest: id_key.digest(),
        author_key_digest: author_key.map(IdKey::digest),
    }
}

/// Checks the signatures inside an ID authentication structure against the keys it
/// carries: the ID block signature, and the author's signature of the ID key when the
/// author algorithm is set. Returns the ID key and author key digests.
pub fn verify(block: &[u8], auth: &[u8]) -> Result<([u8; 48], Option<[u8; 48]>)> {
    if block.len() != ID_BLOCK_LEN {
        return Err(Error::param(
            "id-block",
            format!("expected {ID_BLOCK_LEN} bytes, found {}", block.len()),
        ));
    }
    if auth.len() != ID_AUTH_LEN {
        return Err(Error::param(
            "id-auth",
            format!("expected {ID_AUTH_LEN} bytes, found {}", auth.len()),
        ));
    }
    let id_pub = &auth[AUTH_ID_KEY..AUTH_ID_KEY + PUBKEY_LEN];
    check_sig(
        "ID",
        id_pub,
        &auth[AUTH_ID_BLOCK_SIG..AUTH_ID_BLOCK_SIG + SIG_LEN],
        block,
    )?;
    let author_algo = u32::from_le_bytes([
        auth[AUTH_AUTHOR_KEY_ALGO],
        auth[AUTH_AUTHOR_KEY_ALGO + 1],
        auth[AUTH_AUTHOR_KEY_ALGO + 2],
        auth[AUTH_AUTHOR_KEY_ALGO + 3],
    ]);
    let author_digest = if author_algo == ALGO_ECDSA_P384_SHA384 {
        let author_pub = &auth[AUTH_AUTHOR_KEY..AUTH_AUTHOR_KEY + PUBKEY_LEN];
        check_sig(
            "author",
            author_pub,
            &auth[AUTH_ID_KEY_SIG..AUTH_ID_KEY_SIG + SIG_LEN],
            id_pub,
        )?;
        Some(Sha384::digest(author_pub).into())
    } else {
        None
    };
    Ok((Sha384::digest(id_pub).into(), author_digest))
}

fn be_from_le(le: &[u8]) -> Option<[u8; 48]> {
    // Values are 48 bytes; the upper 24 bytes of each 72-byte field must be zero.
    if le[48..].iter().any(|b| *b != 0) {
        return None;
    }
    let mut be = [0u8; 48];
    for (o, v) in be.iter_mut().zip(le[..48].iter().rev()) {
        *o = *v;
    }
    Some(be)
}

fn check_sig(which: &'static str, pubkey: &[u8], sig: &[u8], msg: &[u8]) -> Result<()> {
    let bad = |reason: &str| Error::Key {
        which,
        reason: reason.to_owned(),
    };
    if pubkey[0..4] != CURVE_P384.to_le_bytes() {
        return Err(bad("public key curve is not P-384"));
    }
    let x = be_from_le(&pubkey[4..4 + COORD_LEN]).ok_or_else(|| bad("public key Qx too large"))?;
    let y = be_from_le(&pubkey[4 + COORD_LEN..4 + 2 * COORD_LEN])
        .ok_or_else(|| bad("public key Qy too large"))?;
    let point = p384::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let vk =
        VerifyingKey::from_encoded_point(&point).map_err(|_| bad("public key is not on P-384"))?;
    let r = be_from_le(&sig[0..COORD_LEN]).ok_or_else(|| bad("signature R too large"))?;
    let s =
        be_from_le(&sig[COORD_LEN..2 * COORD_LEN]).ok_or_else(|| bad("signature S too large"))?;
    let sig = Signature::from_scalars(r, s).map_err(|_| bad("signature R or S out of range"))?;
    vk.verify(msg, &sig)
        .map_err(|_| bad("signature does not verify"))
}
