//! Where attestation evidence comes from: Linux configfs-tsm (the kernel 6.12 interface),
//! the SEV guest device `/dev/sev-guest` (older kernels), or, only in a build with the
//! `simulated` feature and only when configured, a simulated SNP platform. `auto` picks the
//! first available hardware interface and never falls back to simulation.
//!
//! Each provider also derives the key node state is sealed under
//! ([`EvidenceProvider::sealing_key`]): on hardware the SNP firmware's derived key (MSG_KEY_REQ
//! through `/dev/sev-guest`), on the simulated platform a key derived from its chip secret.

pub mod configfs;
pub mod sevguest;
#[cfg(feature = "simulated")]
pub mod simulated;

use attestation_verifier::tls::evidence::{EvidenceCert, Platform};
use keynet_store::SealingKey;

/// Said wherever a simulated platform is in use: it is not AMD hardware.
pub const SIMULATED_WARNING: &str = "SIMULATED SEV-SNP PLATFORM: these attestation reports are signed by \
    a software key, not by an AMD processor, and prove nothing about the code running or the \
    confidentiality of its memory. Use only for tests and local development; a verifier \
    trusts it only when its root is added explicitly.";

/// Whether this build has the simulated platform (the `simulated` feature). The published
/// image's keynode does not: its measured bytes cannot simulate.
pub const SIMULATION_BUILT_IN: bool = cfg!(feature = "simulated");

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
#[cfg(feature = "simulated")]
pub struct SimulatedProvider(pub simulated::SimulatedPlatform);

#[cfg(feature = "simulated")]
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
            keynet_store::KeySource::Simulated,
        ))
    }
}

/// Picks the first hardware interface present (configfs-tsm, then `/dev/sev-guest`); never
/// the simulated platform. The sealing key is pinned to `sealing_tcb` (raw TCB_VERSION).
pub fn auto(sealing_tcb: u64) -> Result<Box<dyn EvidenceProvider>, ProviderError> {
    let sealer = sevguest::SevGuest::default().with_sealing_tcb(sealing_tcb);
    let tsm = configfs::ConfigfsTsm::default().with_sealer(sealer.clone());
    if tsm.available() {
        return Ok(Box::new(tsm));
    }
    let dev = sealer;
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
