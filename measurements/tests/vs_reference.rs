//! snp-measure against sev-snp-measure 0.0.13 (installed from PyPI by the test setup):
//! a broad matrix of launches on the real firmware (ours and Debian's generic OVMF) and on
//! synthetic images that reach what the real ones lack. Every case must give the same
//! digest, or fail in both.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::fwgen::{self, FwImage, Metadata, amdsev_like, amdsev_sections, svsm_like, u32le};

#[derive(Clone, Debug, Default)]
enum Cpu {
    #[default]
    None,
    Type(&'static str),
    Sig(u32),
    Fms(u32, u32, u32),
}

#[derive(Clone, Debug, Default)]
struct Case {
    label: String,
    mode: &'static str,
    ovmf: PathBuf,
    vcpus: Option<u32>,
    cpu: Cpu,
    vmm: &'static str,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    guest_features: Option<u64>,
    snp_ovmf_hash: Option<String>,
    svsm: Option<PathBuf>,
    vars_size: Option<u64>,
}

impl Case {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--mode".into(),
            self.mode.into(),
            "--ovmf".into(),
            s(&self.ovmf),
        ];
        if let Some(v) = self.vcpus {
            a.extend(["--vcpus".into(), v.to_string()]);
        }
        match self.cpu {
            Cpu::None => {}
            Cpu::Type(t) => a.extend(["--vcpu-type".into(), t.into()]),
            Cpu::Sig(v) => a.extend(["--vcpu-sig".into(), format!("{v:#x}")]),
            Cpu::Fms(f, m, st) => a.extend([
                "--vcpu-family".into(),
                f.to_string(),
                "--vcpu-model".into(),
                m.to_string(),
                "--vcpu-stepping".into(),
                st.to_string(),
            ]),
        }
        if !self.vmm.is_empty() {
            a.extend(["--vmm-type".into(), self.vmm.into()]);
        }
        if let Some(k) = &self.kernel {
            a.extend(["--kernel".into(), s(k)]);
        }
        if let Some(i) = &self.initrd {
            a.extend(["--initrd".into(), s(i)]);
        }
        if let Some(ap) = &self.append {
            a.push(format!("--append={ap}"));
        }
        if let Some(g) = self.guest_features {
            a.extend(["--guest-features".into(), format!("{g:#x}")]);
        }
        if let Some(h) = &self.snp_ovmf_hash {
            a.extend(["--snp-ovmf-hash".into(), h.clone()]);
        }
        if let Some(sv) = &self.svsm {
            a.extend(["--svsm".into(), s(sv)]);
        }
        if let Some(v) = self.vars_size {
            a.extend(["--vars-size".into(), v.to_string()]);
        }
        a
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "mode": self.mode,
            "ovmf": s(&self.ovmf),
            "vcpus": self.vcpus,
            "vmm_type": if self.vmm.is_empty() { "QEMU" } else { self.vmm },
            "kernel": self.kernel.as_ref().map(|p| s(p)),
            "initrd": self.initrd.as_ref().map(|p| s(p)),
            "append": self.append,
            "guest_features": self.guest_features.unwrap_or(1),
            "snp_ovmf_hash": self.snp_ovmf_hash,
            "svsm": self.svsm.as_ref().map(|p| s(p)),
            "vars_size": self.vars_size,
        });
        match self.cpu {
            Cpu::None => {}
            Cpu::Type(t) => v["vcpu_type"] = json!(t),
            Cpu::Sig(x) => v["vcpu_sig"] = json!(x),
            Cpu::Fms(f, m, st) => {
                v["family"] = json!(f);
                v["model"] = json!(m);
                v["stepping"] = json!(st);
            }
        }
        v
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Inputs shared by the matrix: firmware images, kernels, initrds.
struct Inputs {
    _dir: tempfile::TempDir,
    ours: PathBuf,
    debian: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    empty_initrd: PathBuf,
    synthetic: Vec<(String, PathBuf)>,
    svsm: Vec<(String, PathBuf)>,
}

const KERNEL_COMBOS: usize = 5;

