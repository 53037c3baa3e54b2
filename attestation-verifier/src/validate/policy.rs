//! Policy: what a relying party requires of an authentic report. Defaults are fail-closed
//! where it matters: debug guests and guests with a migration agent are refused unless
//! allowed; everything else is checked only when asked for, and says `skipped` otherwise.

use crate::abi::Report;
use crate::abi::tcb::Tcb;
use crate::kds::Product;
use crate::validate::manifest::Manifest;
use crate::verdict::Checks;

/// Guest policy bits (SNP ABI spec, GUEST_POLICY).
pub mod bits {
    /// SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Debugging allowed.
    pub const DEBUG: u64 = 1 << 19;
    /// Single socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
}

/// Minimum SPLs per TCB component; `None` means no minimum for that component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinTcb {
    /// FMC (Turin).
    pub fmc: Option<u8>,
    /// Boot loader.
    pub bl: Option<u8>,
    /// TEE.
    pub tee: Option<u8>,
    /// SNP firmware.
    pub snp: Option<u8>,
    /// Microcode.
    pub ucode: Option<u8>,
}

impl MinTcb {
    /// The raw TCB_VERSION of this minimum, if it names every component of a layout (boot
    /// loader, TEE, SNP and microcode, and FMC for Turin): what a sealing key can be pinned
    /// to.
    pub fn raw(&self) -> Option<u64> {
        Some(Tcb::encode(
            self.fmc,
            self.bl?,
            self.tee?,
            self.snp?,
            self.ucode?,
        ))
    }
}

impl std::str::FromStr for MinTcb {
    type Err = String;

    /// Parses `bl=3,tee=0,snp=8,ucode=115[,fmc=1]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut m = MinTcb::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': expected NAME=VALUE"))?;
            let v: u8 = v
                .trim()
                .parse()
                .map_err(|_| format!("'{part}': value must be 0-255"))?;
            let slot = match k.trim() {
                "fmc" => &mut m.fmc,
                "bl" => &mut m.bl,
                "tee" => &mut m.tee,
                "snp" => &mut m.snp,
                "ucode" => &mut m.ucode,
                other => {
                    return Err(format!(
                        "unknown TCB component '{other}' (fmc, bl, tee, snp, ucode)"
                    ));
                }
            };
            *slot = Some(v);
        }
        Ok(m)
    }
}

/// What a relying party requires. `Default` is the fail-closed baseline.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Accept guests whose policy allows debugging.
    pub allow_debug: bool,
    /// Accept guests whose policy allows a migration agent.
    pub allow_migration_agent: bool,
    /// Require SMT to be disallowed by the guest policy.
    pub require_no_smt: bool,
    /// Require the single-socket bit.
    pub require_single_socket: bool,
    /// Minimum ABI (major, minor) in the guest policy.
    pub min_abi: Option<(u8, u8)>,
    /// Required VMPL.
    pub vmpl: Option<u32>,
    /// Minimum reported TCB.
    pub min_tcb: Option<MinTcb>,
    /// Minimum launch TCB.
    pub min_launch_tcb: Option<MinTcb>,
    /// Minimum guest SVN.
    pub min_guest_svn: Option<u32>,
    /// Allowed REPORT_DATA values.
    pub report_data: Vec<[u8; 64]>,
    /// Allowed HOST_DATA values.
    pub host_data: Vec<[u8; 32]>,
    /// Allowed FAMILY_ID values.
    pub family_id: Vec<[u8; 16]>,
    /// Allowed IMAGE_ID values.
    pub image_id: Vec<[u8; 16]>,
    /// Allowed ID key digests.
    pub id_key_digest: Vec<[u8; 48]>,
    /// Allowed author key digests.
    pub author_key_digest: Vec<[u8; 48]>,
    /// Allowed chip IDs.
    pub chip_id: Vec<[u8; 64]>,
    /// Allowed measurements (in addition to the manifest's).
    pub measurements: Vec<[u8; 48]>,
    /// The published manifest.
    pub manifest: Option<Manifest>,
    /// Require a CRL check.
    pub require_crl: bool,
}

fn allowlist<const N: usize>(
    checks: &mut Checks,
    name: &str,
    allowed: &[[u8; N]],
    actual: &[u8; N],
) {
    if allowed.is_empty() {
        checks.skip(name, "not requested");
        return;
    }
    let ok = allowed.contains(actual);
    checks.require(
        name,
        ok,
        if ok {
            format!("{} is allowed", hex::encode(actual))
        } else {
            format!(
                "{} is not among the {} allowed value(s) (e.g. {})",
                hex::encode(actual),
                allowed.len(),
                hex::encode(allowed[0])
            )
        },
    );
}

