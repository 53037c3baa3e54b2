//! The `snp-measure` CLI against the `sev-snp-measure` 0.0.13 CLI: same flags, same stdout,
//! same success or failure, same VMSA dumps; and `snp-measure id-block` against
//! `snp-create-id-block`.

mod support;

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use support::{Run, fwgen, our_cli, reference_cli, run};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn both(a: &[String], cwd: &Path) -> (Run, Run) {
    (run(&reference_cli(), a, cwd), run(&our_cli(), a, cwd))
}

struct Files {
    dir: tempfile::TempDir,
    kernel: PathBuf,
    initrd: PathBuf,
    svsm: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kernel = support::write(dir.path(), "vmlinuz", &support::pseudo_random(7, 700_001));
    let initrd = support::write(dir.path(), "initrd", &support::pseudo_random(8, 2_000_000));
    let svsm_img = fwgen::svsm_like(
        9,
        0x2000,
        vec![
            (0x80_0000, 0x2000, fwgen::SEC_MEM),
            (0x80_2000, 0x1000, fwgen::SECRETS),
            (0x80_3000, 0x1000, fwgen::CPUID),
            (0x80_4000, 0x1000, fwgen::SVSM_CAA),
        ],
    );
    let svsm = support::write(dir.path(), "svsm.bin", &svsm_img.build());
    Files {
        dir,
        kernel,
        initrd,
        svsm,
    }
}

#[test]
fn same_stdout_for_successful_invocations() {
    let f = files();
    let ovmf = support::our_ovmf().display().to_string();
    let debian = support::debian_ovmf().display().to_string();
    let k = f.kernel.display().to_string();
    let i = f.initrd.display().to_string();
    let sv = f.svsm.display().to_string();
    let invocations: Vec<Vec<&str>> = vec![
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
            "--ovmf",
            &ovmf,
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
            "--ovmf",
            &ovmf,
            "-v",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "4",
            "--vcpu-type",
            "EPYC-Milan",
            "--ovmf",
            &ovmf,
            "--output-format",
            "base64",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "1",
            "--vcpu-sig",
            "0xa00f11",
            "--ovmf",
            &ovmf,
            "--kernel",
            &k,
            "--initrd",
            &i,
            "--append",
            "console=ttyS0",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vcpu-family",
            "25",
            "--vcpu-model",
            "17",
            "--vcpu-stepping",
            "0",
            "--ovmf",
            &ovmf,
            "--kernel",
            &k,
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vmm-type",
            "ec2",
            "--ovmf",
            &ovmf,
            "--guest-features",
            "0x21",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vmm-type",
            "gce",
            "--ovmf",
            &ovmf,
            "--verbose",
            "--output-format",
            "base64",
        ],
        vec![
            "--mode",
            "seves",
            "--vcpus",
            "3",
            "--vcpu-type",
            "EPYC-Rome",
            "--ovmf",
            &debian,
        ],
        vec![
            "--mode",
            "seves",
            "--vcpus",
            "3",
            "--vcpu-type",
            "EPYC-Rome",
            "--ovmf",
            &ovmf,
            "--kernel",
            &k,
            "--append",
            "",
        ],
        vec![
            "--mode", "sev", "--ovmf", &ovmf, "--kernel", &k, "--initrd", &i, "-v",
        ],
        vec![
            "--mode",
            "sev",
            "--ovmf",
            &debian,
            "--output-format",
            "base64",
        ],
        vec!["--mode", "snp:ovmf-hash", "--ovmf", &ovmf],
        vec!["--mode", "snp:ovmf-hash", "--ovmf", &debian, "-v"],
        vec![
            "--mode",
            "snp:svsm",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Genoa",
            "--ovmf",
            &ovmf,
            "--svsm",
            &sv,
            "--vars-size",
            "131072",
        ],
        vec![
            "--mode",
            "snp:svsm",
            "--vcpus",
            "8",
            "--vcpu-type",
            "EPYC-Turin",
            "--ovmf",
            &ovmf,
            "--svsm",
            &sv,
            "--vars-file",
            &debian,
            "-v",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "128",
            "--vcpu-type",
            "EPYC-Turin",
            "--ovmf",
            &ovmf,
            "--kernel",
            &k,
            "--initrd",
            &i,
            "--append",
            "a b c",
        ],
    ];
    for inv in invocations {
        let a = args(&inv);
        let (r, o) = both(&a, f.dir.path());
        assert_eq!(r.code, Some(0), "reference failed on {inv:?}: {}", r.stderr);
        assert_eq!(o.code, Some(0), "ours failed on {inv:?}: {}", o.stderr);
        assert_eq!(o.stdout, r.stdout, "stdout differs for {inv:?}");
    }
}

