//! AMD's certificate revocation lists: signed by the product's ARK, revoking ASKs and
//! ASVKs by serial number (VCEK/VLEK serials are always 0, so they cannot be revoked).

use x509_parser::prelude::*;

use crate::verify::VerifyError;
use crate::verify::cert::{AmdCert, SigAlg, sig_alg};
use crate::verify::der;
use crate::verify::sig;

/// A parsed CRL.
#[derive(Clone, Debug)]
pub struct Crl {
    /// Signed part.
    tbs: Vec<u8>,
    sig_alg: SigAlg,
    signature: Vec<u8>,
    /// Issuer common name.
    pub issuer_cn: String,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: Option<i64>,
    /// Revoked serial numbers, without leading zero bytes.
    pub revoked: Vec<Vec<u8>>,
}

fn strip_zeros(s: &[u8]) -> Vec<u8> {
    let i = s.iter().position(|b| *b != 0).unwrap_or(s.len());
    s[i..].to_vec()
}

impl Crl {
    /// Parses a CRL, DER or PEM (`X509 CRL`).
    pub fn parse(bytes: &[u8]) -> Result<Crl, VerifyError> {
        let der_bytes = if bytes.starts_with(b"-----BEGIN") {
            let (_, p) = x509_parser::pem::parse_x509_pem(bytes)
                .map_err(|e| VerifyError::Crl(format!("not PEM: {e}")))?;
            p.contents
        } else {
            bytes.to_vec()
        };
        let (rest, crl) = CertificateRevocationList::from_der(&der_bytes)
            .map_err(|e| VerifyError::Crl(format!("not a DER CRL: {e}")))?;
        if !rest.is_empty() {
            return Err(VerifyError::Crl(format!("{} trailing bytes", rest.len())));
        }
        let sig_alg = sig_alg(&crl.signature_algorithm).map_err(VerifyError::Crl)?;
        // x509-parser keeps the TBS bytes private for CRLs: take the first element of the
        // outer SEQUENCE.
        let tbs = der::read_all(&der_bytes)
            .and_then(|outer| der::read(outer.value))
            .map(|(t, _)| t.raw.to_vec())
            .ok_or_else(|| VerifyError::Crl("cannot locate tbsCertList".into()))?;
        let tbs_list = &crl.tbs_cert_list;
        Ok(Crl {
            tbs,
            sig_alg,
            signature: crl.signature_value.data.to_vec(),
            issuer_cn: tbs_list
                .issuer
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or("")
                .to_owned(),
            this_update: tbs_list.this_update.timestamp(),
            next_update: tbs_list.next_update.map(|t| t.timestamp()),
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| strip_zeros(r.raw_serial()))
                .collect(),
        })
    }

    /// True if `ark` signed this CRL.
    pub fn signed_by(&self, ark: &AmdCert) -> bool {
        let as_cert = AmdCert {
            tbs: self.tbs.clone(),
            sig_alg: self.sig_alg,
            signature: self.signature.clone(),
            ..ark.clone()
        };
        sig::cert_signed_by(&as_cert, ark)
    }

    /// True if the certificate with this serial is revoked.
    pub fn revokes(&self, serial: &[u8]) -> bool {
        let s = strip_zeros(serial);
        self.revoked.contains(&s)
    }

    /// True if `at` lies between thisUpdate and nextUpdate.
    pub fn current_at(&self, at: i64) -> bool {
        self.this_update <= at && self.next_update.is_none_or(|n| at <= n)
    }
}
