//! URLs of AMD's key distribution service (KDS).
//!
//! Formats, per AMD's "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
//! Specification" (AMD pub. 57230) and as confirmed in virtee/snpguest `src/fetch.rs` and
//! confidential-containers/trustee `deps/verifier/src/snp/mod.rs` (which adapts snpguest's
//! code for Turin):
//!
//! - VCEK, Milan/Genoa: `{base}/vcek/v1/{Product}/{hex(64-byte hwID)}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115`
//! - VCEK, Turin: `{base}/vcek/v1/Turin/{hex(8-byte hwID)}?fmcSPL=00&blSPL=00&teeSPL=00&snpSPL=00&ucodeSPL=09`
//!   (the hwID is the first 8 bytes of the report's CHIP_ID, the rest of which is zero)
//! - ASK+ARK / ASVK+ARK: `{base}/{vcek|vlek}/v1/{Product}/cert_chain` (PEM)
//! - CRL: `{base}/{vcek|vlek}/v1/{Product}/crl` (DER)
//!
//! SPLs are decimal, zero-padded to at least two digits (`{:02}`) as snpguest sends them;
//! the hwID is lowercase hex. (KDS also accepts unpadded SPLs and `fmcSPL` last, as
//! google/go-sev-guest `kds.VCEKCertQuery` sends them; the padded, fmc-first form is used
//! here so cache keys are stable.)

use crate::abi::tcb::Tcb;
use crate::kds::{KdsError, Product};

/// AMD's production KDS. Configurable in the client so tests can use a local server.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// Which endorsement key family a chain or CRL belongs to: VCEK (per chip, signed by the
/// ASK) or VLEK (per cloud provider, signed by the ASVK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// Versioned chip endorsement key.
    Vcek,
    /// Versioned loaded endorsement key.
    Vlek,
}

impl KeyKind {
    /// The first path segment of its KDS URLs.
    pub fn path_segment(self) -> &'static str {
        match self {
            KeyKind::Vcek => "vcek",
            KeyKind::Vlek => "vlek",
        }
    }
}

/// The URL of the VCEK for a hardware ID at a TCB. `hwid` must be exactly
/// [`Product::hwid_len`] bytes (see [`hwid_from_chip_id`]); the TCB must carry an FMC SPL
/// exactly when the product has one.
pub fn vcek_url(base: &str, product: Product, hwid: &[u8], tcb: &Tcb) -> Result<String, KdsError> {
    if hwid.len() != product.hwid_len() {
        return Err(KdsError::BadHwid {
            expected_len: product.hwid_len(),
            actual_len: hwid.len(),
        });
    }
    let prefix = format!(
        "{}/vcek/v1/{}/{}",
        trim_base(base),
        product.name(),
        hex::encode(hwid)
    );
    let rest = format!(
        "blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        tcb.bl, tcb.tee, tcb.snp, tcb.ucode
    );
    match (product.has_fmc(), tcb.fmc) {
        (true, Some(fmc)) => Ok(format!("{prefix}?fmcSPL={fmc:02}&{rest}")),
        (false, None) => Ok(format!("{prefix}?{rest}")),
        (true, None) => Err(KdsError::TcbLayout {
            product,
            reason: "the TCB has no FMC SPL, which KDS requires for this product",
        }),
        (false, Some(_)) => Err(KdsError::TcbLayout {
            product,
            reason: "the TCB has an FMC SPL, which this product does not have",
        }),
    }
}

/// The hardware ID KDS knows a chip by, from a report's 64-byte CHIP_ID: all of it on
/// Milan/Genoa; on Turin the first 8 bytes, and the other 56 must be zero (otherwise the
/// CHIP_ID is not a Turin one and the product is probably wrong). An all-zero CHIP_ID
/// (masked, or VLEK-signed) has no VCEK.
pub fn hwid_from_chip_id(product: Product, chip_id: &[u8; 64]) -> Result<Vec<u8>, KdsError> {
    if chip_id.iter().all(|&b| b == 0) {
        return Err(KdsError::MaskedChipId);
    }
    let len = product.hwid_len();
    let (hwid, padding) = chip_id.split_at(len.min(chip_id.len()));
    if padding.iter().any(|&b| b != 0) {
        return Err(KdsError::HwidPadding { product });
    }
    Ok(hwid.to_vec())
}

/// The URL of the ASK+ARK (VCEK) or ASVK+ARK (VLEK) chain, served as PEM, intermediate first.
pub fn cert_chain_url(base: &str, product: Product, kind: KeyKind) -> String {
    format!(
        "{}/{}/v1/{}/cert_chain",
        trim_base(base),
        kind.path_segment(),
        product.name()
    )
}

/// The URL of the ARK-signed CRL for a product's VCEK or VLEK chain, served as DER.
pub fn crl_url(base: &str, product: Product, kind: KeyKind) -> String {
    format!(
        "{}/{}/v1/{}/crl",
        trim_base(base),
        kind.path_segment(),
        product.name()
    )
}

/// The base without trailing slashes, so `http://host/` and `http://host` give one URL
/// (and one cache entry).
fn trim_base(base: &str) -> &str {
    base.trim_end_matches('/')
}
