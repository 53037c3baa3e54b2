//! Launch measurements for SEV, SEV-ES, SEV-SNP and SEV-SNP with COCONUT-SVSM, computed
//! the way the AMD secure processor and QEMU do (and as sev-snp-measure 0.0.13 does).

use sha2::{Digest, Sha256, Sha384};

use crate::error::{Error, Result};
use crate::firmware::{Firmware, ImageKind, SectionType};
use crate::gctx::{GuestContext, LaunchDigest, PAGE, PageType};
use crate::hashes::SevHashes;
use crate::launch::VmmType;
use crate::vmsa::{BSP_EIP, VMSA_LEN, ovmf_vmsa, svsm_vmsa};

/// Inputs of an SEV-SNP launch with OVMF.
#[derive(Clone, Copy, Debug)]
pub struct SnpLaunch<'a> {
    /// The OVMF image.
    pub firmware: &'a Firmware,
    /// Number of vCPUs (at least 1).
    pub vcpus: u32,
    /// CPUID signature of the vCPUs; only QEMU puts it in the VMSA.
    pub vcpu_sig: u32,
    /// The SEV_FEATURES the guest is launched with (e.g. `0x1`, SNP active).
    pub guest_features: u64,
    /// The VMM preparing the guest.
    pub vmm: VmmType,
    /// Kernel/initrd/cmdline hashes for measured direct boot.
    pub hashes: Option<&'a SevHashes>,
    /// A precomputed digest of the firmware pages (`snp-measure ovmf-hash`), used instead of
    /// hashing `firmware`'s contents.
    pub firmware_digest: Option<LaunchDigest>,
}

/// Inputs of an SEV-SNP launch with COCONUT-SVSM below OVMF (QEMU only).
#[derive(Clone, Copy, Debug)]
pub struct SvsmLaunch<'a> {
    /// The OVMF image.
    pub firmware: &'a Firmware,
    /// The SVSM image, mapped to end where the OVMF variable store begins.
    pub svsm: &'a Firmware,
    /// Number of vCPUs (at least 1).
    pub vcpus: u32,
    /// CPUID signature of the vCPUs.
    pub vcpu_sig: u32,
}

/// The distinct VMSA pages of a launch: one for the BSP and one shared by all APs.
#[derive(Clone)]
pub struct Vmsas {
    bsp: [u8; VMSA_LEN],
    ap: Option<[u8; VMSA_LEN]>,
}

impl Vmsas {
    /// The VMSA of vCPU `index` (0 is the BSP).
    pub fn page(&self, index: u32) -> Result<&[u8; VMSA_LEN]> {
        match (index, &self.ap) {
            (0, _) => Ok(&self.bsp),
            (_, Some(ap)) => Ok(ap),
            (_, None) => Err(Error::param(
                "vcpus",
                "the firmware's SEV-ES reset block gives AP EIP 0, so only 1 vCPU can start",
            )),
        }
    }

    fn digests(&self, vcpus: u32) -> Result<Vec<LaunchDigest>> {
        check_vcpus(vcpus)?;
        let bsp: LaunchDigest = Sha384::digest(self.bsp).into();
        let ap: Option<LaunchDigest> = self.ap.map(|p| Sha384::digest(p).into());
        (0..vcpus)
            .map(|i| {
                self.page(i)?;
                Ok(if i == 0 { bsp } else { ap.unwrap_or(bsp) })
            })
            .collect()
    }
}

fn check_vcpus(vcpus: u32) -> Result<()> {
    if vcpus == 0 {
        return Err(Error::param("vcpus", "must be at least 1"));
    }
    Ok(())
}

/// The VMSAs OVMF's vCPUs start with.
pub fn ovmf_vmsas(fw: &Firmware, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> Result<Vmsas> {
    let ap_eip = fw.sev_es_reset_eip()?;
    Ok(Vmsas {
        bsp: ovmf_vmsa(BSP_EIP, sev_features, vcpu_sig, vmm),
        ap: (ap_eip != 0).then(|| ovmf_vmsa(u64::from(ap_eip), sev_features, vcpu_sig, vmm)),
    })
}

/// The VMSA every vCPU of an SVSM launch starts with.
pub fn svsm_vmsas(svsm: &Firmware, vcpu_sig: u32) -> Result<Vmsas> {
    let page = svsm_vmsa(svsm.svsm_entry_eip()?, vcpu_sig);
    Ok(Vmsas {
        bsp: page,
        ap: Some(page),
    })
}

fn check_page_multiple(image: &'static str, field: String, len: u64) -> Result<()> {
    if !len.is_multiple_of(PAGE as u64) {
        return Err(Error::firmware(
            image,
            field,
            format!("{len} bytes is not a multiple of the {PAGE}-byte page size"),
        ));
    }
    Ok(())
}

fn image_name(fw: &Firmware) -> &'static str {
    match fw.kind() {
        ImageKind::Svsm => "SVSM binary",
        _ => "firmware",
    }
}

/// Measures every page of an image as normal pages at its GPA.
fn update_image_pages(gctx: &mut GuestContext, fw: &Firmware) -> Result<()> {
    check_page_multiple(image_name(fw), "size".into(), fw.len())?;
    let mut gpa = fw.gpa();
    fw.for_each_chunk(|chunk| {
        gctx.update_normal_pages(gpa, chunk);
        gpa += chunk.len() as u64;
    })
}

/// The launch digest of the firmware pages alone: the seed `snp:ovmf-hash` precomputes.
pub fn snp_firmware_digest(fw: &Firmware) -> Result<LaunchDigest> {
    let mut gctx = GuestContext::new();
    update_image_pages(&mut gctx, fw)?;
    Ok(gctx.digest())
}

