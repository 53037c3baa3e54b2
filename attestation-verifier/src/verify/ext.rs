//! AMD's X.509 extensions on VCEK and VLEK certificates (KDS specification): the TCB the
//! key was derived for, the hardware ID, the product name and, for VLEKs, the CSP ID.

use crate::kds::Product;
use crate::verify::cert::AmdCert;
use crate::verify::der;

const STRUCT_VERSION: &str = "1.3.6.1.4.1.3704.1.1";
const PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
const BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
const HW_ID: &str = "1.3.6.1.4.1.3704.1.4";
const CSP_ID: &str = "1.3.6.1.4.1.3704.1.5";

/// How the hwID extension value was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum HwidEncoding {
    /// The bare bytes (every AMD-issued VCEK seen).
    Raw,
    /// A DER OCTET STRING around them.
    OctetString,
}

/// A decoded SPL extension: absent, a value, or present but malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spl {
    /// The extension is not there.
    Absent,
    /// A valid DER INTEGER 0-255.
    Value(u8),
    /// Present but not a DER INTEGER in 0-255.
    Malformed,
}

/// The extensions of a VCEK or VLEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VekExtensions {
    /// structVersion.
    pub struct_version: Option<u64>,
    /// productName, e.g. "Milan-B0", "Genoa", "Turin".
    pub product_name: Option<String>,
    /// FMC SPL (Turin).
    pub fmc: Spl,
    /// Boot loader SPL.
    pub bl: Spl,
    /// TEE SPL.
    pub tee: Spl,
    /// SNP SPL.
    pub snp: Spl,
    /// Microcode SPL.
    pub ucode: Spl,
    /// Raw hwID extension value.
    pub hwid_raw: Option<Vec<u8>>,
    /// cspID (VLEK).
    pub csp_id: Option<String>,
}

fn spl(cert: &AmdCert, oid: &str) -> Spl {
    match cert.extension(oid) {
        None => Spl::Absent,
        Some(v) => der::read_all(v)
            .and_then(|t| der::uint(&t))
            .and_then(|n| u8::try_from(n).ok())
            .map(Spl::Value)
            .unwrap_or(Spl::Malformed),
    }
}

fn ia5(cert: &AmdCert, oid: &str) -> Option<String> {
    let t = der::read_all(cert.extension(oid)?)?;
    (t.tag == 0x16 && t.value.is_ascii()).then(|| String::from_utf8_lossy(t.value).into_owned())
}

impl VekExtensions {
    /// Reads the AMD extensions of a certificate. Nothing is validated here.
    pub fn read(cert: &AmdCert) -> VekExtensions {
        VekExtensions {
            struct_version: cert
                .extension(STRUCT_VERSION)
                .and_then(der::read_all)
                .and_then(|t| der::uint(&t)),
            product_name: ia5(cert, PRODUCT_NAME),
            fmc: spl(cert, FMC_SPL),
            bl: spl(cert, BL_SPL),
            tee: spl(cert, TEE_SPL),
            snp: spl(cert, SNP_SPL),
            ucode: spl(cert, UCODE_SPL),
            hwid_raw: cert.extension(HW_ID).map(<[u8]>::to_vec),
            csp_id: ia5(cert, CSP_ID),
        }
    }

    /// The product named by productName, if any.
    pub fn product(&self) -> Option<Product> {
        self.product_name
            .as_deref()
            .and_then(Product::from_product_name)
    }

    /// The hardware ID for `product`: the raw bytes of its expected length, or a DER OCTET
    /// STRING holding exactly those. Anything else is `None`.
    pub fn hwid(&self, product: Product) -> Option<(Vec<u8>, HwidEncoding)> {
        let raw = self.hwid_raw.as_deref()?;
        let n = product.hwid_len();
        if raw.len() == n {
            return Some((raw.to_vec(), HwidEncoding::Raw));
        }
        let t = der::read_all(raw)?;
        (t.tag == 0x04 && t.value.len() == n).then(|| (t.value.to_vec(), HwidEncoding::OctetString))
    }
}
