//! AMD EPYC product lines as AMD's key distribution service (KDS) names them.

use std::fmt;
use std::str::FromStr;

/// The product line whose ARK/ASK/ASVK chain signs a report's VCEK or VLEK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[non_exhaustive]
pub enum Product {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4), including Siena and Bergamo (Zen 4c).
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Product {
    /// Every product with pinned roots.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The name in KDS URLs and certificate subjects.
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// The product of a CPUID family/model (report v3+ fields), if it is a known SNP part.
    /// Siena/Bergamo (family 0x19, models 0xA0-0xAF) have no chain of their own: KDS
    /// issues their VCEKs under Genoa.
    pub fn from_cpuid(family: u8, model: u8) -> Option<Product> {
        match (family, model) {
            (0x19, 0x00..=0x0f) => Some(Product::Milan),
            (0x19, 0x10..=0x1f) | (0x19, 0xa0..=0xaf) => Some(Product::Genoa),
            (0x1a, 0x00..=0x11) => Some(Product::Turin),
            _ => None,
        }
    }

    /// The product of a VCEK/VLEK `productName` extension ("Milan-B0", "Genoa", "Turin").
    pub fn from_product_name(name: &str) -> Option<Product> {
        let base = name.split('-').next().unwrap_or(name);
        base.parse().ok()
    }

    /// Length of the hardware ID in KDS URLs and VCEKs: 64 bytes, 8 on Turin.
    pub fn hwid_len(self) -> usize {
        match self {
            Product::Turin => 8,
            _ => 64,
        }
    }

    /// True if TCB values carry an FMC SPL (Turin and later).
    pub fn has_fmc(self) -> bool {
        matches!(self, Product::Turin)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Product {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "milan" => Ok(Product::Milan),
            "genoa" | "siena" | "bergamo" => Ok(Product::Genoa),
            "turin" => Ok(Product::Turin),
            _ => Err(format!(
                "unknown product '{s}' (expected Milan, Genoa or Turin)"
            )),
        }
    }
}
