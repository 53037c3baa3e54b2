//! The authorisation text: built by [`AuthMessage::to_text`], read back strictly by
//! [`AuthMessage::parse`] (one spelling per message; every error names the line and field).

use super::time::{format_utc, parse_utc};
use keynet_eth::Address;

/// The fields of an authorisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthMessage {
    /// The node network's domain (what the user's wallet shows).
    pub domain: String,
    /// The user's address.
    pub address: Address,
    /// sha256 of the request being authorised.
    pub request_digest: [u8; 32],
    /// The network id (from the registry).
    pub network: String,
    /// A fresh random value; a node accepts each (address, nonce) once.
    pub nonce: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a text is not an authorisation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("auth message line {line} ({field}): {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

const HEADER_SUFFIX: &str = " wants you to sign in with your Ethereum account:";

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b':'
        })
}

fn valid_network(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn valid_nonce(n: &str) -> bool {
    (8..=64).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl AuthMessage {
    /// The text the user signs.
    pub fn to_text(&self) -> String {
        format!(
            "{}{HEADER_SUFFIX}\n{}\n\nKeynet request: 0x{}\n\nURI: keynet://{}\nVersion: 1\n\
             Chain ID: 1\nNonce: {}\nIssued At: {}\nExpiration Time: {}",
            self.domain,
            self.address.to_checksum(),
            hex::encode(self.request_digest),
            self.network,
            self.nonce,
            format_utc(self.issued_at),
            format_utc(self.expires_at),
        )
    }

    /// Parses the text; it must be exactly what [`AuthMessage::to_text`] writes.
    pub fn parse(text: &str) -> Result<AuthMessage, ParseError> {
        let lines: Vec<&str> = text.split('\n').collect();
        let err = |line: usize, field: &'static str, reason: String| ParseError {
            line,
            field,
            reason,
        };
        if lines.len() != 11 {
            return Err(err(
                lines.len().min(12),
                "message",
                format!(
                    "expected 11 lines (no final newline), found {}",
                    lines.len()
                ),
            ));
        }
        let get = |i: usize| lines.get(i).copied().unwrap_or("");
        let field = |i: usize, prefix: &str, name: &'static str| -> Result<&str, ParseError> {
            get(i)
                .strip_prefix(prefix)
                .ok_or_else(|| err(i + 1, name, format!("expected '{prefix}...'")))
        };
        let domain = get(0)
            .strip_suffix(HEADER_SUFFIX)
            .ok_or_else(|| err(1, "domain", format!("expected '<domain>{HEADER_SUFFIX}'")))?;
        if !valid_domain(domain) {
            return Err(err(
                1,
                "domain",
                format!("'{domain}' is not a lowercase host name"),
            ));
        }
        let address: Address = get(1)
            .parse()
            .map_err(|e: keynet_eth::AddressError| err(2, "address", e.to_string()))?;
        if get(1) != address.to_checksum() {
            return Err(err(
                2,
                "address",
                "must be written in its EIP-55 checksummed form".into(),
            ));
        }
        for blank in [2, 4] {
            if !get(blank).is_empty() {
                return Err(err(blank + 1, "blank line", "must be empty".into()));
            }
        }
        let digest_hex = field(3, "Keynet request: 0x", "request digest")?;
        let mut request_digest = [0u8; 32];
        if digest_hex.len() != 64 || digest_hex.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(
                4,
                "request digest",
                "expected 64 lowercase hex digits".into(),
            ));
        }
        hex::decode_to_slice(digest_hex, &mut request_digest)
            .map_err(|e| err(4, "request digest", e.to_string()))?;
        let network = field(5, "URI: keynet://", "URI")?;
        if !valid_network(network) {
            return Err(err(6, "URI", format!("'{network}' is not a network id")));
        }
        if get(6) != "Version: 1" {
            return Err(err(7, "Version", "expected 'Version: 1'".into()));
        }
        if get(7) != "Chain ID: 1" {
            return Err(err(8, "Chain ID", "expected 'Chain ID: 1'".into()));
        }
        let nonce = field(8, "Nonce: ", "Nonce")?;
        if !valid_nonce(nonce) {
            return Err(err(9, "Nonce", "expected 8-64 letters and digits".into()));
        }
        let time = |i: usize, prefix: &str, name: &'static str| -> Result<u64, ParseError> {
            let v = field(i, prefix, name)?;
            parse_utc(v)
                .ok_or_else(|| err(i + 1, name, format!("'{v}' is not YYYY-MM-DDTHH:MM:SSZ")))
        };
        let issued_at = time(9, "Issued At: ", "Issued At")?;
        let expires_at = time(10, "Expiration Time: ", "Expiration Time")?;
        if expires_at <= issued_at {
            return Err(err(11, "Expiration Time", "must be after Issued At".into()));
        }
        Ok(AuthMessage {
            domain: domain.to_owned(),
            address,
            request_digest,
            network: network.to_owned(),
            nonce: nonce.to_owned(),
            issued_at,
            expires_at,
        })
    }
}
