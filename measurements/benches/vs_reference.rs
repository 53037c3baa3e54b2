//! `snp-measure` against the Python reference `sev-snp-measure` 0.0.13, side by side.
//!
//! For every case both tools run as whole processes with identical flags, and this bench
//! reports, per tool:
//!
//! - wall time of the process (median and minimum over `--runs` runs), from spawn to exit,
//!   so interpreter start-up and imports count for the reference just as they would for a
//!   caller of either tool;
//! - peak resident memory (`ru_maxrss`, the maximum over the runs).
//!
//! Cases: SEV-SNP launches of our firmware (`out/ovmf/OVMF.fd`, or `--ovmf PATH`) with 1,
//! 16 and 128 vCPUs; the same firmware with a 16 MiB kernel, a 128 MiB initrd and a command
//! line; and a series over initrd sizes from 16 to 256 MiB, which shows whether peak memory
//! stays flat as inputs grow. Kernel and initrd are deterministic pseudo-random files,
//! generated once under `out/bench/` and reused while their sizes are right.
//!
//! Before timing a case, each tool runs once unmeasured (which also warms the page cache)
//! and both digests must agree: the bench aborts otherwise, since comparing the speed of
//! different answers would be worthless. Measured runs alternate between the tools so that
//! drift in machine load affects both alike.
//!
//! Peak memory of one process without `unsafe`: the bench re-executes itself as a wrapper
//! (hidden first argument `__measure-one -- CMD ARGS...`) that spawns the command, waits for
//! it, and reads `getrusage(RUSAGE_CHILDREN)`. The command is the wrapper's only child, so
//! `ru_maxrss` (KiB on Linux) is that command's peak. The wrapper also times spawn..exit
//! itself, so its own start-up is not counted, and reports one JSON line on stdout. Linux
//! counts the wrapper's small resident set at the moment of `exec` towards the child, so a
//! figure of a few MiB is a floor, not a measurement.
//!
//! The bench builds `snp-measure` with `cargo build --release` first, so the numbers are
//! those of the optimised binary. Usage:
//!
//! ```text
//! cargo bench -p snp-measure --bench vs_reference -- [--runs N] [--json] [--ovmf PATH]
//! ```
//!
//! The kernel cases need a firmware with measured direct boot (the AmdSev build at
//! `out/ovmf/OVMF.fd`); both tools refuse `--kernel` with a generic OVMF such as Debian's.

use std::ffi::OsString;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};

/// Hidden first argument that turns this binary into the measuring wrapper.
const MEASURE_ONE: &str = "__measure-one";
const MIB: u64 = 1024 * 1024;
const KERNEL_MIB: u64 = 16;
const INITRD_MIB: u64 = 128;
const FLATNESS_INITRD_MIB: [u64; 4] = [16, 64, 128, 256];
const APPEND: &str = "console=ttyS0";

fn main() -> Result<()> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == MEASURE_ONE) {
        return measure_one(&args[1..]);
    }
    let options = Options::parse(&args)?;
    let root = workspace_root()?;
    let ovmf = options
        .ovmf
        .clone()
        .unwrap_or_else(|| root.join("out/ovmf/OVMF.fd"));
    ensure!(
        ovmf.is_file(),
        "firmware {} not found (build it, or pass --ovmf PATH)",
        ovmf.display()
    );
    let tools = Tools::locate(&root)?;
    let inputs = Inputs::prepare(&root.join("out/bench"))?;

    let cases = cases(&ovmf, &inputs);
    let mut results = Vec::with_capacity(cases.len());
    for case in &cases {
        eprintln!("bench: {} ...", case.label());
        results.push(run_case(&tools, case, options.runs)?);
    }

    let report = Report {
        runs: options.runs,
        firmware: ovmf.display().to_string(),
        ours: tools.ours.display().to_string(),
        reference: tools.reference.display().to_string(),
        reference_version: tools.reference_version.clone(),
        cases: results,
    };
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// The bench's own flags. Anything else (cargo passes `--bench`) is ignored.
struct Options {
    runs: usize,
    json: bool,
    ovmf: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut options = Options {
            runs: 5,
            json: false,
            ovmf: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .with_context(|| format!("{flag} needs a value"))
                    .cloned()
            };
            match arg.to_str() {
                Some("--runs") => {
                    let v = value("--runs")?;
                    options.runs = v
                        .to_str()
                        .and_then(|s| s.parse().ok())
                        .filter(|&n| n > 0)
                        .with_context(|| format!("--runs: {v:?} is not a positive integer"))?;
                }
                Some("--json") => options.json = true,
                Some("--ovmf") => options.ovmf = Some(PathBuf::from(value("--ovmf")?)),
                Some("--bench") => {}
                _ => eprintln!("bench: ignoring argument {arg:?}"),
            }
        }
        Ok(options)
    }
}

fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .context("crate directory has no parent")?;
    Ok(root.to_path_buf())
}

// ---------------------------------------------------------------------------------------
// The two tools
// ---------------------------------------------------------------------------------------

struct Tools {
    ours: PathBuf,
    reference: PathBuf,
    reference_version: String,
}

impl Tools {
    fn locate(root: &Path) -> Result<Self> {
        let reference = root.join("out/ref-venv/bin/sev-snp-measure");
        ensure!(
            reference.is_file(),
            "reference tool {} not found: run measurements/tests/reference/setup.sh",
            reference.display()
        );
        let reference_version = version_of(&reference)?;
        ensure!(
            reference_version == "sev-snp-measure 0.0.13",
            "reference tool reports '{reference_version}', expected 'sev-snp-measure 0.0.13'"
        );
        Ok(Tools {
            ours: build_release_binary(root)?,
            reference,
            reference_version,
        })
    }
}

/// Builds `snp-measure` with the release profile and returns the path cargo reports.
fn build_release_binary(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p snp-measure --bin snp-measure");
    let mut command = Command::new(&cargo);
    // `cargo bench` describes this package in CARGO_MANIFEST_DIR & co.; build scripts that
    // watch those (ring's) would see them change and rebuild on every run.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| {
            k.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "OUT_DIR",
                ]
                .contains(&k)
        }) {
            command.env_remove(&key);
        }
    }
    let output = command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "snp-measure",
            "--bin",
            "snp-measure",
        ])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo:?}"))?;
    ensure!(
        output.status.success(),
        "cargo build --release failed ({})",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let executable = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| {
            msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "snp-measure"
        })
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from));
    executable.context("cargo build did not report the snp-measure executable")
}

fn version_of(tool: &Path) -> Result<String> {
    let output = Command::new(tool)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    ensure!(
        output.status.success(),
        "{} --version failed ({})",
        tool.display(),
        output.status
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

// ---------------------------------------------------------------------------------------
// Input files
// ---------------------------------------------------------------------------------------

/// The generated kernel and initrds, all in one directory.
struct Inputs {
    dir: PathBuf,
}

impl Inputs {
    fn prepare(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let inputs = Inputs {
            dir: dir.to_path_buf(),
        };
        ensure_random_file(&inputs.kernel(), KERNEL_MIB * MIB, 0x6b65_726e_656c)?;
        let mut sizes = FLATNESS_INITRD_MIB.to_vec();
        sizes.push(INITRD_MIB);
        sizes.sort_unstable();
        sizes.dedup();
        for mib in sizes {
            ensure_random_file(&inputs.initrd(mib), mib * MIB, 0x696e_6974_7264 ^ mib)?;
        }
        Ok(inputs)
    }

    fn kernel(&self) -> PathBuf {
        self.dir.join(format!("kernel-{KERNEL_MIB}MiB.bin"))
    }

    fn initrd(&self, mib: u64) -> PathBuf {
        self.dir.join(format!("initrd-{mib}MiB.bin"))
    }
}

/// Writes `len` bytes of xorshift64* output seeded with `seed` to `path`, unless a file of
/// that length is already there. Written to a temporary file and renamed, so an interrupted
/// bench never leaves a short file that a later one would reject or, worse, reuse.
fn ensure_random_file(path: &Path, len: u64, seed: u64) -> Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == len) {
        return Ok(());
    }
    eprintln!("bench: generating {} ({} MiB)", path.display(), len / MIB);
    let dir = path.parent().context("input file has no directory")?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut out = BufWriter::with_capacity(MIB as usize, tmp.as_file());
    let mut state = seed | 1;
    for _ in 0..len / 8 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.write_all(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes())?;
    }
    out.flush()?;
    drop(out);
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

struct Case {
    /// Heading the case is listed under.
    group: String,
    name: String,
    /// Flags given to both tools, identically.
    args: Vec<OsString>,
}

