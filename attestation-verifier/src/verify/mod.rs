//! Cryptographic checks: the report's VCEK/VLEK chains to AMD's pinned ARK through the
//! ASK/ASVK, every certificate is valid at the verification time and not revoked, the
//! report is signed by the VCEK/VLEK, and the report's TCB and chip ID are the ones the
//! certificate was issued for.

pub mod cert;
pub mod crl;
pub mod der;
mod error;
pub mod ext;
pub mod roots;
pub mod sig;

pub use error::VerifyError;

use crate::abi::Report;
use crate::abi::report::SigningKey;
use crate::abi::tcb::Tcb;
use crate::kds::Product;
use crate::verdict::Checks;
use cert::AmdCert;
use crl::Crl;
use ext::{Spl, VekExtensions};
use roots::{Anchor, TrustStore};

/// The endorsement key certificate that signed the report.
#[derive(Clone, Debug)]
pub enum Vek {
    /// A VCEK (per chip and TCB), DER.
    Vcek(Vec<u8>),
    /// A VLEK (per cloud provider), DER.
    Vlek(Vec<u8>),
}

/// Everything the cryptographic checks need besides the report.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The VCEK or VLEK.
    pub vek: Vek,
    /// An ARK supplied with the report; accepted only if byte-equal to the pinned one.
    pub ark: Option<Vec<u8>>,
    /// An ASK (or ASVK for a VLEK) supplied with the report; the pinned one when absent.
    pub intermediate: Option<Vec<u8>>,
    /// A CRL of the product's ARK.
    pub crl: Option<Vec<u8>>,
    /// Verification time, Unix seconds.
    pub at: i64,
    /// The product, when the caller knows it (needed for v2 reports without a usable
    /// productName).
    pub product: Option<Product>,
}

/// What the checks established, beyond the check list.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The product whose chain was used.
    pub product: Option<Product>,
    /// True if the chain ends at a simulated platform's roots.
    pub simulated: bool,
}

/// Unix seconds as RFC 3339.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn window(c: &AmdCert) -> String {
    format!(
        "{} {}..{}",
        c.subject_cn,
        rfc3339(c.not_before),
        rfc3339(c.not_after)
    )
}

/// Decides the product: CPUID (v3+) first, then the caller, then productName; any two
/// that are present must agree.
fn decide_product(
    r: &Report,
    given: Option<Product>,
    ext: &VekExtensions,
    checks: &mut Checks,
) -> Option<Product> {
    let from_cpuid = r.cpuid.map(|c| (c, Product::from_cpuid(c.family, c.model)));
    let named = ext.product();
    let (product, basis) = match (from_cpuid, given) {
        (Some((c, None)), _) => {
            checks.require(
                "product",
                false,
                format!(
                    "CPUID family {:#x} model {:#x} is not a known SEV-SNP product",
                    c.family, c.model
                ),
            );
            return None;
        }
        (Some((c, Some(p))), _) => (
            p,
            format!(
                "from report CPUID family {:#x} model {:#x}",
                c.family, c.model
            ),
        ),
        (None, Some(p)) => (p, "as given (report v2 has no CPUID)".to_owned()),
        (None, None) => {
            match named {
                Some(p) => (
                    p,
                    "from the certificate's productName (report v2 has no CPUID)".to_owned(),
                ),
                None => {
                    checks.require("product", false, "report v2 has no CPUID and the certificate names no product: give the product");
                    return None;
                }
            }
        }
    };
    for (what, other) in [("given product", given), ("certificate productName", named)] {
        if let Some(o) = other.filter(|o| *o != product) {
            checks.require(
                "product",
                false,
                format!("{product} {basis}, but {what} is {o}"),
            );
            return None;
        }
    }
    checks.require("product", true, format!("{product} {basis}"));
    Some(product)
}

/// The part of a verification that depends only on certificate bytes: parsing, and the
/// three chain signatures. Cached per chain, so a second report from the same node costs
/// one ECDSA verification.
#[derive(Debug)]
struct Chain {
    vek: AmdCert,
    ext: VekExtensions,
    supplied_ark: Option<AmdCert>,
    anchor: Option<Anchor>,
    intermediate: Option<AmdCert>,
    ark_self_signed: bool,
    int_signed_by_ark: bool,
    vek_signed_by_int: bool,
}

