//! AMD's root and intermediate certificates, pinned in the binary, and the trust store
//! that holds them (plus, only when given explicitly, a simulated platform's roots).

use std::sync::OnceLock;

use crate::kds::Product;
use crate::verify::VerifyError;
use crate::verify::cert::AmdCert;

/// One product's chain of trust: ARK, and the ASK (for VCEKs) and ASVK (for VLEKs) it
/// signed.
#[derive(Clone, Debug)]
pub struct Anchor {
    /// The product these roots serve.
    pub product: Product,
    /// Root key (self-signed).
    pub ark: AmdCert,
    /// Intermediate for VCEKs.
    pub ask: AmdCert,
    /// Intermediate for VLEKs, if the platform has one.
    pub asvk: Option<AmdCert>,
    /// True for roots of a simulated platform: never AMD's, never trusted by default.
    pub simulated: bool,
}

/// The anchors a verification may chain to.
#[derive(Clone, Debug)]
pub struct TrustStore {
    anchors: Vec<Anchor>,
}

const PINNED: [(Product, &str, &str, &str); 3] = [
    (
        Product::Milan,
        include_str!("../../roots/milan/ark.pem"),
        include_str!("../../roots/milan/ask.pem"),
        include_str!("../../roots/milan/asvk.pem"),
    ),
    (
        Product::Genoa,
        include_str!("../../roots/genoa/ark.pem"),
        include_str!("../../roots/genoa/ask.pem"),
        include_str!("../../roots/genoa/asvk.pem"),
    ),
    (
        Product::Turin,
        include_str!("../../roots/turin/ark.pem"),
        include_str!("../../roots/turin/ask.pem"),
        include_str!("../../roots/turin/asvk.pem"),
    ),
];

/// Decodes the first PEM certificate in `pem`.
pub fn pem_to_der(what: &'static str, pem: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| VerifyError::Certificate {
        what,
        reason: format!("not PEM: {e}"),
    })?;
    Ok(p.contents)
}

fn pinned_anchor(
    product: Product,
    ark: &str,
    ask: &str,
    asvk: &str,
) -> Result<Anchor, VerifyError> {
    let load =
        |what, pem: &str| pem_to_der(what, pem.as_bytes()).and_then(|d| AmdCert::parse(what, &d));
    Ok(Anchor {
        product,
        ark: load("ARK", ark)?,
        ask: load("ASK", ask)?,
        asvk: Some(load("ASVK", asvk)?),
        simulated: false,
    })
}

fn pinned_anchors() -> &'static [Anchor] {
    static CELL: OnceLock<Vec<Anchor>> = OnceLock::new();
    CELL.get_or_init(|| {
        // The pinned files are part of the source and checked by tests; a parse failure
        // here would be a build defect, so such an anchor is left out (and every report
        // of that product is then rejected: fail closed).
        PINNED
            .iter()
            .filter_map(|(p, ark, ask, asvk)| pinned_anchor(*p, ark, ask, asvk).ok())
            .collect()
    })
}

impl Anchor {
    /// A simulated platform's roots, from a PEM file holding its ARK then its ASK (it
    /// simulates a Milan part). Trusted only where a user hands this file over explicitly.
    pub fn simulated_from_pem(pem: &[u8]) -> Result<Anchor, VerifyError> {
        let bad = |reason: String| VerifyError::Certificate {
            what: "simulated roots",
            reason,
        };
        let ders = x509_parser::pem::Pem::iter_from_buffer(pem)
            .map(|p| p.map(|p| p.contents))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        let [ark, ask, ..] = ders.as_slice() else {
            return Err(bad(format!(
                "the file must hold the simulated ARK then its ASK; it holds {} certificate(s)",
                ders.len()
            )));
        };
        Ok(Anchor {
            product: Product::Milan,
            ark: AmdCert::parse("ARK", ark)?,
            ask: AmdCert::parse("ASK", ask)?,
            asvk: None,
            simulated: true,
        })
    }
}

impl Default for TrustStore {
    fn default() -> Self {
        Self::amd()
    }
}

impl TrustStore {
    /// AMD's pinned roots for Milan, Genoa and Turin, and nothing else.
    pub fn amd() -> TrustStore {
        TrustStore {
            anchors: pinned_anchors().to_vec(),
        }
    }

    /// Adds a simulated platform's roots. Reports chaining to them are marked simulated in
    /// every verdict; nothing calls this unless a user asked for it.
    pub fn with_simulated(mut self, anchor: Anchor) -> TrustStore {
        self.anchors.push(Anchor {
            simulated: true,
            ..anchor
        });
        self
    }

    /// The anchors of a product, AMD's first.
    pub fn anchors(&self, product: Product) -> impl Iterator<Item = &Anchor> {
        self.anchors.iter().filter(move |a| a.product == product)
    }

    /// AMD's pinned anchor of a product.
    pub fn pinned(&self, product: Product) -> Option<&Anchor> {
        self.anchors
            .iter()
            .find(|a| a.product == product && !a.simulated)
    }
}
