//! The launch digests of our firmware with a fixed synthetic kernel, initrd and command
//! line are pinned: a change of firmware, of the calculator, or of the inputs shows here at
//! once, each with its own message. The pinned values were cross-checked against
//! sev-snp-measure 0.0.13, and are again on every run.

mod support;

use std::path::Path;

use serde_json::Value;
use snp_measure::measure::{SnpLaunch, snp_launch_digest};
use snp_measure::{Firmware, SevHashes, VmmType, cpu};

fn pinned() -> Value {
    let p = support::root().join("measurements/tests/data/pinned-digests.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sha256_hex(p: &Path) -> String {
    snp_measure::hashes::sha256_file("input", p)
        .map(|(h, _)| hex::encode(h))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn pinned_digests_of_our_firmware() {
    let pin = pinned();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kernel = support::write(
        dir.path(),
        "vmlinuz",
        &support::pseudo_random(0x6b65_726e, 4 << 20),
    );
    let initrd = support::write(
        dir.path(),
        "initrd.img",
        &support::pseudo_random(0x696e_6974, 8 << 20),
    );
    let append = pin["append"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        sha256_hex(&kernel),
        pin["kernel_sha256"],
        "synthetic kernel generator changed"
    );
    assert_eq!(
        sha256_hex(&initrd),
        pin["initrd_sha256"],
        "synthetic initrd generator changed"
    );
    let ovmf = support::our_ovmf();
    assert_eq!(
        sha256_hex(&ovmf),
        pin["ovmf_sha256"],
        "out/ovmf/OVMF.fd is not the pinned firmware: the firmware build changed"
    );

    let fw = Firmware::open(&ovmf).unwrap_or_else(|e| panic!("{e}"));
    let hashes = SevHashes::from_files(&kernel, Some(&initrd), Some(&append))
        .unwrap_or_else(|e| panic!("{e}"));
    let shapes = pin["digests"].as_array().cloned().unwrap_or_default();
    assert!(shapes.len() >= 3);
    for shape in shapes {
        let vcpu_type = shape["vcpu_type"].as_str().unwrap_or_default();
        let vcpus = shape["vcpus"].as_u64().unwrap_or(0) as u32;
        let sig = cpu::vcpu_type_sig(vcpu_type).unwrap_or_else(|| panic!("unknown {vcpu_type}"));
        let d = snp_launch_digest(&SnpLaunch {
            firmware: &fw,
            vcpus,
            vcpu_sig: sig,
            guest_features: 1,
            vmm: VmmType::Qemu,
            hashes: Some(&hashes),
            firmware_digest: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            hex::encode(d),
            shape["digest"],
            "calculator changed for {vcpu_type} x{vcpus}"
        );

        let args: Vec<String> = [
            "--mode",
            "snp",
            "--vcpus",
            &vcpus.to_string(),
            "--vcpu-type",
            vcpu_type,
            "--ovmf",
            &ovmf.display().to_string(),
            "--kernel",
            &kernel.display().to_string(),
            "--initrd",
            &initrd.display().to_string(),
            "--append",
            &append,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = support::run(&support::reference_cli(), &args, dir.path());
        assert_eq!(
            r.stdout.trim(),
            shape["digest"],
            "reference disagrees for {vcpu_type} x{vcpus}: {}",
            r.stderr
        );
    }
}
