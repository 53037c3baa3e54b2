//! Turning command-line arguments into verification inputs and a policy, and running.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use attestation_verifier::abi::certtable::CertKind;
use attestation_verifier::abi::{self, Evidence, Tcb};
use attestation_verifier::kds::Product;
use attestation_verifier::kds::client::KdsClient;
use attestation_verifier::kds::offline::{CertDir, pem_or_der_certs};
use attestation_verifier::validate::{Manifest, MinTcb, Policy};
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify::{Inputs, Vek};

use crate::args::{ParseArgs, PolicyArgs, ReportArgs};
use crate::output;

fn read(what: &str, p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {what} {}", p.display()))
}

/// The certificates in a file: the first is the subject, the rest its chain.
fn certs(what: &str, p: &Path) -> Result<Vec<Vec<u8>>> {
    let certs =
        pem_or_der_certs(&read(what, p)?).with_context(|| format!("{what} {}", p.display()))?;
    if certs.is_empty() {
        bail!("{what} {}: no certificate", p.display());
    }
    Ok(certs)
}

fn hex_n<const N: usize>(flag: &str, s: &str) -> Result<[u8; N]> {
    let b = hex::decode(s.trim()).map_err(|e| anyhow!("--{flag}: not hex: {e}"))?;
    b.try_into().map_err(|b: Vec<u8>| {
        anyhow!(
            "--{flag}: expected {N} bytes ({} hex digits), got {}",
            2 * N,
            b.len()
        )
    })
}

fn hex_list<const N: usize>(flag: &str, v: &[String]) -> Result<Vec<[u8; N]>> {
    v.iter().map(|s| hex_n::<N>(flag, s)).collect()
}

fn product(s: &Option<String>) -> Result<Option<Product>> {
    s.as_deref()
        .map(|p| p.parse().map_err(|e: String| anyhow!("--product: {e}")))
        .transpose()
}

fn policy(a: &PolicyArgs) -> Result<Policy> {
    let min_abi = match &a.min_abi {
        None => None,
        Some(s) => {
            let (maj, min) = s
                .split_once('.')
                .ok_or_else(|| anyhow!("--min-abi: expected MAJOR.MINOR"))?;
            Some((
                maj.parse().context("--min-abi major")?,
                min.parse().context("--min-abi minor")?,
            ))
        }
    };
    let tcb = |flag: &str, s: &Option<String>| -> Result<Option<MinTcb>> {
        s.as_deref()
            .map(|s| s.parse().map_err(|e: String| anyhow!("--{flag}: {e}")))
            .transpose()
    };
    let manifest = match &a.manifest {
        None => None,
        Some(p) => Some(
            Manifest::parse(&read("manifest", p)?)
                .with_context(|| format!("manifest {}", p.display()))?,
        ),
    };
    Ok(Policy {
        allow_debug: a.allow_debug,
        allow_migration_agent: a.allow_migration_agent,
        require_no_smt: a.require_no_smt,
        require_single_socket: a.require_single_socket,
        min_abi,
        vmpl: a.vmpl,
        min_tcb: tcb("min-tcb", &a.min_tcb)?,
        min_launch_tcb: tcb("min-launch-tcb", &a.min_launch_tcb)?,
        min_guest_svn: a.min_guest_svn,
        report_data: hex_list("report-data", &a.report_data)?,
        host_data: hex_list("host-data", &a.host_data)?,
        family_id: hex_list("family-id", &a.family_id)?,
        image_id: hex_list("image-id", &a.image_id)?,
        id_key_digest: hex_list("id-key-digest", &a.id_key_digest)?,
        author_key_digest: hex_list("author-key-digest", &a.author_key_digest)?,
        chip_id: hex_list("chip-id", &a.chip_id)?,
        measurements: hex_list("measurement", &a.measurement)?,
        manifest,
        require_crl: a.require_crl,
    })
}

fn at(s: &Option<String>) -> Result<i64> {
    match s {
        None => Ok(time::OffsetDateTime::now_utc().unix_timestamp()),
        Some(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|e| anyhow!("--at '{s}': not RFC 3339: {e}")),
    }
}

