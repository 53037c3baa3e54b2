//! The SNP guest context: the launch digest as the AMD secure processor extends it, one
//! page at a time (SNP ABI spec, PAGE_INFO structure of SNP_LAUNCH_UPDATE).

use sha2::{Digest, Sha384};

/// Length of an SNP launch digest (SHA-384).
pub const LD_LEN: usize = 48;
/// Guest page size.
pub const PAGE: usize = 4096;

/// A 48-byte SNP launch digest.
pub type LaunchDigest = [u8; LD_LEN];

/// VMSA pages are recorded with GPA `(u64)-1`, page-aligned and truncated to 52 bits.
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// Page types of SNP_LAUNCH_UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// Normal page with measured contents.
    Normal = 0x01,
    /// The VMSA of a vCPU.
    Vmsa = 0x02,
    /// A page of zeros.
    Zero = 0x03,
    /// Unmeasured page.
    Unmeasured = 0x04,
    /// The secrets page.
    Secrets = 0x05,
    /// The CPUID page.
    Cpuid = 0x06,
}

/// The running launch digest.
#[derive(Clone, Debug)]
pub struct GuestContext {
    ld: LaunchDigest,
}

impl Default for GuestContext {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestContext {
    /// A context whose digest starts at zero.
    pub fn new() -> Self {
        GuestContext { ld: [0; LD_LEN] }
    }

    /// A context seeded with a precomputed digest (e.g. of the firmware pages).
    pub fn with_seed(seed: LaunchDigest) -> Self {
        GuestContext { ld: seed }
    }

    /// The digest so far.
    pub fn digest(&self) -> LaunchDigest {
        self.ld
    }

    /// Extends the digest with one PAGE_INFO record.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &LaunchDigest) {
        // PAGE_INFO: digest_cur, contents, length, page_type, imi_page, vmpl3/2/1 perms,
        // reserved, gpa: 0x70 bytes.
        let mut info = [0u8; 0x70];
        info[0..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        info[98] = page_type as u8;
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld = Sha384::digest(info).into();
    }

    /// Measures one normal page of data.
    pub fn update_normal_page(&mut self, gpa: u64, page: &[u8]) {
        let h: LaunchDigest = Sha384::digest(page).into();
        self.update(PageType::Normal, gpa, &h);
    }

    /// Measures whole pages of `data` starting at `gpa`; `data.len()` must be a multiple of
    /// the page size (callers check).
    pub fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) {
        for (i, page) in data.chunks(PAGE).enumerate() {
            self.update_normal_page(gpa + (i * PAGE) as u64, page);
        }
    }

    /// Records a VMSA page by its SHA-384.
    pub fn update_vmsa_digest(&mut self, vmsa_sha384: &LaunchDigest) {
        self.update(PageType::Vmsa, VMSA_GPA, vmsa_sha384);
    }

    /// Records `len / 4096` pages of the given contentless type starting at `gpa`.
    pub fn update_empty_pages(&mut self, page_type: PageType, gpa: u64, len: u64) {
        let zero = [0u8; LD_LEN];
        let mut off = 0;
        while off < len {
            self.update(page_type, gpa + off, &zero);
            off += PAGE as u64;
        }
    }
}
