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
    },
    /// Write a local network of N nodes on the SIMULATED platform (development only).
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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run { config } => {
            let c = match Config::load(&config) {
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
                            _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); ExitCode::SUCCESS }
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
        Command::DevNetwork {
            nodes,
            dir,
            base_port,
            rsa_bits,
        } => match keynode::devnet::create(nodes, &dir, base_port, rsa_bits) {
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
