//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Verify AMD SEV-SNP attestation reports against AMD's pinned roots";

const LONG_ABOUT: &str = "\
Verify an AMD SEV-SNP attestation report: its VCEK or VLEK certificate chains to AMD's ARK
(pinned in this binary for Milan, Genoa and Turin; a supplied ARK is accepted only if
byte-equal), every certificate is valid at the verification time, the report signature
verifies, REPORTED_TCB equals the certificate's TCB, and CHIP_ID equals its hwID. Then the
policy: by default debug guests and guests allowing a migration agent are REJECTED; every
other policy item is checked only when given, and reported as skipped otherwise.

The report may be raw (1184 bytes), the guest driver's MSG_REPORT_RSP (report at 0x20), or
an extended report (report followed by its certificate table, whose VCEK/ASK/ARK are used
when no certificate is given).";

const EXIT_CODES: &str = "\
Exit codes:
  0  accepted: every required check passed
  1  rejected: a check failed, or a required check could not be made
  2  unusable input: unreadable or malformed files, bad options";

#[derive(Parser, Debug)]
#[command(name = "snp-verify", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify a report (authenticity, then policy).
    #[command(after_help = EXIT_CODES)]
    Report(Box<ReportArgs>),
    /// Print a report's parsed fields (no verification).
    Parse(ParseArgs),
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The report file (raw, MSG_REPORT_RSP, or extended report).
    pub report: PathBuf,

    /// VCEK certificate (PEM or DER; certificates after it in the file are used as ASK, ARK).
    #[arg(long, value_name = "FILE", group = "vek")]
    pub vcek: Option<PathBuf>,

    /// VLEK certificate (PEM or DER).
    #[arg(long, value_name = "FILE", group = "vek")]
    pub vlek: Option<PathBuf>,

    /// Directory in snpguest's layout: ark.pem ask.pem vcek.pem|der vlek.pem|der asvk.pem.
    #[arg(long, value_name = "DIR", group = "vek")]
    pub certs: Option<PathBuf>,

    /// Fetch the VCEK from AMD's KDS (cached on disk) when no certificate is given.
    #[arg(long, group = "vek")]
    pub kds: bool,

    /// KDS cache directory (default: $XDG_CACHE_HOME or ~/.cache, /snp-verify/kds).
    #[arg(long, value_name = "DIR")]
    pub kds_cache: Option<PathBuf>,

    /// An ARK to use; accepted only if byte-equal to the pinned one.
    #[arg(long, value_name = "FILE")]
    pub ark: Option<PathBuf>,

    /// An ASK (or ASVK, with --vlek) to use instead of the pinned one; it must be signed by
    /// the pinned ARK.
    #[arg(long, value_name = "FILE")]
    pub ask: Option<PathBuf>,

    /// A CRL of the product's ARK (PEM or DER): checked for signature, currency and a
    /// revoked ASK/ASVK.
    #[arg(long, value_name = "FILE")]
    pub crl: Option<PathBuf>,

    /// Verification time, RFC 3339 (default: now). Several real certificates have expired.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,

    /// Product (Milan, Genoa, Turin), for v2 reports whose certificate names none. Must
    /// agree with the report's CPUID and the certificate.
    #[arg(long, value_name = "PRODUCT")]
    pub product: Option<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Print {"accepted", "product", "simulated", "checks": [...], "report": {...}}.
    #[arg(long)]
    pub json: bool,
}

/// Policy options. Defaults: debug and migration-agent guests rejected; the rest unchecked.
#[derive(Args, Debug)]
#[command(next_help_heading = "Policy")]
pub struct PolicyArgs {
    /// Accept guests whose policy allows debugging (rejected by default).
    #[arg(long)]
    pub allow_debug: bool,
    /// Accept guests whose policy allows a migration agent (rejected by default).
    #[arg(long)]
    pub allow_migration_agent: bool,
    /// Require the guest policy to disallow SMT.
    #[arg(long)]
    pub require_no_smt: bool,
    /// Require the guest policy's single-socket bit.
    #[arg(long)]
    pub require_single_socket: bool,
    /// Minimum ABI in the guest policy, MAJOR.MINOR.
    #[arg(long, value_name = "MAJOR.MINOR")]
    pub min_abi: Option<String>,
    /// Required VMPL.
    #[arg(long, value_name = "N")]
    pub vmpl: Option<u32>,
    /// Minimum REPORTED_TCB, e.g. bl=3,tee=0,snp=8,ucode=115 (fmc=N on Turin).
    #[arg(long, value_name = "SPEC")]
    pub min_tcb: Option<String>,
    /// Minimum LAUNCH_TCB, same form.
    #[arg(long, value_name = "SPEC")]
    pub min_launch_tcb: Option<String>,
    /// Minimum guest SVN.
    #[arg(long, value_name = "N")]
    pub min_guest_svn: Option<u32>,
    /// Allowed REPORT_DATA (128 hex digits; repeat for several).
    #[arg(long, value_name = "HEX")]
    pub report_data: Vec<String>,
    /// Allowed HOST_DATA (64 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub host_data: Vec<String>,
    /// Allowed FAMILY_ID (32 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub family_id: Vec<String>,
    /// Allowed IMAGE_ID (32 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub image_id: Vec<String>,
    /// Allowed ID key digest (96 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub id_key_digest: Vec<String>,
    /// Allowed author key digest (96 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub author_key_digest: Vec<String>,
    /// Allowed CHIP_ID (128 hex digits; repeatable).
    #[arg(long, value_name = "HEX")]
    pub chip_id: Vec<String>,
    /// Published measurement manifest (keynet.measurements/v1 JSON).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Allowed measurement (96 hex digits; repeatable), in addition to the manifest's.
    #[arg(long, value_name = "HEX")]
    pub measurement: Vec<String>,
    /// Reject unless a CRL was given and checked.
    #[arg(long)]
    pub require_crl: bool,
}

#[derive(Args, Debug)]
pub struct ParseArgs {
    /// The report file.
    pub report: PathBuf,
    /// Product, to decode TCB values (default: from CPUID, v3+).
    #[arg(long, value_name = "PRODUCT")]
    pub product: Option<String>,
    /// Print JSON (default: the same JSON; kept for symmetry with `report`).
    #[arg(long)]
    pub json: bool,
}
