//! Signature checks with ring: RSASSA-PSS SHA-384 for AMD's certificates, ECDSA P-384
//! SHA-384 for reports (and for simulated platforms' certificates).

use ring::signature::{
    ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384, UnparsedPublicKey,
};

use crate::verify::cert::{AmdCert, PublicKey, SigAlg};

/// True if `issuer`'s key signed `subject`.
pub fn cert_signed_by(subject: &AmdCert, issuer: &AmdCert) -> bool {
    match (subject.sig_alg, &issuer.public_key) {
        (SigAlg::RsaPssSha384, PublicKey::Rsa(k)) => {
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, k)
                .verify(&subject.tbs, &subject.signature)
                .is_ok()
        }
        (SigAlg::EcdsaP384Sha384, PublicKey::P384(k)) => {
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, k)
                .verify(&subject.tbs, &subject.signature)
                .is_ok()
        }
        _ => false,
    }
}

/// True if the report signature (r, s big-endian, 72 bytes each) over `signed` verifies
/// with a P-384 key (uncompressed point).
pub fn report_signed_by(signed: &[u8], r: &[u8; 72], s: &[u8; 72], key: &PublicKey) -> bool {
    let PublicKey::P384(point) = key else {
        return false;
    };
    // The components are 48 bytes zero-extended to 72.
    if r[..24].iter().chain(&s[..24]).any(|b| *b != 0) {
        return false;
    }
    let mut sig = [0u8; 96];
    sig[..48].copy_from_slice(&r[24..]);
    sig[48..].copy_from_slice(&s[24..]);
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
        .verify(signed, &sig)
        .is_ok()
}
