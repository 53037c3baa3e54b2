//! The top-level measurement command and `ovmf-hash`.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use snp_measure::firmware::{Firmware, ImageKind};
use snp_measure::hashes::{SevHashes, cmdline_sha256, sha256_file};
use snp_measure::measure::{
    SnpLaunch, SvsmLaunch, Vmsas, ovmf_vmsas, sev_es_launch_digest, sev_launch_digest,
    snp_firmware_digest, snp_launch_digest, svsm_launch_digest, svsm_vmsas,
};
use snp_measure::{SevMode, VmmType, cpu};

use crate::args::{MeasureArgs, Mode, OutputFormat, OvmfHashArgs, UsageError};

/// Schema tag of the `--json` record.
const RECORD_SCHEMA: &str = "keynet.snp-measure.record/v1";

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Sev => "sev",
        Mode::SevEs => "seves",
        Mode::Snp => "snp",
        Mode::SnpOvmfHash => "snp:ovmf-hash",
        Mode::SnpSvsm => "snp:svsm",
    }
}

fn file_record(path: &Path, sha256: &[u8; 32], size: u64) -> Value {
    json!({ "path": path.display().to_string(), "sha256": hex::encode(sha256), "size": size })
}

fn firmware_record(path: &Path, fw: &Firmware) -> Result<Value> {
    let mut h = Sha256::new();
    fw.for_each_chunk(|c| h.update(c))?;
    Ok(file_record(path, &h.finalize().into(), fw.len()))
}

/// `snp-measure ovmf-hash` and `--mode snp:ovmf-hash`.
pub fn ovmf_hash(a: &OvmfHashArgs) -> Result<()> {
    let fw = Firmware::open(&a.ovmf)?;
    let digest = snp_firmware_digest(&fw)?;
    if a.json {
        let rec = json!({
            "schema": RECORD_SCHEMA,
            "mode": "snp:ovmf-hash",
            "ovmf_hash": hex::encode(digest),
            "ovmf": firmware_record(&a.ovmf, &fw)?,
        });
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        println!("{}", hex::encode(digest));
    }
    Ok(())
}

/// Resolves the vCPU signature with the reference's precedence: family/model/stepping,
/// then --vcpu-sig, then --vcpu-type.
fn vcpu_sig(a: &MeasureArgs, mode: Mode, vmm: VmmType) -> Result<u32> {
    if mode == Mode::Sev {
        return Ok(0);
    }
    if let (Some(f), Some(m), Some(s)) = (a.vcpu_family, a.vcpu_model, a.vcpu_stepping) {
        return Ok(cpu::cpu_sig(f, m, s));
    }
    if let Some(sig) = a.vcpu_sig {
        return Ok(sig);
    }
    if let Some(sig) = a.vcpu_type.as_deref().and_then(cpu::vcpu_type_sig) {
        return Ok(sig);
    }
    if vmm == VmmType::Qemu {
        return Err(usage(format!(
            "missing --vcpu-type or --vcpu-sig or --vcpu-family in guest mode '{}'",
            mode_name(mode)
        )));
    }
    // EC2 and GCE put a fixed value in RDX; the signature is not measured.
    Ok(0)
}

