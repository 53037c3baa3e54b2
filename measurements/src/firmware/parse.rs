//! Parser for the footer GUID table and SEV metadata, with streamed access to the image.
//!
//! Semantics follow sev-snp-measure 0.0.13 (`ovmf.py`) where it is well defined; where the
//! reference would crash or silently read out of range, this parser returns an error that
//! names the field.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::layout::{
    FOOTER_GUID, FOOTER_TRAILER, METADATA_HEADER_LEN, METADATA_ITEM_LEN, METADATA_SIGNATURE,
    METADATA_VERSION, MetadataSection, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID,
    SEV_METADATA_GUID, SVSM_INFO_GUID, SectionType, TABLE_ENTRY_HEADER,
};
use crate::error::{Error, Result};
use crate::guid::Guid;

/// Top of the 32-bit address space, where OVMF's last byte is mapped.
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// Chunk size for streamed reads.
const CHUNK: usize = 1 << 20;

/// Which kind of image this is; it only changes how errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageKind {
    /// OVMF firmware.
    Firmware,
    /// A COCONUT-SVSM binary loaded below OVMF.
    Svsm,
}

impl ImageKind {
    fn name(self) -> &'static str {
        match self {
            ImageKind::Firmware => "firmware",
            ImageKind::Svsm => "SVSM binary",
        }
    }
}

enum Source {
    Bytes(Vec<u8>),
    File { file: File, path: PathBuf },
}

/// A parsed firmware image mapped so that it ends at a given guest-physical address.
pub struct Firmware {
    kind: ImageKind,
    source: Source,
    len: u64,
    gpa: u64,
    table: BTreeMap<Guid, Vec<u8>>,
    metadata: Vec<MetadataSection>,
}

