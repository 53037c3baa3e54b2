//! The initial VMSA (SEV-ES save area) of each vCPU, as the VMM sets it before launch.
//! Offsets follow the Linux `struct sev_es_save_area` (AMD APM vol. 2, table B-4).

use crate::launch::VmmType;

/// Size of a VMSA page.
pub const VMSA_LEN: usize = 4096;

/// EIP of the bootstrap processor (the reset vector).
pub const BSP_EIP: u64 = 0xffff_fff0;

/// Offsets of the fields that are ever non-zero.
mod off {
    pub const ES: usize = 0x00;
    pub const CS: usize = 0x10;
    pub const SS: usize = 0x20;
    pub const DS: usize = 0x30;
    pub const FS: usize = 0x40;
    pub const GS: usize = 0x50;
    pub const GDTR: usize = 0x60;
    pub const LDTR: usize = 0x70;
    pub const IDTR: usize = 0x80;
    pub const TR: usize = 0x90;
    pub const EFER: usize = 0xd0;
    pub const CR4: usize = 0x148;
    pub const CR0: usize = 0x158;
    pub const DR7: usize = 0x160;
    pub const DR6: usize = 0x168;
    pub const RFLAGS: usize = 0x170;
    pub const RIP: usize = 0x178;
    pub const G_PAT: usize = 0x268;
    pub const RDX: usize = 0x310;
    pub const SEV_FEATURES: usize = 0x3b0;
    pub const XCR0: usize = 0x3e8;
    pub const MXCSR: usize = 0x408;
    pub const X87_FCW: usize = 0x410;
}

/// A VMCB segment register: selector, attributes, limit, base.
#[derive(Clone, Copy)]
struct Seg(u16, u16, u32, u64);

/// Builder for one VMSA page.
struct Page([u8; VMSA_LEN]);

impl Page {
    fn new() -> Self {
        Page([0; VMSA_LEN])
    }
    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
    fn u16(&mut self, at: usize, v: u16) {
        self.put(at, &v.to_le_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.put(at, &v.to_le_bytes());
    }
    fn u64(&mut self, at: usize, v: u64) {
        self.put(at, &v.to_le_bytes());
    }
    fn seg(&mut self, at: usize, s: Seg) {
        self.u16(at, s.0);
        self.u16(at + 2, s.1);
        self.u32(at + 4, s.2);
        self.u64(at + 8, s.3);
    }
}

/// Register state common to all layouts, filled after the segments.
struct Regs {
    cr0: u64,
    rip: u64,
    g_pat: u64,
    rdx: u64,
    sev_features: u64,
    mxcsr: u32,
    fcw: u16,
}

fn finish(mut p: Page, r: Regs) -> [u8; VMSA_LEN] {
    p.u64(off::EFER, 0x1000); // KVM sets EFER.SVME
    p.u64(off::CR4, 0x40); // KVM sets CR4.MCE
    p.u64(off::CR0, r.cr0);
    p.u64(off::DR7, 0x400);
    p.u64(off::DR6, 0xffff_0ff0);
    p.u64(off::RFLAGS, 0x2);
    p.u64(off::RIP, r.rip);
    p.u64(off::G_PAT, r.g_pat);
    p.u64(off::RDX, r.rdx);
    p.u64(off::SEV_FEATURES, r.sev_features);
    p.u64(off::XCR0, 0x1);
    p.u32(off::MXCSR, r.mxcsr);
    p.u16(off::X87_FCW, r.fcw);
    p.0
}

/// The VMSA of an OVMF vCPU starting at `eip` (reset vector for the BSP, the SEV-ES reset
/// block for APs). `vcpu_sig` only matters for QEMU (it lands in RDX).
pub fn ovmf_vmsa(eip: u64, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> [u8; VMSA_LEN] {
    // The three VMMs differ slightly in initial segment attributes and FPU state.
    let pat = 0x0007_0406_0007_0406; // PAT MSR reset value, APM vol. 2 A.3
    let (cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw, g_pat) = match vmm {
        VmmType::Qemu => (0x9b, 0x93, 0x8b, u64::from(vcpu_sig), 0x1f80, 0x37f, pat),
        VmmType::Ec2 => {
            let cs = if eip == BSP_EIP { 0x9a } else { 0x9b };
            (cs, 0x92, 0x83, 0x600, 0, 0, pat)
        }
        // GCE's hypervisor overrides the PAT.
        VmmType::Gce => (0x9b, 0x93, 0x8b, 0x600, 0, 0, 0x0007_0106),
    };
    let mut p = Page::new();
    p.seg(off::ES, Seg(0, 0x93, 0xffff, 0));
    p.seg(off::CS, Seg(0xf000, cs_flags, 0xffff, eip & 0xffff_0000));
    p.seg(off::SS, Seg(0, ss_flags, 0xffff, 0));
    p.seg(off::DS, Seg(0, 0x93, 0xffff, 0));
    p.seg(off::FS, Seg(0, 0x93, 0xffff, 0));
    p.seg(off::GS, Seg(0, 0x93, 0xffff, 0));
    p.seg(off::GDTR, Seg(0, 0, 0xffff, 0));
    p.seg(off::IDTR, Seg(0, 0, 0xffff, 0));
    p.seg(off::LDTR, Seg(0, 0x82, 0xffff, 0));
    p.seg(off::TR, Seg(0, tr_flags, 0xffff, 0));
    finish(
        p,
        Regs {
            cr0: 0x10,
            rip: eip & 0xffff,
            g_pat,
            rdx,
            sev_features,
            mxcsr,
            fcw,
        },
    )
}

/// The VMSA of a vCPU entering COCONUT-SVSM in 32-bit protected mode at `eip`.
///
/// sev-snp-measure 0.0.13 leaves x87 FCW at zero here (its keyword for the field is
/// misspelled, so the value is dropped); the same is done to give the same digest.
pub fn svsm_vmsa(eip: u64, vcpu_sig: u32) -> [u8; VMSA_LEN] {
    let mut p = Page::new();
    let flat_data = Seg(16, 0xc93, 0xffff_ffff, 0);
    p.seg(off::ES, flat_data);
    p.seg(off::CS, Seg(8, 0xc9b, 0xffff_ffff, 0));
    p.seg(off::SS, flat_data);
    p.seg(off::DS, flat_data);
    p.seg(off::FS, flat_data);
    p.seg(off::GS, Seg(0, 0x093, 0xffff, 0));
    p.seg(off::GDTR, Seg(0, 0, 0xffff, 0));
    p.seg(off::IDTR, Seg(0, 0, 0xffff, 0));
    p.seg(off::LDTR, Seg(0, 0x82, 0xffff, 0));
    p.seg(off::TR, Seg(0, 0x8b, 0xffff, 0));
    finish(
        p,
        Regs {
            cr0: 0x11,
            rip: eip,
            g_pat: 0x0007_0406_0007_0406,
            rdx: u64::from(vcpu_sig),
            sev_features: 0x1,
            mxcsr: 0x1f80,
            fcw: 0,
        },
    )
}
