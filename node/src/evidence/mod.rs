//! Where attestation evidence comes from: Linux configfs-tsm (the kernel 6.12 interface),
//! the SEV guest device `/dev/sev-guest` (older kernels), or, only when configured, a
//! simulated SNP platform. `auto` picks the first available hardware interface and never
//! falls back to simulation.
//!
//! Each provider also derives the key node state is sealed under
//! ([`EvidenceProvider::sealing_key`]): on hardware the SNP firmware's derived key (MSG_KEY_REQ
//! through `/dev/sev-guest`), on the simulated platform a key derived from its chip secret.

pub mod configfs;
pub mod sevguest;
pub mod simulated;

use attestation_verifier::tls::evidence::{EvidenceCert, Platform};
use keynet_store::{KeySource, SealingKey};

/// A report with the certificates the platform provided.
#[derive(Clone, Debug)]
pub struct PlatformEvidence {
    /// Real hardware or simulated.
    pub platform: Platform,
    /// The 1184-byte report.
    pub report: Vec<u8>,
    /// VCEK/VLEK (and chain) as the platform gave them; may be empty on hardware whose host
    /// supplies no certificates (verifiers then fetch the VCEK from AMD's KDS).
    pub certs: Vec<EvidenceCert>,
}

/// Why evidence could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No interface was found for `auto`.
    #[error("no SEV-SNP platform found: {0}")]
    NoPlatform(String),
    /// The interface failed.
    #[error("{provider}: {reason}")]
    Failed {
        /// Which provider.
        provider: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// A source of attestation reports.
pub trait EvidenceProvider: Send + Sync {
    /// Short name for logs and responses.
    fn name(&self) -> &'static str;
    /// Real or simulated.
    fn platform(&self) -> Platform;
    /// A fresh report whose REPORT_DATA is `report_data`.
    fn evidence(&self, report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError>;
    /// The key node state is sealed under: only the same image (measurement, policy) on the
    /// same chip derives it.
    fn sealing_key(&self) -> Result<SealingKey, ProviderError>;
}

/// The simulated platform as a provider. Loud by construction: every response carries
/// `Platform::SnpSimulated`, and verifiers trust it only when given its ARK.
pub struct SimulatedProvider(pub simulated::SimulatedPlatform);

impl EvidenceProvider for SimulatedProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn platform(&self) -> Platform {
        Platform::SnpSimulated
    }

    fn evidence(&self, report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
        use attestation_verifier::tls::evidence::CertRole;
        Ok(PlatformEvidence {
            platform: Platform::SnpSimulated,
            report: self.0.report(report_data),
            certs: vec![
                EvidenceCert {
                    kind: CertRole::Vcek,
                    der: self.0.vcek_der().to_vec(),
                },
                EvidenceCert {
                    kind: CertRole::Ask,
                    der: self.0.ask_der().to_vec(),
                },
            ],
        })
    }

    fn sealing_key(&self) -> Result<SealingKey, ProviderError> {
        Ok(SealingKey::new(
            *self.0.sealing_key_bytes(),
            KeySource::Simulated,
        ))
    }
}

/// Picks the first hardware interface present (configfs-tsm, then `/dev/sev-guest`); never
/// the simulated platform.
pub fn auto() -> Result<Box<dyn EvidenceProvider>, ProviderError> {
    let tsm = configfs::ConfigfsTsm::default();
    if tsm.available() {
        return Ok(Box::new(tsm));
    }
    let dev = sevguest::SevGuest::default();
    if dev.available() {
        return Ok(Box::new(dev));
    }
    Err(ProviderError::NoPlatform(format!(
        "no SEV-SNP platform: neither {} (with provider sev_guest) nor {} is present \
         (not an SEV-SNP guest, or a kernel without SEV_GUEST); the simulated platform is \
         only used when configured explicitly",
        configfs::REPORT_ROOT,
        sevguest::DEVICE
    )))
}
