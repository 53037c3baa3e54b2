//! The certificate table of an extended guest request (GHCB spec, "SNP Extended Guest
//! Request"): entries of (GUID, offset, length) relative to the table start, ending with
//! an all-zero entry. GUIDs are in RFC 4122 byte order (`uuid_t`), unlike firmware tables.

use crate::abi::AbiError;

const ENTRY_LEN: usize = 24;
/// More entries than any platform provides; bounds the work on hostile input.
const MAX_ENTRIES: usize = 64;

/// What an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum CertKind {
    /// VCEK certificate (DER).
    Vcek,
    /// VLEK certificate (DER).
    Vlek,
    /// ASK certificate (DER).
    Ask,
    /// ARK certificate (DER).
    Ark,
    /// Any other GUID, e.g. extra platform information.
    Other([u8; 16]),
}

/// GUIDs of the known entries, in RFC 4122 order.
const KNOWN: [(&str, CertKind); 4] = [
    ("63da758d-e664-4564-adc5-f4b93be8accd", CertKind::Vcek),
    ("a8074bc2-a25a-483e-aae6-39c045a0b8a1", CertKind::Vlek),
    ("4ab7b379-bbac-4fe4-a02f-05aef327c782", CertKind::Ask),
    ("c0b406a4-a803-4952-9743-3fb6014cd0ae", CertKind::Ark),
];

fn guid_bytes(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let hex: Vec<u8> = s.bytes().filter(|c| *c != b'-').collect();
    for (i, o) in out.iter_mut().enumerate() {
        let pair = std::str::from_utf8(&hex[2 * i..2 * i + 2]).unwrap_or("00");
        *o = u8::from_str_radix(pair, 16).unwrap_or(0);
    }
    out
}

/// Formats 16 RFC-order bytes as a GUID string.
pub fn guid_string(g: &[u8; 16]) -> String {
    let h = hex::encode(g);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl CertKind {
    fn from_guid(g: [u8; 16]) -> CertKind {
        KNOWN
            .iter()
            .find(|(s, _)| guid_bytes(s) == g)
            .map(|(_, k)| *k)
            .unwrap_or(CertKind::Other(g))
    }
}

/// One entry with its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    /// What the GUID says it is.
    pub kind: CertKind,
    /// The entry's bytes.
    pub data: Vec<u8>,
}

/// Parses a certificate table. Entries must lie inside `table`.
pub fn parse(table: &[u8]) -> Result<Vec<CertEntry>, AbiError> {
    let mut entries = Vec::new();
    for i in 0..=MAX_ENTRIES {
        let at = i * ENTRY_LEN;
        let Some(e) = table.get(at..at + ENTRY_LEN) else {
            return Err(AbiError::Field {
                field: "certificate table",
                reason: format!(
                    "entry {i} at {at:#x} runs past the end ({:#x} bytes) before the all-zero terminator",
                    table.len()
                ),
            });
        };
        if e.iter().all(|b| *b == 0) {
            return Ok(entries);
        }
        if i == MAX_ENTRIES {
            break;
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&e[..16]);
        let offset = u32::from_le_bytes([e[16], e[17], e[18], e[19]]) as usize;
        let length = u32::from_le_bytes([e[20], e[21], e[22], e[23]]) as usize;
        let data = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| AbiError::Field {
                field: "certificate table entry",
                reason: format!(
                    "entry {i} ({}) claims {length} bytes at offset {offset:#x}, beyond the {:#x}-byte table",
                    guid_string(&guid),
                    table.len()
                ),
            })?;
        entries.push(CertEntry {
            kind: CertKind::from_guid(guid),
            data: data.to_vec(),
        });
    }
    Err(AbiError::Field {
        field: "certificate table",
        reason: format!("more than {MAX_ENTRIES} entries"),
    })
}
