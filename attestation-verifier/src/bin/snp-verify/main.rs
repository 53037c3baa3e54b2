//! `snp-verify`: check an AMD SEV-SNP attestation report, its VCEK/VLEK chain up to AMD's
//! pinned roots, and a policy; explain every check.

mod args;
mod inputs;
mod output;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Accepted.
const EXIT_ACCEPTED: u8 = 0;
/// Rejected: a check failed or a required check could not be made.
const EXIT_REJECTED: u8 = 1;
/// Unusable input: unreadable or unparsable files, bad options.
const EXIT_UNUSABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Report(a) => inputs::run_report(a),
        Command::Parse(a) => inputs::run_parse(a).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::from(EXIT_ACCEPTED),
        Ok(false) => ExitCode::from(EXIT_REJECTED),
        Err(e) => {
            eprintln!("snp-verify: unusable input: {e:#}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}
