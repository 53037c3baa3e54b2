//! The published measurement manifest: which launch digests an honest node reports, one
//! per launch shape. Versioned by its `schema` field; unknown versions are refused.
//!
//! ```json
//! { "schema": "keynet.measurements/v1",
//!   "image": { "name": "keynet-guest", "version": "0.1.0" },
//!   "measurements": [
//!     { "digest": "<96 hex digits>",
//!       "shape": { "vcpus": 4, "vcpu_type": "EPYC-Milan", "vmm": "QEMU", "guest_features": "0x1" } } ] }
//! ```

use serde::{Deserialize, Serialize};

/// The schema this crate reads and writes.
pub const SCHEMA_V1: &str = "keynet.measurements/v1";

/// A manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be [`SCHEMA_V1`].
    pub schema: String,
    /// What was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageId>,
    /// The allowed digests.
    pub measurements: Vec<Entry>,
}

/// The measured image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageId {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// One allowed digest and the launch it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// SNP launch digest, 96 hex digits.
    pub digest: String,
    /// The launch shape (free-form; recorded for people, not matched).
    #[serde(default)]
    pub shape: serde_json::Map<String, serde_json::Value>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON of the right shape.
    #[error("manifest is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Another schema.
    #[error("manifest schema is '{found}', expected '{SCHEMA_V1}'")]
    Schema {
        /// What the file says.
        found: String,
    },
    /// A digest that is not 48 bytes of hex.
    #[error("manifest entry {index}: digest '{digest}' is not 96 hex digits")]
    Digest {
        /// Entry index.
        index: usize,
        /// The value.
        digest: String,
    },
    /// No entries at all.
    #[error("manifest has no measurements: it would reject every report")]
    Empty,
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn parse(json: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = serde_json::from_slice(json)?;
        if m.schema != SCHEMA_V1 {
            return Err(ManifestError::Schema { found: m.schema });
        }
        if m.measurements.is_empty() {
            return Err(ManifestError::Empty);
        }
        for (index, e) in m.measurements.iter().enumerate() {
            if e.digest.len() != 96 || hex::decode(&e.digest).is_err() {
                return Err(ManifestError::Digest {
                    index,
                    digest: e.digest.clone(),
                });
            }
        }
        Ok(m)
    }

    /// The digests as bytes.
    pub fn digests(&self) -> Vec<[u8; 48]> {
        self.measurements
            .iter()
            .filter_map(|e| hex::decode(&e.digest).ok()?.try_into().ok())
            .collect()
    }

    /// The entry whose digest equals `m`.
    pub fn find(&self, m: &[u8; 48]) -> Option<&Entry> {
        let h = hex::encode(m);
        self.measurements
            .iter()
            .find(|e| e.digest.eq_ignore_ascii_case(&h))
    }
}