fn dump_vmsas(vmsas: &Vmsas, vcpus: u32) -> Result<()> {
    for i in 0..vcpus {
        let name = format!("vmsa{i}.bin");
        std::fs::write(&name, vmsas.page(i)?).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

/// The top-level command: one launch measurement.
pub fn run(a: &MeasureArgs) -> Result<()> {
    let (Some(mode), Some(ovmf)) = (a.mode, a.ovmf.as_deref()) else {
        return Err(usage("--mode and --ovmf are required"));
    };
    if mode == Mode::SnpOvmfHash {
        return ovmf_hash(&OvmfHashArgs {
            ovmf: ovmf.to_owned(),
            json: a.json,
        });
    }
    if a.initrd.is_some() && a.kernel.is_none() {
        return Err(usage("--kernel required when using --initrd"));
    }
    if a.append.is_some() && a.kernel.is_none() {
        return Err(usage("--kernel required when using --append"));
    }
    let vcpus = match (mode, a.vcpus) {
        (Mode::Sev, v) => v.unwrap_or(0),
        (_, Some(v)) => v,
        (_, None) => {
            return Err(usage(format!(
                "missing --vcpus N in guest mode '{}'",
                mode_name(mode)
            )));
        }
    };
    let vmm: VmmType = a.vmm_type.parse().map_err(usage)?;
    let sig = vcpu_sig(a, mode, vmm)?;
    if a.dump_vmsa && mode == Mode::Sev {
        return Err(usage("--dump-vmsa is not available in the selected mode"));
    }
    if a.snp_ovmf_hash.is_some() && mode != Mode::Snp {
        return Err(usage("--snp-ovmf-hash only works with --mode snp"));
    }

    let fw = Firmware::open(ovmf)?;
    let mut rec = json!({
        "schema": RECORD_SCHEMA,
        "mode": mode_name(mode),
        "vmm_type": vmm.to_string(),
    });
    if a.json {
        rec["ovmf"] = firmware_record(ovmf, &fw)?;
    }

    // Kernel-hashes inputs, hashed once (streamed) for both the digest and the record.
    let hashes = match &a.kernel {
        None => None,
        Some(k) => {
            let (kernel, ksize) = sha256_file("kernel", k)?;
            rec["kernel"] = file_record(k, &kernel, ksize);
            let initrd = match &a.initrd {
                Some(p) => {
                    let (h, size) = sha256_file("initrd", p)?;
                    rec["initrd"] = file_record(p, &h, size);
                    h
                }
                None => Sha256::digest([]).into(),
            };
            let cmdline = cmdline_sha256(a.append.as_deref());
            rec["append"] = json!(a.append);
            rec["cmdline_sha256"] = json!(hex::encode(cmdline));
            Some(SevHashes {
                kernel,
                initrd,
                cmdline,
            })
        }
    };

    let (sev_mode, digest): (SevMode, Vec<u8>) = match mode {
        Mode::Snp => {
            let firmware_digest = match &a.snp_ovmf_hash {
                None => None,
                Some(h) => {
                    let bytes = hex::decode(h.trim())
                        .map_err(|e| usage(format!("--snp-ovmf-hash: not hex: {e}")))?;
                    let seed: [u8; 48] = bytes.try_into().map_err(|b: Vec<u8>| {
                        usage(format!(
                            "--snp-ovmf-hash: expected 48 bytes, got {}",
                            b.len()
                        ))
                    })?;
                    rec["snp_ovmf_hash"] = json!(hex::encode(seed));
                    Some(seed)
                }
            };
            let launch = SnpLaunch {
                firmware: &fw,
                vcpus,
                vcpu_sig: sig,
                guest_features: a.guest_features,
                vmm,
                hashes: hashes.as_ref(),
                firmware_digest,
            };
            let d = snp_launch_digest(&launch)?;
            if a.dump_vmsa {
                dump_vmsas(&ovmf_vmsas(&fw, a.guest_features, sig, vmm)?, vcpus)?;
            }
            rec["guest_features"] = json!(format!("{:#x}", a.guest_features));
            (SevMode::SevSnp, d.to_vec())
        }
        Mode::SnpSvsm => {
            if vmm != VmmType::Qemu {
                return Err(usage("snp:svsm mode is only implemented for QEMU"));
            }
            let vars_size = match (&a.vars_file, a.vars_size) {
                (Some(f), _) => std::fs::metadata(f)
                    .with_context(|| format!("cannot read OVMF_VARS file {}", f.display()))?
                    .len(),
                (None, Some(s)) if s > 0 => s,
                _ => return Err(usage("snp:svsm mode requires --vars-size or --vars-file")),
            };
            let Some(svsm_path) = &a.svsm else {
                return Err(usage("snp:svsm mode requires --svsm"));
            };
            let end = fw.gpa().checked_sub(vars_size).ok_or_else(|| {
                usage(format!(
                    "--vars-size {vars_size} is larger than the firmware's GPA"
                ))
            })?;
            let svsm = Firmware::open_as(svsm_path, ImageKind::Svsm, end)?;
            let d = svsm_launch_digest(&SvsmLaunch {
                firmware: &fw,
                svsm: &svsm,
                vcpus,
                vcpu_sig: sig,
            })?;
            if a.dump_vmsa {
                dump_vmsas(&svsm_vmsas(&svsm, sig)?, vcpus)?;
            }
            if a.json {
                rec["svsm"] = firmware_record(svsm_path, &svsm)?;
            }
            rec["vars_size"] = json!(vars_size);
            (SevMode::SevSnpSvsm, d.to_vec())
        }
        Mode::SevEs => {
            let d = sev_es_launch_digest(&fw, hashes.as_ref(), vcpus, sig, vmm)?;
            if a.dump_vmsa {
                dump_vmsas(&ovmf_vmsas(&fw, 0, sig, vmm)?, vcpus)?;
            }
            (SevMode::SevEs, d.to_vec())
        }
        Mode::Sev => (
            SevMode::Sev,
            sev_launch_digest(&fw, hashes.as_ref())?.to_vec(),
        ),
        Mode::SnpOvmfHash => unreachable_mode()?,
    };

    let text = match a.output_format {
        OutputFormat::Hex => hex::encode(&digest),
        OutputFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(&digest),
    };
    if a.json {
        if mode != Mode::Sev {
            rec["vcpus"] = json!(vcpus);
            rec["vcpu_sig"] = json!(format!("{sig:#x}"));
            if let Some(t) = &a.vcpu_type {
                rec["vcpu_type"] = json!(t);
            }
        }
        rec["measurement"] = json!(hex::encode(&digest));
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else if a.verbose {
        println!(
            "Calculated {} guest measurement: {text}",
            sev_mode.reference_name()
        );
    } else {
        println!("{text}");
    }
    Ok(())
}

/// `snp:ovmf-hash` returns early in [`run`]; reaching the match arm is a bug, reported as
/// an error rather than a panic.
fn unreachable_mode() -> Result<(SevMode, Vec<u8>)> {
    Err(anyhow::anyhow!(
        "internal error: snp:ovmf-hash reached the launch path"
    ))
}
