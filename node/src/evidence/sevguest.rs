//! Reports through the SEV guest driver's ioctl interface (`/dev/sev-guest`), for guests whose
//! kernel has the `sev-guest` driver but no configfs-tsm. The request goes through the `sev`
//! crate's `Firmware::get_ext_report` (SNP_GET_EXT_REPORT) at VMPL 0, so the host's
//! certificate table, if it has one, comes back with the report.
//!
//! The report is returned exactly as the firmware wrote it: `get_ext_report` hands back the
//! raw 1184-byte `report` field of the firmware's response (`Vec<u8>`), which is never parsed
//! into a struct and serialised again.

use std::path::PathBuf;

use attestation_verifier::abi::report::REPORT_LEN;
use attestation_verifier::tls::evidence::{CertRole, EvidenceCert, Platform};

use super::{EvidenceProvider, PlatformEvidence, ProviderError};

/// The SEV guest device.
pub const DEVICE: &str = "/dev/sev-guest";

/// The VMPL the report is requested at: the guest kernel's own level, which is what
/// verifiers expect of a node.
const VMPL: u32 = 0;

/// Guest-request message version (1 is the only MSG_REPORT_REQ version).
const MESSAGE_VERSION: u32 = 1;

/// The `/dev/sev-guest` provider.
#[derive(Debug)]
pub struct SevGuest {
    device: PathBuf,
}

impl Default for SevGuest {
    fn default() -> Self {
        Self::at(DEVICE)
    }
}

fn fail(reason: impl Into<String>) -> ProviderError {
    ProviderError::Failed {
        provider: "sev-guest",
        reason: reason.into(),
    }
}

impl SevGuest {
    /// A provider for another device path (tests). Only [`DEVICE`] can produce reports: the
    /// `sev` crate opens that path itself.
    pub fn at(device: impl Into<PathBuf>) -> Self {
        SevGuest {
            device: device.into(),
        }
    }

    /// The device path.
    pub fn device(&self) -> &std::path::Path {
        &self.device
    }

    /// True if the device exists.
    pub fn available(&self) -> bool {
        self.device.exists()
    }
}

/// Checks the firmware's report and keeps the certificates verifiers use.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn assemble(
    report: Vec<u8>,
    report_data: &[u8; 64],
    table: Vec<(CertRole, Vec<u8>)>,
) -> Result<PlatformEvidence, ProviderError> {
    if report.len() != REPORT_LEN {
        return Err(fail(format!(
            "the firmware returned {} bytes, expected a {REPORT_LEN}-byte report",
            report.len()
        )));
    }
    if report.get(0x50..0x90) != Some(report_data.as_slice()) {
        return Err(fail("the report does not carry the requested REPORT_DATA"));
    }
    if report.get(0x30..0x34) != Some(VMPL.to_le_bytes().as_slice()) {
        return Err(fail(format!("the report is not for VMPL {VMPL}")));
    }
    let certs = table
        .into_iter()
        .filter(|(_, der)| !der.is_empty())
        .map(|(kind, der)| EvidenceCert { kind, der })
        .collect();
    Ok(PlatformEvidence {
        platform: Platform::Snp,
        report,
        certs,
    })
}

#[cfg(target_os = "linux")]
fn request(report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
    use sev::error::{FirmwareError, UserApiError};
    use sev::firmware::guest::Firmware;
    use sev::firmware::host::CertType;

    let mut fw = Firmware::open().map_err(|e| fail(format!("opening {DEVICE}: {e}")))?;
    let (report, table) = fw
        .get_ext_report(Some(MESSAGE_VERSION), Some(report_data), Some(VMPL))
        .map_err(|e| {
            fail(match e {
                // sev 8.0.0 drops the ioctl's errno and reports an all-zero firmware status.
                UserApiError::FirmwareError(FirmwareError::UnknownSevError(0)) => format!(
                    "SNP_GET_EXT_REPORT ioctl on {DEVICE} failed with no firmware or host status"
                ),
                UserApiError::FirmwareError(e) => format!("firmware status: {e}"),
                UserApiError::VmmError(e) => format!("host (VMM) status: {e}"),
                UserApiError::IOError(e) => format!("SNP_GET_EXT_REPORT ioctl on {DEVICE}: {e}"),
                UserApiError::ApiError(e) => format!("the host's certificate table: {e}"),
                UserApiError::UuidError(e) => format!("the host's certificate table: {e}"),
                other => format!("SNP_GET_EXT_REPORT on {DEVICE}: {other}"),
            })
        })?;
    let table = table
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            let role = match entry.cert_type {
                CertType::VCEK => CertRole::Vcek,
                CertType::VLEK => CertRole::Vlek,
                CertType::ASK => CertRole::Ask,
                CertType::ARK => CertRole::Ark,
                _ => return None,
            };
            Some((role, entry.data))
        })
        .collect();
    assemble(report, &report_data, table)
}

#[cfg(not(target_os = "linux"))]
fn request(_report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
    Err(fail(format!("{DEVICE} is only supported on Linux")))
}

impl EvidenceProvider for SevGuest {
    fn name(&self) -> &'static str {
        "sev-guest"
    }

    fn platform(&self) -> Platform {
        Platform::Snp
    }

    fn evidence(&self, report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
        if !self.available() {
            return Err(fail(format!(
                "{} does not exist (not an SEV-SNP guest, or the sev-guest driver is not loaded)",
                self.device.display()
            )));
        }
        if self.device != std::path::Path::new(DEVICE) {
            return Err(fail(format!(
                "{}: only {DEVICE} is supported (the sev crate opens it by name)",
                self.device.display()
            )));
        }
        request(report_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(report_data: &[u8; 64], vmpl: u32) -> Vec<u8> {
        let mut r = vec![0u8; REPORT_LEN];
        r[0] = 3;
        r[0x30..0x34].copy_from_slice(&vmpl.to_le_bytes());
        r[0x50..0x90].copy_from_slice(report_data);
        r
    }

    fn reason(r: Result<PlatformEvidence, ProviderError>) -> String {
        match r {
            Err(ProviderError::Failed { reason, .. }) => reason,
            other => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn the_firmware_report_is_returned_unchanged_with_its_certificates() {
        let data = [9u8; 64];
        let raw = report(&data, 0);
        let table = vec![
            (CertRole::Ark, vec![1, 2]),
            (CertRole::Vcek, vec![3]),
            (CertRole::Ask, Vec::new()),
        ];
        match assemble(raw.clone(), &data, table) {
            Ok(e) => {
                assert_eq!(e.report, raw);
                assert_eq!(e.platform, Platform::Snp);
                let kinds: Vec<_> = e.certs.iter().map(|c| c.kind).collect();
                assert_eq!(kinds, [CertRole::Ark, CertRole::Vcek]);
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_report_of_the_wrong_size_data_or_vmpl_is_refused() {
        let data = [9u8; 64];
        let short = report(&data, 0)[..1000].to_vec();
        assert!(reason(assemble(short, &data, Vec::new())).contains("1184"));
        assert!(reason(assemble(report(&[8; 64], 0), &data, Vec::new())).contains("REPORT_DATA"));
        assert!(reason(assemble(report(&data, 1), &data, Vec::new())).contains("VMPL"));
    }
}
