//! The registry's value types and their one accepted text form each, so that a parsed
//! registry has exactly one canonical message.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use k256::ecdsa::VerifyingKey;
use k256::elliptic_curve::group::GroupEncoding;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a valid registry value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ValueError {
    reason: String,
}

impl ValueError {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        ValueError {
            reason: reason.into(),
        }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A node's identity public key: a compressed secp256k1 point (33 bytes, prefix 02 or
/// 03), checked to be on the curve when made. Its text form is `0x` and 66 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey([u8; 33]);

impl IdentityKey {
    /// From SEC1 bytes; only the compressed form is accepted, so each key has one encoding.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, ValueError> {
        let compressed: [u8; 33] = bytes.try_into().map_err(|_| {
            ValueError::new(format!(
                "expected a 33-byte compressed secp256k1 key, found {} bytes",
                bytes.len()
            ))
        })?;
        if !matches!(compressed[0], 2 | 3) {
            return Err(ValueError::new(format!(
                "expected a compressed key (prefix 02 or 03), found prefix {:02x}",
                compressed[0]
            )));
        }
        VerifyingKey::from_sec1_bytes(&compressed)
            .map_err(|_| ValueError::new("not a point on secp256k1"))?;
        Ok(IdentityKey(compressed))
    }

    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        IdentityKey(key.as_affine().to_bytes().into())
    }

    pub const fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }

    /// The key itself (decompressed on each call; the bytes are what is compared).
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_sec1_bytes(&self.0)
            .unwrap_or_else(|_| unreachable!("an IdentityKey is checked to be on the curve"))
    }
}

impl FromStr for IdentityKey {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| ValueError::new("an identity key starts with 0x"))?;
        if digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ValueError::new(
                "an identity key is written in lowercase hex",
            ));
        }
        let mut bytes = [0u8; 33];
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|e| ValueError::new(format!("expected 0x followed by 66 hex digits: {e}")))?;
        IdentityKey::from_sec1(&bytes)
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({self})")
    }
}

/// A stake in wei. Its text form is a decimal string without sign or leading zeros (JSON
/// numbers lose precision above 2^53 in many tools); u128 holds any realistic amount and
/// larger values are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stake(u128);

impl Stake {
    pub const fn from_wei(wei: u128) -> Self {
        Stake(wei)
    }

    pub const fn wei(&self) -> u128 {
        self.0
    }
}

impl FromStr for Stake {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::new(format!(
                "expected a decimal amount of wei (digits only), found {s:?}"
            )));
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(ValueError::new(format!(
                "a wei amount has no leading zeros, found {s:?}"
            )));
        }
        s.parse().map(Stake).map_err(|_| {
            ValueError::new(format!(
                "{s} wei exceeds the largest supported stake, 2^128 - 1 wei"
            ))
        })
    }
}

impl fmt::Display for Stake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Checks a registry endpoint, `host:port`. Host: a lowercase DNS name (labels of
/// `a-z 0-9 -`, not starting or ending with `-`), a dotted IPv4 address, or a bracketed
/// IPv6 address in its RFC 5952 form (`[2001:db8::1]`); port: 1 to 65535 without leading
/// zeros. One spelling per endpoint, so duplicates and mismatches are plain comparisons.
pub fn validate_endpoint(endpoint: &str) -> Result<(), ValueError> {
    let port = if let Some(rest) = endpoint.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| ValueError::new("expected [ipv6]:port"))?;
        let ip: Ipv6Addr = host
            .parse()
            .map_err(|_| ValueError::new(format!("{host:?} is not an IPv6 address")))?;
        if ip.to_string() != host {
            return Err(ValueError::new(format!(
                "write the IPv6 address in its canonical form, [{ip}]"
            )));
        }
        port
    } else {
        let (host, port) = endpoint
            .rsplit_once(':')
            .ok_or_else(|| ValueError::new("expected host:port"))?;
        if host.contains(':') {
            return Err(ValueError::new(
                "an IPv6 address is written in brackets, [addr]:port",
            ));
        }
        validate_host(host)?;
        port
    };
    let valid_port = !port.starts_with('0')
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !valid_port {
        return Err(ValueError::new(format!(
            "port {port:?} is not a number from 1 to 65535 without leading zeros"
        )));
    }
    Ok(())
}

/// A lowercase DNS name or a dotted IPv4 address.
fn validate_host(host: &str) -> Result<(), ValueError> {
    if host.is_empty() || host.len() > 253 {
        return Err(ValueError::new(
            "the host name must have 1 to 253 characters",
        ));
    }
    let last_label_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    if last_label_numeric {
        // Not a DNS name (no top-level domain is numeric), so it must be an IPv4 address;
        // std refuses octets with leading zeros, which some resolvers read as octal.
        return host.parse::<Ipv4Addr>().map(|_| ()).map_err(|_| {
            ValueError::new(format!("{host:?} is not a dotted-decimal IPv4 address"))
        });
    }
    for label in host.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(ValueError::new(format!(
                "{host:?} is not a lowercase DNS name (labels of 1 to 63 characters \
                 a-z, 0-9 and inner -)"
            )));
        }
    }
    Ok(())
}

/// 1 to 64 characters of `A-Z a-z 0-9 . _ -`: needs no escaping in JSON and reads
/// unambiguously in a wallet's signing prompt.
pub(super) fn validate_network_id(id: &str) -> Result<(), ValueError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValueError::new(format!(
            "{id:?} is not 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"
        )))
    }
}

/// Serialises and deserialises through the text form, for API messages that carry these
/// values.
macro_rules! serde_via_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_via_text!(IdentityKey, Stake);
