//! AMD certificates (ARK, ASK, ASVK, VCEK, VLEK) reduced to what verification needs.
//!
//! AMD's certificates break strict X.509 rules in known ways, which are accepted here and
//! nowhere else: serial number 0 (VCEK/VLEK), RSASSA-PSS parameters with the DEFAULT
//! trailer field encoded explicitly, and AMD SPL INTEGERs >= 128 with a leading zero
//! (which is in fact correct DER). Anything else unusual is refused.

use x509_parser::prelude::*;

use crate::verify::VerifyError;
use crate::verify::der::{self, oid};

/// OID 1.2.840.113549.1.1.10 (RSASSA-PSS), dotted.
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
/// OID 1.2.840.113549.1.1.1 (rsaEncryption), dotted.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// OID 1.2.840.10045.4.3.3 (ecdsa-with-SHA384).
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
/// OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// OID 1.3.132.0.34 (secp384r1).
const SECP384R1: &str = "1.3.132.0.34";

/// How a certificate is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigAlg {
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (all of AMD's chain).
    RsaPssSha384,
    /// ECDSA P-384 with SHA-384 (used by simulated platforms' certificates, never AMD's).
    EcdsaP384Sha384,
}

/// The kind of public key a certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA, as the DER RSAPublicKey ring takes.
    Rsa(Vec<u8>),
    /// P-384, as an uncompressed point.
    P384(Vec<u8>),
}

/// A parsed AMD certificate.
#[derive(Clone, Debug)]
pub struct AmdCert {
    /// The whole DER.
    pub der: Vec<u8>,
    /// The signed part (tbsCertificate).
    pub tbs: Vec<u8>,
    /// Signature algorithm, checked to be one AMD uses, with AMD's parameters.
    pub sig_alg: SigAlg,
    /// Signature bytes.
    pub signature: Vec<u8>,
    /// Subject public key.
    pub public_key: PublicKey,
    /// Subject common name.
    pub subject_cn: String,
    /// Issuer common name.
    pub issuer_cn: String,
    /// Validity start, Unix seconds.
    pub not_before: i64,
    /// Validity end, Unix seconds.
    pub not_after: i64,
    /// Serial number as encoded (big-endian, may be `[0]`).
    pub serial: Vec<u8>,
    /// Extensions as (dotted OID, raw extnValue contents).
    pub extensions: Vec<(String, Vec<u8>)>,
}

fn cn(name: &X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_owned()
}

impl AmdCert {
    /// Parses a DER certificate. `what` names it in errors (e.g. "VCEK").
    pub fn parse(what: &'static str, der: &[u8]) -> Result<AmdCert, VerifyError> {
        let bad = |reason: String| VerifyError::Certificate { what, reason };
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| bad(format!("not a DER X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(bad(format!(
                "{} trailing bytes after the certificate",
                rest.len()
            )));
        }
        let sig_alg = sig_alg(&cert.signature_algorithm).map_err(&bad)?;
        // The outer and inner (TBS) signature algorithms must agree.
        if sig_alg != self::sig_alg(&cert.tbs_certificate.signature).map_err(&bad)? {
            return Err(bad(
                "tbsCertificate.signature differs from signatureAlgorithm".into(),
            ));
        }
        let spki = cert.public_key();
        let key_bytes = spki.subject_public_key.data.to_vec();
        let public_key = match spki.algorithm.algorithm.to_id_string().as_str() {
            RSA_ENCRYPTION | RSASSA_PSS => PublicKey::Rsa(key_bytes),
            EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() != Some(SECP384R1) {
                    return Err(bad(format!(
                        "EC key on curve {curve:?}, expected secp384r1"
                    )));
                }
                PublicKey::P384(key_bytes)
            }
            other => {
                return Err(bad(format!(
                    "public key algorithm {other} is not RSA or EC P-384"
                )));
            }
        };
        Ok(AmdCert {
            der: der.to_vec(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            sig_alg,
            signature: cert.signature_value.data.to_vec(),
            public_key,
            subject_cn: cn(cert.subject()),
            issuer_cn: cn(cert.issuer()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
            extensions: cert
                .extensions()
                .iter()
                .map(|e| (e.oid.to_id_string(), e.value.to_vec()))
                .collect(),
        })
    }

    /// The raw value of an extension, by dotted OID.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(o, _)| o == oid)
            .map(|(_, v)| v.as_slice())
    }

    /// True if `at` (Unix seconds) lies within the validity period.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// Checks a signature AlgorithmIdentifier: RSASSA-PSS with exactly AMD's parameters, or
/// ECDSA with SHA-384 and no parameters.
pub(crate) fn sig_alg(alg: &AlgorithmIdentifier<'_>) -> Result<SigAlg, String> {
    match alg.algorithm.to_id_string().as_str() {
        RSASSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or("RSASSA-PSS without parameters")?;
            check_pss_params(params.data)?;
            Ok(SigAlg::RsaPssSha384)
        }
        ECDSA_SHA384 => {
            if alg.parameters.is_some() {
                return Err("ecdsa-with-SHA384 must have no parameters".into());
            }
            Ok(SigAlg::EcdsaP384Sha384)
        }
        other => Err(format!(
            "signature algorithm {other} is not RSASSA-PSS or ecdsa-with-SHA384"
        )),
    }
}

