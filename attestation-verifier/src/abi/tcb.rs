//! TCB_VERSION: the security patch levels of the firmware components, packed in a u64
//! whose byte layout depends on the product.

use crate::kds::Product;

/// A decoded TCB version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tcb {
    /// FMC SPL (Turin and later; `None` before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bl: u8,
    /// PSP OS (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub ucode: u8,
    /// The raw value, as a u64.
    #[serde(serialize_with = "ser_raw")]
    pub raw: u64,
}

fn ser_raw<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:016x}"))
}

impl Tcb {
    /// Decodes a raw TCB_VERSION for a product: Milan/Genoa put the boot loader in byte 0,
    /// TEE in byte 1, SNP in byte 6 and microcode in byte 7; Turin puts FMC, boot loader,
    /// TEE and SNP in bytes 0-3 and microcode in byte 7.
    pub fn decode(raw: u64, product: Product) -> Tcb {
        let b = raw.to_le_bytes();
        if product.has_fmc() {
            Tcb {
                fmc: Some(b[0]),
                bl: b[1],
                tee: b[2],
                snp: b[3],
                ucode: b[7],
                raw,
            }
        } else {
            Tcb {
                fmc: None,
                bl: b[0],
                tee: b[1],
                snp: b[6],
                ucode: b[7],
                raw,
            }
        }
    }

    /// The raw TCB_VERSION of these levels, in the layout [`Tcb::decode`] reads: Turin's
    /// when `fmc` is given, Milan's and Genoa's otherwise.
    pub fn encode(fmc: Option<u8>, bl: u8, tee: u8, snp: u8, ucode: u8) -> u64 {
        match fmc {
            Some(f) => u64::from_le_bytes([f, bl, tee, snp, 0, 0, 0, ucode]),
            None => u64::from_le_bytes([bl, tee, 0, 0, 0, 0, snp, ucode]),
        }
    }

    /// The components as (name, value) pairs, in a fixed order, FMC first when present.
    pub fn components(&self) -> Vec<(&'static str, u8)> {
        let mut v = Vec::with_capacity(5);
        if let Some(f) = self.fmc {
            v.push(("fmc", f));
        }
        v.extend([
            ("bl", self.bl),
            ("tee", self.tee),
            ("snp", self.snp),
            ("ucode", self.ucode),
        ]);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_the_inverse_of_decode_for_both_layouts() {
        // Milan: bl 4, tee 0, snp 24, ucode 219 (byte 6 and 7); Turin: fmc 1, bl 2, tee 0,
        // snp 5, ucode 80.
        let milan = 0xdb18_0000_0000_0004u64;
        let d = Tcb::decode(milan, Product::Milan);
        assert_eq!((d.bl, d.tee, d.snp, d.ucode), (4, 0, 24, 219));
        assert_eq!(Tcb::encode(None, d.bl, d.tee, d.snp, d.ucode), milan);
        let turin = 0x5000_0000_0500_0201u64;
        let d = Tcb::decode(turin, Product::Turin);
        assert_eq!((d.fmc, d.bl, d.tee, d.snp, d.ucode), (Some(1), 2, 0, 5, 80));
        assert_eq!(Tcb::encode(d.fmc, d.bl, d.tee, d.snp, d.ucode), turin);
    }
}
