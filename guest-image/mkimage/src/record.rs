//! The build record, `image.json`: every pinned input, the intermediate components, the
//! toolchain, every output's sha256 and the SNP launch digests for each launch shape.
//! It holds no time, path or host name, so two honest builds write identical records.

use std::path::Path;

use attestation_verifier::validate::manifest::{Entry, ImageId, Manifest, SCHEMA_V1};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use snp_measure::measure::{SnpLaunch, snp_firmware_digest, snp_launch_digest};
use snp_measure::{Firmware, SevHashes, VmmType};

use crate::error::{Error, Result};

/// Schema of [`Record`].
pub const SCHEMA: &str = "keynet.image/v1";
/// vCPU counts a digest is published for.
pub const VCPU_COUNTS: [u32; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
/// vCPU types a digest is published for (QEMU `-cpu` names).
pub const VCPU_TYPES: [&str; 3] = ["EPYC-Milan", "EPYC-Genoa", "EPYC-Turin"];
/// SEV_FEATURES of the launch: SNP active, nothing else (QEMU's default).
pub const GUEST_FEATURES: u64 = 0x1;

/// The build record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Must be [`SCHEMA`].
    pub schema: String,
    /// Image name and version.
    pub image: ImageId,
    /// Pinned inputs.
    pub inputs: Vec<Input>,
    /// Files built on the way (binaries, modules), for locating a difference.
    pub components: Vec<Artifact>,
    /// Compilers used (a different one gives a different binary).
    pub toolchain: Vec<Input>,
    /// The image files in `out/image/`.
    pub artifacts: Vec<Artifact>,
    /// How the digests' launch is set up.
    pub launch: Launch,
    /// SNP launch digests, one per shape.
    pub digests: Vec<LaunchEntry>,
}

/// A pinned input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What it is.
    pub name: String,
    /// Its version.
    pub version: String,
    /// sha256 (hex) when it is a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A file and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Name (relative path).
    pub name: String,
    /// sha256, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The launch the digests are for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    /// The VMM (QEMU).
    pub vmm: String,
    /// SEV_FEATURES, hex.
    pub guest_features: String,
    /// Direct boot with QEMU's kernel-hashes table.
    pub kernel_hashes: bool,
    /// The measured kernel command line.
    pub cmdline: String,
}

/// One digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchEntry {
    /// QEMU vCPU model.
    pub vcpu_type: String,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// SNP launch digest, 96 hex digits.
    pub digest: String,
}

/// sha256 and size of a file, streamed.
pub fn artifact(name: &str, path: &Path) -> Result<Artifact> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(Artifact {
        name: name.to_owned(),
        sha256: hex::encode(h.finalize()),
        size,
    })
}

/// The launch digests of OVMF + kernel + initrd + command line for every published shape,
/// computed with the `snp-measure` library.
pub fn launch_digests(
    ovmf: &Path,
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
) -> Result<Vec<LaunchEntry>> {
    let fw = Firmware::open(ovmf)?;
    // The firmware pages are the same for every shape: hash them once.
    let seed = snp_firmware_digest(&fw)?;
    let hashes = SevHashes::from_files(kernel, Some(initrd), Some(cmdline))?;
    let mut out = Vec::new();
    for t in VCPU_TYPES {
        let sig = snp_measure::cpu::vcpu_type_sig(t).ok_or(Error::UnknownVcpuType(t))?;
        for n in VCPU_COUNTS {
            let d = snp_launch_digest(&SnpLaunch {
                firmware: &fw,
                vcpus: n,
                vcpu_sig: sig,
                guest_features: GUEST_FEATURES,
                vmm: VmmType::Qemu,
                hashes: Some(&hashes),
                firmware_digest: Some(seed),
            })?;
            out.push(LaunchEntry {
                vcpu_type: t.to_owned(),
                vcpus: n,
                digest: hex::encode(d),
            });
        }
    }
    Ok(out)
}

impl Record {
    /// Reads and checks a record.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let r: Record = serde_json::from_slice(&bytes).map_err(|source| Error::Record {
            path: path.to_owned(),
            source,
        })?;
        if r.schema != SCHEMA {
            return Err(Error::Schema {
                path: path.to_owned(),
                found: r.schema,
                expected: SCHEMA,
            });
        }
        Ok(r)
    }

    /// The record as written: pretty JSON, fields in declaration order, newline at the end.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The measurement manifest (`keynet.measurements/v1`) the verifier reads.
    pub fn manifest(&self) -> Manifest {
        let sha = |name: &str| {
            self.artifacts
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.sha256.clone())
                .unwrap_or_default()
        };
        Manifest {
            schema: SCHEMA_V1.to_owned(),
            image: Some(self.image.clone()),
            measurements: self
                .digests
                .iter()
                .map(|d| Entry {
                    digest: d.digest.clone(),
                    shape: serde_json::Map::from_iter([
                        ("vcpus".to_owned(), serde_json::json!(d.vcpus)),
                        ("vcpu_type".to_owned(), serde_json::json!(d.vcpu_type)),
                        ("vmm".to_owned(), serde_json::json!(self.launch.vmm)),
                        (
                            "guest_features".to_owned(),
                            serde_json::json!(self.launch.guest_features),
                        ),
                        ("ovmf_sha256".to_owned(), serde_json::json!(sha("OVMF.fd"))),
                        (
                            "kernel_sha256".to_owned(),
                            serde_json::json!(sha("vmlinuz")),
                        ),
                        (
                            "initrd_sha256".to_owned(),
                            serde_json::json!(sha("initrd.img")),
                        ),
                        (
                            "cmdline_sha256".to_owned(),
                            serde_json::json!(sha("cmdline")),
                        ),
                    ]),
                })
                .collect(),
        }
    }
}

/// The manifest as written: pretty JSON with a final newline.
pub fn manifest_json(m: &Manifest) -> String {
    let mut s = serde_json::to_string_pretty(m).unwrap_or_default();
    s.push('\n');
    s
}
