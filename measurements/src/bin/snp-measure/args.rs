//! Command-line interface. The flags of the top-level command are those of
//! sev-snp-measure 0.0.13, with the same meaning, so either tool can be swapped in.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Calculate AMD SEV/SEV-ES/SEV-SNP guest launch measurement";

const LONG_ABOUT: &str = "\
Calculate AMD SEV/SEV-ES/SEV-SNP guest launch measurement.

The top-level flags are those of sev-snp-measure 0.0.13 and give the same output, so
either tool can be used. Kernel, initrd and SVSM are hashed as streams: memory use does
not grow with their size. Add --json for a record with every input's sha256 and every
launch parameter, from which the digest can be reproduced.

Examples:
  snp-measure --mode snp --vcpus 4 --vcpu-type EPYC-Milan --ovmf OVMF.fd \\
      --kernel vmlinuz --initrd initrd.img --append 'console=ttyS0'
  snp-measure ovmf-hash --ovmf OVMF.fd
  snp-measure id-block --measurement HEX --idkey id.pem --authorkey author.pem";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  invalid input (malformed firmware, a section the launch needs is missing)
  2  usage error (bad or inconsistent flags)
  3  a file could not be read or written";

/// An inconsistency between flags found after parsing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses an integer the way Python's `int(s, 0)` does: `0x`, `0o`, `0b` prefixes or
/// decimal, `_` separators allowed.
pub fn auto_int(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(h) = lower.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else {
        (lower.as_str(), 10)
    };
    u64::from_str_radix(digits, radix).map_err(|e| format!("invalid integer '{s}': {e}"))
}

fn auto_u32(s: &str) -> Result<u32, String> {
    let v = auto_int(s)?;
    u32::try_from(v).map_err(|_| format!("'{s}' does not fit in 32 bits"))
}