impl std::fmt::Debug for Firmware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firmware")
            .field("kind", &self.kind)
            .field("len", &self.len)
            .field("gpa", &self.gpa)
            .field("table", &self.table.keys().collect::<Vec<_>>())
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl Firmware {
    /// Opens an OVMF image mapped to end at 4 GiB.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_as(path, ImageKind::Firmware, FOUR_GIB)
    }

    /// Parses an in-memory OVMF image mapped to end at 4 GiB.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self> {
        Self::parse(Source::Bytes(data), ImageKind::Firmware, FOUR_GIB)
    }

    /// Opens an image of the given kind mapped to end at `end_at` (exclusive).
    pub fn open_as(path: impl AsRef<Path>, kind: ImageKind, end_at: u64) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io {
            what: kind.name(),
            path: path.to_owned(),
            source,
        })?;
        Self::parse(
            Source::File {
                file,
                path: path.to_owned(),
            },
            kind,
            end_at,
        )
    }

    /// Parses an in-memory image of the given kind mapped to end at `end_at`.
    pub fn from_bytes_as(data: Vec<u8>, kind: ImageKind, end_at: u64) -> Result<Self> {
        Self::parse(Source::Bytes(data), kind, end_at)
    }

    fn parse(source: Source, kind: ImageKind, end_at: u64) -> Result<Self> {
        let len = match &source {
            Source::Bytes(b) => b.len() as u64,
            Source::File { file, path } => file
                .metadata()
                .map_err(|source| Error::Io {
                    what: kind.name(),
                    path: path.clone(),
                    source,
                })?
                .len(),
        };
        let gpa = end_at.checked_sub(len).ok_or_else(|| {
            Error::firmware(
                kind.name(),
                "size",
                format!("{len} bytes do not fit below GPA {end_at:#x}"),
            )
        })?;
        let mut fw = Firmware {
            kind,
            source,
            len,
            gpa,
            table: BTreeMap::new(),
            metadata: Vec::new(),
        };
        fw.parse_footer_table()?;
        fw.parse_metadata()?;
        Ok(fw)
    }

    fn err(&self, field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::firmware(self.kind.name(), field, reason)
    }

    /// Reads `buf.len()` bytes at `offset` of the image.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                self.err(
                    "read",
                    format!(
                        "{} bytes at offset {offset:#x} run past the end ({:#x})",
                        buf.len(),
                        self.len
                    ),
                )
            })?;
        match &self.source {
            Source::Bytes(b) => {
                // Both bounds were checked against len == b.len() above.
                let (start, end) = (offset as usize, end as usize);
                buf.copy_from_slice(&b[start..end]);
                Ok(())
            }
            Source::File { file, path } => {
                file.read_exact_at(buf, offset).map_err(|source| Error::Io {
                    what: self.kind.name(),
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    fn parse_footer_table(&mut self) -> Result<()> {
        let min = (FOOTER_TRAILER + TABLE_ENTRY_HEADER) as u64;
        if self.len < min {
            return Err(self.err(
                "size",
                format!(
                    "{} bytes is too small to hold a footer table (at least {min})",
                    self.len
                ),
            ));
        }
        // The footer entry's header sits just before the 32-byte trailer.
        let footer_at = self.len - min;
        let mut hdr = [0u8; TABLE_ENTRY_HEADER];
        self.read_at(footer_at, &mut hdr)?;
        let (size, guid) = entry_header(&hdr);
        if guid != FOOTER_GUID {
            // No table: a legal image (e.g. plain OVMF without SEV support).
            return Ok(());
        }
        let Some(table_len) = (size as usize).checked_sub(TABLE_ENTRY_HEADER) else {
            return Ok(());
        };
        let table_start = footer_at.checked_sub(table_len as u64).ok_or_else(|| {
            self.err(
                "footer table size",
                format!("{size} bytes reach before the start of the image"),
            )
        })?;
        let mut table = vec![0u8; table_len];
        self.read_at(table_start, &mut table)?;

        // Entries are laid out back to front: data, then header, ending at the footer.
        let mut rest = table.as_slice();
        let mut index = 0usize;
        while rest.len() >= TABLE_ENTRY_HEADER {
            let hdr_at = rest.len() - TABLE_ENTRY_HEADER;
            let (esize, eguid) = entry_header(&rest[hdr_at..]);
            let esize = esize as usize;
            if esize < TABLE_ENTRY_HEADER {
                return Err(self.err(
                    format!("footer table entry {index} ({eguid}) size"),
                    format!("{esize} is smaller than its own {TABLE_ENTRY_HEADER}-byte header"),
                ));
            }
            if esize > rest.len() {
                return Err(self.err(
                    format!("footer table entry {index} ({eguid}) size"),
                    format!("{esize} exceeds the {} bytes left in the table", rest.len()),
                ));
            }
            let data_at = rest.len() - esize;
            // Later entries (nearer the start) replace earlier ones, as in the reference.
            self.table.insert(eguid, rest[data_at..hdr_at].to_vec());
            rest = &rest[..data_at];
            index += 1;
        }
        Ok(())
    }

    fn parse_metadata(&mut self) -> Result<()> {
        let Some(entry) = self.table.get(&SEV_METADATA_GUID) else {
            return Ok(());
        };
        let offset = u32_at(entry).ok_or_else(|| {
            self.err(
                "SEV metadata footer entry",
                format!("{} data bytes, need 4 for the offset", entry.len()),
            )
        })? as u64;
        if offset > self.len {
            return Err(self.err(
                "SEV metadata offset",
                format!(
                    "{offset:#x} from the end is before the start of a {:#x}-byte image",
                    self.len
                ),
            ));
        }
        let start = self.len - offset;
        let mut hdr = [0u8; METADATA_HEADER_LEN];
        self.read_at(start, &mut hdr).map_err(|_| {
            self.err(
                "SEV metadata header",
                format!("16 bytes at {start:#x} run past the end"),
            )
        })?;
        if hdr[0..4] != METADATA_SIGNATURE {
            return Err(self.err(
                "SEV metadata signature",
                format!("expected \"ASEV\", found {}", hex::encode(&hdr[0..4])),
            ));
        }
        let size = le32(&hdr[4..8]) as u64;
        let version = le32(&hdr[8..12]);
        let count = le32(&hdr[12..16]) as u64;
        if version != METADATA_VERSION {
            return Err(self.err(
                "SEV metadata version",
                format!("expected {METADATA_VERSION}, found {version}"),
            ));
        }
        // The reference slices the item area to `size` and then to the end of the image.
        let area_start = start + METADATA_HEADER_LEN as u64;
        let area_end = (start + size).min(self.len);
        let area = area_end.saturating_sub(area_start);
        let need = count * METADATA_ITEM_LEN as u64;
        if need > area {
            return Err(self.err(
                "SEV metadata num_items",
                format!("{count} items need {need} bytes, the header's area holds {area}"),
            ));
        }
        let mut items = vec![0u8; need as usize];
        self.read_at(area_start, &mut items)?;
        self.metadata = items
            .chunks_exact(METADATA_ITEM_LEN)
            .map(|c| MetadataSection {
                gpa: le32(&c[0..4]),
                size: le32(&c[4..8]),
                kind: SectionType::from_u32(le32(&c[8..12])),
            })
            .collect();
        Ok(())
    }

    /// Which kind of image this is.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty image (never the case for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Guest-physical address of the first byte.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// The footer table, by GUID.
    pub fn table(&self) -> &BTreeMap<Guid, Vec<u8>> {
        &self.table
    }

    /// The SEV metadata sections, in image order.
    pub fn metadata(&self) -> &[MetadataSection] {
        &self.metadata
    }

    /// True if a metadata section of this kind exists.
    pub fn has_section(&self, kind: SectionType) -> bool {
        self.metadata.iter().any(|s| s.kind == kind)
    }

    fn table_u32(&self, guid: Guid, entry: &'static str) -> Result<u32> {
        let data = self
            .table
            .get(&guid)
            .ok_or_else(|| Error::MissingTableEntry {
                image: self.kind.name(),
                entry,
                guid: guid.to_string(),
            })?;
        u32_at(data).ok_or_else(|| {
            self.err(
                format!("{entry} footer entry"),
                format!("{} data bytes, need 4", data.len()),
            )
        })
    }

    /// GPA of the SEV hashes table (kernel/initrd/cmdline), from the footer table.
    pub fn sev_hashes_table_gpa(&self) -> Result<u32> {
        self.table_u32(SEV_HASH_TABLE_RV_GUID, "SEV hash table")
    }

    /// True if the firmware advertises a non-zero SEV hashes table address.
    pub fn supports_sev_hashes_table(&self) -> bool {
        matches!(self.sev_hashes_table_gpa(), Ok(gpa) if gpa != 0)
    }

    /// The EIP at which application processors start (SEV-ES reset block).
    pub fn sev_es_reset_eip(&self) -> Result<u32> {
        self.table_u32(SEV_ES_RESET_BLOCK_GUID, "SEV-ES reset block")
    }

    /// The SVSM entry point: its footer offset plus the image's GPA.
    pub fn svsm_entry_eip(&self) -> Result<u64> {
        Ok(u64::from(self.table_u32(SVSM_INFO_GUID, "SVSM info")?) + self.gpa)
    }

    /// Feeds the image to `f` in order, in chunks whose sizes are multiples of 4096 (except
    /// possibly the last), without holding the whole image in memory.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) -> Result<()> {
        if let Source::Bytes(b) = &self.source {
            for c in b.chunks(CHUNK) {
                f(c);
            }
            return Ok(());
        }
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        while offset < self.len {
            let n = CHUNK.min((self.len - offset) as usize);
            self.read_at(offset, &mut buf[..n])?;
            f(&buf[..n]);
            offset += n as u64;
        }
        Ok(())
    }
}

fn entry_header(b: &[u8]) -> (u16, Guid) {
    let size = u16::from_le_bytes([b[0], b[1]]);
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[2..18]);
    (size, Guid::from_le_bytes(g))
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn u32_at(b: &[u8]) -> Option<u32> {
    b.get(0..4).map(le32)
}
