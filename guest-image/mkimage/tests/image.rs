//! The built image (out/image, from `make image`; `make test` builds it first) against
//! its record, the published record, and sev-snp-measure 0.0.13 (the reference tool,
//! installed hash-pinned by measurements/tests/reference/setup.sh).
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its message

use std::path::{Path, PathBuf};
use std::process::Command;

use attestation_verifier::validate::manifest::Manifest;
use keynet_mkimage::compare::compare;
use keynet_mkimage::lock::Lock;
use keynet_mkimage::record::{Record, VCPU_COUNTS, VCPU_TYPES, artifact};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn must_exist(p: PathBuf, hint: &str) -> PathBuf {
    assert!(p.exists(), "{} is missing: {hint}", p.display());
    p
}

fn image(name: &str) -> PathBuf {
    must_exist(
        root().join("out/image").join(name),
        "run `make image` (make test does)",
    )
}

fn version() -> String {
    Lock::load(&root().join("guest-image/inputs.lock"))
        .unwrap()
        .field("image-version", 0)
        .unwrap()
        .to_owned()
}

fn published(suffix: &str) -> PathBuf {
    must_exist(
        root().join(format!("measurements/published/{}{suffix}", version())),
        "publish with `make publish`",
    )
}

#[test]
fn artifacts_match_their_record() {
    let r = Record::load(&image("image.json")).unwrap();
    assert_eq!(r.artifacts.len(), 4);
    for a in &r.artifacts {
        assert_eq!(
            &artifact(&a.name, &image(&a.name)).unwrap(),
            a,
            "{}",
            a.name
        );
    }
    assert_eq!(r.digests.len(), VCPU_COUNTS.len() * VCPU_TYPES.len());
}

#[test]
fn the_built_image_is_the_published_one() {
    let ours = Record::load(&image("image.json")).unwrap();
    let theirs = Record::load(&published(".image.json")).unwrap();
    let c = compare(&ours, &theirs);
    let failed: Vec<String> = c
        .checks
        .iter()
        .filter(|x| !x.pass())
        .map(|x| format!("{}: ours {} published {}", x.what, x.ours, x.published))
        .collect();
    assert!(
        c.pass(),
        "out/image differs from the published record (if intended: make publish):\n{}\ndiffering inputs: {:?}",
        failed.join("\n"),
        c.differences
    );
    // The manifest the verifier reads: same digests as the record, and as published.
    let m = Manifest::parse(&std::fs::read(image("manifest.json")).unwrap()).unwrap();
    let p = Manifest::parse(&std::fs::read(published(".json")).unwrap()).unwrap();
    assert_eq!(m, p);
    let digests: Vec<&str> = ours.digests.iter().map(|d| d.digest.as_str()).collect();
    let listed: Vec<&str> = m.measurements.iter().map(|e| e.digest.as_str()).collect();
    assert_eq!(digests, listed);
}

#[test]
fn digests_equal_sev_snp_measure() {
    let reference = must_exist(
        root().join("out/ref-venv/bin/sev-snp-measure"),
        "run measurements/tests/reference/setup.sh (make test does)",
    );
    let r = Record::load(&image("image.json")).unwrap();
    let cmdline = std::fs::read_to_string(image("cmdline")).unwrap();
    assert_eq!(cmdline, r.launch.cmdline);
    for d in &r.digests {
        let out = Command::new(&reference)
            .args(["--mode", "snp", "--output-format", "hex"])
            .args(["--vcpus", &d.vcpus.to_string(), "--vcpu-type", &d.vcpu_type])
            .arg("--ovmf")
            .arg(image("OVMF.fd"))
            .arg("--kernel")
            .arg(image("vmlinuz"))
            .arg("--initrd")
            .arg(image("initrd.img"))
            .args(["--append", &cmdline])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            theirs.trim(),
            d.digest,
            "{} x{}: snp-measure vs sev-snp-measure",
            d.vcpu_type,
            d.vcpus
        );
    }
}

/// Runs `gzip -dc initrd.img | <cpio args>` and returns its output.
fn from_initrd(cpio: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc \"$1\" | {cpio}"))
        .arg("sh")
        .arg(image("initrd.img"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_initrd_holds_init_keynode_and_the_modules_in_order() {
    let list = from_initrd("cpio -it --quiet");
    let names: Vec<&str> = list.lines().collect();
    for want in [
        "init",
        "bin/keynode",
        "dev/console",
        "etc/keynet/modules.order",
    ] {
        assert!(names.contains(&want), "{want} not in the initrd: {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "entries are not sorted");
    let modules: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.ends_with(".ko.xz"))
        .collect();
    let pos = |m: &str| {
        modules
            .iter()
            .position(|n| n.ends_with(m))
            .unwrap_or_else(|| panic!("{m} missing"))
    };
    // Present; the order itself is checked in modules.order below.
    pos("/sev-guest.ko.xz");
    pos("/virtio_net.ko.xz");
    pos("/qemu_fw_cfg.ko.xz");
    let order = from_initrd("cpio -i --quiet --to-stdout etc/keynet/modules.order");
    let at = |m: &str| {
        order
            .lines()
            .position(|l| l.ends_with(m))
            .unwrap_or_else(|| panic!("{m} not in modules.order:\n{order}"))
    };
    assert!(at("/configfs.ko.xz") < at("/tsm.ko.xz"));
    assert!(at("/tsm.ko.xz") < at("/sev-guest.ko.xz"));
    assert!(at("/gcm.ko.xz") < at("/sev-guest.ko.xz"));
    assert!(at("/failover.ko.xz") < at("/virtio_net.ko.xz"));
}