/// Measures the pages the SEV metadata describes, in its order.
fn update_metadata_pages(
    gctx: &mut GuestContext,
    meta_src: &Firmware,
    hashes_src: &Firmware,
    hashes: Option<&SevHashes>,
    vmm: VmmType,
) -> Result<()> {
    let image = image_name(meta_src);
    for (i, desc) in meta_src.metadata().iter().enumerate() {
        let (gpa, size) = (u64::from(desc.gpa), u64::from(desc.size));
        let field = || format!("SEV metadata section {i} ({}) size", desc.kind.name());
        match desc.kind {
            SectionType::SnpSecMem => {
                check_page_multiple(image, field(), size)?;
                let t = if vmm == VmmType::Gce {
                    PageType::Unmeasured
                } else {
                    PageType::Zero
                };
                gctx.update_empty_pages(t, gpa, size);
            }
            SectionType::SnpSecrets => gctx.update(PageType::Secrets, gpa, &[0; 48]),
            SectionType::Cpuid => {
                // EC2 adds the CPUID page after all other sections.
                if vmm != VmmType::Ec2 {
                    gctx.update(PageType::Cpuid, gpa, &[0; 48]);
                }
            }
            SectionType::SnpKernelHashes => match hashes {
                Some(h) => {
                    if size != PAGE as u64 {
                        return Err(Error::firmware(
                            image,
                            field(),
                            format!("expected {PAGE} for the hashes page, found {size}"),
                        ));
                    }
                    let offset = (hashes_src.sev_hashes_table_gpa()? as usize) & (PAGE - 1);
                    gctx.update_normal_page(gpa, &h.page(offset)?);
                }
                None => {
                    check_page_multiple(image, field(), size)?;
                    gctx.update_empty_pages(PageType::Zero, gpa, size);
                }
            },
            SectionType::SvsmCaa => {
                check_page_multiple(image, field(), size)?;
                gctx.update_empty_pages(PageType::Zero, gpa, size);
            }
            SectionType::Unknown(t) => {
                return Err(Error::firmware(
                    image,
                    format!("SEV metadata section {i} type"),
                    format!("unknown type {t:#x} (known: 1-4, 0x10)"),
                ));
            }
        }
    }
    if vmm == VmmType::Ec2 {
        for desc in meta_src.metadata() {
            if desc.kind == SectionType::Cpuid {
                gctx.update(PageType::Cpuid, u64::from(desc.gpa), &[0; 48]);
            }
        }
    }
    if hashes.is_some() && !meta_src.has_section(SectionType::SnpKernelHashes) {
        return Err(Error::NoKernelHashes {
            missing: "the SNP_KERNEL_HASHES metadata section",
        });
    }
    Ok(())
}

/// The SEV-SNP launch digest of an OVMF launch.
pub fn snp_launch_digest(l: &SnpLaunch<'_>) -> Result<LaunchDigest> {
    check_vcpus(l.vcpus)?;
    let mut gctx = match l.firmware_digest {
        Some(seed) => GuestContext::with_seed(seed),
        None => {
            let mut g = GuestContext::new();
            update_image_pages(&mut g, l.firmware)?;
            g
        }
    };
    update_metadata_pages(&mut gctx, l.firmware, l.firmware, l.hashes, l.vmm)?;
    let vmsas = ovmf_vmsas(l.firmware, l.guest_features, l.vcpu_sig, l.vmm)?;
    for d in vmsas.digests(l.vcpus)? {
        gctx.update_vmsa_digest(&d);
    }
    Ok(gctx.digest())
}

/// The SEV-SNP launch digest of a COCONUT-SVSM launch.
pub fn svsm_launch_digest(l: &SvsmLaunch<'_>) -> Result<LaunchDigest> {
    check_vcpus(l.vcpus)?;
    let mut gctx = GuestContext::new();
    update_image_pages(&mut gctx, l.firmware)?;
    update_image_pages(&mut gctx, l.svsm)?;
    update_metadata_pages(&mut gctx, l.svsm, l.svsm, None, VmmType::Qemu)?;
    for d in svsm_vmsas(l.svsm, l.vcpu_sig)?.digests(l.vcpus)? {
        gctx.update_vmsa_digest(&d);
    }
    Ok(gctx.digest())
}

fn sev_common(fw: &Firmware, hashes: Option<&SevHashes>) -> Result<Sha256> {
    let mut h = Sha256::new();
    fw.for_each_chunk(|c| h.update(c))?;
    if let Some(hashes) = hashes {
        if !fw.supports_sev_hashes_table() {
            return Err(Error::NoKernelHashes {
                missing: "a non-zero SEV hash table entry in the footer table",
            });
        }
        h.update(hashes.table());
    }
    Ok(h)
}

/// The SEV launch measurement (SHA-256 of firmware and hashes table).
pub fn sev_launch_digest(fw: &Firmware, hashes: Option<&SevHashes>) -> Result<[u8; 32]> {
    Ok(sev_common(fw, hashes)?.finalize().into())
}

/// The SEV-ES launch measurement (SHA-256 of firmware, hashes table and VMSAs).
pub fn sev_es_launch_digest(
    fw: &Firmware,
    hashes: Option<&SevHashes>,
    vcpus: u32,
    vcpu_sig: u32,
    vmm: VmmType,
) -> Result<[u8; 32]> {
    check_vcpus(vcpus)?;
    let mut h = sev_common(fw, hashes)?;
    let vmsas = ovmf_vmsas(fw, 0, vcpu_sig, vmm)?;
    for i in 0..vcpus {
        h.update(vmsas.page(i)?);
    }
    Ok(h.finalize().into())
}