fn vcpu_type(s: &str) -> Result<String, String> {
    if snp_measure::cpu::vcpu_type_sig(s).is_some() {
        Ok(s.to_owned())
    } else {
        let names: Vec<&str> = snp_measure::cpu::VCPU_TYPES.iter().map(|t| t.0).collect();
        Err(format!(
            "invalid choice '{s}' (choose from {})",
            names.join(", ")
        ))
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "snp-measure",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub measure: MeasureArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the precomputed firmware hash for `--mode snp --snp-ovmf-hash` (the SNP
    /// launch digest after the firmware pages alone).
    OvmfHash(OvmfHashArgs),
    /// Build and sign an SNP ID block and ID authentication structure for QEMU's
    /// `sev-snp-guest` `id-block=` / `id-auth=` (compatible with snp-create-id-block).
    IdBlock(IdBlockArgs),
    /// Show what a firmware image declares: footer table, SEV metadata sections, reset
    /// vector, kernel-hashes table.
    Inspect(InspectArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    #[value(name = "sev")]
    Sev,
    #[value(name = "seves")]
    SevEs,
    #[value(name = "snp")]
    Snp,
    #[value(name = "snp:ovmf-hash")]
    SnpOvmfHash,
    #[value(name = "snp:svsm")]
    SnpSvsm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Hex,
    Base64,
}

#[derive(Args, Debug)]
pub struct MeasureArgs {
    /// Print the measurement with a label.
    #[arg(short, long)]
    pub verbose: bool,

    /// Guest mode.
    #[arg(long, value_enum, required = true)]
    pub mode: Option<Mode>,

    /// Number of guest vCPUs (required except in sev mode).
    #[arg(long, value_name = "N")]
    pub vcpus: Option<u32>,

    /// Type of guest vCPU, as QEMU names it (EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3],
    /// EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin).
    #[arg(long, value_name = "CPUTYPE", value_parser = vcpu_type)]
    pub vcpu_type: Option<String>,

    /// Guest vCPU signature value (CPUID 1 EAX; 0x prefix for hex).
    #[arg(long, value_name = "VALUE", value_parser = auto_u32)]
    pub vcpu_sig: Option<u32>,

    /// Guest vCPU family (with --vcpu-model and --vcpu-stepping).
    #[arg(long, value_name = "FAMILY", requires_all = ["vcpu_model", "vcpu_stepping"])]
    pub vcpu_family: Option<u32>,

    /// Guest vCPU model.
    #[arg(long, value_name = "MODEL")]
    pub vcpu_model: Option<u32>,

    /// Guest vCPU stepping.
    #[arg(long, value_name = "STEPPING")]
    pub vcpu_stepping: Option<u32>,

    /// Type of guest VMM (QEMU, ec2, gce).
    #[arg(long, value_name = "VMMTYPE", default_value = "QEMU")]
    pub vmm_type: String,

    /// OVMF file to calculate the hash from.
    #[arg(long, value_name = "PATH", required = true)]
    pub ovmf: Option<PathBuf>,

    /// Kernel file to calculate the hash from.
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,

    /// Initrd file to calculate the hash from (use with --kernel).
    #[arg(long, value_name = "PATH")]
    pub initrd: Option<PathBuf>,

    /// Kernel command line to calculate the hash from (use with --kernel).
    #[arg(long, value_name = "CMDLINE", allow_hyphen_values = true)]
    pub append: Option<String>,

    /// The guest's SEV features (VMSA SEV_FEATURES; default 0x1, SNP active).
    #[arg(long, value_name = "VALUE", value_parser = auto_int, default_value = "0x1")]
    pub guest_features: u64,

    /// Measurement output format.
    #[arg(long, value_enum, default_value = "hex")]
    pub output_format: OutputFormat,

    /// Precalculated hash of the OVMF binary (hex string, from `snp-measure ovmf-hash`).
    #[arg(long, value_name = "HASH")]
    pub snp_ovmf_hash: Option<String>,

    /// Write measured VMSAs to vmsa<N>.bin (seves, snp and snp:svsm modes only).
    #[arg(long)]
    pub dump_vmsa: bool,

    /// SVSM binary (snp:svsm mode).
    #[arg(long, value_name = "PATH", help_heading = "snp:svsm mode")]
    pub svsm: Option<PathBuf>,

    /// Size of the OVMF_VARS file in bytes (conflicts with --vars-file).
    #[arg(
        long,
        value_name = "SIZE",
        conflicts_with = "vars_file",
        help_heading = "snp:svsm mode"
    )]
    pub vars_size: Option<u64>,

    /// OVMF_VARS file (conflicts with --vars-size).
    #[arg(long, value_name = "PATH", help_heading = "snp:svsm mode")]
    pub vars_file: Option<PathBuf>,

    /// Print a JSON record: the measurement, every input's sha256 and every launch
    /// parameter.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct OvmfHashArgs {
    /// OVMF file.
    #[arg(long, value_name = "PATH")]
    pub ovmf: PathBuf,

    /// Print {"ovmf_hash", "ovmf": {sha256, size}} as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IdBlockArgs {
    /// Expected launch measurement: 96 hex digits or base64 (as snp-create-id-block takes).
    #[arg(long, value_name = "VALUE")]
    pub measurement: String,

    /// ID private key, PEM (P-384; PKCS#8 or SEC1).
    #[arg(long, value_name = "PATH")]
    pub idkey: PathBuf,

    /// Author private key, PEM (P-384). Optional; QEMU then needs author-key-enabled=on.
    #[arg(long, value_name = "PATH")]
    pub authorkey: Option<PathBuf>,

    /// Family ID, 32 hex digits (default zeros).
    #[arg(long, value_name = "HEX")]
    pub family_id: Option<String>,

    /// Image ID, 32 hex digits (default zeros).
    #[arg(long, value_name = "HEX")]
    pub image_id: Option<String>,

    /// Guest SVN.
    #[arg(long, value_name = "N", value_parser = auto_u32, default_value = "0")]
    pub guest_svn: u32,

    /// Guest policy the launch must use (default 0x30000: SMT allowed, reserved bit 17).
    #[arg(long, value_name = "VALUE", value_parser = auto_int, default_value = "0x30000")]
    pub policy: u64,

    /// Print the blocks, digests and fields as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Firmware file.
    #[arg(long, value_name = "PATH")]
    pub ovmf: PathBuf,

    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}
