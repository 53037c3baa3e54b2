//! Reports through the SEV guest driver's ioctl interface (`/dev/sev-guest`), for guests whose
//! kernel has the `sev-guest` driver but no configfs-tsm. The request goes through the `sev`
//! crate's `Firmware::get_ext_report` (SNP_GET_EXT_REPORT) at VMPL 0, so the host's
//! certificate table, if it has one, comes back with the report.
//!
//! The report is returned exactly as the firmware wrote it: `get_ext_report` hands back the
//! raw 1184-byte `report` field of the firmware's response (`Vec<u8>`), which is never parsed
//! into a struct and serialised again.
//!
//! The sealing key is the firmware's derived key (MSG_KEY_REQ, `Firmware::get_derived_key`),
//! requested as [`sealing_key_request`] describes.

use std::path::PathBuf;

use attestation_verifier::abi::report::REPORT_LEN;
use attestation_verifier::tls::evidence::{CertRole, EvidenceCert, Platform};
use keynet_store::{KeySource, SealingKey};
use sev::firmware::guest::{DerivedKey, GuestFieldSelect};
use zeroize::Zeroizing;

use super::{EvidenceProvider, PlatformEvidence, ProviderError};

/// The SEV guest device.
pub const DEVICE: &str = "/dev/sev-guest";

/// The VMPL the report is requested at: the guest kernel's own level, which is what
/// verifiers expect of a node.
const VMPL: u32 = 0;

/// Guest-request message version (1 is the only MSG_REPORT_REQ version).
const MESSAGE_VERSION: u32 = 1;

/// MSG_KEY_REQ message version. Version 2 (firmware 1.58+) only adds LAUNCH_MIT_VECTOR, which
/// the sealing key does not mix in; version 1 is understood by every SNP firmware.
const KEY_MESSAGE_VERSION: u32 = 1;

/// GUEST_FIELD_SELECT bit 0 (MSG_KEY_REQ): mix in the guest policy.
pub const FIELD_GUEST_POLICY: u64 = 1 << 0;
/// GUEST_FIELD_SELECT bit 1: mix in the ID block's IMAGE_ID.
pub const FIELD_IMAGE_ID: u64 = 1 << 1;
/// GUEST_FIELD_SELECT bit 2: mix in the ID block's FAMILY_ID.
pub const FIELD_FAMILY_ID: u64 = 1 << 2;
/// GUEST_FIELD_SELECT bit 3: mix in the launch measurement.
pub const FIELD_MEASUREMENT: u64 = 1 << 3;
/// GUEST_FIELD_SELECT bit 4: mix in the request's GUEST_SVN.
pub const FIELD_GUEST_SVN: u64 = 1 << 4;
/// GUEST_FIELD_SELECT bit 5: derive from the VCEK of the request's TCB_VERSION and mix it in.
pub const FIELD_TCB_VERSION: u64 = 1 << 5;
/// GUEST_FIELD_SELECT bit 6 (message version 2): mix in LAUNCH_MIT_VECTOR.
pub const FIELD_LAUNCH_MIT_VECTOR: u64 = 1 << 6;

/// What the sealing key mixes in: the image (MEASUREMENT) and the guest POLICY, so another
/// image or the same image launched with, say, debugging allowed derives another key; and
/// TCB_VERSION, which pins the versioned root key (see [`SEALING_TCB`]).
///
/// Not selected: IMAGE_ID and FAMILY_ID (ID-block labels the host supplies, implied by the
/// measurement for our purpose), GUEST_SVN (no ID block sets one) and LAUNCH_MIT_VECTOR
/// (message version 2 only). The firmware always mixes in the VMPL, HOST_DATA and the ID/author
/// key digest besides: a host that launches with other HOST_DATA or another ID block gets
/// another key (it can only deny service that way, which it can anyway).
pub const SEALING_FIELDS: u64 = FIELD_GUEST_POLICY | FIELD_MEASUREMENT | FIELD_TCB_VERSION;

/// The TCB_VERSION the sealing key is pinned to by default: 0.
///
/// The VCEK is versioned. Without [`FIELD_TCB_VERSION`] the firmware derives from the VCEK of
/// the platform's current reported TCB, so every routine host update of the SNP firmware or
/// microcode (or an SNP_CONFIG by the host) would change the key and lose the sealed state.
/// With it, the firmware recomputes the VCEK for the requested TCB_VERSION, which it accepts
/// while no component exceeds the committed TCB; a committed TCB only rises, so a pinned value
/// keeps the key across updates. 0 is below every committed TCB of every product (Milan, Genoa,
/// Turin lay the components out differently), so no host is refused.
///
/// The price: firmware of any TCB on this chip, including old vulnerable versions, can derive
/// the same key for the same image. A deployment that wants older firmware locked out pins its
/// minimum TCB instead ([`SevGuest::with_sealing_tcb`]), in the chip's own layout.
pub const SEALING_TCB: u64 = 0;

/// The MSG_KEY_REQ for the sealing key pinned to TCB_VERSION `tcb` (raw, the chip's layout):
/// root key VCEK (chip-unique), [`SEALING_FIELDS`], VMPL 0 (the guest kernel's level, so a
/// lower-privileged VMPL cannot derive it), GUEST_SVN 0.
///
/// Limitation: `sev` 8.0.0 cannot set KEY_SEL (bits 2:1 of the ROOT_KEY_SELECT word), and 0
/// there means "the VLEK if the host installed one, else the VCEK". On a host with a VLEK the
/// key is therefore rooted in the VLEK, which is shared by the chips the VLEK is loaded on.
pub fn sealing_key_request(tcb: u64) -> DerivedKey {
    DerivedKey::new(false, GuestFieldSelect(SEALING_FIELDS), VMPL, 0, tcb, None)
}