fn min_tcb(
    checks: &mut Checks,
    name: &str,
    min: Option<&MinTcb>,
    raw: u64,
    product: Option<Product>,
) {
    let Some(min) = min else {
        checks.skip(name, "not requested");
        return;
    };
    let Some(product) = product else {
        checks.require_skipped(name, "product unknown: cannot decode the TCB");
        return;
    };
    let tcb = Tcb::decode(raw, product);
    let pairs = [
        ("fmc", min.fmc, tcb.fmc),
        ("bl", min.bl, Some(tcb.bl)),
        ("tee", min.tee, Some(tcb.tee)),
        ("snp", min.snp, Some(tcb.snp)),
        ("ucode", min.ucode, Some(tcb.ucode)),
    ];
    let mut bad = Vec::new();
    for (n, want, got) in pairs {
        match (want, got) {
            (Some(w), Some(g)) if g < w => bad.push(format!("{n} {g} < minimum {w}")),
            (Some(_), None) => bad.push(format!("{n}: {product} has no {n} component")),
            _ => {}
        }
    }
    let parts: Vec<String> = tcb
        .components()
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    checks.require(
        name,
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} meets the minimum", parts.join(" "))
        } else {
            bad.join("; ")
        },
    );
}

impl Policy {
    /// Adds one check per policy item to `checks`.
    pub fn check(&self, r: &Report, product: Option<Product>, checks: &mut Checks) {
        let p = r.policy;
        let debug = p & bits::DEBUG != 0;
        checks.require(
            "policy_debug",
            !debug || self.allow_debug,
            match (debug, self.allow_debug) {
                (false, _) => "guest policy forbids debugging".to_owned(),
                (true, true) => "guest policy allows debugging (allowed by option)".to_owned(),
                (true, false) => format!("guest policy {p:#x} allows debugging (bit 19); a debug guest's memory is readable by the host"),
            },
        );
        let ma = p & bits::MIGRATE_MA != 0;
        checks.require(
            "policy_migration_agent",
            !ma || self.allow_migration_agent,
            if ma {
                format!("guest policy {p:#x} allows a migration agent (bit 18)")
            } else {
                "no migration agent".to_owned()
            },
        );
        if self.require_no_smt {
            let smt = p & bits::SMT != 0;
            checks.require(
                "policy_smt",
                !smt,
                if smt {
                    format!("guest policy {p:#x} allows SMT, required off")
                } else {
                    "SMT disallowed".into()
                },
            );
        } else {
            checks.skip("policy_smt", "not requested");
        }
        if self.require_single_socket {
            let ss = p & bits::SINGLE_SOCKET != 0;
            checks.require(
                "policy_single_socket",
                ss,
                if ss {
                    "single socket required by guest policy".into()
                } else {
                    format!("guest policy {p:#x} lacks the single-socket bit (20)")
                },
            );
        } else {
            checks.skip("policy_single_socket", "not requested");
        }
        match self.min_abi {
            Some((maj, min)) => {
                let (gmaj, gmin) = (((p >> 8) & 0xff) as u8, (p & 0xff) as u8);
                let ok = (gmaj, gmin) >= (maj, min);
                checks.require(
                    "policy_min_abi",
                    ok,
                    format!("guest policy ABI {gmaj}.{gmin}, minimum {maj}.{min}"),
                );
            }
            None => checks.skip("policy_min_abi", "not requested"),
        }
        match self.vmpl {
            Some(v) => checks.require(
                "vmpl",
                r.vmpl == v,
                format!("expected VMPL {v}, found {}", r.vmpl),
            ),
            None => checks.skip("vmpl", "not requested"),
        }
        min_tcb(
            checks,
            "min_tcb",
            self.min_tcb.as_ref(),
            r.reported_tcb,
            product,
        );
        min_tcb(
            checks,
            "min_launch_tcb",
            self.min_launch_tcb.as_ref(),
            r.launch_tcb,
            product,
        );
        match self.min_guest_svn {
            Some(m) => checks.require(
                "min_guest_svn",
                r.guest_svn >= m,
                format!("guest SVN {}, minimum {m}", r.guest_svn),
            ),
            None => checks.skip("min_guest_svn", "not requested"),
        }
        allowlist(checks, "report_data", &self.report_data, &r.report_data);
        allowlist(checks, "host_data", &self.host_data, &r.host_data);
        allowlist(checks, "family_id", &self.family_id, &r.family_id);
        allowlist(checks, "image_id", &self.image_id, &r.image_id);
        allowlist(
            checks,
            "id_key_digest",
            &self.id_key_digest,
            &r.id_key_digest,
        );
        allowlist(
            checks,
            "author_key_digest",
            &self.author_key_digest,
            &r.author_key_digest,
        );
        allowlist(checks, "chip_id", &self.chip_id, &r.chip_id);
        self.check_measurement(r, checks);
    }

    fn check_measurement(&self, r: &Report, checks: &mut Checks) {
        let mut allowed = self.measurements.clone();
        if let Some(m) = &self.manifest {
            allowed.extend(m.digests());
        }
        if allowed.is_empty() {
            checks.skip("measurement", "no manifest or measurement given");
            return;
        }
        let found = allowed.contains(&r.measurement);
        let shape = self
            .manifest
            .as_ref()
            .and_then(|m| m.find(&r.measurement))
            .map(|e| {
                format!(
                    " (published for {})",
                    serde_json::Value::Object(e.shape.clone())
                )
            })
            .unwrap_or_default();
        checks.require(
            "measurement",
            found,
            if found {
                format!("{} is published{shape}", hex::encode(r.measurement))
            } else {
                format!(
                    "{} is not among the {} published digest(s)",
                    hex::encode(r.measurement),
                    allowed.len()
                )
            },
        );
    }
}
