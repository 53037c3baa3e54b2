//! The SEV hashes table QEMU places in guest memory for measured direct boot: SHA-256 of
//! the kernel, the initrd and the command line, in QEMU's exact layout
//! (`target/i386/sev.c`, `SevHashTable`, padded to 16 bytes).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::gctx::PAGE;
use crate::guid::Guid;

const TABLE_HEADER_GUID: Guid = Guid::from_fields(
    0x9438_d606,
    0x4f22,
    0x4cc9,
    [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21],
);
const KERNEL_GUID: Guid = Guid::from_fields(
    0x4de7_9437,
    0xabd2,
    0x427f,
    [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b],
);
const INITRD_GUID: Guid = Guid::from_fields(
    0x44ba_f731,
    0x3a2f,
    0x4bd7,
    [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d],
);
const CMDLINE_GUID: Guid = Guid::from_fields(
    0x97d0_2dd8,
    0xbd20,
    0x4c94,
    [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a],
);

/// `guid(16) + length(2) + sha256(32)`.
const ENTRY_LEN: usize = 50;
/// `guid(16) + length(2) + 3 entries`.
const TABLE_LEN: usize = 18 + 3 * ENTRY_LEN;
/// Table length padded to a multiple of 16, as QEMU writes it.
pub const PADDED_TABLE_LEN: usize = (TABLE_LEN + 15) & !15;

/// Read buffer for streamed hashing: large enough to amortise syscalls, small enough that
/// memory does not depend on the input's size.
const READ_BUF: usize = 1 << 20;

/// The three hashes of a direct-boot launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevHashes {
    /// SHA-256 of the kernel file.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd file (of the empty string when there is none).
    pub initrd: [u8; 32],
    /// SHA-256 of the command line followed by a NUL byte.
    pub cmdline: [u8; 32],
}

/// SHA-256 and size of a file, read in fixed-size chunks.
pub fn sha256_file(what: &'static str, path: &Path) -> Result<([u8; 32], u64)> {
    let io = |source| Error::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

/// SHA-256 of the command line as the guest sees it: the bytes followed by a NUL.
pub fn cmdline_sha256(append: Option<&str>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(append.unwrap_or("").as_bytes());
    h.update([0u8]);
    h.finalize().into()
}

impl SevHashes {
    /// Hashes the kernel, the optional initrd and the optional command line.
    pub fn from_files(kernel: &Path, initrd: Option<&Path>, append: Option<&str>) -> Result<Self> {
        let (kernel, _) = sha256_file("kernel", kernel)?;
        let initrd = match initrd {
            Some(p) => sha256_file("initrd", p)?.0,
            None => Sha256::digest([]).into(),
        };
        Ok(SevHashes {
            kernel,
            initrd,
            cmdline: cmdline_sha256(append),
        })
    }

    /// The padded table, byte for byte as QEMU writes it.
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[0..16].copy_from_slice(&TABLE_HEADER_GUID.to_le_bytes());
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let entries = [
            (CMDLINE_GUID, &self.cmdline),
            (INITRD_GUID, &self.initrd),
            (KERNEL_GUID, &self.kernel),
        ];
        for (i, (guid, hash)) in entries.into_iter().enumerate() {
            let at = 18 + i * ENTRY_LEN;
            t[at..at + 16].copy_from_slice(&guid.to_le_bytes());
            t[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(hash);
        }
        t
    }

    /// The 4 KiB page holding the table at `offset` within the page.
    pub fn page(&self, offset: usize) -> Result<Vec<u8>> {
        if offset + PADDED_TABLE_LEN > PAGE {
            return Err(Error::firmware(
                "firmware",
                "SEV hash table GPA",
                format!(
                    "table at page offset {offset:#x} would cross the page end ({PADDED_TABLE_LEN} bytes)"
                ),
            ));
        }
        let mut page = vec![0u8; PAGE];
        page[offset..offset + PADDED_TABLE_LEN].copy_from_slice(&self.table());
        Ok(page)
    }
}