impl Inputs {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let d = dir.path();
        let kernel = support::write(d, "vmlinuz", &support::pseudo_random(1, (1 << 20) + 123));
        let initrd = support::write(d, "initrd.img", &support::pseudo_random(2, 3 << 20));
        let empty_initrd = support::write(d, "empty.img", &[]);
        let synthetic = synthetic_firmware()
            .into_iter()
            .map(|(name, img)| {
                let p = support::write(d, &format!("{name}.fd"), &img.build());
                (name, p)
            })
            .collect();
        let svsm = synthetic_svsm()
            .into_iter()
            .map(|(name, img)| {
                let p = support::write(d, &format!("{name}.bin"), &img.build());
                (name, p)
            })
            .collect();
        Inputs {
            ours: support::our_ovmf(),
            debian: support::debian_ovmf(),
            kernel,
            initrd,
            empty_initrd,
            synthetic,
            svsm,
            _dir: dir,
        }
    }

    /// Kernel/initrd/cmdline combination `i` of [`KERNEL_COMBOS`].
    fn with_kernel(&self, mut c: Case, i: usize) -> Case {
        let long: String = "x=1 ".repeat(1000);
        let (k, init, ap): (bool, Option<&PathBuf>, Option<String>) = match i {
            0 => (false, None, None),
            1 => (true, None, None),
            2 => (true, Some(&self.initrd), None),
            3 => (
                true,
                Some(&self.initrd),
                Some("console=ttyS0 quiet föö=bär".into()),
            ),
            _ => (true, Some(&self.empty_initrd), Some(long)),
        };
        if k {
            c.kernel = Some(self.kernel.clone());
        }
        c.initrd = init.cloned();
        c.append = ap;
        c.label = format!("{} kernel-combo={i}", c.label);
        c
    }
}

/// Synthetic OVMF-like images, each aimed at one section kind or corner case.
fn synthetic_firmware() -> Vec<(String, FwImage)> {
    let mut v: Vec<(String, FwImage)> = Vec::new();
    let all = amdsev_sections();
    v.push((
        "amdsev-all-sections".into(),
        amdsev_like(10, 0x81_0c00, 0x80_b004, all.clone()),
    ));
    // Hashes table ending exactly at the page end, and one byte-group past it.
    v.push((
        "hash-at-page-edge".into(),
        amdsev_like(11, 0x81_0f50, 0x80_b004, all.clone()),
    ));
    v.push((
        "hash-past-page-edge".into(),
        amdsev_like(12, 0x81_0f60, 0x80_b004, all.clone()),
    ));
    v.push((
        "hash-gpa-zero".into(),
        amdsev_like(13, 0, 0x80_b004, all.clone()),
    ));
    let no_kh: Vec<_> = all
        .iter()
        .copied()
        .filter(|s| s.2 != fwgen::KERNEL_HASHES)
        .collect();
    v.push((
        "no-kernel-hashes-section".into(),
        amdsev_like(14, 0x81_0c00, 0x80_b004, no_kh),
    ));
    v.push((
        "ap-eip-zero".into(),
        amdsev_like(15, 0x81_0c00, 0, all.clone()),
    ));
    v.push((
        "ap-eip-high".into(),
        amdsev_like(16, 0x81_0c00, 0xffff_f000, all.clone()),
    ));
    let mut big_kh = all.clone();
    big_kh[5].1 = 0x2000;
    v.push((
        "kernel-hashes-2-pages".into(),
        amdsev_like(17, 0x81_0c00, 0x80_b004, big_kh),
    ));
    let mut unknown = all.clone();
    unknown.push((0x82_0000, 0x1000, 7));
    v.push((
        "unknown-section-type".into(),
        amdsev_like(18, 0x81_0c00, 0x80_b004, unknown),
    ));
    let mut odd = all.clone();
    odd[0].1 = 0x9800;
    v.push((
        "sec-mem-not-page-multiple".into(),
        amdsev_like(19, 0x81_0c00, 0x80_b004, odd),
    ));
    let mut bad_sig = amdsev_like(20, 0x81_0c00, 0x80_b004, all.clone());
    if let Some(m) = bad_sig.metadata.as_mut() {
        m.signature = *b"ASEW";
    }
    v.push(("metadata-bad-signature".into(), bad_sig));
    let mut bad_ver = amdsev_like(21, 0x81_0c00, 0x80_b004, all.clone());
    if let Some(m) = bad_ver.metadata.as_mut() {
        m.version = 2;
    }
    v.push(("metadata-bad-version".into(), bad_ver));
    let mut small_entry = amdsev_like(22, 0x81_0c00, 0x80_b004, all.clone());
    small_entry.entries[0].2 = Some(5);
    v.push(("entry-size-below-header".into(), small_entry));
    let mut no_footer = FwImage::new(16 * 4096, 23);
    no_footer.no_footer = true;
    v.push(("no-footer-table".into(), no_footer));
    let mut not_pages = amdsev_like(24, 0x81_0c00, 0x80_b004, all.clone());
    not_pages.size = 64 * 4096 + 1000;
    v.push(("size-not-page-multiple".into(), not_pages));
    v.push((
        "no-metadata".into(),
        FwImage::new(8 * 4096, 25).entry(fwgen::RESET_BLOCK, u32le(0x80_b004)),
    ));
    v.push((
        "empty-metadata".into(),
        FwImage::new(8 * 4096, 26)
            .entry(fwgen::RESET_BLOCK, u32le(0x80_b004))
            .metadata(Metadata::new(vec![])),
    ));
    v
}