#[test]
fn seed_from_ovmf_hash_gives_the_full_digest() {
    let ovmf = support::our_ovmf().display().to_string();
    let cwd = Path::new(".");
    let (r, o) = both(&args(&["--mode", "snp:ovmf-hash", "--ovmf", &ovmf]), cwd);
    assert_eq!(r.stdout, o.stdout);
    let seed = o.stdout.trim().to_owned();
    let full = args(&[
        "--mode",
        "snp",
        "--vcpus",
        "2",
        "--vcpu-type",
        "EPYC-Genoa",
        "--ovmf",
        &ovmf,
    ]);
    let mut seeded = full.clone();
    seeded.extend(args(&["--snp-ovmf-hash", &seed]));
    let (r1, o1) = both(&full, cwd);
    let (r2, o2) = both(&seeded, cwd);
    assert_eq!(o1.stdout, r1.stdout);
    assert_eq!(o2.stdout, r2.stdout);
    assert_eq!(
        o1.stdout, o2.stdout,
        "seeded digest differs from full digest"
    );
}

#[test]
fn usage_errors_fail_in_both_with_exit_2() {
    let f = files();
    let ovmf = support::our_ovmf().display().to_string();
    let k = f.kernel.display().to_string();
    let bad: Vec<Vec<&str>> = vec![
        vec!["--mode", "snp", "--ovmf", &ovmf, "--vcpu-type", "EPYC"],
        vec!["--mode", "snp", "--vcpus", "2", "--ovmf", &ovmf],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vcpu-type",
            "Pentium",
            "--ovmf",
            &ovmf,
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
            "--initrd",
            &k,
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
            "--append",
            "x",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
            "--vmm-type",
            "xen",
        ],
        vec!["--mode", "tdx", "--ovmf", &ovmf],
        vec!["--mode", "snp", "--vcpus", "2"],
        vec!["--mode", "sev", "--ovmf", &ovmf, "--dump-vmsa"],
        vec![
            "--mode",
            "snp:svsm",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
            "--svsm",
            &k,
        ],
        vec![
            "--mode",
            "snp:svsm",
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
            "--vars-size",
            "1",
            "--vars-file",
            &k,
        ],
    ];
    for inv in bad {
        let (r, o) = both(&args(&inv), f.dir.path());
        assert_eq!(r.code, Some(2), "reference on {inv:?}: {}", r.stderr);
        assert_eq!(o.code, Some(2), "ours on {inv:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "ours printed to stdout on {inv:?}");
        assert!(
            !o.stderr.trim().is_empty(),
            "ours gave no message on {inv:?}"
        );
    }
}

#[test]
fn content_and_io_errors_are_distinct_exit_codes_with_messages() {
    let f = files();
    let debian = support::debian_ovmf().display().to_string();
    let k = f.kernel.display().to_string();
    // Debian's generic OVMF cannot measure a kernel: the reference says so with exit 1.
    let inv = args(&[
        "--mode",
        "snp",
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC",
        "--ovmf",
        &debian,
        "--kernel",
        &k,
    ]);
    let (r, o) = both(&inv, f.dir.path());
    assert_eq!(r.code, Some(1));
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("SNP_KERNEL_HASHES"), "{}", o.stderr);
    // A missing file is an I/O error (3) naming the file.
    let o = run(
        &our_cli(),
        &args(&["--mode", "sev", "--ovmf", "/nonexistent/OVMF.fd"]),
        f.dir.path(),
    );
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    assert!(o.stderr.contains("/nonexistent/OVMF.fd"));
    // A truncated firmware is invalid input (1), not a crash.
    let short = support::write(f.dir.path(), "short.fd", &[0u8; 40]);
    let o = run(
        &our_cli(),
        &args(&["--mode", "sev", "--ovmf", &short.display().to_string()]),
        f.dir.path(),
    );
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("too small"), "{}", o.stderr);
}

#[test]
fn vmsa_dumps_are_identical() {
    let f = files();
    let ovmf = support::our_ovmf().display().to_string();
    let sv = f.svsm.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "3",
            "--vcpu-type",
            "EPYC-Milan",
            "--ovmf",
            &ovmf,
            "--guest-features",
            "0x21",
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vmm-type",
            "ec2",
            "--ovmf",
            &ovmf,
        ],
        vec![
            "--mode",
            "snp",
            "--vcpus",
            "2",
            "--vmm-type",
            "gce",
            "--ovmf",
            &ovmf,
        ],
        vec![
            "--mode",
            "seves",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC",
            "--ovmf",
            &ovmf,
        ],
        vec![
            "--mode",
            "snp:svsm",
            "--vcpus",
            "2",
            "--vcpu-type",
            "EPYC-Genoa",
            "--ovmf",
            &ovmf,
            "--svsm",
            &sv,
            "--vars-size",
            "131072",
        ],
    ];
    for inv in cases {
        let mut a = args(&inv);
        a.push("--dump-vmsa".into());
        let rd = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let od = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = run(&reference_cli(), &a, rd.path());
        let o = run(&our_cli(), &a, od.path());
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        assert_eq!(o.stdout, r.stdout);
        let n: usize = inv[3].parse().unwrap_or(0);
        for i in 0..n {
            let name = format!("vmsa{i}.bin");
            let rv = std::fs::read(rd.path().join(&name))
                .unwrap_or_else(|e| panic!("reference {name}: {e}"));
            let ov =
                std::fs::read(od.path().join(&name)).unwrap_or_else(|e| panic!("our {name}: {e}"));
            assert_eq!(ov.len(), 4096);
            assert!(ov == rv, "{name} differs for {inv:?}");
        }
    }
}

