//! The ATTESTATION_REPORT structure (SEV-SNP ABI spec, table "ATTESTATION_REPORT"), versions
//! 2 to 5, parsed into typed fields. Parsing never depends on the product: TCB values are
//! kept raw here and decoded once the product is known.

use crate::abi::AbiError;

/// Size of a report.
pub const REPORT_LEN: usize = 0x4a0;
/// The signed part: everything before the signature.
pub const SIGNED_LEN: usize = 0x2a0;
/// Lowest and highest report versions understood.
pub const MIN_VERSION: u32 = 2;
/// See [`MIN_VERSION`].
pub const MAX_VERSION: u32 = 5;

/// Which key signed the report (`flags.SIGNING_KEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum SigningKey {
    /// The chip's VCEK.
    Vcek,
    /// A cloud provider's VLEK.
    Vlek,
    /// No key: the report is unsigned.
    None,
    /// A reserved value.
    Reserved(u8),
}

/// Firmware version triple (major.minor.build).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FwVersion {
    /// Major.
    pub major: u8,
    /// Minor.
    pub minor: u8,
    /// Build.
    pub build: u8,
}

impl std::fmt::Display for FwVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// CPUID family, model and stepping of the chip (report version 3 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cpuid {
    /// Combined family (base + extended).
    pub family: u8,
    /// Combined model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A parsed attestation report. Byte arrays are as in the report (little-endian fields
/// decoded, digests and IDs verbatim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Report format version (2-5).
    pub version: u32,
    /// Guest SVN from the ID block.
    pub guest_svn: u32,
    /// Guest policy.
    pub policy: u64,
    /// Family ID from the ID block.
    pub family_id: [u8; 16],
    /// Image ID from the ID block.
    pub image_id: [u8; 16],
    /// VMPL the report was requested from.
    pub vmpl: u32,
    /// Signature algorithm (1 = ECDSA P-384 with SHA-384).
    pub signature_algo: u32,
    /// Current TCB, raw.
    pub current_tcb: u64,
    /// Platform info bits.
    pub platform_info: u64,
    /// AUTHOR_KEY_EN.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY.
    pub mask_chip_key: bool,
    /// SIGNING_KEY.
    pub signing_key: SigningKey,
    /// The raw flags word.
    pub flags: u32,
    /// Guest-provided data.
    pub report_data: [u8; 64],
    /// Launch digest.
    pub measurement: [u8; 48],
    /// Host-provided data.
    pub host_data: [u8; 32],
    /// SHA-384 of the ID public key.
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author public key.
    pub author_key_digest: [u8; 48],
    /// Report ID of the guest.
    pub report_id: [u8; 32],
    /// Report ID of the migration agent.
    pub report_id_ma: [u8; 32],
    /// The TCB the VCEK was derived from, raw.
    pub reported_tcb: u64,
    /// CPUID identification (version 3 and later).
    pub cpuid: Option<Cpuid>,
    /// Chip identifier (zero when MASK_CHIP_ID is set or with a VLEK).
    pub chip_id: [u8; 64],
    /// Committed TCB, raw.
    pub committed_tcb: u64,
    /// Current firmware version.
    pub current_version: FwVersion,
    /// Committed firmware version.
    pub committed_version: FwVersion,
    /// TCB at launch, raw.
    pub launch_tcb: u64,
    /// Launch mitigation vector (version 5 and later).
    pub launch_mit_vector: Option<u64>,
    /// Current mitigation vector (version 5 and later).
    pub current_mit_vector: Option<u64>,
    /// Signature R, big-endian.
    pub signature_r: [u8; 72],
    /// Signature S, big-endian.
    pub signature_s: [u8; 72],
    /// The exact bytes parsed (the signature covers the first [`SIGNED_LEN`]).
    pub raw: Box<[u8; REPORT_LEN]>,
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(b, at))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(arr(b, at))
}

/// Reverses a little-endian signature component into big-endian.
fn be72(b: &[u8], at: usize) -> [u8; 72] {
    let mut v: [u8; 72] = arr(b, at);
    v.reverse();
    v
}

impl Report {
    /// Parses exactly one report (1184 bytes).
    pub fn parse(b: &[u8]) -> Result<Report, AbiError> {
        if b.len() != REPORT_LEN {
            return Err(AbiError::Length {
                what: "attestation report",
                expected: REPORT_LEN,
                actual: b.len(),
            });
        }
        let version = u32_at(b, 0x00);
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(AbiError::Field {
                field: "version",
                reason: format!(
                    "{version} is not a supported report version ({MIN_VERSION}-{MAX_VERSION})"
                ),
            });
        }
        let flags = u32_at(b, 0x48);
        let signing_key = match (flags >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other as u8),
        };
        let cpuid = (version >= 3).then(|| Cpuid {
            family: b[0x188],
            model: b[0x189],
            stepping: b[0x18a],
        });
        let mit = version >= 5;
        Ok(Report {
            version,
            guest_svn: u32_at(b, 0x04),
            policy: u64_at(b, 0x08),
            family_id: arr(b, 0x10),
            image_id: arr(b, 0x20),
            vmpl: u32_at(b, 0x30),
            signature_algo: u32_at(b, 0x34),
            current_tcb: u64_at(b, 0x38),
            platform_info: u64_at(b, 0x40),
            author_key_en: flags & 1 != 0,
            mask_chip_key: flags & 2 != 0,
            signing_key,
            flags,
            report_data: arr(b, 0x50),
            measurement: arr(b, 0x90),
            host_data: arr(b, 0xc0),
            id_key_digest: arr(b, 0xe0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            report_id_ma: arr(b, 0x160),
            reported_tcb: u64_at(b, 0x180),
            cpuid,
            chip_id: arr(b, 0x1a0),
            committed_tcb: u64_at(b, 0x1e0),
            current_version: FwVersion {
                build: b[0x1e8],
                minor: b[0x1e9],
                major: b[0x1ea],
            },
            committed_version: FwVersion {
                build: b[0x1ec],
                minor: b[0x1ed],
                major: b[0x1ee],
            },
            launch_tcb: u64_at(b, 0x1f0),
            launch_mit_vector: mit.then(|| u64_at(b, 0x1f8)),
            current_mit_vector: mit.then(|| u64_at(b, 0x200)),
            signature_r: be72(b, 0x2a0),
            signature_s: be72(b, 0x2e8),
            raw: Box::new(arr(b, 0)),
        })
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }
}
