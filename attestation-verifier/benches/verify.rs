//! How fast `snp-verify` checks a real AMD SEV-SNP attestation report, against the floor
//! of what any verifier must do and against `snpguest` 0.11, in one run.
//!
//! For each case (real AMD vectors from `tests/data/snp/<case>/`; by default
//! `virtee-milan-v2`, a Milan v2 report, and `mstav-turin-v5`, a Turin v5 report), the
//! bench measures:
//!
//! 1. **floor**: bare ECDSA P-384/SHA-384 verifications of the report's own signature with
//!    `ring` (`ECDSA_P384_SHA384_FIXED`), the VCEK public key extracted once beforehand.
//!    Every verifier has to do at least this (SHA-384 of the 0x2a0 signed bytes, point
//!    decoding, one ECDSA verification) per report;
//! 2. **full**: [`verify_report`], nothing cached: parsing the VCEK, the three RSA-PSS
//!    chain signatures (ARK self-signed, ASK by ARK, VCEK by ASK), the report signature,
//!    TCB, chip ID and the default policy, plus building the [`Verdict`] with its JSON view
//!    of the report;
//! 3. **warm**: [`Verifier::verify`] called again and again with the same VCEK, so the
//!    chain checks come from its cache and each call costs the report signature, parsing
//!    and the verdict;
//! 4. **warm / floor**: time per warm verification over time per bare ECDSA verification
//!    (the issue's aim is within 2x); printed, never asserted;
//! 5. **snp-verify process**: wall time, spawn to exit, of the release binary
//!    `snp-verify report REPORT --vcek VCEK --at T` (median and minimum over `--runs`);
//! 6. **snpguest process**: the same for `snpguest verify certs DIR` and
//!    `snpguest verify attestation [-p PRODUCT] DIR REPORT`, separately and summed per
//!    run, DIR being `out/bench/snpguest/<case>/` with AMD's pinned ARK and ASK from
//!    `roots/<product>/` and the case's VCEK.
//!
//! Rows 1-3 run in this process on one thread. Each first runs for a short pilot (which
//! also warms caches) to pick an iteration count giving about 1.5 s per row, unless
//! `--iters N` fixes it. The iterations are then split into ten rounds, alternating
//! between the three rows, so that each round of a row runs right next to one of the
//! floor. Each row reports its mean over all iterations and over its fastest round (the
//! least disturbed by other load), and its ratio to the floor is the median over rounds of
//! (row's round / the floor's round of the same pass), which cancels slow drift in machine
//! load. Every iteration's result is checked: a verification that stops accepting aborts
//! the bench.
//!
//! Before any timing, every measured operation must accept the case: our verifier in
//! process and as a process (exit 0), and snpguest (exit 0 from both commands), since
//! timing a rejection would be worthless. If snpguest cannot be installed or does not
//! accept the case offline, the bench says so and still prints our numbers. Process runs
//! alternate between the tools, so drift in machine load affects both alike.
//!
//! The verification time T is the VCEK's notBefore plus one day (as in the vector tests),
//! inside every certificate's window; snpguest takes no verification time and checks no
//! validity window (it checks the signatures, TCB and chip ID).
//!
//! snpguest is installed, if missing, into `out/tools` by `benches/install-snpguest.sh`
//! (`cargo install --locked`, several minutes). The bench builds `snp-verify` with
//! `cargo build --release` first. Usage:
//!
//! ```text
//! cargo bench -p attestation-verifier --bench verify -- \
//!     [--case NAME]... [--iters N] [--runs N] [--json] [--no-snpguest]
//! ```
//!
//! `--case` may be repeated and replaces the default cases. Only timing is reported; no
//! speed is asserted.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use attestation_verifier::abi::Report;
use attestation_verifier::kds::Product;
use attestation_verifier::kds::offline::pem_or_der_certs;
use attestation_verifier::validate::Policy;
use attestation_verifier::verdict::{Status, Verdict};
use attestation_verifier::verify::cert::{AmdCert, PublicKey};
use attestation_verifier::verify::roots::TrustStore;
use attestation_verifier::verify::{Inputs, Vek, rfc3339};
use attestation_verifier::{Verifier, verify_report};
use base64::Engine as _;
use ring::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use serde::Serialize;