/// The single element inside an explicit context tag.
fn inner<'a>(t: &der::Tlv<'a>) -> Option<der::Tlv<'a>> {
    der::read_all(t.value)
}

/// `AlgorithmIdentifier { sha384, NULL or absent }`.
fn is_sha384(t: &der::Tlv<'_>) -> bool {
    let Some(kids) = (t.tag == 0x30).then(|| der::children(t.value)).flatten() else {
        return false;
    };
    match kids.as_slice() {
        [o] => o.tag == 0x06 && o.value == oid::SHA384,
        [o, n] => o.tag == 0x06 && o.value == oid::SHA384 && n.tag == 0x05 && n.value.is_empty(),
        _ => false,
    }
}

/// RSASSA-PSS-params (RFC 4055) contents: hash SHA-384, MGF1 with SHA-384, salt 48, and
/// the trailer field absent or explicitly 1.
fn check_pss_params(contents: &[u8]) -> Result<(), String> {
    let kids = der::children(contents).ok_or("RSASSA-PSS parameters are not DER")?;
    let field = |tag: u8| kids.iter().find(|k| k.tag == tag);

    let hash = field(0xa0)
        .and_then(inner)
        .ok_or("PSS hashAlgorithm missing (default SHA-1)")?;
    if !is_sha384(&hash) {
        return Err("PSS hashAlgorithm is not SHA-384".into());
    }
    let mgf = field(0xa1)
        .and_then(inner)
        .ok_or("PSS maskGenAlgorithm missing (default MGF1-SHA-1)")?;
    let mgf_kids = (mgf.tag == 0x30)
        .then(|| der::children(mgf.value))
        .flatten()
        .unwrap_or_default();
    match mgf_kids.as_slice() {
        [o, h] if o.tag == 0x06 && o.value == oid::MGF1 && is_sha384(h) => {}
        _ => return Err("PSS maskGenAlgorithm is not MGF1 with SHA-384".into()),
    }
    let salt = field(0xa2).and_then(inner).and_then(|t| der::uint(&t));
    if salt != Some(48) {
        return Err(format!("PSS saltLength is {salt:?}, expected 48"));
    }
    if let Some(t) = field(0xa3)
        && inner(t).and_then(|t| der::uint(&t)) != Some(1)
    {
        return Err("PSS trailerField is not 1".into());
    }
    let known = [0xa0, 0xa1, 0xa2, 0xa3];
    if kids.iter().any(|k| !known.contains(&k.tag)) || kids.len() > 4 {
        return Err("unexpected fields in RSASSA-PSS parameters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_pss_params;

    /// DER of `[tag] { inner }`.
    fn tagged(tag: u8, inner: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, inner.len() as u8];
        v.extend_from_slice(inner);
        v
    }

    fn hash_alg(oid: &[u8], null: bool) -> Vec<u8> {
        let mut inner = tagged(0x06, oid);
        if null {
            inner.extend_from_slice(&[0x05, 0x00]);
        }
        tagged(0x30, &inner)
    }

    const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

    fn params(hash: &[u8], mgf_hash: &[u8], salt: u8, trailer: Option<u8>, null: bool) -> Vec<u8> {
        let mut v = tagged(0xa0, &hash_alg(hash, null));
        let mut mgf = tagged(0x06, MGF1);
        mgf.extend(hash_alg(mgf_hash, null));
        v.extend(tagged(0xa1, &tagged(0x30, &mgf)));
        v.extend(tagged(0xa2, &[0x02, 0x01, salt]));
        if let Some(t) = trailer {
            v.extend(tagged(0xa3, &[0x02, 0x01, t]));
        }
        v
    }

    #[test]
    fn amd_encodings_are_accepted() {
        // Older certificates: explicit trailer field and NULL parameters; newer: no trailer.
        assert_eq!(
            check_pss_params(&params(SHA384, SHA384, 48, Some(1), true)),
            Ok(())
        );
        assert_eq!(
            check_pss_params(&params(SHA384, SHA384, 48, None, true)),
            Ok(())
        );
        assert_eq!(
            check_pss_params(&params(SHA384, SHA384, 48, None, false)),
            Ok(())
        );
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(check_pss_params(&params(SHA256, SHA384, 48, None, true)).is_err());
        assert!(check_pss_params(&params(SHA384, SHA256, 48, None, true)).is_err());
        assert!(check_pss_params(&params(SHA384, SHA384, 32, None, true)).is_err());
        assert!(check_pss_params(&params(SHA384, SHA384, 48, Some(2), true)).is_err());
        assert!(check_pss_params(&[]).is_err());
        let mut extra = params(SHA384, SHA384, 48, None, true);
        extra.extend(tagged(0xa4, &[0x05, 0x00]));
        assert!(check_pss_params(&extra).is_err());
    }
}