/// Memoised chain checks, keyed by the SHA-256 of every certificate involved.
#[derive(Debug, Default)]
pub struct ChainCache {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::sync::Arc<Chain>>>,
}

/// Entries kept before the cache is emptied; bounds memory under hostile input.
const CACHE_CAP: usize = 4096;

impl ChainCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached chains.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_or_build(
        &self,
        key: [u8; 32],
        build: impl FnOnce() -> Result<Chain, VerifyError>,
    ) -> Result<std::sync::Arc<Chain>, VerifyError> {
        if let Some(c) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let chain = std::sync::Arc::new(build()?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= CACHE_CAP {
                m.clear();
            }
            m.insert(key, chain.clone());
        }
        Ok(chain)
    }
}

fn chain_key(product: Option<Product>, inputs: &Inputs) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let (tag, vek) = match &inputs.vek {
        Vek::Vcek(d) => (b"vcek", d),
        Vek::Vlek(d) => (b"vlek", d),
    };
    ctx.update(tag);
    ctx.update(product.map(|p| p.name()).unwrap_or("-").as_bytes());
    for part in [Some(vek), inputs.intermediate.as_ref(), inputs.ark.as_ref()] {
        let part = part.map(Vec::as_slice).unwrap_or(&[]);
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn build_chain(
    inputs: &Inputs,
    product: Option<Product>,
    trust: &TrustStore,
) -> Result<Chain, VerifyError> {
    let (vek_der, is_vlek) = match &inputs.vek {
        Vek::Vcek(d) => (d, false),
        Vek::Vlek(d) => (d, true),
    };
    let vek = AmdCert::parse(if is_vlek { "VLEK" } else { "VCEK" }, vek_der)?;
    let ext = VekExtensions::read(&vek);
    let supplied_ark = inputs
        .ark
        .as_deref()
        .map(|d| AmdCert::parse("ARK", d))
        .transpose()?;
    let supplied_int = inputs
        .intermediate
        .as_deref()
        .map(|d| AmdCert::parse(if is_vlek { "ASVK" } else { "ASK" }, d))
        .transpose()?;
    let mut chain = Chain {
        vek,
        ext,
        supplied_ark,
        anchor: None,
        intermediate: None,
        ark_self_signed: false,
        int_signed_by_ark: false,
        vek_signed_by_int: false,
    };
    let Some(product) = product.or_else(|| chain.ext.product()) else {
        return Ok(chain);
    };
    // AMD's pinned anchor first; a simulated one only if the caller added it.
    let anchors: Vec<&Anchor> = trust.anchors(product).collect();
    let int_of = |a: &Anchor| -> Option<AmdCert> {
        supplied_int.clone().or_else(|| {
            if is_vlek {
                a.asvk.clone()
            } else {
                Some(a.ask.clone())
            }
        })
    };
    // The anchor whose ARK signed the intermediate that signed the VEK; failing that,
    // AMD's (whose checks will then fail and say where).
    let anchor = anchors
        .iter()
        .copied()
        .find(|a| {
            int_of(a).is_some_and(|i| {
                sig::cert_signed_by(&chain.vek, &i) && sig::cert_signed_by(&i, &a.ark)
            })
        })
        .or(anchors.first().copied());
    if let Some(a) = anchor {
        chain.ark_self_signed = sig::cert_signed_by(&a.ark, &a.ark);
        chain.intermediate = int_of(a);
        if let Some(i) = &chain.intermediate {
            chain.int_signed_by_ark = sig::cert_signed_by(i, &a.ark);
            chain.vek_signed_by_int = sig::cert_signed_by(&chain.vek, i);
        }
        chain.anchor = Some(a.clone());
    }
    Ok(chain)
}

/// Runs every authenticity check, recording each in `checks`. `cache` memoises the chain
/// checks across calls.
pub fn check_authenticity(
    r: &Report,
    inputs: &Inputs,
    trust: &TrustStore,
    cache: Option<&ChainCache>,
    checks: &mut Checks,
) -> Result<Outcome, VerifyError> {
    let is_vlek = matches!(inputs.vek, Vek::Vlek(_));
    let key_name = if is_vlek { "VLEK" } else { "VCEK" };
    let crl = inputs.crl.as_deref().map(Crl::parse).transpose()?;

    checks.require(
        "report_version",
        (2..=5).contains(&r.version),
        format!("version {}", r.version),
    );
    checks.require(
        "signature_algo",
        r.signature_algo == 1,
        format!(
            "expected 1 (ECDSA P-384 with SHA-384), found {}",
            r.signature_algo
        ),
    );
    let (want, ok) = match r.signing_key {
        SigningKey::Vcek => ("VCEK", !is_vlek),
        SigningKey::Vlek => ("VLEK", is_vlek),
        SigningKey::None => ("no key", false),
        SigningKey::Reserved(_) => ("a reserved value", false),
    };
    checks.require(
        "signing_key",
        ok,
        format!("report says {want}, certificate given is a {key_name}"),
    );

    // The product the chain is built for: CPUID, else the caller's, else productName (the
    // decision below re-checks that all present sources agree).
    let hint = r
        .cpuid
        .and_then(|c| Product::from_cpuid(c.family, c.model))
        .or(inputs.product);
    let chain = match cache {
        Some(c) => c.get_or_build(chain_key(hint, inputs), || build_chain(inputs, hint, trust))?,
        None => std::sync::Arc::new(build_chain(inputs, hint, trust)?),
    };
    let vek = &chain.vek;

    let mut outcome = Outcome::default();
    let report_signature = |checks: &mut Checks| {
        // The signature field is R (72), S (72) and 368 reserved bytes that must be zero:
        // they are outside the signed range, so anything there is unauthenticated.
        let reserved_zero = r.raw[0x330..].iter().all(|b| *b == 0);
        let valid = sig::report_signed_by(
            r.signed_bytes(),
            &r.signature_r,
            &r.signature_s,
            &vek.public_key,
        );
        checks.require(
            "report_signature",
            valid && reserved_zero,
            if reserved_zero {
                format!("ECDSA P-384/SHA-384 over bytes 0x000..0x2a0 with the {key_name} key")
            } else {
                "reserved bytes 0x330..0x4a0 of the signature field are not zero".to_owned()
            },
        );
    };
    let Some(product) = decide_product(r, inputs.product, &chain.ext, checks) else {
        // No chain can be chosen; the signature is still checked, to say all that is wrong.
        report_signature(checks);
        return Ok(outcome);
    };
    outcome.product = Some(product);
    let Some(anchor) = chain.anchor.as_ref().filter(|a| a.product == product) else {
        checks.require(
            "ark_pinned",
            false,
            format!("no trusted roots for {product}"),
        );
        return Ok(outcome);
    };
    outcome.simulated = anchor.simulated;
    let ark = &anchor.ark;
    match &chain.supplied_ark {
        Some(a) => checks.require(
            "ark_pinned",
            a.der == ark.der,
            if a.der == ark.der {
                format!(
                    "supplied ARK is byte-equal to the pinned {}",
                    ark.subject_cn
                )
            } else {
                format!(
                    "supplied ARK ({}) is not the pinned {}",
                    a.subject_cn, ark.subject_cn
                )
            },
        ),
        None => checks.require(
            "ark_pinned",
            true,
            if anchor.simulated {
                format!(
                    "{} of a SIMULATED platform, trusted because it was given explicitly",
                    ark.subject_cn
                )
            } else {
                format!("pinned {} used", ark.subject_cn)
            },
        ),
    }
    checks.require(
        "ark_self_signed",
        chain.ark_self_signed,
        format!("{} signs itself", ark.subject_cn),
    );

    let int_name = if is_vlek {
        "asvk_signed_by_ark"
    } else {
        "ask_signed_by_ark"
    };
    let Some(int) = chain.intermediate.as_ref() else {
        checks.require(
            int_name,
            false,
            format!(
                "no {} intermediate for {product}",
                if is_vlek { "ASVK" } else { "ASK" }
            ),
        );
        return Ok(outcome);
    };
    checks.require(
        int_name,
        chain.int_signed_by_ark,
        format!("{} signed by {}", int.subject_cn, ark.subject_cn),
    );
    let vek_name = if is_vlek {
        "vlek_signed_by_asvk"
    } else {
        "vcek_signed_by_ask"
    };
    checks.require(
        vek_name,
        chain.vek_signed_by_int,
        format!(
            "{} (issuer {}) signed by {}",
            vek.subject_cn, vek.issuer_cn, int.subject_cn
        ),
    );

    let stale: Vec<String> = [ark, int, vek]
        .iter()
        .filter(|c| !c.valid_at(inputs.at))
        .map(|c| window(c))
        .collect();
    checks.require(
        "cert_validity",
        stale.is_empty(),
        if stale.is_empty() {
            format!(
                "{}, {}, {} valid at {}",
                ark.subject_cn,
                int.subject_cn,
                vek.subject_cn,
                rfc3339(inputs.at)
            )
        } else {
            format!(
                "outside validity at {}: {}",
                rfc3339(inputs.at),
                stale.join("; ")
            )
        },
    );

    match &crl {
        None => checks.skip("crl", "no CRL given"),
        Some(c) => {
            let mut problems = Vec::new();
            if !c.signed_by(ark) {
                problems.push(format!("not signed by {}", ark.subject_cn));
            }
            if !c.current_at(inputs.at) {
                problems.push(format!(
                    "not current at {} (thisUpdate {}, nextUpdate {})",
                    rfc3339(inputs.at),
                    rfc3339(c.this_update),
                    c.next_update.map(rfc3339).unwrap_or_else(|| "none".into())
                ));
            }
            if c.revokes(&int.serial) {
                problems.push(format!(
                    "{} serial {} is revoked",
                    int.subject_cn,
                    hex::encode(&int.serial)
                ));
            }
            checks.require(
                "crl",
                problems.is_empty(),
                if problems.is_empty() {
                    format!(
                        "{} CRL current and {} not revoked",
                        c.issuer_cn, int.subject_cn
                    )
                } else {
                    problems.join("; ")
                },
            );
        }
    }

    report_signature(checks);
    check_tcb(r, product, &chain.ext, key_name, checks);
    check_chip_id(r, product, &chain.ext, is_vlek, checks);
    Ok(outcome)
}

fn check_tcb(r: &Report, product: Product, ext: &VekExtensions, key: &str, checks: &mut Checks) {
    let tcb = Tcb::decode(r.reported_tcb, product);
    let mut want: Vec<(&str, Spl, u8)> = vec![
        ("bl", ext.bl, tcb.bl),
        ("tee", ext.tee, tcb.tee),
        ("snp", ext.snp, tcb.snp),
        ("ucode", ext.ucode, tcb.ucode),
    ];
    if let Some(f) = tcb.fmc {
        want.insert(0, ("fmc", ext.fmc, f));
    }
    let bad: Vec<String> = want
        .iter()
        .filter_map(|(n, spl, v)| match spl {
            Spl::Value(c) if c == v => None,
            Spl::Value(c) => Some(format!("{n}: report {v}, {key} {c}")),
            Spl::Absent => Some(format!("{n}: {key} has no {n}SPL extension")),
            Spl::Malformed => Some(format!("{n}: {key} {n}SPL is not a DER INTEGER 0-255")),
        })
        .collect();
    checks.require(
        "reported_tcb_matches_vek",
        bad.is_empty(),
        if bad.is_empty() {
            let parts: Vec<String> = tcb
                .components()
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            format!("REPORTED_TCB {} equals the {key}'s SPLs", parts.join(" "))
        } else {
            bad.join("; ")
        },
    );
}

fn check_chip_id(
    r: &Report,
    product: Product,
    ext: &VekExtensions,
    is_vlek: bool,
    checks: &mut Checks,
) {
    if is_vlek {
        checks.skip("chip_id_matches_hwid", "VLEK certificates carry no hwID");
        return;
    }
    let Some((hwid, enc)) = ext.hwid(product) else {
        checks.require(
            "chip_id_matches_hwid",
            false,
            format!(
                "VCEK hwID missing or not {} bytes (raw or OCTET STRING)",
                product.hwid_len()
            ),
        );
        return;
    };
    let n = hwid.len();
    let ok = r.chip_id[..n] == hwid[..] && r.chip_id[n..].iter().all(|b| *b == 0);
    checks.require(
        "chip_id_matches_hwid",
        ok,
        if ok {
            format!("CHIP_ID equals the VCEK's {n}-byte hwID ({enc:?})")
        } else {
            format!(
                "CHIP_ID {} vs VCEK hwID {}",
                hex::encode(r.chip_id),
                hex::encode(&hwid)
            )
        },
    );
}
