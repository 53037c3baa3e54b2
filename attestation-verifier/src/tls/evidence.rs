//! The attestation evidence a node puts in its TLS certificate, and how it is encoded.
//!
//! Extension OID: `2.25.8624642988473732942.1` (non-critical). `2.25` is the UUID arc
//! (ITU-T X.667); 8624642988473732942 is the integer of the UUID
//! `00000000-0000-0000-77b0-8a8e10c3ad4e`, chosen at random for Keynet, and `.1` is this
//! extension. The extension value is a CBOR map (RFC 8949), version 2:
//!
//! ```text
//! {
//!   "v": 2,                      ; format version; others are refused
//!   "platform": "snp" | "snp-simulated",
//!   "report": bstr,              ; the 1184-byte SEV-SNP report as the platform returned it
//!   "certs": [ { "kind": "vcek" | "vlek" | "ask" | "asvk" | "ark", "der": bstr } ],
//!   "identity": bstr,            ; the node's secp256k1 identity key, 33-byte compressed
//!   "endpoint": tstr,            ; "host:port" the node serves, as in the registry
//!   "profile": bstr              ; SHA-256 of the network profile the node runs under
//! }
//! ```
//!
//! Version 2 added `profile`: the hash of the rules the node runs under (registry
//! authority, manifest, authorisation rules, limits, minimum TCB), so two nodes of one
//! network provably run under the same rules and a client can require the network's.
//!
//! REPORT_DATA binds the report to this certificate: see [`super::binding`].

use serde::{Deserialize, Serialize};

/// The extension's OID, dotted.
pub const EVIDENCE_OID: &str = "2.25.8624642988473732942.1";
/// The same OID as arcs (each fits in a u64), for certificate builders.
pub const EVIDENCE_OID_ARCS: [u64; 4] = [2, 25, 8_624_642_988_473_732_942, 1];
/// The only format version.
pub const VERSION: u8 = 2;
/// Upper bound on an encoded evidence value: a report plus a few certificates.
pub const MAX_LEN: usize = 64 * 1024;

/// Which platform produced the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Platform {
    /// AMD SEV-SNP hardware.
    #[serde(rename = "snp")]
    Snp,
    /// A simulated SNP platform (tests and local development only; never AMD's roots).
    #[serde(rename = "snp-simulated")]
    SnpSimulated,
}

/// What a certificate in the evidence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CertRole {
    /// Chip endorsement key.
    Vcek,
    /// Loaded endorsement key.
    Vlek,
    /// AMD SEV signing key.
    Ask,
    /// AMD SEV VLEK signing key.
    Asvk,
    /// AMD root key.
    Ark,
}

/// One certificate as the platform provided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceCert {
    /// Its role.
    pub kind: CertRole,
    /// DER.
    #[serde(with = "serde_bytes_compat")]
    pub der: Vec<u8>,
}

/// The evidence carried in a node's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Format version ([`VERSION`]).
    pub v: u8,
    /// The platform.
    pub platform: Platform,
    /// The report bytes.
    #[serde(with = "serde_bytes_compat")]
    pub report: Vec<u8>,
    /// Certificates from the platform (VCEK/VLEK and possibly its chain).
    pub certs: Vec<EvidenceCert>,
    /// The node's identity key (compressed secp256k1).
    #[serde(with = "serde_bytes_compat")]
    pub identity: Vec<u8>,
    /// The endpoint the node serves.
    pub endpoint: String,
    /// SHA-256 of the network profile the node runs under (32 bytes).
    #[serde(with = "serde_bytes_compat")]
    pub profile: Vec<u8>,
}

/// Why evidence could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// Not CBOR of the expected shape.
    #[error("evidence: not a valid CBOR evidence map: {0}")]
    Cbor(String),
    /// Another version.
    #[error("evidence: version {0} is not supported (expected {VERSION})")]
    Version(u8),
    /// A field out of range.
    #[error("evidence: {field}: {reason}")]
    Field {
        /// Which.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Evidence {
    /// CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail for these plain types.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Decodes and checks the evidence fields.
    pub fn decode(bytes: &[u8]) -> Result<Evidence, EvidenceError> {
        if bytes.len() > MAX_LEN {
            return Err(EvidenceError::Field {
                field: "length",
                reason: format!("{} bytes exceeds {MAX_LEN}", bytes.len()),
            });
        }
        let e: Evidence =
            ciborium::from_reader(bytes).map_err(|e| EvidenceError::Cbor(e.to_string()))?;
        if e.v != VERSION {
            return Err(EvidenceError::Version(e.v));
        }
        if e.identity.len() != 33 || !matches!(e.identity[0], 2 | 3) {
            return Err(EvidenceError::Field {
                field: "identity",
                reason: format!(
                    "expected a 33-byte compressed secp256k1 key, found {} bytes",
                    e.identity.len()
                ),
            });
        }
        if e.profile.len() != 32 {
            return Err(EvidenceError::Field {
                field: "profile",
                reason: format!("expected 32 bytes, found {}", e.profile.len()),
            });
        }
        if e.endpoint.is_empty() || e.endpoint.len() > 255 || !e.endpoint.is_ascii() {
            return Err(EvidenceError::Field {
                field: "endpoint",
                reason: "expected a non-empty ASCII host:port of at most 255 bytes".into(),
            });
        }
        Ok(e)
    }

    /// The certificate with this role, if present.
    pub fn cert(&self, kind: CertRole) -> Option<&[u8]> {
        self.certs
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.der.as_slice())
    }
}

/// Byte strings as CBOR byte strings (not arrays of integers).
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}