#[test]
fn json_record_reproduces_the_digest() {
    let f = files();
    let ovmf = support::our_ovmf().display().to_string();
    let k = f.kernel.display().to_string();
    let i = f.initrd.display().to_string();
    let base = args(&[
        "--mode",
        "snp",
        "--vcpus",
        "4",
        "--vcpu-type",
        "EPYC-Genoa",
        "--ovmf",
        &ovmf,
        "--kernel",
        &k,
        "--initrd",
        &i,
        "--append",
        "quiet",
    ]);
    let plain = run(&our_cli(), &base, f.dir.path());
    let mut j = base.clone();
    j.push("--json".into());
    let rec = run(&our_cli(), &j, f.dir.path());
    assert_eq!(rec.code, Some(0), "{}", rec.stderr);
    let v: serde_json::Value = serde_json::from_str(&rec.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["measurement"].as_str(), Some(plain.stdout.trim()));
    assert_eq!(v["vcpus"], 4);
    assert_eq!(v["vcpu_sig"], "0xa10f10");
    assert_eq!(v["vmm_type"], "QEMU");
    assert_eq!(v["guest_features"], "0x1");
    assert_eq!(v["append"], "quiet");
    use sha2::Digest;
    let want_k = hex::encode(sha2::Sha256::digest(
        std::fs::read(&f.kernel).unwrap_or_default(),
    ));
    assert_eq!(v["kernel"]["sha256"].as_str(), Some(want_k.as_str()));
    assert_eq!(v["initrd"]["size"], 2_000_000);
    let want_fw = hex::encode(sha2::Sha256::digest(
        std::fs::read(support::our_ovmf()).unwrap_or_default(),
    ));
    assert_eq!(v["ovmf"]["sha256"].as_str(), Some(want_fw.as_str()));
}

/// Writes an ID key in SEC1 form (what `openssl ecparam -genkey` writes) and an author key
/// in PKCS#8 form, both generated by OpenSSL through Python's `cryptography`.
fn write_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let (id, author) = (dir.join("id.pem"), dir.join("author.pem"));
    let r = run(
        &support::reference_python(),
        &[
            support::root()
                .join("measurements/tests/reference/gen_keys.py")
                .display()
                .to_string(),
            id.display().to_string(),
            author.display().to_string(),
        ],
        dir,
    );
    assert_eq!(r.code, Some(0), "key generation: {}", r.stderr);
    (id, author)
}

fn field<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' in {out}"))
}

