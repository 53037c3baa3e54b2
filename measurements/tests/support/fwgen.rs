//! Synthetic firmware images in OVMF's layout: a footer GUID table just before the last 32
//! bytes, and an "ASEV" metadata block it points to. Written independently of the parser
//! under test, from edk2's `ResetVectorVtf0.asm` / `OvmfSevMetadata.asm` layout.

use super::pseudo_random;

pub const FOOTER: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
pub const HASH_TABLE: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
pub const RESET_BLOCK: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
pub const METADATA: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
pub const SVSM_INFO: &str = "a789a612-0597-4c4b-a49f-cbb1fe9d1ddd";

pub const SEC_MEM: u32 = 1;
pub const SECRETS: u32 = 2;
pub const CPUID: u32 = 3;
pub const SVSM_CAA: u32 = 4;
pub const KERNEL_HASHES: u32 = 0x10;

/// Encodes a textual GUID in its little-endian on-disk form.
pub fn guid_le(s: &str) -> [u8; 16] {
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hexs[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ]
}

/// A firmware image under construction.
#[derive(Clone)]
pub struct FwImage {
    /// Size in bytes.
    pub size: usize,
    /// Seed of the filler bytes.
    pub seed: u64,
    /// Footer-table entries, nearest to the footer first: (GUID, data, size override).
    pub entries: Vec<(String, Vec<u8>, Option<u16>)>,
    /// Metadata block: (offset from the end, signature, version, items as (gpa, size, type)).
    pub metadata: Option<Metadata>,
    /// Write no footer at all.
    pub no_footer: bool,
    /// Override the footer entry's size field.
    pub footer_size: Option<u16>,
}

#[derive(Clone)]
pub struct Metadata {
    pub offset_from_end: u32,
    pub signature: [u8; 4],
    pub version: u32,
    pub items: Vec<(u32, u32, u32)>,
    /// Override of num_items (to claim more than are present).
    pub num_items: Option<u32>,
}

impl Metadata {
    pub fn new(items: Vec<(u32, u32, u32)>) -> Self {
        Metadata {
            offset_from_end: 0x1000,
            signature: *b"ASEV",
            version: 1,
            items,
            num_items: None,
        }
    }
}

pub fn u32le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

impl FwImage {
    pub fn new(size: usize, seed: u64) -> Self {
        FwImage {
            size,
            seed,
            entries: Vec::new(),
            metadata: None,
            no_footer: false,
            footer_size: None,
        }
    }

    pub fn entry(mut self, guid: &str, data: Vec<u8>) -> Self {
        self.entries.push((guid.to_owned(), data, None));
        self
    }

    pub fn metadata(mut self, m: Metadata) -> Self {
        self.entries
            .push((METADATA.to_owned(), u32le(m.offset_from_end), None));
        self.metadata = Some(m);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut img = pseudo_random(self.seed, self.size);
        if let Some(m) = &self.metadata {
            let start = self.size - m.offset_from_end as usize;
            let mut block = Vec::new();
            block.extend_from_slice(&m.signature);
            block.extend_from_slice(&u32le(16 + 12 * m.items.len() as u32));
            block.extend_from_slice(&u32le(m.version));
            block.extend_from_slice(&u32le(m.num_items.unwrap_or(m.items.len() as u32)));
            for (gpa, size, t) in &m.items {
                block.extend_from_slice(&u32le(*gpa));
                block.extend_from_slice(&u32le(*size));
                block.extend_from_slice(&u32le(*t));
            }
            img[start..start + block.len()].copy_from_slice(&block);
        }
        if self.no_footer {
            return img;
        }
        // Build the table backwards from the footer: each entry is data then header.
        let mut table: Vec<u8> = Vec::new();
        for (guid, data, size) in self.entries.iter().rev() {
            table.extend_from_slice(data);
            let sz = size.unwrap_or((data.len() + 18) as u16);
            table.extend_from_slice(&sz.to_le_bytes());
            table.extend_from_slice(&guid_le(guid));
        }
        let footer_size = self.footer_size.unwrap_or((table.len() + 18) as u16);
        table.extend_from_slice(&footer_size.to_le_bytes());
        table.extend_from_slice(&guid_le(FOOTER));
        let end = self.size - 32;
        img[end - table.len()..end].copy_from_slice(&table);
        img
    }
}

/// The SEV metadata of a typical AmdSev OVMF, with every section kind.
pub fn amdsev_sections() -> Vec<(u32, u32, u32)> {
    vec![
        (0x80_0000, 0x9000, SEC_MEM),
        (0x80_a000, 0x3000, SEC_MEM),
        (0x80_d000, 0x1000, SECRETS),
        (0x80_e000, 0x1000, CPUID),
        (0x80_f000, 0x1000, SVSM_CAA),
        (0x81_0000, 0x1000, KERNEL_HASHES),
        (0x81_1000, 0xf000, SEC_MEM),
    ]
}

/// An AmdSev-like image: reset block, hashes table at `hash_gpa`, the given sections.
pub fn amdsev_like(
    seed: u64,
    hash_gpa: u32,
    reset_eip: u32,
    sections: Vec<(u32, u32, u32)>,
) -> FwImage {
    let mut hash = u32le(hash_gpa);
    hash.extend_from_slice(&u32le(0x400));
    FwImage::new(64 * 4096, seed)
        .entry(HASH_TABLE, hash)
        .entry(RESET_BLOCK, u32le(reset_eip))
        .metadata(Metadata::new(sections))
}

/// A COCONUT-SVSM-like image with its entry point at `entry_offset` from its start.
pub fn svsm_like(seed: u64, entry_offset: u32, sections: Vec<(u32, u32, u32)>) -> FwImage {
    FwImage::new(32 * 4096, seed)
        .entry(SVSM_INFO, u32le(entry_offset))
        .metadata(Metadata::new(sections))
}