fn cases(ovmf: &Path, inputs: &Inputs) -> Vec<Case> {
    let mut cases: Vec<Case> = [1, 16, 128]
        .into_iter()
        .map(|vcpus| Case {
            group: "firmware only: snp, EPYC-Milan".to_owned(),
            name: format!("{vcpus} vCPU"),
            args: launch_args("snp", vcpus, ovmf),
        })
        .collect();
    let with_kernel = |group: String, initrd_mib| {
        let mut args = launch_args("snp", 4, ovmf);
        args.extend([
            "--kernel".into(),
            inputs.kernel().into(),
            "--initrd".into(),
            inputs.initrd(initrd_mib).into(),
            "--append".into(),
            APPEND.into(),
        ]);
        Case {
            group,
            name: format!("kernel {KERNEL_MIB}M, initrd {initrd_mib}M"),
            args,
        }
    };
    cases.push(with_kernel(
        "kernel + initrd + append: snp, 4 vCPU, EPYC-Milan".to_owned(),
        INITRD_MIB,
    ));
    for mib in FLATNESS_INITRD_MIB {
        cases.push(with_kernel(
            "memory flatness: as above, initrd sizes".to_owned(),
            mib,
        ));
    }
    cases
}

impl Case {
    fn label(&self) -> String {
        format!("{} / {}", self.group, self.name)
    }
}

fn launch_args(mode: &str, vcpus: u32, ovmf: &Path) -> Vec<OsString> {
    vec![
        "--mode".into(),
        mode.into(),
        "--vcpus".into(),
        vcpus.to_string().into(),
        "--vcpu-type".into(),
        "EPYC-Milan".into(),
        "--ovmf".into(),
        ovmf.into(),
    ]
}

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Report {
    runs: usize,
    firmware: String,
    ours: String,
    reference: String,
    reference_version: String,
    cases: Vec<CaseResult>,
}

#[derive(Serialize)]
struct CaseResult {
    group: String,
    name: String,
    args: Vec<String>,
    digest: String,
    ours: Stats,
    reference: Stats,
    /// Reference median time over ours.
    speedup: f64,
    /// Reference peak RSS over ours.
    peak_rss_ratio: f64,
}

#[derive(Serialize)]
struct Stats {
    median_ms: f64,
    min_ms: f64,
    peak_rss_kib: i64,
    samples_ms: Vec<f64>,
}