fn blocks(out: &str) -> (Vec<u8>, Vec<u8>) {
    let first = out.lines().next().unwrap_or_default();
    let (b, a) = first
        .split_once(",id-auth=")
        .unwrap_or_else(|| panic!("bad line {first}"));
    let b = b
        .strip_prefix("id-block=")
        .unwrap_or_else(|| panic!("bad line {first}"));
    (
        B64.decode(b).unwrap_or_else(|e| panic!("{e}")),
        B64.decode(a).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Zeroes the two signature fields (ECDSA by OpenSSL is randomised).
fn without_signatures(auth: &[u8]) -> Vec<u8> {
    let mut a = auth.to_vec();
    a[0x40..0x240].fill(0);
    a[0x680..0x880].fill(0);
    a
}

#[test]
fn id_block_matches_snp_create_id_block() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (id, author) = write_keys(dir.path());
    let ld = support::pseudo_random(42, 48);
    let m = B64.encode(&ld);
    let a = args(&[
        "--measurement",
        &m,
        "--idkey",
        &id.display().to_string(),
        "--authorkey",
        &author.display().to_string(),
    ]);
    let r = run(&support::reference_id_block_cli(), &a, dir.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let mut oa = vec!["id-block".to_string()];
    oa.extend(a.clone());
    let o = run(&our_cli(), &oa, dir.path());
    assert_eq!(o.code, Some(0), "{}", o.stderr);

    // Deterministic parts byte for byte.
    let (rb, rauth) = blocks(&r.stdout);
    let (ob, oauth) = blocks(&o.stdout);
    assert_eq!(ob, rb, "ID block differs");
    assert_eq!(ob.len(), 96);
    assert_eq!(&ob[..48], &ld[..]);
    assert_eq!(
        without_signatures(&oauth),
        without_signatures(&rauth),
        "ID auth differs outside the signatures"
    );
    assert_eq!(
        field(&o.stdout, "id_key_hash: "),
        field(&r.stdout, "id_key_hash: ")
    );
    assert_eq!(
        field(&o.stdout, "author_key: "),
        field(&r.stdout, "author_key: ")
    );

    // Signatures: the reference's verify under our checker, ours under OpenSSL.
    let (id_digest, author_digest) = snp_measure::id_block::verify(&rb, &rauth)
        .unwrap_or_else(|e| panic!("reference signatures: {e}"));
    assert_eq!(B64.encode(id_digest), field(&r.stdout, "id_key_hash: "));
    assert_eq!(
        author_digest.map(|d| B64.encode(d)).as_deref(),
        Some(field(&r.stdout, "author_key: "))
    );
    let script = support::root().join("measurements/tests/reference/verify_id_auth.py");
    let v = run(
        &support::reference_python(),
        &[
            script.display().to_string(),
            B64.encode(&ob),
            B64.encode(&oauth),
        ],
        dir.path(),
    );
    assert_eq!(
        v.stdout.trim(),
        "ok",
        "OpenSSL rejects our signatures: {}{}",
        v.stdout,
        v.stderr
    );

    // A flipped byte of the block or of a signature is caught by both checkers.
    let mut bad = ob.clone();
    bad[0] ^= 1;
    assert!(snp_measure::id_block::verify(&bad, &oauth).is_err());
    let v = run(
        &support::reference_python(),
        &[
            script.display().to_string(),
            B64.encode(&bad),
            B64.encode(&oauth),
        ],
        dir.path(),
    );
    assert_eq!(v.stdout.trim(), "bad signature");
    let mut bad_auth = oauth.clone();
    bad_auth[0x690] ^= 1;
    assert!(snp_measure::id_block::verify(&ob, &bad_auth).is_err());
}

#[test]
fn id_block_options_land_in_the_right_fields_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (id, _) = write_keys(dir.path());
    let hex_ld = hex::encode(support::pseudo_random(43, 48));
    let a = args(&[
        "id-block",
        "--measurement",
        &hex_ld,
        "--idkey",
        &id.display().to_string(),
        "--family-id",
        "00112233445566778899aabbccddeeff",
        "--image-id",
        "ffeeddccbbaa99887766554433221100",
        "--guest-svn",
        "7",
        "--policy",
        "0x30000",
        "--json",
    ]);
    let o1 = run(&our_cli(), &a, dir.path());
    let o2 = run(&our_cli(), &a, dir.path());
    assert_eq!(o1.code, Some(0), "{}", o1.stderr);
    assert_eq!(
        o1.stdout, o2.stdout,
        "RFC 6979 signing must be deterministic"
    );
    let v: serde_json::Value = serde_json::from_str(&o1.stdout).unwrap_or_else(|e| panic!("{e}"));
    let b = B64
        .decode(v["id_block"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(hex::encode(&b[0..48]), hex_ld);
    assert_eq!(
        hex::encode(&b[0x30..0x40]),
        "00112233445566778899aabbccddeeff"
    );
    assert_eq!(
        hex::encode(&b[0x40..0x50]),
        "ffeeddccbbaa99887766554433221100"
    );
    assert_eq!(&b[0x50..0x54], &1u32.to_le_bytes());
    assert_eq!(&b[0x54..0x58], &7u32.to_le_bytes());
    assert_eq!(&b[0x58..0x60], &0x30000u64.to_le_bytes());
    assert_eq!(v["author_key_digest"], serde_json::Value::Null);
    let auth = B64
        .decode(v["id_auth"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let (d, none) = snp_measure::id_block::verify(&b, &auth).unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_none());
    assert_eq!(v["id_key_digest"].as_str(), Some(hex::encode(d).as_str()));
    // Wrong-curve and garbage keys are clear errors.
    let p256 = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2\nOF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBSDZH2r\n1RTwjmYSi9R/zpBnuQ4EiMnCqfMPWiZqB4QdbAd0E7oH50VpuZ1P087G\n-----END PRIVATE KEY-----\n";
    let k = support::write(dir.path(), "p256.pem", p256.as_bytes());
    let o = run(
        &our_cli(),
        &args(&[
            "id-block",
            "--measurement",
            &hex_ld,
            "--idkey",
            &k.display().to_string(),
        ]),
        dir.path(),
    );
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("ID key"), "{}", o.stderr);
}