/// Synthetic COCONUT-SVSM-like images.
fn synthetic_svsm() -> Vec<(String, FwImage)> {
    let sections = vec![
        (0x80_0000, 0x3000, fwgen::SEC_MEM),
        (0x80_3000, 0x1000, fwgen::SECRETS),
        (0x80_4000, 0x1000, fwgen::CPUID),
        (0x80_5000, 0x1000, fwgen::SVSM_CAA),
    ];
    let mut no_info = svsm_like(31, 0x1000, sections.clone());
    no_info.entries.retain(|e| e.0 != fwgen::SVSM_INFO);
    vec![
        ("svsm".into(), svsm_like(30, 0x1000, sections.clone())),
        ("svsm-entry-high".into(), svsm_like(32, 0x1f000, sections)),
        ("svsm-without-info".into(), no_info),
    ]
}

const VCPU_COUNTS: [u32; 18] = [
    1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255, 288,
];
const VMMS: [&str; 3] = ["QEMU", "ec2", "gce"];

fn all_vcpu_types() -> Vec<&'static str> {
    snp_measure::cpu::VCPU_TYPES.iter().map(|t| t.0).collect()
}

fn matrix(inp: &Inputs) -> Vec<Case> {
    let mut cases = Vec::new();
    let types = all_vcpu_types();
    let real = [("ours", &inp.ours), ("debian", &inp.debian)];

    // vCPU counts, 1 to 288, odd ones included, rotating through vCPU types.
    for (fname, fw) in real {
        for mode in ["snp", "seves"] {
            for (i, n) in VCPU_COUNTS.iter().enumerate() {
                cases.push(Case {
                    label: format!("{fname} {mode} vcpus={n}"),
                    mode,
                    ovmf: fw.to_path_buf(),
                    vcpus: Some(*n),
                    cpu: Cpu::Type(types[i % types.len()]),
                    ..Default::default()
                });
            }
        }
    }
    // Every mode x VMM x kernel/initrd/cmdline combination.
    for (fname, fw) in real {
        for mode in ["sev", "seves", "snp", "snp:ovmf-hash"] {
            for vmm in VMMS {
                for k in 0..KERNEL_COMBOS {
                    let c = Case {
                        label: format!("{fname} {mode} {vmm}"),
                        mode,
                        ovmf: fw.to_path_buf(),
                        vcpus: Some(4),
                        cpu: Cpu::Type("EPYC-Genoa"),
                        vmm,
                        ..Default::default()
                    };
                    cases.push(inp.with_kernel(c, k));
                }
            }
        }
    }
    // Every vCPU type name, and the signature and family/model/stepping forms.
    let mut cpus: Vec<Cpu> = types.iter().map(|t| Cpu::Type(t)).collect();
    cpus.extend([Cpu::Sig(0x00a0_0f11), Cpu::Sig(0x00b1_0f21), Cpu::Sig(0x1)]);
    cpus.extend([
        Cpu::Fms(25, 1, 1),
        Cpu::Fms(26, 17, 0),
        Cpu::Fms(15, 255, 31),
        Cpu::Fms(0x10f, 0x3f, 2),
    ]);
    for cpu in cpus {
        for mode in ["snp", "seves"] {
            cases.push(Case {
                label: format!("ours {mode} cpu={cpu:?}"),
                mode,
                ovmf: inp.ours.clone(),
                vcpus: Some(2),
                cpu: cpu.clone(),
                ..Default::default()
            });
        }
    }
    // EC2 and GCE need no vCPU signature.
    for vmm in ["ec2", "gce"] {
        for mode in ["snp", "seves"] {
            cases.push(Case {
                label: format!("ours {mode} {vmm} no cpu"),
                mode,
                ovmf: inp.ours.clone(),
                vcpus: Some(3),
                vmm,
                ..Default::default()
            });
        }
    }
    // Guest features.
    for g in [
        0x0u64,
        0x1,
        0x5,
        0x21,
        0x3f,
        0x40_0001,
        0x1_0000_0001,
        u64::MAX,
    ] {
        for n in [2, 5] {
            cases.push(inp.with_kernel(
                Case {
                    label: format!("ours snp guest-features={g:#x} vcpus={n}"),
                    mode: "snp",
                    ovmf: inp.ours.clone(),
                    vcpus: Some(n),
                    cpu: Cpu::Type("EPYC-Milan"),
                    guest_features: Some(g),
                    ..Default::default()
                },
                3,
            ));
        }
    }
    // A precomputed firmware hash, right and wrong.
    let seed = ovmf_hash(&inp.ours);
    for (name, h) in [("right", seed), ("other", "ab".repeat(48))] {
        for vmm in VMMS {
            cases.push(inp.with_kernel(
                Case {
                    label: format!("ours snp ovmf-hash={name} {vmm}"),
                    mode: "snp",
                    ovmf: inp.ours.clone(),
                    vcpus: Some(2),
                    cpu: Cpu::Type("EPYC-Turin"),
                    vmm,
                    snp_ovmf_hash: Some(h.clone()),
                    ..Default::default()
                },
                2,
            ));
        }
    }
    // Synthetic images: every mode, with and without a kernel, every VMM.
    for (fname, fw) in &inp.synthetic {
        for mode in ["sev", "seves", "snp", "snp:ovmf-hash"] {
            for vmm in VMMS {
                for k in [0, 3] {
                    let c = Case {
                        label: format!("synthetic {fname} {mode} {vmm}"),
                        mode,
                        ovmf: fw.clone(),
                        vcpus: Some(3),
                        cpu: Cpu::Type("EPYC-Milan-v2"),
                        vmm,
                        ..Default::default()
                    };
                    cases.push(inp.with_kernel(c, k));
                }
            }
        }
        cases.push(Case {
            label: format!("synthetic {fname} snp vcpus=1"),
            mode: "snp",
            ovmf: fw.clone(),
            vcpus: Some(1),
            cpu: Cpu::Type("EPYC"),
            ..Default::default()
        });
    }
    // SVSM below OVMF, with different OVMF_VARS sizes.
    for (sname, svsm) in &inp.svsm {
        for (fname, fw) in real {
            for vars in [0x2_0000u64, 0x8_4000, 540_672] {
                for n in [1, 2, 5, 16] {
                    cases.push(Case {
                        label: format!("svsm {sname} on {fname} vars={vars:#x} vcpus={n}"),
                        mode: "snp:svsm",
                        ovmf: fw.to_path_buf(),
                        vcpus: Some(n),
                        cpu: Cpu::Type("EPYC-Genoa"),
                        svsm: Some(svsm.clone()),
                        vars_size: Some(vars),
                        ..Default::default()
                    });
                }
            }
        }
    }
    cases
}