/// What the wrapper reports about one run of one command.
#[derive(Serialize, Deserialize)]
struct Sample {
    wall_ms: f64,
    max_rss_kib: i64,
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

fn run_case(tools: &Tools, case: &Case, runs: usize) -> Result<CaseResult> {
    let digest = check_agreement(tools, case)?;
    let mut ours = Vec::with_capacity(runs);
    let mut reference = Vec::with_capacity(runs);
    for _ in 0..runs {
        ours.push(run_checked(&tools.ours, case, &digest)?);
        reference.push(run_checked(&tools.reference, case, &digest)?);
    }
    let ours = Stats::of(&ours);
    let reference = Stats::of(&reference);
    Ok(CaseResult {
        group: case.group.clone(),
        name: case.name.clone(),
        args: case
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        digest,
        speedup: reference.median_ms / ours.median_ms,
        peak_rss_ratio: reference.peak_rss_kib as f64 / ours.peak_rss_kib as f64,
        ours,
        reference,
    })
}

/// Runs both tools once, unmeasured, and returns the digest they agree on.
fn check_agreement(tools: &Tools, case: &Case) -> Result<String> {
    let ours = run_successful(&tools.ours, case)?;
    let reference = run_successful(&tools.reference, case)?;
    let (a, b) = (ours.stdout.trim(), reference.stdout.trim());
    ensure!(
        a == b,
        "case '{}': the tools disagree, aborting the bench\n  {}: {a}\n  {}: {b}",
        case.label(),
        tools.ours.display(),
        tools.reference.display()
    );
    Ok(a.to_owned())
}

fn run_checked(tool: &Path, case: &Case, digest: &str) -> Result<Sample> {
    let sample = run_successful(tool, case)?;
    ensure!(
        sample.stdout.trim() == digest,
        "case '{}': {} printed {} on a later run, not {digest}",
        case.label(),
        tool.display(),
        sample.stdout.trim()
    );
    Ok(sample)
}

fn run_successful(tool: &Path, case: &Case) -> Result<Sample> {
    let sample = measure_via_wrapper(tool, &case.args)?;
    if !sample.success {
        bail!(
            "case '{}': {} failed ({}):\n{}",
            case.label(),
            tool.display(),
            sample.status,
            sample.stderr.trim_end()
        );
    }
    Ok(sample)
}

/// Runs `tool args` under this binary as wrapper and returns what the wrapper measured.
fn measure_via_wrapper(tool: &Path, args: &[OsString]) -> Result<Sample> {
    let me = std::env::current_exe().context("cannot locate the bench executable")?;
    let output = Command::new(&me)
        .arg(MEASURE_ONE)
        .arg("--")
        .arg(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", me.display()))?;
    ensure!(
        output.status.success(),
        "measuring wrapper failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end()
    );
    serde_json::from_slice(&output.stdout).context("measuring wrapper printed no valid report")
}

impl Stats {
    fn of(samples: &[Sample]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|s| s.wall_ms).collect();
        ms.sort_by(f64::total_cmp);
        let mid = ms.len() / 2;
        let median_ms = match ms.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => ms[mid],
            _ => (ms[mid - 1] + ms[mid]) / 2.0,
        };
        Stats {
            median_ms,
            min_ms: ms.first().copied().unwrap_or(f64::NAN),
            peak_rss_kib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0),
            samples_ms: samples.iter().map(|s| s.wall_ms).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The wrapper (runs in its own process)
// ---------------------------------------------------------------------------------------

/// `__measure-one -- CMD ARGS...`: runs CMD as the only child of this process and prints a
/// [`Sample`] as one JSON line.
fn measure_one(args: &[OsString]) -> Result<()> {
    let command = match args.split_first() {
        Some((sep, rest)) if sep == "--" => rest,
        _ => args,
    };
    let (program, program_args) = command
        .split_first()
        .context("usage: __measure-one -- CMD [ARGS...]")?;
    let start = Instant::now();
    let output = Command::new(program)
        .args(program_args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program:?}"))?;
    let wall = start.elapsed();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    let sample = Sample {
        wall_ms: wall.as_secs_f64() * 1e3,
        max_rss_kib: usage.max_rss(),
        success: output.status.success(),
        status: output.status.to_string(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    println!("{}", serde_json::to_string(&sample)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

fn print_table(report: &Report) {
    let ours = file_name(&report.ours);
    let reference = file_name(&report.reference);
    // Case names are indented by two under their group's heading.
    let name_width = report.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let column_width = name_width + 2;
    let tool_width = ours.len().max(reference.len());

    println!(
        "snp-measure vs {}: {} measured runs per tool and case, after one unmeasured run",
        report.reference_version, report.runs
    );
    println!("firmware: {}", report.firmware);
    println!();
    let header = format!(
        "{:<column_width$}  {:<tool_width$}  {:>10}  {:>10}  {:>13}",
        "case", "tool", "median ms", "min ms", "peak RSS MiB"
    );
    print_heading(&header);
    for_each_in_groups(&report.cases, |case| {
        for (tool, stats, name) in [
            (ours, &case.ours, case.name.as_str()),
            (reference, &case.reference, ""),
        ] {
            println!(
                "  {name:<name_width$}  {tool:<tool_width$}  {:>10.1}  {:>10.1}  {:>13.1}",
                stats.median_ms,
                stats.min_ms,
                stats.peak_rss_kib as f64 / 1024.0,
            );
        }
    });

    println!();
    let header = format!(
        "{:<column_width$}  {:>8}  {:>14}",
        "summary", "speedup", "peak RSS ratio"
    );
    print_heading(&header);
    for_each_in_groups(&report.cases, |case| {
        println!(
            "  {:<name_width$}  {:>7.1}x  {:>13.1}x",
            case.name, case.speedup, case.peak_rss_ratio,
        );
    });
    println!("(speedup: reference median / ours; peak RSS ratio: reference / ours)");
}

fn print_heading(header: &str) {
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
}

/// Calls `row` for each case, printing the group's heading before its first case.
fn for_each_in_groups(cases: &[CaseResult], mut row: impl FnMut(&CaseResult)) {
    let mut group = None;
    for case in cases {
        if group != Some(&case.group) {
            println!("{}", case.group);
            group = Some(&case.group);
        }
        row(case);
    }
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}