/// Cases run when no `--case` is given.
const DEFAULT_CASES: [&str; 2] = ["virtee-milan-v2", "mstav-turin-v5"];
/// Whole-process runs per command when no `--runs` is given.
const DEFAULT_RUNS: usize = 20;
/// Target duration of one in-process row when the iteration count is automatic.
const TARGET_ROW: Duration = Duration::from_millis(1500);
/// Duration of the pilot that picks the iteration count.
const PILOT: Duration = Duration::from_millis(200);
/// Rounds each in-process row is split into, alternating between the rows.
const ROUNDS: u64 = 10;
/// The issue's aim for warm-cache verification: within this factor of the floor.
const WARM_OVER_FLOOR_AIM: f64 = 2.0;
/// snpguest versions accepted (the installer pins `^0.11`).
const SNPGUEST_VERSION_PREFIX: &str = "snpguest 0.11.";

fn main() -> Result<()> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let options = Options::parse(&args)?;
    let root = workspace_root()?;

    let cases = options
        .cases
        .iter()
        .map(|name| Case::load(&root, name))
        .collect::<Result<Vec<_>>>()?;
    let snp_verify = build_snp_verify(&root)?;
    let snpguest = if options.no_snpguest {
        Err("not run (--no-snpguest)".to_owned())
    } else {
        install_snpguest(&root)
    };

    let mut results = Vec::with_capacity(cases.len());
    for case in &cases {
        eprintln!("bench: case {} ...", case.name);
        results.push(run_case(&root, case, &options, &snp_verify, &snpguest)?);
    }

    let document = Document {
        iterations: options
            .iters
            .map_or_else(|| "auto (~1.5 s per row)".to_owned(), |n| n.to_string()),
        process_runs: options.runs,
        snp_verify: snp_verify.display().to_string(),
        snpguest: match &snpguest {
            Ok(tool) => Some(tool.version.clone()),
            Err(_) => None,
        },
        snpguest_unavailable: snpguest.as_ref().err().cloned(),
        warm_over_floor_aim: WARM_OVER_FLOOR_AIM,
        cases: results,
    };
    if options.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", table(&document));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// The bench's own flags. `--bench`, which cargo passes, is ignored.
struct Options {
    cases: Vec<String>,
    iters: Option<u64>,
    runs: usize,
    json: bool,
    no_snpguest: bool,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut options = Options {
            cases: Vec::new(),
            iters: None,
            runs: DEFAULT_RUNS,
            json: false,
            no_snpguest: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| -> Result<String> {
                let v = it.next().with_context(|| format!("{flag} needs a value"))?;
                v.to_str()
                    .map(str::to_owned)
                    .with_context(|| format!("{flag}: {v:?} is not UTF-8"))
            };
            match arg.to_str() {
                Some("--case") => options.cases.push(value("--case")?),
                Some("--iters") => {
                    let v = value("--iters")?;
                    options.iters =
                        Some(v.parse().ok().filter(|&n: &u64| n > 0).with_context(|| {
                            format!("--iters: {v:?} is not a positive integer")
                        })?);
                }
                Some("--runs") => {
                    let v = value("--runs")?;
                    options.runs = v
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .with_context(|| format!("--runs: {v:?} is not a positive integer"))?;
                }
                Some("--json") => options.json = true,
                Some("--no-snpguest") => options.no_snpguest = true,
                Some("--bench") => {}
                _ => eprintln!("bench: ignoring argument {arg:?}"),
            }
        }
        if options.cases.is_empty() {
            options.cases = DEFAULT_CASES.iter().map(|c| (*c).to_owned()).collect();
        }
        Ok(options)
    }
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("crate directory has no parent")
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

