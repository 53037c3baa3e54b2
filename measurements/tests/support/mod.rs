//! Shared test support: locations of the real firmware and the reference tool, deterministic
//! input files, and a builder for synthetic firmware images that reach the sections and
//! corner cases the real images lack.
#![allow(dead_code)]

pub mod fwgen;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn must_exist(p: PathBuf, how: &str) -> PathBuf {
    assert!(p.exists(), "{} is missing: {how}", p.display());
    p
}

/// Our reproducibly built AmdSev firmware (`SNP_MEASURE_TEST_OVMF` may point elsewhere,
/// e.g. at a firmware built in another checkout).
pub fn our_ovmf() -> PathBuf {
    let p = std::env::var_os("SNP_MEASURE_TEST_OVMF")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("out/ovmf/OVMF.fd"));
    must_exist(p, "run `make ovmf` (make test does)")
}

/// Debian's generic OVMF (package `ovmf`).
pub fn debian_ovmf() -> PathBuf {
    must_exist(
        PathBuf::from("/usr/share/ovmf/OVMF.fd"),
        "run measurements/tests/reference/setup.sh (make test does)",
    )
}

fn venv_bin(name: &str) -> PathBuf {
    must_exist(
        root().join("out/ref-venv/bin").join(name),
        "run measurements/tests/reference/setup.sh (make test does)",
    )
}

/// sev-snp-measure 0.0.13's CLI.
pub fn reference_cli() -> PathBuf {
    venv_bin("sev-snp-measure")
}

/// snp-create-id-block from the same package.
pub fn reference_id_block_cli() -> PathBuf {
    venv_bin("snp-create-id-block")
}

/// The Python interpreter of the reference venv.
pub fn reference_python() -> PathBuf {
    venv_bin("python")
}

/// Our CLI, built by cargo for the integration tests.
pub fn our_cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_snp-measure"))
}

/// Deterministic pseudo-random bytes (xorshift64*), so inputs are not trivially uniform.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `data` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Err(e) = std::fs::write(&p, data) {
        panic!("writing {}: {e}", p.display());
    }
    p
}

/// Output of a command run to completion.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program with arguments in `cwd`.
pub fn run(prog: &Path, args: &[String], cwd: &Path) -> Run {
    let out = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