fn kds_cache(a: &ReportArgs) -> std::path::PathBuf {
    if let Some(d) = &a.kds_cache {
        return d.clone();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("snp-verify/kds")
}

/// The endorsement key certificate, and the ARK and intermediate supplied with it.
struct Gathered {
    vek: Vek,
    ark: Option<Vec<u8>>,
    intermediate: Option<Vec<u8>>,
}

/// The VEK and optional supplied chain, from whichever source was given.
fn gather(a: &ReportArgs, ev: &Evidence, product: Option<Product>) -> Result<Gathered> {
    let (mut ark, mut int) = (None, None);
    let vek = if let Some(p) = &a.vcek {
        let mut c = certs("VCEK", p)?;
        let v = c.remove(0);
        int = c.first().cloned();
        ark = c.get(1).cloned();
        Vek::Vcek(v)
    } else if let Some(p) = &a.vlek {
        let mut c = certs("VLEK", p)?;
        let v = c.remove(0);
        int = c.first().cloned();
        ark = c.get(1).cloned();
        Vek::Vlek(v)
    } else if let Some(d) = &a.certs {
        let dir =
            CertDir::load(d).with_context(|| format!("certificate directory {}", d.display()))?;
        ark = dir.ark.clone();
        match (dir.vcek, dir.vlek) {
            (Some(v), _) => {
                int = dir.ask;
                Vek::Vcek(v)
            }
            (None, Some(v)) => {
                int = dir.asvk;
                Vek::Vlek(v)
            }
            (None, None) => bail!("{}: no vcek.pem/der or vlek.pem/der", d.display()),
        }
    } else if let Some(v) = ev
        .certs
        .iter()
        .find(|c| matches!(c.kind, CertKind::Vcek | CertKind::Vlek))
    {
        let pick = |k: CertKind| {
            ev.certs
                .iter()
                .find(|c| c.kind == k)
                .map(|c| c.data.clone())
        };
        ark = pick(CertKind::Ark);
        int = pick(CertKind::Ask);
        if v.kind == CertKind::Vlek {
            Vek::Vlek(v.data.clone())
        } else {
            Vek::Vcek(v.data.clone())
        }
    } else if a.kds {
        let product = product
            .or_else(|| {
                ev.report
                    .cpuid
                    .and_then(|c| Product::from_cpuid(c.family, c.model))
            })
            .ok_or_else(|| {
                anyhow!("--kds needs the product: the report has no CPUID, give --product")
            })?;
        let client = KdsClient::builder().cache_dir(kds_cache(a)).build()?;
        let tcb = Tcb::decode(ev.report.reported_tcb, product);
        Vek::Vcek(
            client
                .fetch_vcek(product, &ev.report.chip_id, &tcb)
                .context("fetching the VCEK from KDS")?,
        )
    } else {
        bail!(
            "no certificate: give --vcek, --vlek, --certs or --kds (the report carries no certificate table)"
        );
    };
    if let Some(p) = &a.ark {
        ark = Some(certs("ARK", p)?.remove(0));
    }
    if let Some(p) = &a.ask {
        int = Some(certs("ASK", p)?.remove(0));
    }
    Ok(Gathered {
        vek,
        ark,
        intermediate: int,
    })
}

/// `snp-verify report`: returns whether the report was accepted.
pub fn run_report(a: &ReportArgs) -> Result<bool> {
    let bytes = read("report", &a.report)?;
    let ev =
        abi::parse_evidence(&bytes).with_context(|| format!("report {}", a.report.display()))?;
    let given = product(&a.product)?;
    let g = gather(a, &ev, given)?;
    let inputs = Inputs {
        vek: g.vek,
        ark: g.ark,
        intermediate: g.intermediate,
        crl: a.crl.as_deref().map(|p| read("CRL", p)).transpose()?,
        at: at(&a.at)?,
        product: given,
    };
    let policy = policy(&a.policy)?;
    let verdict =
        attestation_verifier::verify_report(&ev.report, &inputs, &policy, &TrustStore::amd())?;
    output::print_verdict(&verdict, a.json)?;
    Ok(verdict.accepted)
}

/// `snp-verify parse`.
pub fn run_parse(a: &ParseArgs) -> Result<()> {
    let bytes = read("report", &a.report)?;
    let ev =
        abi::parse_evidence(&bytes).with_context(|| format!("report {}", a.report.display()))?;
    let p = product(&a.product)?.or_else(|| {
        ev.report
            .cpuid
            .and_then(|c| Product::from_cpuid(c.family, c.model))
    });
    let mut v = abi::json::report_json(&ev.report, p);
    v["container"] = serde_json::to_value(ev.container)?;
    v["product"] = serde_json::to_value(p)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