/// One real vector, loaded and checked to be one our verifier accepts.
struct Case {
    name: String,
    report_path: PathBuf,
    report: Report,
    vcek_path: PathBuf,
    vcek_der: Vec<u8>,
    product: Product,
    /// Verification time, Unix seconds: VCEK notBefore + 1 day.
    at: i64,
}

impl Case {
    fn load(root: &Path, name: &str) -> Result<Case> {
        let dir = root.join("attestation-verifier/tests/data/snp").join(name);
        ensure!(
            dir.is_dir(),
            "case {name}: {} not found (cases are the directories of tests/data/snp)",
            dir.display()
        );
        let expected_path = dir.join("expected.json");
        let expected: serde_json::Value = serde_json::from_slice(
            &fs::read(&expected_path)
                .with_context(|| format!("cannot read {}", expected_path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", expected_path.display()))?;
        ensure!(
            expected["expected_verdict"] == "ACCEPT" && expected["parse_only"] != true,
            "case {name}: expected verdict is not ACCEPT (or the case is parse-only): \
             nothing to benchmark"
        );
        let product_name = expected["product"]
            .as_str()
            .with_context(|| format!("{}: no \"product\"", expected_path.display()))?;
        let product = Product::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(product_name))
            .with_context(|| format!("case {name}: unknown product {product_name:?}"))?;
        let not_before = expected["vcek"]["validity"][0].as_str().with_context(|| {
            format!(
                "case {name}: {} has no vcek.validity (VLEK cases are not supported)",
                expected_path.display()
            )
        })?;
        let not_before =
            time::OffsetDateTime::parse(not_before, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("case {name}: bad VCEK notBefore {not_before:?}"))?
                .unix_timestamp();

        let vcek_path = ["vcek.der", "vcek.pem"]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .with_context(|| format!("case {name}: no vcek.der or vcek.pem"))?;
        let vcek_der = pem_or_der_certs(
            &fs::read(&vcek_path)
                .with_context(|| format!("cannot read {}", vcek_path.display()))?,
        )
        .with_context(|| format!("{}: not a certificate", vcek_path.display()))?
        .into_iter()
        .next()
        .with_context(|| format!("{}: no certificate", vcek_path.display()))?;

        let report_path = dir.join("report.bin");
        let report_bytes = fs::read(&report_path)
            .with_context(|| format!("cannot read {}", report_path.display()))?;
        let report = Report::parse(&report_bytes)
            .with_context(|| format!("{}: not a report", report_path.display()))?;
        Ok(Case {
            name: name.to_owned(),
            report_path,
            report,
            vcek_path,
            vcek_der,
            product,
            at: not_before + 86_400,
        })
    }

    /// The inputs `snp-verify report REPORT --vcek VCEK --at T` gives the library.
    fn inputs(&self) -> Inputs {
        Inputs {
            vek: Vek::Vcek(self.vcek_der.clone()),
            ark: None,
            intermediate: None,
            crl: None,
            at: self.at,
            product: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Document {
    /// In-process iteration count, or how it was chosen.
    iterations: String,
    process_runs: usize,
    snp_verify: String,
    /// `snpguest --version`, when installed.
    snpguest: Option<String>,
    /// Why snpguest was not measured at all.
    snpguest_unavailable: Option<String>,
    warm_over_floor_aim: f64,
    cases: Vec<CaseResult>,
}

#[derive(Serialize)]
struct CaseResult {
    case: String,
    product: String,
    report_version: u32,
    /// Verification time given to our verifier, RFC 3339.
    at: String,
    /// (1) bare ECDSA P-384/SHA-384 with ring.
    floor: Rate,
    /// (2) `verify_report`, nothing cached.
    full: Rate,
    /// (3) `Verifier::verify` with a warm chain cache.
    warm: Rate,
    /// (4) time per warm verification over time per bare ECDSA verification: the median
    /// over rounds of the ratio within each pass.
    warm_over_floor: f64,
    /// The same from the means over all iterations.
    warm_over_floor_mean: f64,
    /// Time per full verification over time per bare ECDSA verification, as
    /// `warm_over_floor`.
    full_over_floor: f64,
    /// (5) the `snp-verify` process.
    snp_verify: Process,
    /// (6) the `snpguest` processes.
    snpguest: Snpguest,
}

/// An in-process timing.
#[derive(Serialize)]
struct Rate {
    iters: u64,
    total_s: f64,
    /// Mean over all iterations.
    us_per_op: f64,
    /// Mean over the fastest round: the least disturbed by other load.
    best_us_per_op: f64,
    ops_per_s: f64,
    rounds_us_per_op: Vec<f64>,
}

/// Whole-process wall times of one command line.
#[derive(Serialize)]
struct Process {
    argv: Vec<String>,
    median_ms: f64,
    min_ms: f64,
    samples_ms: Vec<f64>,
}

#[derive(Serialize)]
struct Snpguest {
    /// `measured`, `rejected` (snpguest ran but did not accept the case) or `unavailable`.
    status: &'static str,
    /// Why it was not measured.
    reason: Option<String>,
    certs: Option<Process>,
    attestation: Option<Process>,
    /// Both commands, summed per run.
    pair: Option<Process>,
}

impl Snpguest {
    fn not_measured(status: &'static str, reason: String) -> Self {
        Snpguest {
            status,
            reason: Some(reason),
            certs: None,
            attestation: None,
            pair: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------

fn run_case(
    root: &Path,
    case: &Case,
    options: &Options,
    snp_verify: &Path,
    snpguest: &Result<SnpguestTool, String>,
) -> Result<CaseResult> {
    let trust = TrustStore::amd();
    let policy = Policy::default();
    let inputs = case.inputs();
    let report = &case.report;

    // (1) The floor: the report signature, key and signature decoded once.
    let vcek = AmdCert::parse("VCEK", &case.vcek_der)
        .with_context(|| format!("case {}: VCEK does not parse", case.name))?;
    let PublicKey::P384(point) = vcek.public_key else {
        bail!("case {}: the VCEK key is not P-384", case.name);
    };
    let mut signature = [0u8; 96];
    signature[..48].copy_from_slice(&report.signature_r[24..]);
    signature[48..].copy_from_slice(&report.signature_s[24..]);
    let signed = report.signed_bytes();
    let floor_op = || {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, black_box(point.as_slice()))
            .verify(black_box(signed), black_box(&signature))
            .is_ok()
    };
    ensure!(
        floor_op(),
        "case {}: ring does not verify the report signature with the VCEK key",
        case.name
    );

    // (2) and (3): both must accept before they are timed.
    let verdict = verify_report(report, &inputs, &policy, &trust)
        .with_context(|| format!("case {}: verify_report: unusable input", case.name))?;
    ensure_accepted(&case.name, &verdict)?;
    let verifier = Verifier::new(TrustStore::amd(), Policy::default());
    ensure_accepted(
        &case.name,
        &verifier
            .verify(report, &inputs)
            .with_context(|| format!("case {}: Verifier::verify: unusable input", case.name))?,
    )?;
    ensure!(
        verifier.cached_chains() == 1,
        "case {}: the verifier cached {} chains, expected 1",
        case.name,
        verifier.cached_chains()
    );

    eprintln!("bench:   (1)-(3) in process, {ROUNDS} interleaved rounds");
    let mut floor_op = floor_op;
    let mut full_op = || {
        verify_report(black_box(report), black_box(&inputs), &policy, &trust)
            .is_ok_and(|v| v.accepted)
    };
    let mut warm_op = || {
        verifier
            .verify(black_box(report), black_box(&inputs))
            .is_ok_and(|v| v.accepted)
    };
    let [floor, full, warm] = measure(
        options.iters,
        [
            ("floor", &mut floor_op),
            ("verify_report", &mut full_op),
            ("Verifier::verify", &mut warm_op),
        ],
    )?;

    // (5) and (6): whole processes.
    let ours = CommandLine::new(
        snp_verify,
        [
            OsString::from("report"),
            case.report_path.clone().into(),
            "--vcek".into(),
            case.vcek_path.clone().into(),
            "--at".into(),
            rfc3339(case.at).into(),
        ],
    );
    let out = ours.run_captured()?;
    ensure!(
        out.status.success(),
        "case {}: {} did not accept ({}):\n{}{}",
        case.name,
        ours.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let guest = match snpguest {
        Err(reason) => Err(("unavailable", reason.clone())),
        Ok(tool) => prepare_snpguest(root, case, tool),
    };
    eprintln!("bench:   (5)/(6) whole processes, {} runs", options.runs);
    let mut ours_ms = Vec::with_capacity(options.runs);
    let mut certs_ms = Vec::with_capacity(options.runs);
    let mut attestation_ms = Vec::with_capacity(options.runs);
    let mut pair_ms = Vec::with_capacity(options.runs);
    for _ in 0..options.runs {
        ours_ms.push(ours.time_successful()?);
        if let Ok([certs, attestation]) = &guest {
            let c = certs.time_successful()?;
            let a = attestation.time_successful()?;
            certs_ms.push(c);
            attestation_ms.push(a);
            pair_ms.push(c + a);
        }
    }
    let snpguest = match guest {
        Err((status, reason)) => Snpguest::not_measured(status, reason),
        Ok([certs, attestation]) => Snpguest {
            status: "measured",
            reason: None,
            pair: Some(Process::of(
                vec![format!("{} && {}", certs.display(), attestation.display())],
                pair_ms,
            )),
            certs: Some(Process::of(certs.argv(), certs_ms)),
            attestation: Some(Process::of(attestation.argv(), attestation_ms)),
        },
    };

    Ok(CaseResult {
        case: case.name.clone(),
        product: case.product.name().to_owned(),
        report_version: report.version,
        at: rfc3339(case.at),
        warm_over_floor: paired_ratio(&warm, &floor),
        warm_over_floor_mean: warm.us_per_op / floor.us_per_op,
        full_over_floor: paired_ratio(&full, &floor),
        floor,
        full,
        warm,
        snp_verify: Process::of(ours.argv(), ours_ms),
        snpguest,
    })
}

fn ensure_accepted(case: &str, verdict: &Verdict) -> Result<()> {
    if verdict.accepted {
        return Ok(());
    }
    let failures: Vec<String> = verdict
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail || (c.required && c.status != Status::Pass))
        .map(|c| format!("  {}: {}", c.check, c.detail))
        .collect();
    bail!(
        "case {case}: our verifier does not accept the case, nothing to benchmark:\n{}",
        failures.join("\n")
    )
}

/// Times several operations. For each, a pilot picks the iteration count (unless given)
/// and warms caches; then the iterations are split into [`ROUNDS`] rounds, and the rounds
/// of the operations alternate, so that drift in machine load affects all alike. Every
/// call must return true.
fn measure<const N: usize>(
    iters: Option<u64>,
    mut ops: [(&str, &mut dyn FnMut() -> bool); N],
) -> Result<[Rate; N]> {
    let mut counts = [0u64; N];
    for ((name, op), count) in ops.iter_mut().zip(&mut counts) {
        *count = match iters {
            Some(n) => {
                for _ in 0..n.min(10) {
                    ensure!(op(), "{name}: failed during warm-up");
                }
                n
            }
            None => {
                let start = Instant::now();
                let mut n: u64 = 0;
                while n < 3 || start.elapsed() < PILOT {
                    ensure!(op(), "{name}: failed during the pilot");
                    n += 1;
                }
                let per_op = start.elapsed().as_secs_f64() / n as f64;
                ((TARGET_ROW.as_secs_f64() / per_op).ceil() as u64).clamp(10, 100_000_000)
            }
        };
    }
    let mut rounds: [Vec<(u64, f64)>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..ROUNDS {
        for (i, (name, op)) in ops.iter_mut().enumerate() {
            // Spread `counts[i]` over the rounds; the first rounds take the remainder.
            let n = counts[i] / ROUNDS + u64::from(round < counts[i] % ROUNDS);
            if n == 0 {
                continue;
            }
            let mut failures: u64 = 0;
            let start = Instant::now();
            for _ in 0..n {
                if !black_box(op()) {
                    failures += 1;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            ensure!(
                failures == 0,
                "{name}: {failures} of {n} timed calls failed: the timing is void"
            );
            rounds[i].push((n, secs));
        }
    }
    Ok(rounds.map(|r| {
        let iters: u64 = r.iter().map(|(n, _)| n).sum();
        let total: f64 = r.iter().map(|(_, s)| s).sum();
        Rate {
            iters,
            total_s: total,
            us_per_op: total * 1e6 / iters as f64,
            best_us_per_op: r
                .iter()
                .map(|(n, s)| s * 1e6 / *n as f64)
                .fold(f64::INFINITY, f64::min),
            ops_per_s: iters as f64 / total,
            rounds_us_per_op: r.iter().map(|(n, s)| s * 1e6 / *n as f64).collect(),
        }
    }))
}

/// The median over rounds of `row`'s time per operation over `floor`'s in the same pass
/// (adjacent in time, so equally affected by slow changes in machine load).
fn paired_ratio(row: &Rate, floor: &Rate) -> f64 {
    let ratios: Vec<f64> = row
        .rounds_us_per_op
        .iter()
        .zip(&floor.rounds_us_per_op)
        .map(|(r, f)| r / f)
        .collect();
    median(ratios)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[mid],
        _ => (v[mid - 1] + v[mid]) / 2.0,
    }
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

struct CommandLine {
    program: PathBuf,
    args: Vec<OsString>,
}

impl CommandLine {
    fn new(program: &Path, args: impl IntoIterator<Item = OsString>) -> Self {
        CommandLine {
            program: program.to_path_buf(),
            args: args.into_iter().collect(),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args).stdin(Stdio::null());
        c
    }

    fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn display(&self) -> String {
        self.argv().join(" ")
    }

    fn run_captured(&self) -> Result<Output> {
        self.command()
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))
    }

    /// Wall time of one run, spawn to exit, in milliseconds; the run must exit 0. Output
    /// goes to /dev/null, so no pipe is read while timing.
    fn time_successful(&self) -> Result<f64> {
        let mut c = self.command();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let start = Instant::now();
        let status = c
            .status()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        ensure!(
            status.success(),
            "{} accepted once, then failed ({status})",
            self.display()
        );
        Ok(ms)
    }
}

impl Process {
    fn of(argv: Vec<String>, samples_ms: Vec<f64>) -> Self {
        Process {
            argv,
            median_ms: median(samples_ms.clone()),
            min_ms: samples_ms.iter().copied().fold(f64::NAN, f64::min),
            samples_ms,
        }
    }
}

/// Builds `snp-verify` with the release profile and returns the path cargo reports
/// (`target/release/snp-verify` unless the target directory is elsewhere).
///
/// The variables `cargo bench` sets for this process describe this package, not the
/// environment, and are removed: build scripts that watch one (ring's watches
/// `CARGO_MANIFEST_DIR`) would otherwise see it change between the outer `cargo bench` and
/// this build, and each would rebuild ring and everything above it for the other.
fn build_snp_verify(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release -p attestation-verifier --bin snp-verify");
    let mut command = Command::new(&cargo);
    for (key, _) in std::env::vars_os() {
        let is_package_var = key.to_str().is_some_and(|k| {
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
        });
        if is_package_var {
            command.env_remove(&key);
        }
    }
    let output = command
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "attestation-verifier",
            "--bin",
            "snp-verify",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo:?}"))?;
    ensure!(
        output.status.success(),
        "cargo build --release of snp-verify failed ({})",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "snp-verify")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build did not report the snp-verify executable")
}

// ---------------------------------------------------------------------------------------
// snpguest
// ---------------------------------------------------------------------------------------

struct SnpguestTool {
    path: PathBuf,
    version: String,
}

/// Runs `benches/install-snpguest.sh` (a no-op when `out/tools/bin/snpguest` is there) and
/// checks the version. An `Err` says why snpguest cannot be measured; it is not fatal.
fn install_snpguest(root: &Path) -> Result<SnpguestTool, String> {
    let tools = root.join("out/tools");
    let path = tools.join("bin/snpguest");
    let script = root.join("attestation-verifier/benches/install-snpguest.sh");
    if !path.is_file() {
        eprintln!(
            "bench: {} missing: installing snpguest 0.11 with {} (cargo install, takes minutes)",
            path.display(),
            script.display()
        );
    }
    // The script's output goes to stderr, keeping stdout for the table or JSON.
    let status = Command::new("bash")
        .arg(&script)
        .arg(&tools)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", script.display()));
    }
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !version.starts_with(SNPGUEST_VERSION_PREFIX) {
        return Err(format!(
            "{} --version says {version:?} ({}), expected {SNPGUEST_VERSION_PREFIX}x",
            path.display(),
            out.status
        ));
    }
    Ok(SnpguestTool { path, version })
}

/// Writes snpguest's certificate directory for `case` and checks that snpguest accepts the
/// case with it. Returns the two command lines to time, or the status (`unavailable` or
/// `rejected`) and reason why snpguest is not measured.
fn prepare_snpguest(
    root: &Path,
    case: &Case,
    tool: &SnpguestTool,
) -> Result<[CommandLine; 2], (&'static str, String)> {
    let unavailable = |reason: String| ("unavailable", reason);
    let dir = root.join("out/bench/snpguest").join(&case.name);
    write_cert_dir(root, case, &dir).map_err(|e| unavailable(format!("{e:#}")))?;

    let certs = CommandLine::new(
        &tool.path,
        [OsString::from("verify"), "certs".into(), dir.clone().into()],
    );
    let mut attestation_args: Vec<OsString> = vec!["verify".into(), "attestation".into()];
    // v2 reports carry no CPUID, so snpguest must be told the processor.
    if case.report.cpuid.is_none() {
        attestation_args.extend(["-p".into(), case.product.name().to_lowercase().into()]);
    }
    attestation_args.extend([dir.into(), case.report_path.clone().into()]);
    let attestation = CommandLine::new(&tool.path, attestation_args);

    for cl in [&certs, &attestation] {
        let out = cl
            .run_captured()
            .map_err(|e| unavailable(format!("{e:#}")))?;
        if !out.status.success() {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return Err((
                "rejected",
                format!(
                    "`{}` exited {} offline, so it cannot be timed on this case: {}",
                    cl.display(),
                    out.status,
                    said.trim().lines().last().unwrap_or("(no output)")
                ),
            ));
        }
    }
    Ok([certs, attestation])
}

/// `dir/{ark,ask,vcek}.pem`: the pinned ARK and ASK of the case's product, and its VCEK.
fn write_cert_dir(root: &Path, case: &Case, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let roots = root
        .join("attestation-verifier/roots")
        .join(case.product.name().to_lowercase());
    for name in ["ark.pem", "ask.pem"] {
        let from = roots.join(name);
        fs::copy(&from, dir.join(name))
            .with_context(|| format!("cannot copy {} to {}", from.display(), dir.display()))?;
    }
    // A stale vcek.der would be read as well; only the PEM is written.
    let stale = dir.join("vcek.der");
    if stale.exists() {
        fs::remove_file(&stale).with_context(|| format!("cannot remove {}", stale.display()))?;
    }
    let vcek = dir.join("vcek.pem");
    fs::write(&vcek, pem("CERTIFICATE", &case.vcek_der))
        .with_context(|| format!("cannot write {}", vcek.display()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

fn table(d: &Document) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "SEV-SNP report verification: ring floor, snp-verify, {}",
        d.snpguest.as_deref().unwrap_or("snpguest (not available)")
    );
    let _ = writeln!(
        w,
        "in-process iterations: {}, in {ROUNDS} rounds alternating between rows 1-3 \
         (best = fastest round; x floor = median of per-round ratios to the floor); \
         whole-process runs: {}, \
         alternating between tools (x ours compares medians)",
        d.iterations, d.process_runs
    );
    if let Some(why) = &d.snpguest_unavailable {
        let _ = writeln!(w, "snpguest NOT MEASURED: {why}");
    }
    for c in &d.cases {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "case {} ({}, report v{}, VCEK), verified at {}",
            c.case, c.product, c.report_version, c.at
        );
        let _ = writeln!(
            w,
            "  {:<46} {:>9} {:>10} {:>10} {:>10} {:>8}",
            "in process, one thread", "iters", "µs/op", "best µs/op", "ops/s", "x floor"
        );
        for (label, r, ratio) in [
            ("(1) floor: ring ECDSA P-384/SHA-384 only", &c.floor, 1.0),
            (
                "(2) verify_report: full, nothing cached",
                &c.full,
                c.full_over_floor,
            ),
            (
                "(3) Verifier::verify: warm chain cache",
                &c.warm,
                c.warm_over_floor,
            ),
        ] {
            let _ = writeln!(
                w,
                "  {:<46} {:>9} {:>10.1} {:>10.1} {:>10.0} {:>8.2}",
                label, r.iters, r.us_per_op, r.best_us_per_op, r.ops_per_s, ratio
            );
        }
        let _ = writeln!(
            w,
            "  {:<46} {:.2}x the floor ({:.2}x by means; aim: within {:.0}x: {})",
            "(4) warm cache / floor, per-round median",
            c.warm_over_floor,
            c.warm_over_floor_mean,
            WARM_OVER_FLOOR_AIM,
            if c.warm_over_floor <= WARM_OVER_FLOOR_AIM {
                "met"
            } else {
                "NOT met"
            }
        );
        let _ = writeln!(
            w,
            "  {:<46} {:>9} {:>10} {:>10} {:>10} {:>8}",
            "whole process, spawn to exit", "runs", "median ms", "min ms", "", "x ours"
        );
        let ours = c.snp_verify.median_ms;
        let mut row = |label: &str, p: &Process| {
            let _ = writeln!(
                w,
                "  {:<46} {:>9} {:>10.2} {:>10.2} {:>10} {:>8.2}",
                label,
                p.samples_ms.len(),
                p.median_ms,
                p.min_ms,
                "",
                p.median_ms / ours
            );
        };
        row("(5) snp-verify report --vcek --at", &c.snp_verify);
        match (&c.snpguest.certs, &c.snpguest.attestation, &c.snpguest.pair) {
            (Some(certs), Some(attestation), Some(pair)) => {
                row("(6) snpguest verify certs", certs);
                row("    snpguest verify attestation", attestation);
                row("    snpguest certs + attestation", pair);
            }
            _ => {
                let _ = writeln!(
                    w,
                    "  (6) snpguest NOT MEASURED ({}): {}",
                    c.snpguest.status,
                    c.snpguest.reason.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
        let _ = writeln!(w, "  commands:");
        let _ = writeln!(w, "    {}", c.snp_verify.argv.join(" "));
        for p in [&c.snpguest.certs, &c.snpguest.attestation]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(w, "    {}", p.argv.join(" "));
        }
    }
    s
}
