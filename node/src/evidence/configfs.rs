//! Reports through Linux configfs-tsm (`/sys/kernel/config/tsm/report`, kernel 6.7+): create
//! a report directory, write REPORT_DATA to `inblob`, read the report from `outblob` and the
//! certificate table from `auxblob`, and check `generation` so a concurrent writer cannot
//! hand us someone else's report.
//!
//! configfs-tsm has no derived-key interface, so the sealing key comes from the SEV guest
//! device that the same `sev-guest` driver also exposes (MSG_KEY_REQ through
//! `/dev/sev-guest`, see [`super::sevguest`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use attestation_verifier::abi::certtable::{self, CertKind};
use attestation_verifier::tls::evidence::{CertRole, EvidenceCert, Platform};

use keynet_store::SealingKey;

use super::sevguest::SevGuest;
use super::{EvidenceProvider, PlatformEvidence, ProviderError};

/// Where the kernel exposes TSM reports.
pub const REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// The configfs-tsm provider.
#[derive(Debug)]
pub struct ConfigfsTsm {
    root: PathBuf,
    counter: AtomicU64,
    /// Derives the sealing key.
    sealer: SevGuest,
}

impl Default for ConfigfsTsm {
    fn default() -> Self {
        Self::at(REPORT_ROOT)
    }
}

fn fail(reason: impl Into<String>) -> ProviderError {
    ProviderError::Failed {
        provider: "configfs-tsm",
        reason: reason.into(),
    }
}

impl ConfigfsTsm {
    /// A provider rooted elsewhere (tests).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ConfigfsTsm {
            root: root.into(),
            counter: AtomicU64::new(0),
            sealer: SevGuest::default(),
        }
    }

    /// Derives the sealing key with `sealer` instead of the default [`SevGuest`] (another
    /// device path in tests, or a pinned TCB with [`SevGuest::with_sealing_tcb`]).
    pub fn with_sealer(mut self, sealer: SevGuest) -> Self {
        self.sealer = sealer;
        self
    }

    /// True if the report directory exists and an SEV-SNP guest driver serves it. The
    /// directory alone proves nothing: the `tsm` module creates it even where `sev-guest`
    /// found no SNP platform (then `provider` cannot be read).
    pub fn available(&self) -> bool {
        self.root.is_dir() && self.provider().is_ok_and(|p| p == "sev_guest")
    }

    /// The TSM provider serving reports, read from a probe entry.
    pub fn provider(&self) -> Result<String, ProviderError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join(format!("keynode-probe-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        let p = Self::read(&dir, "provider");
        let _ = std::fs::remove_dir(&dir);
        Ok(String::from_utf8_lossy(&p?).trim().to_owned())
    }

    fn read(dir: &Path, name: &str) -> Result<Vec<u8>, ProviderError> {
        std::fs::read(dir.join(name)).map_err(|e| fail(format!("reading {name}: {e}")))
    }

    fn request(
        &self,
        dir: &Path,
        report_data: &[u8; 64],
    ) -> Result<PlatformEvidence, ProviderError> {
        let provider = String::from_utf8_lossy(&Self::read(dir, "provider")?)
            .trim()
            .to_owned();
        if provider != "sev_guest" {
            return Err(fail(format!(
                "provider is '{provider}', expected 'sev_guest'"
            )));
        }
        std::fs::write(dir.join("inblob"), report_data)
            .map_err(|e| fail(format!("writing inblob: {e}")))?;
        let before = Self::read(dir, "generation")?;
        let report = Self::read(dir, "outblob")?;
        let aux = Self::read(dir, "auxblob").unwrap_or_default();
        let after = Self::read(dir, "generation")?;
        if before != after {
            return Err(fail(
                "the report changed while being read (concurrent writer); retry",
            ));
        }
        if report.len() != attestation_verifier::abi::report::REPORT_LEN {
            return Err(fail(format!(
                "outblob is {} bytes, expected a 1184-byte report",
                report.len()
            )));
        }
        let mut certs = Vec::new();
        if !aux.is_empty() {
            let entries = certtable::parse(&aux).map_err(|e| fail(format!("auxblob: {e}")))?;
            for e in entries {
                let kind = match e.kind {
                    CertKind::Vcek => CertRole::Vcek,
                    CertKind::Vlek => CertRole::Vlek,
                    CertKind::Ask => CertRole::Ask,
                    CertKind::Ark => CertRole::Ark,
                    _ => continue,
                };
                certs.push(EvidenceCert { kind, der: e.data });
            }
        }
        Ok(PlatformEvidence {
            platform: Platform::Snp,
            report,
            certs,
        })
    }
}

impl EvidenceProvider for ConfigfsTsm {
    fn name(&self) -> &'static str {
        "configfs-tsm"
    }

    fn platform(&self) -> Platform {
        Platform::Snp
    }

    fn evidence(&self, report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .root
            .join(format!("keynode-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        let result = self.request(&dir, &report_data);
        // configfs directories are removed with rmdir; failure only leaks an entry.
        let _ = std::fs::remove_dir(&dir);
        result
    }

    fn sealing_key(&self) -> Result<SealingKey, ProviderError> {
        let device = self.sealer.device();
        if !self.sealer.available() {
            return Err(fail(format!(
                "sealing needs {} (MSG_KEY_REQ), and it does not exist; configfs-tsm offers no \
                 derived key (load the sev-guest driver, which provides both)",
                device.display()
            )));
        }
        self.sealer.sealing_key().map_err(|e| {
            fail(format!(
                "sealing key through {} (configfs-tsm offers none): {e}",
                device.display()
            ))
        })
    }
}
