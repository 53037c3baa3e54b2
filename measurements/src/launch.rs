//! Launch parameters: the guest mode and the VMM that prepares the initial vCPU state.

use std::fmt;
use std::str::FromStr;

/// Guest mode, as in sev-snp-measure's `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum SevMode {
    /// SEV: SHA-256 over firmware (and hashes table).
    Sev,
    /// SEV-ES: SHA-256 over firmware, hashes table and VMSAs.
    SevEs,
    /// SEV-SNP: SHA-384 launch digest.
    SevSnp,
    /// SEV-SNP with COCONUT-SVSM.
    SevSnpSvsm,
}

impl SevMode {
    /// The reference tool's enum name, used in its verbose output.
    pub fn reference_name(self) -> &'static str {
        match self {
            SevMode::Sev => "SEV",
            SevMode::SevEs => "SEV_ES",
            SevMode::SevSnp => "SEV_SNP",
            SevMode::SevSnpSvsm => "SEV_SNP_SVSM",
        }
    }
}

/// The VMM whose initial register state is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum VmmType {
    /// QEMU/KVM.
    #[serde(rename = "QEMU")]
    Qemu,
    /// AWS EC2.
    #[serde(rename = "ec2")]
    Ec2,
    /// Google Compute Engine.
    #[serde(rename = "gce")]
    Gce,
}

impl VmmType {
    /// The names accepted on the command line (the reference's spelling).
    pub const NAMES: [&'static str; 3] = ["QEMU", "ec2", "gce"];
}

impl fmt::Display for VmmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VmmType::Qemu => "QEMU",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        })
    }
}

impl FromStr for VmmType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "QEMU" => Ok(VmmType::Qemu),
            "ec2" => Ok(VmmType::Ec2),
            "gce" => Ok(VmmType::Gce),
            other => Err(format!(
                "unknown VMM type '{other}' (expected one of {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}
