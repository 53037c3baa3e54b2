//! `keynet`: the Keynet client.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::validate::{Manifest, Policy};
use attestation_verifier::verdict::Status;
use clap::{Parser, Subcommand};
use keynet::{AttestError, attest, trust_store};

mod commands;
mod conditional;

const EXIT_CODES: &str = "\
Exit codes:
  0  genuine / done
  1  rejected: the node is not genuine, or the network refused or failed the operation
     (the nodes to blame are named)
  2  unusable input (bad arguments or files, node unreachable)
  3  fewer nodes reachable, genuine and holding keys than the threshold";

#[derive(Parser)]
#[command(name = "keynet", version, about = "Keynet client", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a node: attestation during the TLS handshake, then fresh evidence bound to a
    /// nonce and to this session. A published measurement is required.
    #[command(after_help = EXIT_CODES)]
    Attest {
        /// https://HOST:PORT
        url: String,
        /// Published measurement manifest (keynet.measurements/v1).
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// Allowed measurement, 96 hex digits (repeatable).
        #[arg(long, value_name = "HEX")]
        measurement: Vec<String>,
        /// Trust a SIMULATED platform's roots (its ARK then ASK, PEM). Never for real use.
        #[arg(long, value_name = "FILE")]
        trust_simulated: Option<PathBuf>,
        /// Print the verdict as JSON (same check list shape as snp-verify --json).
        #[arg(long)]
        json: bool,
    },
    /// Every node of a network: verified or not, its DKG state and the group key it serves.
    #[command(after_help = EXIT_CODES)]
    Status(commands::StatusArgs),
    /// Sign a 32-byte digest with a derived key: verifies each node first, sends the
    /// request to a threshold of them, aggregates their shares (naming any node whose share
    /// is bad) and verifies the signature (RFC 9591 equation).
    #[command(after_help = EXIT_CODES)]
    Sign(commands::SignArgs),
    /// Derived keys ("programmable key pairs").
    #[command(subcommand)]
    Pkp(commands::PkpCommand),
    /// Encrypt a file (of any size, streamed) so that only a requester meeting the
    /// conditions can decrypt it. Offline with the network's BLS public key: the data key is
    /// IBE-encrypted to the hash of the conditions and of the file; the file goes through
    /// AES-256-GCM in authenticated chunks.
    #[command(after_help = EXIT_CODES)]
    Encrypt(conditional::EncryptArgs),
    /// Decrypt a file: verifies each node, asks a threshold of them for decryption shares
    /// (each checks the conditions for you at its own clock), verifies every share against
    /// that node's public share (naming bad nodes), combines and verifies the key, then
    /// decrypts. The output appears only once complete and matching the file's hash.
    #[command(after_help = EXIT_CODES)]
    Decrypt(conditional::DecryptArgs),
    /// Have the network sign a message (e.g. a JWT's signing input) by threshold BLS, under
    /// conditions every signing node checks for you. Signed bytes:
    /// "keynet/bls-sign/v1\n" || sha256-hash of the canonical conditions || message.
    #[command(name = "bls-sign", after_help = EXIT_CODES)]
    BlsSign(conditional::BlsSignArgs),
    /// Sign a statement (EIP-191) with a wallet key, for a requester to present to a
    /// `signed_by` condition; prints the JSON `--present` takes.
    #[command(after_help = EXIT_CODES)]
    Present(conditional::PresentArgs),
}

fn policy(manifest: &Option<PathBuf>, measurement: &[String]) -> Result<Policy, AttestError> {
    let u = |m: String| AttestError::Usage(m);
    let manifest = match manifest {
        Some(p) => Some(
            Manifest::parse(
                &std::fs::read(p).map_err(|e| u(format!("--manifest {}: {e}", p.display())))?,
            )
            .map_err(|e| u(format!("--manifest {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let measurements = measurement
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 48]>::try_from(b).ok())
                .ok_or_else(|| u(format!("--measurement {h}: expected 96 hex digits")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if manifest.is_none() && measurements.is_empty() {
        return Err(u(
            "give --manifest or --measurement: a node is only genuine if it runs a published image"
                .into(),
        ));
    }
    Ok(Policy {
        manifest,
        measurements,
        ..Policy::default()
    })
}

fn main() -> ExitCode {
    let (url, manifest, measurement, trust_simulated, json) = match Cli::parse().command {
        Command::Attest {
            url,
            manifest,
            measurement,
            trust_simulated,
            json,
        } => (url, manifest, measurement, trust_simulated, json),
        Command::Status(a) => return commands::status(a),
        Command::Sign(a) => return commands::sign(a),
        Command::Pkp(c) => return commands::pkp(c),
        Command::Encrypt(a) => return conditional::encrypt(a),
        Command::Decrypt(a) => return conditional::decrypt(a),
        Command::BlsSign(a) => return conditional::bls_sign(a),
        Command::Present(a) => return conditional::present_cmd(a),
    };
    let run = || -> Result<keynet::Attestation, AttestError> {
        let pem = match &trust_simulated {
            Some(p) => Some(std::fs::read(p).map_err(|e| {
                AttestError::Usage(format!("--trust-simulated {}: {e}", p.display()))
            })?),
            None => None,
        };
        let verifier = Arc::new(NodeVerifier::new(
            trust_store(pem.as_deref())?,
            policy(&manifest, &measurement)?,
        ));
        let rt =
            tokio::runtime::Runtime::new().map_err(|e| AttestError::Transport(e.to_string()))?;
        rt.block_on(attest(&url, verifier))
    };
    match run() {
        Ok(a) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&a).unwrap_or_default());
            } else {
                println!(
                    "{}  {url}{}",
                    if a.accepted { "GENUINE" } else { "REJECTED" },
                    if a.simulated {
                        "  (SIMULATED platform, not AMD hardware)"
                    } else {
                        ""
                    }
                );
                for c in &a.checks {
                    let s = match c.status {
                        Status::Pass => "pass",
                        Status::Fail => "FAIL",
                        _ => "skip",
                    };
                    if c.status != Status::Skipped || c.required {
                        println!("  {s:<5} {:<26} {}", c.check, c.detail);
                    }
                }
            }
            ExitCode::from(if a.accepted { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("keynet: {e}");
            ExitCode::from(2)
        }
    }
}
