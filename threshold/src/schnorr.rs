//! Signature check for FROST(secp256k1, SHA-256) signatures, from RFC 9591 directly:
//! a signature is `R || z` (33-byte compressed point, 32-byte big-endian scalar) and is valid
//! for public key `PK` and message `m` iff `z·G == R + c·PK`, where
//! `c = H2(R || PK || m)` and `H2` is `hash_to_field` with DST
//! `"FROST-secp256k1-SHA256-v1" || "chal"` (RFC 9591 §6.5, §5.3 `verify_signature_share`
//! and Appendix C). Nothing here calls the FROST library.

use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};

use crate::h2f::hash_to_scalar;

/// The ciphersuite's context string.
pub const CONTEXT: &[u8] = b"FROST-secp256k1-SHA256-v1";

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchnorrError {
    /// The signature is not 65 bytes.
    #[error("signature is {0} bytes, expected 65 (R 33 || z 32)")]
    Length(usize),
    /// `R` or the public key is not a valid compressed point (or is the identity).
    #[error("{0} is not a compressed secp256k1 point")]
    Point(&'static str),
    /// `z` is not below the group order.
    #[error("z is not a canonical scalar")]
    Scalar,
    /// The equation does not hold.
    #[error("signature does not verify (z·G != R + c·PK)")]
    Invalid,
}

fn point(what: &'static str, bytes: &[u8]) -> Result<ProjectivePoint, SchnorrError> {
    if bytes.len() != 33 {
        return Err(SchnorrError::Point(what));
    }
    let ep = EncodedPoint::from_bytes(bytes).map_err(|_| SchnorrError::Point(what))?;
    Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&ep))
        .map(ProjectivePoint::from)
        .ok_or(SchnorrError::Point(what))
}

/// The challenge `c = H2(R || PK || m)`.
pub fn challenge(r: &[u8], pk: &[u8], msg: &[u8]) -> Scalar {
    let dst = [CONTEXT, b"chal"].concat();
    hash_to_scalar(&[r, pk, msg], &dst)
}

/// Verifies `sig` (65 bytes) over `msg` under the compressed public key `pk` (33 bytes).
pub fn verify(pk: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), SchnorrError> {
    if sig.len() != 65 {
        return Err(SchnorrError::Length(sig.len()));
    }
    let (r_bytes, z_bytes) = sig.split_at(33);
    let r = point("R", r_bytes)?;
    let y = point("public key", pk)?;
    let z_arr: [u8; 32] = z_bytes.try_into().map_err(|_| SchnorrError::Scalar)?;
    let z = Option::<Scalar>::from(Scalar::from_repr(z_arr.into())).ok_or(SchnorrError::Scalar)?;
    let c = challenge(r_bytes, pk, msg);
    let lhs = ProjectivePoint::GENERATOR * z;
    let rhs = r + y * c;
    if lhs.to_affine().to_encoded_point(true) == rhs.to_affine().to_encoded_point(true) {
        Ok(())
    } else {
        Err(SchnorrError::Invalid)
    }
}
