//! `keynet-mkimage`: the Rust steps of the guest image build (see guest-image/build.sh).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use keynet_mkimage::compare::compare;
use keynet_mkimage::initrd::{self, Spec, write_atomic};
use keynet_mkimage::lock::Lock;
use keynet_mkimage::modules::parse_list;
use keynet_mkimage::record::{
    self, GUEST_FEATURES, Input, Launch, Record, SCHEMA, artifact, manifest_json,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  done (compare: every artifact and digest equal)
  1  compare: something differs from the published record
  2  bad arguments or input, or a build step failed";

/// The image files, in the order they are recorded.
const IMAGE_FILES: [&str; 4] = ["OVMF.fd", "vmlinuz", "initrd.img", "cmdline"];

#[derive(Parser)]
#[command(
    name = "keynet-mkimage",
    version,
    about = "Build steps of the reproducible Keynet guest image",
    long_about = "Build steps of the reproducible Keynet guest image: assemble the initramfs \
        (sorted newc cpio, mtime 0, owner 0:0, deterministic gzip), write the build record \
        image.json with the SNP launch digests of every published launch shape, and compare \
        a rebuild with the published record. Normally run by `make image` / `make reproduce`.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Assemble the initramfs.
    Initrd {
        /// The init binary (PID 1).
        #[arg(long, value_name = "FILE")]
        init: PathBuf,
        /// The statically linked keynode binary.
        #[arg(long, value_name = "FILE")]
        keynode: PathBuf,
        /// The kernel's `lib/modules/<release>` directory, with modules.dep.
        #[arg(long, value_name = "DIR")]
        modules_dir: PathBuf,
        /// Kernel release (`uname -r`).
        #[arg(long)]
        kernel_release: String,
        /// File listing the wanted modules, one per line.
        #[arg(long, value_name = "FILE")]
        modules_list: PathBuf,
        /// Output file (gzip-compressed newc cpio).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write the module load order (relative paths) here too.
        #[arg(long, value_name = "FILE")]
        order_out: Option<PathBuf>,
    },
    /// Write image.json and the measurement manifest for a built image directory.
    Record {
        /// Directory with OVMF.fd, vmlinuz, initrd.img, cmdline.
        #[arg(long, value_name = "DIR")]
        image_dir: PathBuf,
        /// guest-image/inputs.lock.
        #[arg(long, value_name = "FILE")]
        lock: PathBuf,
        /// ovmf/inputs.lock.
        #[arg(long, value_name = "FILE")]
        ovmf_lock: PathBuf,
        /// Cargo.lock of the workspace.
        #[arg(long, value_name = "FILE")]
        cargo_lock: PathBuf,
        /// sha256 of the source tree the image was built from.
        #[arg(long, value_name = "HEX")]
        source_sha256: String,
        /// A built component, NAME=FILE (repeatable).
        #[arg(long = "component", value_name = "NAME=FILE")]
        components: Vec<String>,
        /// A tool and its version, NAME=VERSION (repeatable).
        #[arg(long = "tool", value_name = "NAME=VERSION")]
        tools: Vec<String>,
        /// Where to write the record (image.json).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Where to write the manifest (keynet.measurements/v1).
        #[arg(long, value_name = "FILE")]
        manifest_out: PathBuf,
    },
    /// Compare a build record with the published one, artifact by artifact.
    Compare {
        /// This build's image.json.
        #[arg(long, value_name = "FILE")]
        ours: PathBuf,
        /// The published record (measurements/published/<version>.image.json).
        #[arg(long, value_name = "FILE")]
        published: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keynet-mkimage: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Initrd {
            init,
            keynode,
            modules_dir,
            kernel_release,
            modules_list,
            out,
            order_out,
        } => {
            let list = std::fs::read_to_string(&modules_list)
                .with_context(|| format!("reading {}", modules_list.display()))?;
            let spec = Spec {
                init,
                keynode,
                modules_dir,
                kernel_release,
                modules: parse_list(&list)?,
            };
            let built = initrd::build(&spec, &out)?;
            println!(
                "initrd: {} entries, {} modules, cpio {} bytes, gzip {} bytes -> {}",
                built.cpio.entries,
                built.load_order.len(),
                built.cpio.bytes,
                built.compressed,
                out.display()
            );
            if let Some(p) = order_out {
                let mut s = built.load_order.join("\n");
                s.push('\n');
                write_atomic(&p, s.as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Record {
            image_dir,
            lock,
            ovmf_lock,
            cargo_lock,
            source_sha256,
            components,
            tools,
            out,
            manifest_out,
        } => {
            let r = build_record(
                &image_dir,
                &Lock::load(&lock)?,
                &Lock::load(&ovmf_lock)?,
                &cargo_lock,
                &source_sha256,
                &components,
                &tools,
            )?;
            write_atomic(&out, r.to_json().as_bytes())?;
            write_atomic(&manifest_out, manifest_json(&r.manifest()).as_bytes())?;
            for d in &r.digests {
                println!("  {:<11} {:>3} vCPUs  {}", d.vcpu_type, d.vcpus, d.digest);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            ours,
            published,
            json,
        } => {
            let c = compare(&Record::load(&ours)?, &Record::load(&published)?);
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "pass": c.pass(), "checks": c.checks.iter().map(|x| serde_json::json!({
                        "what": x.what, "pass": x.pass(), "ours": x.ours, "published": x.published })).collect::<Vec<_>>(),
                        "differences": c.differences })
                );
            } else {
                for x in &c.checks {
                    if x.pass() {
                        println!("PASS  {:<28} {}", x.what, x.ours);
                    } else {
                        println!("FAIL  {:<28} ours {}", x.what, x.ours);
                        println!("      {:<28} published {}", "", x.published);
                    }
                }
                if !c.differences.is_empty() {
                    println!("inputs that differ from the published build:");
                    for x in &c.differences {
                        println!("  {}: ours {} / published {}", x.what, x.ours, x.published);
                    }
                }
                let failed = c.checks.iter().filter(|x| !x.pass()).count();
                if c.pass() {
                    println!(
                        "REPRODUCED: all {} checks equal the published record",
                        c.checks.len()
                    );
                } else {
                    println!(
                        "NOT REPRODUCED: {failed} of {} checks differ",
                        c.checks.len()
                    );
                }
            }
            Ok(if c.pass() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn split_kv(s: &str) -> Result<(&str, &str)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
        _ => bail!("'{s}' is not NAME=VALUE"),
    }
}

fn build_record(
    dir: &Path,
    lock: &Lock,
    ovmf_lock: &Lock,
    cargo_lock: &Path,
    source_sha256: &str,
    components: &[String],
    tools: &[String],
) -> Result<Record> {
    let cmdline = std::fs::read_to_string(dir.join("cmdline"))
        .with_context(|| format!("reading {}", dir.join("cmdline").display()))?;
    if cmdline.contains('\n') || cmdline.chars().any(|c| !(' '..='~').contains(&c)) {
        bail!("cmdline: must be one line of printable ASCII without a newline");
    }
    let artifacts = IMAGE_FILES
        .iter()
        .map(|n| artifact(n, &dir.join(n)))
        .collect::<Result<Vec<_>, _>>()?;
    let pinned = [
        ("OVMF.fd", ovmf_lock.sha256("output", 1)?),
        ("vmlinuz", lock.sha256("vmlinuz", 0)?),
    ];
    for (name, want) in pinned {
        let got = artifacts
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.sha256.as_str());
        if got != Some(want) {
            bail!(
                "{name}: sha256 {} is not the pinned {want}",
                got.unwrap_or("?")
            );
        }
    }
    let cargo = artifact("Cargo.lock", cargo_lock)?;
    let inputs = vec![
        Input {
            name: format!("kernel package {}", lock.field("kernel-package", 0)?),
            version: lock.field("kernel-version", 0)?.to_owned(),
            sha256: Some(lock.sha256("kernel-deb", 1)?.to_owned()),
        },
        Input {
            name: "vmlinuz".into(),
            version: lock.field("kernel-release", 0)?.to_owned(),
            sha256: Some(lock.sha256("vmlinuz", 0)?.to_owned()),
        },
        Input {
            name: format!("edk2 source {}", ovmf_lock.field("orig-tarball", 0)?),
            version: ovmf_lock.field("source-version", 0)?.to_owned(),
            sha256: Some(ovmf_lock.sha256("orig-tarball", 1)?.to_owned()),
        },
        Input {
            name: format!("edk2 packaging {}", ovmf_lock.field("debian-tarball", 0)?),
            version: ovmf_lock.field("source-version", 0)?.to_owned(),
            sha256: Some(ovmf_lock.sha256("debian-tarball", 1)?.to_owned()),
        },
        Input {
            name: "Cargo.lock".into(),
            version: "crates".into(),
            sha256: Some(cargo.sha256),
        },
        Input {
            name: "keynet source tree".into(),
            version: lock.field("image-version", 0)?.to_owned(),
            sha256: Some(source_sha256.to_owned()),
        },
    ];
    let mut comps = Vec::new();
    for c in components {
        let (name, path) = split_kv(c)?;
        comps.push(artifact(name, Path::new(path))?);
    }
    let mut toolchain = vec![Input {
        name: "rust-toolchain".into(),
        version: lock.field("rust-toolchain", 0)?.to_owned(),
        sha256: None,
    }];
    for t in tools {
        let (name, version) = split_kv(t)?;
        toolchain.push(Input {
            name: name.into(),
            version: version.into(),
            sha256: None,
        });
    }
    let digests = record::launch_digests(
        &dir.join("OVMF.fd"),
        &dir.join("vmlinuz"),
        &dir.join("initrd.img"),
        &cmdline,
    )?;
    Ok(Record {
        schema: SCHEMA.into(),
        image: attestation_verifier::validate::manifest::ImageId {
            name: lock.field("image-name", 0)?.to_owned(),
            version: lock.field("image-version", 0)?.to_owned(),
        },
        inputs,
        components: comps,
        toolchain,
        artifacts,
        launch: Launch {
            vmm: "QEMU".into(),
            guest_features: format!("{GUEST_FEATURES:#x}"),
            kernel_hashes: true,
            cmdline,
        },
        digests,
    })
}
