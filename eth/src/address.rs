//! Ethereum addresses: 20 bytes, with one written form (EIP-55) and two accepted ones.

use std::fmt;
use std::str::FromStr;

use k256::ecdsa::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keccak256;

/// Why a text is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AddressError {
    reason: String,
}

impl AddressError {
    fn new(reason: impl Into<String>) -> Self {
        AddressError {
            reason: reason.into(),
        }
    }

    /// Why, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A 20-byte Ethereum address. Its text form is `0x` and 40 hex digits: written with the
/// EIP-55 checksum; read in all-lowercase (unchecked) or with a correct checksum, since a
/// wrong mixed-case checksum means a mistyped address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u8; 20]);

impl Address {
    /// The address with these bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Address(bytes)
    }

    /// Its 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The EIP-55 form: hex digit i is uppercase when it is a letter and nibble i of
    /// keccak256(lowercase hex) is 8 or more.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
            out.push(if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256 of the
/// uncompressed point without its 0x04 prefix.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let xy = point.as_bytes().split_first().map_or(&[][..], |(_, xy)| xy);
    let hash = keccak256(xy);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    Address(address)
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| AddressError::new("an address starts with 0x"))?;
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|e| {
            AddressError::new(format!("expected 0x followed by 40 hex digits: {e}"))
        })?;
        let address = Address(bytes);
        if digits.bytes().any(|b| b.is_ascii_uppercase()) {
            let checksummed = address.to_checksum();
            if s != checksummed {
                return Err(AddressError::new(format!(
                    "EIP-55 checksum mismatch (mistyped address?): the checksummed form of \
                     these digits is {checksummed}"
                )));
            }
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
