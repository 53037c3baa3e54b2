//! `snp-measure`: compute SEV/SEV-ES/SEV-SNP launch measurements (a drop-in for
//! sev-snp-measure 0.0.13), the firmware seed hash, and SNP ID blocks.

mod args;
mod id_block;
mod inspect;
mod measure;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit codes, stated in `--help`.
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_IO: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::OvmfHash(a)) => measure::ovmf_hash(&a),
        Some(Command::IdBlock(a)) => id_block::run(&a),
        Some(Command::Inspect(a)) => inspect::run(&a),
        None => measure::run(&cli.measure),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Maps an error to its exit code: I/O problems, usage problems, or invalid input content.
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<snp_measure::Error>() {
            return match err {
                snp_measure::Error::Parameter { .. } => EXIT_USAGE,
                err if err.is_io() => EXIT_IO,
                _ => EXIT_INVALID,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return EXIT_IO;
        }
        if cause.downcast_ref::<args::UsageError>().is_some() {
            return EXIT_USAGE;
        }
    }
    EXIT_INVALID
}
