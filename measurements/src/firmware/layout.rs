//! Byte layout of the structures OVMF (and COCONUT-SVSM) expose to the VMM: the footer GUID
//! table at the end of the image and the SEV metadata it points to. Spec types only; the
//! parser is in `parse.rs`.
//!
//! References: edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm` (footer table),
//! `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm` (metadata), QEMU `hw/i386/pc_sysfw_ovmf.c`.

use crate::guid::Guid;

/// The footer table ends this many bytes before the end of the image (the reset vector and
/// padding live there).
pub const FOOTER_TRAILER: usize = 32;

/// Size of a footer-table entry header: `u16 size` followed by a 16-byte GUID. The entry's
/// data precedes its header.
pub const TABLE_ENTRY_HEADER: usize = 18;

/// GUID of the footer entry that spans the whole table.
pub const FOOTER_GUID: Guid = Guid::from_fields(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);

/// Entry holding the GPA (u32) of the SEV hashes table (kernel, initrd, cmdline hashes).
pub const SEV_HASH_TABLE_RV_GUID: Guid = Guid::from_fields(
    0x7255_371f,
    0x3a3b,
    0x4b04,
    [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54],
);

/// Entry holding the SEV-ES AP reset vector (u32 EIP).
pub const SEV_ES_RESET_BLOCK_GUID: Guid = Guid::from_fields(
    0x00f7_71de,
    0x1a7e,
    0x4fcb,
    [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e],
);

/// Entry holding the offset, from the end of the image, of the SEV metadata header.
pub const SEV_METADATA_GUID: Guid = Guid::from_fields(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);

/// COCONUT-SVSM entry holding the SVSM entry point, as an offset from the image's GPA.
pub const SVSM_INFO_GUID: Guid = Guid::from_fields(
    0xa789_a612,
    0x0597,
    0x4c4b,
    [0xa4, 0x9f, 0xcb, 0xb1, 0xfe, 0x9d, 0x1d, 0xdd],
);

/// Signature of the SEV metadata header.
pub const METADATA_SIGNATURE: [u8; 4] = *b"ASEV";
/// The only metadata version defined.
pub const METADATA_VERSION: u32 = 1;
/// `signature, size, version, num_items`.
pub const METADATA_HEADER_LEN: usize = 16;
/// `gpa: u32, size: u32, type: u32`.
pub const METADATA_ITEM_LEN: usize = 12;

/// Kinds of memory the firmware asks the VMM to prepare before launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum SectionType {
    /// Memory the firmware uses before it validates RAM (measured as zero pages).
    SnpSecMem,
    /// The SNP secrets page.
    SnpSecrets,
    /// The CPUID page.
    Cpuid,
    /// The SVSM calling-area page.
    SvsmCaa,
    /// The page that receives the kernel/initrd/cmdline hashes.
    SnpKernelHashes,
    /// A type this crate does not know; measuring an SNP launch with it is an error.
    Unknown(u32),
}

impl SectionType {
    /// Decodes the metadata `type` field.
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => SectionType::SnpSecMem,
            2 => SectionType::SnpSecrets,
            3 => SectionType::Cpuid,
            4 => SectionType::SvsmCaa,
            0x10 => SectionType::SnpKernelHashes,
            other => SectionType::Unknown(other),
        }
    }

    /// The name used in OVMF sources.
    pub fn name(self) -> &'static str {
        match self {
            SectionType::SnpSecMem => "SNP_SEC_MEM",
            SectionType::SnpSecrets => "SNP_SECRETS",
            SectionType::Cpuid => "CPUID",
            SectionType::SvsmCaa => "SVSM_CAA",
            SectionType::SnpKernelHashes => "SNP_KERNEL_HASHES",
            SectionType::Unknown(_) => "UNKNOWN",
        }
    }
}

/// One SEV metadata section descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MetadataSection {
    /// Guest-physical address of the section.
    pub gpa: u32,
    /// Size in bytes.
    pub size: u32,
    /// What the section is.
    pub kind: SectionType,
}