/// The `/dev/sev-guest` provider.
#[derive(Clone, Debug)]
pub struct SevGuest {
    device: PathBuf,
    sealing_tcb: u64,
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
            sealing_tcb: SEALING_TCB,
        }
    }

    /// Pins the sealing key to another TCB_VERSION (raw, in this chip's layout) instead of
    /// [`SEALING_TCB`]: firmware below it cannot derive the key, and neither can a host whose
    /// committed TCB is still below it. Changing it changes the key.
    pub fn with_sealing_tcb(mut self, tcb: u64) -> Self {
        self.sealing_tcb = tcb;
        self
    }

    /// The TCB_VERSION the sealing key is pinned to.
    pub fn sealing_tcb(&self) -> u64 {
        self.sealing_tcb
    }

    /// The device path.
    pub fn device(&self) -> &std::path::Path {
        &self.device
    }

    /// True if the device exists.
    pub fn available(&self) -> bool {
        self.device.exists()
    }

    /// The device exists and is the one the `sev` crate opens.
    fn usable(&self) -> Result<(), ProviderError> {
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
        Ok(())
    }
}

/// Checks the firmware's derived key and makes it the sealing key.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn sealing_key_from(key: Zeroizing<[u8; 32]>) -> Result<SealingKey, ProviderError> {
    // The sev crate reads a response the firmware never wrote as status 0 with a zero key.
    if key.iter().all(|b| *b == 0) {
        return Err(fail(
            "MSG_KEY_REQ returned an all-zero key (the firmware did not answer)",
        ));
    }
    Ok(SealingKey::new(*key, KeySource::SnpDerived))
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

#[cfg(target_os = "linux")]
fn derive(req: DerivedKey) -> Result<SealingKey, ProviderError> {
    use sev::error::{FirmwareError, UserApiError};
    use sev::firmware::guest::Firmware;

    let mut fw = Firmware::open().map_err(|e| fail(format!("opening {DEVICE}: {e}")))?;
    // The crate's own response buffer is not zeroized; this copy is.
    let key = fw
        .get_derived_key(Some(KEY_MESSAGE_VERSION), req)
        .map(Zeroizing::new)
        .map_err(|e| {
            fail(match e {
                // sev 8.0.0 drops the ioctl's errno and reports an all-zero firmware status.
                UserApiError::FirmwareError(FirmwareError::UnknownSevError(0)) => format!(
                    "SNP_GET_DERIVED_KEY ioctl on {DEVICE} failed with no firmware or host status"
                ),
                UserApiError::FirmwareError(e) => format!("MSG_KEY_REQ firmware status: {e}"),
                UserApiError::VmmError(e) => format!("MSG_KEY_REQ host (VMM) status: {e}"),
                UserApiError::IOError(e) => format!("SNP_GET_DERIVED_KEY ioctl on {DEVICE}: {e}"),
                other => format!("SNP_GET_DERIVED_KEY on {DEVICE}: {other}"),
            })
        })?;
    sealing_key_from(key)
}

#[cfg(not(target_os = "linux"))]
fn derive(_req: DerivedKey) -> Result<SealingKey, ProviderError> {
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
        self.usable()?;
        request(report_data)
    }

    fn sealing_key(&self) -> Result<SealingKey, ProviderError> {
        self.usable()?;
        derive(sealing_key_request(self.sealing_tcb))
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
    fn the_sealing_key_request_selects_vcek_policy_measurement_and_a_pinned_tcb() {
        let req = sealing_key_request(SEALING_TCB);
        assert_eq!(req.get_root_key_select(), 0, "root key VCEK");
        let fields = req.guest_field_select;
        assert_eq!(fields.0, 0b10_1001);
        assert!(fields.get_guest_policy());
        assert!(fields.get_measurement());
        assert!(fields.get_tcb_version());
        assert!(!fields.get_image_id());
        assert!(!fields.get_family_id());
        assert!(!fields.get_svn());
        assert!(!fields.get_launch_mit_vector());
        assert_eq!(req.vmpl, 0);
        assert_eq!(req.guest_svn, 0);
        assert_eq!(req.tcb_version, 0);
        assert_eq!(req.launch_mit_vector, None);
        // A deployment floor goes into TCB_VERSION and nowhere else.
        let floor = u64::from_le_bytes([4, 0, 0, 0, 0, 0, 24, 219]);
        let pinned = sealing_key_request(floor);
        assert_eq!(pinned.tcb_version, floor);
        assert_eq!(pinned.guest_field_select, fields);
        assert_eq!(SevGuest::default().sealing_tcb(), SEALING_TCB);
        assert_eq!(
            SevGuest::default().with_sealing_tcb(floor).sealing_tcb(),
            floor
        );
    }

    #[test]
    fn a_derived_key_becomes_an_snp_sealing_key_unless_it_is_all_zero() {
        match sealing_key_from(Zeroizing::new([5; 32])) {
            Ok(k) => assert_eq!(k.source(), KeySource::SnpDerived),
            Err(e) => panic!("{e}"),
        }
        match sealing_key_from(Zeroizing::new([0; 32])) {
            Err(ProviderError::Failed { provider, reason }) => {
                assert_eq!(provider, "sev-guest");
                assert!(reason.contains("all-zero"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
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
