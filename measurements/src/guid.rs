//! GUIDs as they are stored in firmware tables: the mixed-endian (`bytes_le`) encoding.

use std::fmt;

/// A GUID in its on-disk little-endian encoding (first three fields byte-swapped).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// Builds a GUID from its textual fields, e.g. `96b582de-1fb2-45f7-baea-a366c55a082d`
    /// is `from_fields(0x96b582de, 0x1fb2, 0x45f7, [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d])`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// Wraps 16 bytes read from a firmware image.
    pub const fn from_le_bytes(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// The on-disk (little-endian) encoding.
    pub const fn to_le_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3],
            b[2],
            b[1],
            b[0],
            b[5],
            b[4],
            b[7],
            b[6],
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_encoding_matches_python_uuid_bytes_le() {
        // uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le.hex()
        let g = Guid::from_fields(
            0x96b5_82de,
            0x1fb2,
            0x45f7,
            [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
        );
        assert_eq!(
            hex::encode(g.to_le_bytes()),
            "de82b596b21ff745baeaa366c55a082d"
        );
        assert_eq!(g.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
    }
}
