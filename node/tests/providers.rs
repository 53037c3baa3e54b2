//! The hardware evidence providers on a machine without SEV-SNP: `/dev/sev-guest` and
//! configfs-tsm report clear errors naming what is missing, `auto` refuses to serve (and never
//! simulates), and the configuration accepts `provider = "sev-guest"`.

use std::path::Path;

use attestation_verifier::tls::evidence::Platform;
use keynode::config::{Config, ConfigError, ProviderChoice};
use keynode::evidence::configfs::{ConfigfsTsm, REPORT_ROOT};
use keynode::evidence::sevguest::{DEVICE, SevGuest};
use keynode::evidence::{EvidenceProvider, ProviderError, auto};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// True if this machine has a hardware interface, so "absent" tests do not apply.
fn has_hardware() -> bool {
    let present = Path::new(REPORT_ROOT).is_dir() || Path::new(DEVICE).exists();
    if present {
        eprintln!("skipped: this machine has {REPORT_ROOT} or {DEVICE}");
    }
    present
}

fn failed_reason(r: Result<impl Sized, ProviderError>, provider: &str) -> String {
    match r {
        Err(ProviderError::Failed {
            provider: p,
            reason,
        }) if p == provider => reason,
        Err(e) => panic!("expected a {provider} failure, got {e}"),
        Ok(_) => panic!("expected a {provider} failure, got evidence"),
    }
}

#[test]
fn sev_guest_without_the_device_is_unavailable_and_says_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("sev-guest");
    let p = SevGuest::at(&missing);
    assert!(!p.available());
    assert_eq!(p.name(), "sev-guest");
    assert_eq!(p.platform(), Platform::Snp);
    let reason = failed_reason(p.evidence([7; 64]), "sev-guest");
    assert!(
        reason.contains(&missing.display().to_string()),
        "reason should name the device path: {reason}"
    );
    Ok(())
}

#[test]
fn sev_guest_refuses_a_device_path_the_sev_crate_cannot_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let other = dir.path().join("not-a-device");
    std::fs::write(&other, b"")?;
    let p = SevGuest::at(&other);
    assert!(p.available());
    let reason = failed_reason(p.evidence([7; 64]), "sev-guest");
    assert!(
        reason.contains(&other.display().to_string()) && reason.contains(DEVICE),
        "{reason}"
    );
    Ok(())
}

#[test]
fn auto_without_a_platform_names_both_interfaces() {
    if has_hardware() {
        return;
    }
    match auto(keynode::evidence::sevguest::SEALING_TCB) {
        Err(ProviderError::NoPlatform(msg)) => {
            assert!(msg.contains(REPORT_ROOT), "{msg}");
            assert!(msg.contains(DEVICE), "{msg}");
            assert!(msg.contains("simulated"), "{msg}");
        }
        Err(e) => panic!("expected NoPlatform, got {e}"),
        Ok(p) => panic!("auto picked {} on a machine without SEV-SNP", p.name()),
    }
}

#[test]
fn configfs_tsm_with_a_missing_root_is_unavailable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let p = ConfigfsTsm::at(dir.path().join("tsm/report"));
    assert!(!p.available());
    let reason = failed_reason(p.evidence([1; 64]), "configfs-tsm");
    assert!(reason.contains("tsm/report"), "{reason}");
    Ok(())
}

#[test]
fn configfs_tsm_on_a_plain_directory_names_the_missing_provider_file() -> TestResult {
    // A plain directory is not configfs: the report entry it creates has no `provider`
    // attribute, and the request must stop there (before writing `inblob`).
    // The same holds for the availability probe: a report root whose entries have no
    // readable provider (as when `tsm` is loaded but `sev-guest` found no SNP) is
    // unavailable, so `auto` says "no SEV-SNP platform".
    let dir = tempfile::tempdir()?;
    let p = ConfigfsTsm::at(dir.path());
    assert!(!p.available());
    assert!(p.provider().is_err());
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    let reason = failed_reason(p.evidence([1; 64]), "configfs-tsm");
    assert!(reason.contains("provider"), "{reason}");
    // The report entry is removed again.
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

fn config(evidence: &str, state_dir: &Path) -> String {
    format!(
        "[node]\nlisten = \"127.0.0.1:0\"\nendpoint = \"127.0.0.1:9443\"\nstate_dir = \"{}\"\n\n\
         [evidence]\n{evidence}\n\n\
         [registry]\nfile = \"registry.json\"\n\
         authority = \"0x00000000000000000000000000000000000000aa\"\n",
        state_dir.display()
    )
}

#[test]
fn config_accepts_sev_guest_without_simulated_state() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = Config::parse(&config("provider = \"sev-guest\"", dir.path()))?;
    assert_eq!(c.evidence.provider, ProviderChoice::SevGuest);

    let with_state = config(
        "provider = \"sev-guest\"\nsimulated_state = \"platform.json\"",
        dir.path(),
    );
    match Config::parse(&with_state) {
        Err(ConfigError::Field { field, .. }) => assert_eq!(field, "evidence.simulated_state"),
        Err(e) => panic!("expected a field error, got {e}"),
        Ok(_) => panic!("simulated_state was accepted with provider = \"sev-guest\""),
    }

    // Only the kebab-case name.
    assert!(Config::parse(&config("provider = \"sev_guest\"", dir.path())).is_err());
    Ok(())
}

#[tokio::test]
async fn a_node_configured_for_sev_guest_refuses_to_serve_without_the_device() -> TestResult {
    if has_hardware() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let c = Config::parse(&config("provider = \"sev-guest\"", dir.path()))?;
    match keynode::run::start(c).await {
        Err(e) => {
            let no_platform = e.downcast_ref::<keynode::run::NoPlatform>();
            assert!(no_platform.is_some(), "expected NoPlatform, got {e:#}");
            assert!(e.to_string().contains(DEVICE), "{e:#}");
        }
        Ok(n) => {
            n.task.abort();
            panic!("a node started without {DEVICE}");
        }
    }
    Ok(())
}
