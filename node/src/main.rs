//! `keynode`: a Keynet node.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keynode::config::Config;
use keynode::run::NoPlatform;

const EXIT_CODES: &str = "\
Exit codes:
  0  stopped cleanly
  1  runtime failure
  2  invalid configuration or arguments
  3  no SEV-SNP platform: the node refuses to serve";

#[derive(Parser)]
#[command(name = "keynode", version, about = "A Keynet node: attested TLS from inside an SEV-SNP guest", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Run {
        /// Configuration file (TOML; untrusted input, validated).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Refuse the simulated platform and simulated peer roots, whatever the
        /// configuration says (the guest image's init passes this).
        #[arg(long)]
        hardware_only: bool,
    },
    /// Print the network profile of a configuration: the hash of the rules the node runs
    /// under (registry authority, manifest, authorisation rules, limits, minimum TCB),
    /// bound into its evidence. Every node of a network must print the same; clients put it
    /// in their network file as `profile`.
    Profile {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON (`{"profile": HEX}`).
        #[arg(long)]
        json: bool,
    },
    /// Write a local network of N nodes on the SIMULATED platform (development only; in
    /// builds with the `simulated` feature).
    #[cfg(feature = "simulated")]
    DevNetwork {
        /// Number of nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// First port; node i listens on 127.0.0.1:(PORT+i).
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// RSA size of the simulated ARK/ASK (AMD uses 4096).
        #[arg(long, default_value_t = 4096)]
        rsa_bits: usize,
        /// Launch measurement the simulated platform reports (96 hex digits), e.g. the
        /// digest of a test image from `snp-measure`; the manifest allows exactly it.
        #[arg(long, value_name = "HEX", value_parser = parse_measurement)]
        measurement: Option<[u8; 48]>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // https://no-color.org: the guest's init sets it (its console is a serial log).
        .with_ansi(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .init();
    match Cli::parse().command {
        Command::Run {
            config,
            hardware_only,
        } => {
            let c = match Config::load(&config).and_then(|c| {
                if hardware_only {
                    c.require_hardware()?;
                }
                Ok(c)
            }) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("keynode: {e}");
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("keynode: {e}");
                    return ExitCode::from(1);
                }
            };
            rt.block_on(async {
                match keynode::run::start(c).await {
                    Ok(running) => {
                        tokio::select! {
                            r = running.task => match r {
                                Ok(Ok(())) => ExitCode::SUCCESS,
                                Ok(Err(e)) => { eprintln!("keynode: {e:#}"); ExitCode::from(1) }
                                Err(e) => { eprintln!("keynode: {e}"); ExitCode::from(1) }
                            },
                            reason = stop_signal() => { tracing::info!("stopping ({reason})"); ExitCode::SUCCESS }
                        }
                    }
                    Err(e) if e.downcast_ref::<NoPlatform>().is_some() => {
                        eprintln!("keynode: {e:#}");
                        ExitCode::from(3)
                    }
                    Err(e) => {
                        eprintln!("keynode: {e:#}");
                        ExitCode::from(1)
                    }
                }
            })
        }
        Command::Profile { config, json } => {
            let profile = Config::load(&config).and_then(|c| keynode::profile::of(&c));
            match profile {
                Ok(p) if json => {
                    println!("{}", serde_json::json!({ "profile": hex::encode(p) }));
                    ExitCode::SUCCESS
                }
                Ok(p) => {
                    println!("{}", hex::encode(p));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("keynode: {e}");
                    ExitCode::from(2)
                }
            }
        }
        #[cfg(feature = "simulated")]
        Command::DevNetwork {
            nodes,
            dir,
            base_port,
            rsa_bits,
            measurement,
        } => match keynode::devnet::create(nodes, &dir, base_port, rsa_bits, measurement) {
            Ok(net) => {
                println!(
                    "wrote a {nodes}-node dev network (SIMULATED platform) in {}",
                    dir.display()
                );
                println!("start each node:");
                for c in &net.configs {
                    println!("  keynode run --config {}", c.display());
                }
                println!("then check one:");
                println!(
                    "  keynet attest https://{} --manifest {} --trust-simulated {}",
                    net.endpoints
                        .first()
                        .map(String::as_str)
                        .unwrap_or("127.0.0.1:7001"),
                    net.manifest.display(),
                    net.ark_pem.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("keynode: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

/// Waits for SIGINT or SIGTERM (init and service managers stop with SIGTERM).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(feature = "simulated")]
fn parse_measurement(s: &str) -> Result<[u8; 48], String> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; 48]>::try_from(b).ok())
        .ok_or_else(|| "expected 96 hex digits".to_owned())
}
