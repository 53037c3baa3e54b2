//! A minimal DER reader for the few structures x509-parser leaves raw: RSASSA-PSS
//! parameters, AMD's extension values, and the TBS part of a CRL.

/// One tag-length-value element.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    /// The tag byte (single-byte tags only; AMD structures use no others).
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element, header included.
    pub raw: &'a [u8],
}

/// Reads one element from the front of `b`; returns it and the rest. Definite lengths in
/// minimal form only.
pub fn read(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = b.get(2..2 + n)?;
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes.iter().fold(0usize, |acc, x| (acc << 8) | *x as usize);
        if len < 0x80 {
            return None;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    let raw = b.get(..end)?;
    Some((
        Tlv {
            tag,
            value: &raw[hdr..],
            raw,
        },
        &b[end..],
    ))
}

/// Reads exactly one element spanning all of `b`.
pub fn read_all(b: &[u8]) -> Option<Tlv<'_>> {
    match read(b)? {
        (t, []) => Some(t),
        _ => None,
    }
}

/// All elements inside a constructed value.
pub fn children(mut b: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (t, rest) = read(b)?;
        out.push(t);
        b = rest;
    }
    Some(out)
}

/// A non-negative INTEGER of at most 8 bytes; a leading zero byte is allowed only where
/// DER requires it (high bit of the next byte set).
pub fn uint(t: &Tlv<'_>) -> Option<u64> {
    if t.tag != 0x02 || t.value.is_empty() || t.value.len() > 9 {
        return None;
    }
    let v = t.value;
    if v[0] & 0x80 != 0 {
        return None; // negative
    }
    if v.len() > 1 && v[0] == 0 && v[1] & 0x80 == 0 {
        return None; // non-minimal
    }
    let digits = if v[0] == 0 && v.len() > 1 { &v[1..] } else { v };
    if digits.len() > 8 {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x)),
    )
}

/// Encoded OID contents (without tag/length) of the algorithms AMD uses.
pub mod oid {
    /// 2.16.840.1.101.3.4.2.2, SHA-384.
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    /// 1.2.840.113549.1.1.8, MGF1.
    pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
}
