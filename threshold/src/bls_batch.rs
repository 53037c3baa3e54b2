//! Checking many BLS signatures over one message at once (basic scheme, signatures in G1,
//! keys in G2), for the client that verifies every node's share and the combined signature.
//!
//! For signatures `s_i` under keys `P_i`, all over message `m`, and random 128-bit `r_i`:
//! `e(sum r_i s_i, g2) = e(H(m), sum r_i P_i)` holds for all valid signatures, and fails
//! except with probability about 2^-128 if any one is invalid. One multi-pairing instead of
//! two pairings per signature; when it fails, the caller checks each signature alone to name
//! the bad ones.

use blstrs_plus::elliptic_curve_013::hash2curve::ExpandMsgXmd;
use blstrs_plus::group::{Curve, Group};
use blstrs_plus::{G1Projective, G2Prepared, G2Projective, Gt, Scalar, multi_miller_loop};
use rand_core::RngCore;

/// The hash-to-curve tag of the basic scheme in G1 (the IETF BLS signature ciphersuite
/// `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`, as blsful uses it).
pub const BASIC_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// True if every `(public key, signature)` pair is a valid basic-scheme signature over
/// `message`. An empty list is false (nothing was shown valid).
pub fn verify_same_message(pairs: &[(G2Projective, G1Projective)], message: &[u8]) -> bool {
    if pairs.is_empty() {
        return false;
    }
    // A signature or key at infinity never verifies alone; refuse it here as well.
    if pairs
        .iter()
        .any(|(p, s)| bool::from(p.is_identity()) || bool::from(s.is_identity()))
    {
        return false;
    }
    let weights: Vec<u128> = pairs
        .iter()
        .map(|_| {
            let mut r = [0u8; 16];
            rand_core::OsRng.fill_bytes(&mut r);
            // Never zero: a zero weight would drop a pair from the check.
            u128::from_le_bytes(r) | 1
        })
        .collect();
    let sigs: Vec<G1Projective> = pairs.iter().map(|(_, s)| *s).collect();
    let keys: Vec<G2Projective> = pairs.iter().map(|(p, _)| *p).collect();
    let sig = weighted_sum(&sigs, &weights);
    let key = weighted_sum(&keys, &weights);
    let h = G1Projective::hash::<ExpandMsgXmd<sha2::Sha256>>(message, BASIC_DST);
    let neg_g2 = G2Prepared::from((-G2Projective::GENERATOR).to_affine());
    let key = G2Prepared::from(key.to_affine());
    let ml = multi_miller_loop(&[(&sig.to_affine(), &neg_g2), (&h.to_affine(), &key)]);
    ml.final_exponentiation() == Gt::IDENTITY
}

/// `sum w_i P_i` by one joint double-and-add over the 128 weight bits (Straus): 128
/// doublings in all instead of 255 per point. Variable-time, which is fine here: the points
/// are public and the weights are fresh randomness used once, after the shares are fixed.
fn weighted_sum<G>(points: &[G], weights: &[u128]) -> G
where
    G: Group + Copy,
{
    let mut acc = G::identity();
    for bit in (0..128).rev() {
        acc = acc.double();
        for (p, w) in points.iter().zip(weights) {
            if (w >> bit) & 1 == 1 {
                acc += p;
            }
        }
    }
    acc
}

/// The G1 point of a signature share (what [`verify_same_message`] takes).
pub fn share_point(s: &blsful::SignatureShare<crate::bls_dkg::Bls>) -> G1Projective {
    s.as_raw_value().0.value.0
}

/// The share's point if its identifier is participant `p`'s (a share relabelled as another
/// participant's would interpolate wrongly).
pub fn share_of(
    s: &blsful::SignatureShare<crate::bls_dkg::Bls>,
    p: crate::dkg::Participant,
) -> Option<G1Projective> {
    (s.as_raw_value().0.identifier.0 == Scalar::from(u64::from(p))).then(|| share_point(s))
}