fn ovmf_hash(fw: &Path) -> String {
    let r = support::run(
        &support::our_cli(),
        &["ovmf-hash".into(), "--ovmf".into(), s(fw)],
        Path::new("."),
    );
    assert_eq!(r.code, Some(0), "ovmf-hash failed: {}", r.stderr);
    r.stdout.trim().to_owned()
}

/// Runs the reference library over all cases in one process.
fn reference_results(cases: &[Case]) -> Vec<Value> {
    let input = Value::Array(cases.iter().map(Case::to_json).collect()).to_string();
    let script = support::root().join("measurements/tests/reference/matrix.py");
    let mut child = Command::new(support::reference_python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the reference: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing cases: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("running the reference: {e}"));
    assert!(
        out.status.success(),
        "reference harness failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("reference output: {e}"));
    v.as_array().cloned().unwrap_or_default()
}

/// Outcomes that follow from how each synthetic image was built (true: a digest).
const EXPECTED_OUTCOMES: &[(&str, bool)] = &[
    (
        "synthetic amdsev-all-sections snp QEMU kernel-combo=3",
        true,
    ),
    ("synthetic amdsev-all-sections snp ec2 kernel-combo=3", true),
    ("synthetic amdsev-all-sections snp gce kernel-combo=0", true),
    (
        "synthetic amdsev-all-sections seves QEMU kernel-combo=3",
        true,
    ),
    ("synthetic hash-at-page-edge snp QEMU kernel-combo=3", true),
    (
        "synthetic hash-past-page-edge snp QEMU kernel-combo=3",
        false,
    ),
    (
        "synthetic hash-past-page-edge snp QEMU kernel-combo=0",
        true,
    ),
    ("synthetic hash-gpa-zero snp QEMU kernel-combo=3", true),
    ("synthetic hash-gpa-zero seves QEMU kernel-combo=3", false),
    (
        "synthetic no-kernel-hashes-section snp QEMU kernel-combo=3",
        false,
    ),
    (
        "synthetic no-kernel-hashes-section snp QEMU kernel-combo=0",
        true,
    ),
    ("synthetic ap-eip-zero snp vcpus=1", true),
    ("synthetic ap-eip-zero snp QEMU kernel-combo=0", false),
    ("synthetic ap-eip-high snp QEMU kernel-combo=3", true),
    (
        "synthetic kernel-hashes-2-pages snp QEMU kernel-combo=0",
        true,
    ),
    (
        "synthetic kernel-hashes-2-pages snp QEMU kernel-combo=3",
        false,
    ),
    (
        "synthetic unknown-section-type snp QEMU kernel-combo=0",
        false,
    ),
    (
        "synthetic unknown-section-type sev QEMU kernel-combo=3",
        true,
    ),
    (
        "synthetic unknown-section-type seves QEMU kernel-combo=0",
        true,
    ),
    (
        "synthetic sec-mem-not-page-multiple snp QEMU kernel-combo=0",
        false,
    ),
    (
        "synthetic metadata-bad-signature sev QEMU kernel-combo=0",
        false,
    ),
    (
        "synthetic metadata-bad-version sev QEMU kernel-combo=0",
        false,
    ),
    (
        "synthetic entry-size-below-header sev QEMU kernel-combo=0",
        false,
    ),
    ("synthetic no-footer-table sev QEMU kernel-combo=0", true),
    (
        "synthetic no-footer-table snp:ovmf-hash QEMU kernel-combo=0",
        true,
    ),
    ("synthetic no-footer-table snp QEMU kernel-combo=0", false),
    ("synthetic no-footer-table sev QEMU kernel-combo=3", false),
    (
        "synthetic size-not-page-multiple sev QEMU kernel-combo=3",
        true,
    ),
    (
        "synthetic size-not-page-multiple snp QEMU kernel-combo=0",
        false,
    ),
    ("synthetic no-metadata snp QEMU kernel-combo=0", true),
    ("synthetic no-metadata snp QEMU kernel-combo=3", false),
    ("synthetic empty-metadata snp gce kernel-combo=0", true),
    ("svsm svsm on ours vars=0x20000 vcpus=5", true),
    ("svsm svsm-entry-high on debian vars=0x84000 vcpus=16", true),
    ("svsm svsm-without-info on ours vars=0x20000 vcpus=1", false),
];

#[test]
fn matrix_matches_reference_byte_for_byte() {
    let inp = Inputs::new();
    let cases = matrix(&inp);
    let reference = reference_results(&cases);
    assert_eq!(reference.len(), cases.len());

    let cwd = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (mut same, mut both_failed, mut failures) = (0usize, 0usize, Vec::new());
    let mut outcome = std::collections::BTreeMap::new();
    for (case, want) in cases.iter().zip(&reference) {
        let got = support::run(&support::our_cli(), &case.args(), cwd.path());
        outcome.insert(case.label.clone(), got.code == Some(0));
        match (want.get("digest").and_then(Value::as_str), got.code) {
            (Some(d), Some(0)) if d == got.stdout.trim() => same += 1,
            (None, Some(c)) if c != 0 => both_failed += 1,
            (w, _) => failures.push(format!(
                "{}\n    reference: {}\n    ours: exit {:?} {}{}",
                case.label,
                w.map(str::to_owned)
                    .unwrap_or_else(|| want["error"].to_string()),
                got.code,
                got.stdout.trim(),
                got.stderr.trim()
            )),
        }
    }
    eprintln!(
        "{} cases: {same} identical digests, {both_failed} refused by both, {} mismatches",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    // Each synthetic image must fail or succeed for the reason it was built for, so that
    // "refused by both" cannot hide a broken test image.
    for (label, ok) in EXPECTED_OUTCOMES {
        assert_eq!(outcome.get(*label), Some(ok), "outcome of '{label}'");
    }
    // Guard against a vacuous pass: most of the matrix must produce digests.
    assert!(same >= 520, "only {same} cases produced digests");
    assert!(
        both_failed >= 200,
        "only {both_failed} error cases exercised"
    );
}
