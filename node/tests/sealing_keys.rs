//! Sealing keys: the simulated platform's is deterministic per chip, measurement and policy
//! (and survives saving and reloading the platform); the hardware providers ask the firmware
//! for the derived key the way `sevguest` documents, and without `/dev/sev-guest` they fail
//! with an error naming it.

use std::sync::OnceLock;

use keynet_store::{KeySource, SealError, SealingKey, seal, unseal};
use keynode::evidence::configfs::ConfigfsTsm;
use keynode::evidence::sevguest::{
    DEVICE, FIELD_GUEST_POLICY, FIELD_MEASUREMENT, FIELD_TCB_VERSION, SEALING_FIELDS, SEALING_TCB,
    SevGuest, sealing_key_request,
};
use keynode::evidence::simulated::{SimulatedOptions, SimulatedPlatform, SimulatedState};
use keynode::evidence::{EvidenceProvider, ProviderError, SimulatedProvider};

/// One platform for the whole file: RSA key generation is the slow part.
fn platform() -> &'static SimulatedPlatform {
    static P: OnceLock<SimulatedPlatform> = OnceLock::new();
    P.get_or_init(|| {
        SimulatedPlatform::generate(SimulatedOptions {
            rsa_bits: 2048,
            measurement: [0x5a; 48],
            ..SimulatedOptions::default()
        })
        .unwrap_or_else(|e| panic!("generating the simulated platform: {e}"))
    })
}

fn key_of(p: &SimulatedPlatform) -> SealingKey {
    SimulatedProvider(p.clone())
        .sealing_key()
        .unwrap_or_else(|e| panic!("simulated sealing key: {e}"))
}

/// Whether `b` opens what `a` sealed: the only way to compare two `SealingKey`s, which never
/// show their bytes.
fn opens(a: &SealingKey, b: &SealingKey) -> bool {
    let sealed = seal(a, "node-state", b"threshold shares").unwrap_or_else(|e| panic!("{e}"));
    match unseal(b, "node-state", &sealed) {
        Ok(plain) => {
            assert_eq!(plain.as_slice(), b"threshold shares");
            true
        }
        Err(SealError::Authentication) => false,
        Err(e) => panic!("unexpected unseal error: {e}"),
    }
}

fn reload(p: &SimulatedPlatform) -> SimulatedPlatform {
    let state = p.state().unwrap_or_else(|e| panic!("state: {e}"));
    SimulatedPlatform::from_state(&state).unwrap_or_else(|e| panic!("from_state: {e}"))
}

#[test]
fn the_simulated_key_survives_saving_and_reloading_the_platform() {
    let p = platform();
    let before = p.sealing_key_bytes();
    let reloaded = reload(p);
    assert_eq!(*reloaded.sealing_key_bytes(), *before);
    assert_eq!(*reload(&reloaded).sealing_key_bytes(), *before);

    // As `keynode dev-network` does: the saved state goes through a file as JSON.
    let json = serde_json::to_string(&p.state().unwrap_or_else(|e| panic!("state: {e}")))
        .unwrap_or_else(|e| panic!("serialising the state: {e}"));
    let state: SimulatedState =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("parsing the state: {e}"));
    let from_file =
        SimulatedPlatform::from_state(&state).unwrap_or_else(|e| panic!("from_state: {e}"));
    assert_eq!(*from_file.sealing_key_bytes(), *before);

    // And the provider's key is that key: what one sealed, the reloaded one opens.
    assert!(opens(&key_of(p), &key_of(&reloaded)));
    assert!(opens(&key_of(&from_file), &key_of(p)));
}

#[test]
fn the_simulated_key_is_marked_simulated() {
    assert_eq!(key_of(platform()).source(), KeySource::Simulated);
}

#[test]
fn another_chip_derives_another_simulated_key() {
    let p = platform();
    let other = p.new_chip().unwrap_or_else(|e| panic!("new_chip: {e}"));
    assert_eq!(other.measurement(), p.measurement());
    assert_eq!(other.policy(), p.policy());
    assert_ne!(*other.sealing_key_bytes(), *p.sealing_key_bytes());
    assert!(!opens(&key_of(p), &key_of(&other)));
}

#[test]
fn another_measurement_derives_another_simulated_key() {
    let p = platform();
    let mut other = p.clone();
    let mut m = p.measurement();
    m[47] ^= 1;
    other.set_measurement(m);
    assert_ne!(*other.sealing_key_bytes(), *p.sealing_key_bytes());
    assert!(!opens(&key_of(p), &key_of(&other)));
    // Back to the original image: the original key again.
    other.set_measurement(p.measurement());
    assert_eq!(*other.sealing_key_bytes(), *p.sealing_key_bytes());
}

#[test]
fn another_policy_derives_another_simulated_key() {
    let p = platform();
    let mut other = p.clone();
    other.set_policy(p.policy() | 1 << 19); // DEBUG allowed
    assert_ne!(*other.sealing_key_bytes(), *p.sealing_key_bytes());
    assert!(!opens(&key_of(p), &key_of(&other)));
    other.set_policy(p.policy());
    assert_eq!(*other.sealing_key_bytes(), *p.sealing_key_bytes());
}

#[test]
fn the_firmware_request_mixes_in_policy_measurement_and_a_pinned_tcb() {
    assert_eq!(
        SEALING_FIELDS,
        FIELD_GUEST_POLICY | FIELD_MEASUREMENT | FIELD_TCB_VERSION
    );
    assert_eq!(SEALING_FIELDS, 0x29);
    assert_eq!(SEALING_TCB, 0);
    let req = sealing_key_request(SEALING_TCB);
    assert_eq!(req.get_root_key_select(), 0, "VCEK root");
    assert_eq!(req.guest_field_select.0, SEALING_FIELDS);
    assert_eq!(req.vmpl, 0);
    assert_eq!(req.guest_svn, 0);
    assert_eq!(req.tcb_version, SEALING_TCB);
}

fn failed_reason(r: Result<SealingKey, ProviderError>, provider: &str) -> String {
    match r {
        Err(ProviderError::Failed {
            provider: p,
            reason,
        }) if p == provider => reason,
        Err(e) => panic!("expected a {provider} failure, got {e}"),
        Ok(k) => panic!("expected a {provider} failure, got a {:?} key", k.source()),
    }
}

#[test]
fn sev_guest_without_the_device_names_it_instead_of_deriving() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("sev-guest");
    let reason = failed_reason(SevGuest::at(&missing).sealing_key(), "sev-guest");
    assert!(
        reason.contains(&missing.display().to_string()),
        "reason should name the device: {reason}"
    );

    // A path the sev crate would not open is refused before any request.
    let other = dir.path().join("not-a-device");
    std::fs::write(&other, b"").unwrap_or_else(|e| panic!("{e}"));
    let reason = failed_reason(SevGuest::at(&other).sealing_key(), "sev-guest");
    assert!(reason.contains(DEVICE), "{reason}");
}

#[test]
fn configfs_tsm_without_sev_guest_says_sealing_needs_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("sev-guest");
    let tsm = ConfigfsTsm::at(dir.path().join("report")).with_sealer(SevGuest::at(&missing));
    let reason = failed_reason(tsm.sealing_key(), "configfs-tsm");
    assert!(reason.contains(&missing.display().to_string()), "{reason}");
    assert!(reason.contains("MSG_KEY_REQ"), "{reason}");
    assert!(reason.contains("configfs-tsm offers no"), "{reason}");
}
