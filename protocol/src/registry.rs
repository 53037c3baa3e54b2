//! The signed staking registry: which nodes make up a Keynet network in an epoch.
//!
//! The authority signs the registry with an Ethereum wallet key, so any wallet
//! (`personal_sign`, `cast wallet sign`, eth_account) can produce the signature and the
//! authority is identified by its Ethereum address.
//!
//! # File format
//!
//! ```json
//! {"registry": {...}, "signature": "0x<r 32 bytes><s 32 bytes><v 1 byte>"}
//! ```
//!
//! # Signed message
//!
//! The signature is an EIP-191 personal-message signature over the **canonical message**:
//! the registry object as JSON with keys sorted, no whitespace, in UTF-8, every value in
//! the one form this module accepts (so it is also the RFC 8785 canonical JSON of the
//! registry object):
//!
//! ```text
//! {"epoch":<E>,"min_stake":"<wei>","network_id":"<id>","nodes":[<node>,...],"threshold":<T>}
//! <node> = {"endpoint":"<host:port>","identity_key":"0x<66 lowercase hex>","stake":"<wei>","staker":"0x<EIP-55>"}
//! ```
//!
//! `E` and `T` are plain decimal integers; wei amounts are decimal strings without leading
//! zeros; nodes keep their order in the document. The file's bytes are never hashed: the
//! verifier rebuilds the message from the parsed registry, so whitespace, key order and the
//! letter case of the staker address in the file do not matter, but every value does.
//!
//! # Verification
//!
//! [`SignedRegistry::verify`] refuses, each with a [`RegistryError`] naming the field:
//! malformed JSON, unknown or repeated keys, missing fields, malformed values (hex, key,
//! address checksum, stake, endpoint, network id), an epoch above [`MAX_EPOCH`], an empty
//! node list, duplicate identity keys or endpoints, a threshold above the node count, a
//! malformed signature, and a signer other than the authority. High-s signatures are
//! accepted (normalised before recovery), as Ethereum's `ecrecover` and eth_account do:
//! wallets never produce them, but some key stores do, and the signature is never used as
//! an identifier, so its malleability is harmless here.
//!
//! Verification says nothing about freshness: a registry of an older epoch signed by the
//! same authority still verifies. Callers must refuse epochs below the one they hold.

mod strict_json;
mod values;

use std::collections::HashMap;

use k256::ecdsa::SigningKey;
use serde_json::{Map, Value};

use keynet_eth::{Address, SignatureError, eip191_hash, eip191_recover, eip191_sign};
use keynet_threshold::dkg::Participant;
use strict_json::Json;
pub use values::{IdentityKey, Stake, ValueError, validate_endpoint};

/// Largest accepted epoch, 2^53 - 1: JavaScript wallets and many JSON tools hold numbers
/// as doubles, so a larger epoch would not survive their round trip and they would sign
/// other bytes than the ones we verify.
pub const MAX_EPOCH: u64 = (1 << 53) - 1;

/// A network's membership in one epoch, as the registry authority published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Names the network, so a registry of one network is never taken for another's.
    /// 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
    pub network_id: String,
    /// Increases with every new registry; at most [`MAX_EPOCH`].
    pub epoch: u64,
    /// Signers needed for a threshold operation; 0 means the default, ceil(2n/3) of the n
    /// listed nodes (see [`Registry::threshold`]).
    pub threshold: u32,
    /// A node staked below this is listed but refused as a peer.
    pub min_stake: Stake,
    /// The nodes, in the authority's order (the order is signed).
    pub nodes: Vec<NodeEntry>,
}

/// One node of the registry. Its serde form (each value in its text form) is what
/// `/v1/handshake` serves; a registry document is read only by [`SignedRegistry::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeEntry {
    /// The node's identity key, generated inside its VM; unique in the registry.
    pub identity_key: IdentityKey,
    /// Who staked for the node. One staker may stake several nodes.
    pub staker: Address,
    /// The node's stake in wei.
    pub stake: Stake,
    /// Where the node listens, `host:port` (see [`validate_endpoint`]); unique in the
    /// registry.
    pub endpoint: String,
}

impl Registry {
    /// Parses a bare registry object (the value of `"registry"` in a document) and
    /// validates it, with the same strictness as [`SignedRegistry::verify`]. For tools that
    /// prepare a registry for signing; a node must only ever load a verified one.
    pub fn from_json(json: &[u8]) -> Result<Registry, RegistryError> {
        let value = strict_json::parse(json)?;
        registry_from_json(&value, "registry")
    }

    /// Checks the rules a registry must satisfy beyond its types: network id and endpoint
    /// syntax, epoch range, at least one node, unique identity keys and endpoints,
    /// threshold within the node count.
    pub fn validate(&self) -> Result<(), RegistryError> {
        values::validate_network_id(&self.network_id)
            .map_err(|e| RegistryError::field("registry.network_id", e))?;
        if self.epoch > MAX_EPOCH {
            return Err(RegistryError::field(
                "registry.epoch",
                format!(
                    "{} exceeds the largest epoch 2^53 - 1 = {MAX_EPOCH}, beyond which JSON \
                     tools lose precision",
                    self.epoch
                ),
            ));
        }
        if self.nodes.is_empty() {
            return Err(RegistryError::field(
                "registry.nodes",
                "the registry lists no nodes",
            ));
        }
        let mut keys = HashMap::new();
        let mut endpoints = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            validate_endpoint(&node.endpoint)
                .map_err(|e| RegistryError::field(format!("registry.nodes[{i}].endpoint"), e))?;
            if let Some(first) = keys.insert(node.identity_key, i) {
                return Err(RegistryError::field(
                    format!("registry.nodes[{i}].identity_key"),
                    format!("{} duplicates registry.nodes[{first}]", node.identity_key),
                ));
            }
            if let Some(first) = endpoints.insert(node.endpoint.to_ascii_lowercase(), i) {
                return Err(RegistryError::field(
                    format!("registry.nodes[{i}].endpoint"),
                    format!("{} duplicates registry.nodes[{first}]", node.endpoint),
                ));
            }
        }
        if usize::try_from(self.threshold).map_or(true, |t| t > self.nodes.len()) {
            return Err(RegistryError::field(
                "registry.threshold",
                format!(
                    "{} exceeds the number of nodes ({})",
                    self.threshold,
                    self.nodes.len()
                ),
            ));
        }
        Ok(())
    }

    /// The canonical message the authority signs (see the module documentation): the
    /// registry as JSON with sorted keys and no whitespace.
    pub fn canonical_message(&self) -> String {
        self.to_value().to_string()
    }

    /// The registry as a JSON value whose objects hold their keys in sorted order.
    fn to_value(&self) -> Value {
        // Keys are inserted in sorted order, so the output is sorted whether serde_json's
        // map keeps insertion order (feature `preserve_order`) or sorts.
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                let mut node = Map::new();
                node.insert("endpoint".into(), Value::from(n.endpoint.as_str()));
                node.insert(
                    "identity_key".into(),
                    Value::from(n.identity_key.to_string()),
                );
                node.insert("stake".into(), Value::from(n.stake.to_string()));
                node.insert("staker".into(), Value::from(n.staker.to_checksum()));
                Value::Object(node)
            })
            .collect();
        let mut registry = Map::new();
        registry.insert("epoch".into(), Value::from(self.epoch));
        registry.insert("min_stake".into(), Value::from(self.min_stake.to_string()));
        registry.insert("network_id".into(), Value::from(self.network_id.as_str()));
        registry.insert("nodes".into(), Value::Array(nodes));
        registry.insert("threshold".into(), Value::from(self.threshold));
        Value::Object(registry)
    }

    /// The EIP-191 hash of the canonical message: what the authority's key signs.
    pub fn signing_hash(&self) -> [u8; 32] {
        eip191_hash(self.canonical_message().as_bytes())
    }

    /// Signers needed for a threshold operation: the explicit threshold, or ceil(2n/3) of
    /// the n listed nodes when it is 0 (nodes below the minimum stake count in n).
    pub fn threshold(&self) -> u32 {
        if self.threshold != 0 {
            return self.threshold;
        }
        let n = self.nodes.len() as u64;
        u32::try_from((2 * n).div_ceil(3)).unwrap_or(u32::MAX)
    }

    /// The entry of the node with this identity key, if it is listed.
    pub fn member(&self, identity_key: &IdentityKey) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.identity_key == *identity_key)
    }

    /// The participant index of the node with this identity key in the threshold
    /// protocols: its 1-based position in the registry (the order is signed, so every node
    /// numbers every other the same way).
    pub fn participant(&self, identity_key: &IdentityKey) -> Option<Participant> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.identity_key == *identity_key)?;
        Participant::try_from(i + 1).ok()
    }

    /// The entry of participant `p` (see [`Registry::participant`]).
    pub fn entry(&self, p: Participant) -> Option<&NodeEntry> {
        self.nodes.get(usize::from(p).checked_sub(1)?)
    }

    /// Every node with its participant index.
    pub fn participants(&self) -> impl Iterator<Item = (Participant, &NodeEntry)> {
        (1..=Participant::MAX).zip(&self.nodes)
    }

    /// Decides whether a peer may connect: it must be listed, staked at least the minimum,
    /// and present the endpoint the registry lists for it (host compared without regard to
    /// ASCII case, as DNS does). The refusal says why, for the log.
    pub fn check_peer(
        &self,
        identity_key: &IdentityKey,
        presented_endpoint: &str,
    ) -> Result<&NodeEntry, PeerRefusal> {
        let entry = self.member(identity_key).ok_or(PeerRefusal::NotMember {
            identity_key: *identity_key,
        })?;
        if entry.stake < self.min_stake {
            return Err(PeerRefusal::StakeTooLow {
                stake: entry.stake,
                min: self.min_stake,
            });
        }
        if !entry.endpoint.eq_ignore_ascii_case(presented_endpoint) {
            return Err(PeerRefusal::EndpointMismatch {
                registry: entry.endpoint.clone(),
                presented: presented_endpoint.to_owned(),
            });
        }
        Ok(entry)
    }
}

/// A registry with the authority's signature, as stored in the registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRegistry {
    pub registry: Registry,
    /// `r || s || v`, v = 27/28 when we sign (0/1 also accepted when verifying).
    pub signature: [u8; 65],
}

impl SignedRegistry {
    /// Parses and validates a registry file and checks that `authority` signed it; the
    /// only way a node should obtain a [`Registry`].
    pub fn verify(json: &[u8], authority: &Address) -> Result<Registry, RegistryError> {
        let signed = Self::parse_unverified(json)?;
        let recovered = signed.signer()?;
        if recovered != *authority {
            return Err(RegistryError::WrongAuthority {
                expected: *authority,
                recovered,
            });
        }
        Ok(signed.registry)
    }

    /// Parses and validates a registry file without checking who signed it (for tools
    /// that display a document, or to learn the signer with [`SignedRegistry::signer`]).
    pub fn parse_unverified(json: &[u8]) -> Result<SignedRegistry, RegistryError> {
        let document = strict_json::parse(json)?;
        let fields = strict_json::object(&document, "", &["registry", "signature"])?;
        let registry = registry_from_json(fields.get("registry")?, "registry")?;
        let signature =
            parse_signature(strict_json::string(fields.get("signature")?, "signature")?)
                .map_err(|e| RegistryError::field("signature", e))?;
        Ok(SignedRegistry {
            registry,
            signature,
        })
    }

    /// The address whose key made the signature over this registry's canonical message.
    /// A registry changed after signing yields some other address, not an error.
    pub fn signer(&self) -> Result<Address, RegistryError> {
        Ok(eip191_recover(
            self.registry.canonical_message().as_bytes(),
            &self.signature,
        )?)
    }

    /// The registry file: pretty-printed JSON with sorted keys and a final newline.
    pub fn to_json(&self) -> String {
        let mut document = Map::new();
        document.insert("registry".into(), self.registry.to_value());
        document.insert(
            "signature".into(),
            Value::from(format!("0x{}", hex::encode(self.signature))),
        );
        format!("{:#}\n", Value::Object(document))
    }
}

/// Signs a registry as a wallet would (`personal_sign` of the canonical message):
/// recoverable ECDSA, low s, v = 27/28. Refuses a registry that
/// [`Registry::validate`] refuses, since no verifier would accept it.
pub fn sign(registry: Registry, key: &SigningKey) -> Result<SignedRegistry, RegistryError> {
    registry.validate()?;
    let signature = eip191_sign(registry.canonical_message().as_bytes(), key)?;
    Ok(SignedRegistry {
        registry,
        signature,
    })
}

/// Why a peer is refused; its `Display` is the reason to log.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefusal {
    #[error("identity key {identity_key} is not in the registry")]
    NotMember { identity_key: IdentityKey },
    #[error("stake {stake} wei is below the registry minimum {min} wei")]
    StakeTooLow { stake: Stake, min: Stake },
    #[error("presented endpoint {presented} does not match the registered {registry}")]
    EndpointMismatch { registry: String, presented: String },
}

/// Why a registry document was refused. Field names are paths into the document, such as
/// `registry.nodes[2].staker`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("registry document is not valid JSON: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("registry document lacks `{field}`")]
    MissingField { field: String },
    #[error("registry document has an unknown field `{field}`")]
    UnknownField { field: String },
    /// Refused rather than resolved: JSON parsers disagree on which copy wins.
    #[error("registry document repeats the key `{field}`")]
    DuplicateKey { field: String },
    #[error("registry field `{field}` is invalid: {reason}")]
    Field { field: String, reason: String },
    #[error("registry signature is invalid: {reason}")]
    BadSignature { reason: String },
    /// Also what a registry altered after signing produces: recovery then yields an
    /// unrelated address.
    #[error(
        "registry is signed by {recovered}, not by the authority {expected} \
         (altered after signing, or signed with another key)"
    )]
    WrongAuthority {
        expected: Address,
        recovered: Address,
    },
}

impl From<SignatureError> for RegistryError {
    fn from(e: SignatureError) -> Self {
        RegistryError::BadSignature {
            reason: e.reason().to_owned(),
        }
    }
}

impl RegistryError {
    fn field(field: impl Into<String>, reason: impl ToString) -> Self {
        RegistryError::Field {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

/// Builds a registry from its JSON object at `path`, refusing anything but the exact
/// field set, then validates it.
fn registry_from_json(value: &Json, path: &str) -> Result<Registry, RegistryError> {
    let fields = strict_json::object(
        value,
        path,
        &["epoch", "min_stake", "network_id", "nodes", "threshold"],
    )?;
    let network_id =
        strict_json::string(fields.get("network_id")?, &fields.path("network_id"))?.to_owned();
    let epoch = strict_json::uint(fields.get("epoch")?, &fields.path("epoch"))?;
    let threshold_path = fields.path("threshold");
    let threshold = u32::try_from(strict_json::uint(
        fields.get("threshold")?,
        &threshold_path,
    )?)
    .map_err(|_| RegistryError::field(&threshold_path, "exceeds 2^32 - 1"))?;
    let min_stake = parse_field(fields.get("min_stake")?, &fields.path("min_stake"))?;
    let nodes_path = fields.path("nodes");
    let nodes = strict_json::array(fields.get("nodes")?, &nodes_path)?
        .iter()
        .enumerate()
        .map(|(i, node)| node_from_json(node, &format!("{nodes_path}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let registry = Registry {
        network_id,
        epoch,
        threshold,
        min_stake,
        nodes,
    };
    registry.validate()?;
    Ok(registry)
}

fn node_from_json(value: &Json, path: &str) -> Result<NodeEntry, RegistryError> {
    let fields = strict_json::object(
        value,
        path,
        &["endpoint", "identity_key", "stake", "staker"],
    )?;
    Ok(NodeEntry {
        identity_key: parse_field(fields.get("identity_key")?, &fields.path("identity_key"))?,
        staker: parse_field(fields.get("staker")?, &fields.path("staker"))?,
        stake: parse_field(fields.get("stake")?, &fields.path("stake"))?,
        endpoint: strict_json::string(fields.get("endpoint")?, &fields.path("endpoint"))?
            .to_owned(),
    })
}

/// A JSON string parsed into a typed value, errors naming `field`.
fn parse_field<T>(value: &Json, field: &str) -> Result<T, RegistryError>
where
    T: std::str::FromStr<Err: std::fmt::Display>,
{
    strict_json::string(value, field)?
        .parse()
        .map_err(|e| RegistryError::field(field, e))
}

/// `0x` and 130 hex digits: r, s, v.
fn parse_signature(text: &str) -> Result<[u8; 65], ValueError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| ValueError::new("expected 0x followed by 130 hex digits (r, s, v)"))?;
    let mut bytes = [0u8; 65];
    hex::decode_to_slice(digits, &mut bytes).map_err(|e| {
        ValueError::new(format!(
            "expected 0x followed by 130 hex digits (r, s, v): {e}"
        ))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    use keynet_eth::address_of;

    fn key(seed: u8) -> SigningKey {
        match SigningKey::from_bytes(&[seed; 32].into()) {
            Ok(k) => k,
            Err(e) => panic!("test key: {e}"),
        }
    }

    fn sample() -> Registry {
        let node = |seed: u8, port: u16| NodeEntry {
            identity_key: IdentityKey::from_verifying_key(key(seed).verifying_key()),
            staker: address_of(key(seed + 100).verifying_key()),
            stake: Stake::from_wei(1_000 * u128::from(seed)),
            endpoint: format!("node{seed}.example:{port}"),
        };
        Registry {
            network_id: "keynet-test".into(),
            epoch: 3,
            threshold: 0,
            min_stake: Stake::from_wei(1_000),
            nodes: vec![node(1, 7001), node(2, 7002)],
        }
    }

    #[test]
    fn canonical_message_has_sorted_keys_and_no_whitespace() {
        let r = sample();
        let n0 = &r.nodes[0];
        let n1 = &r.nodes[1];
        let expected = format!(
            concat!(
                r#"{{"epoch":3,"min_stake":"1000","network_id":"keynet-test","nodes":["#,
                r#"{{"endpoint":"node1.example:7001","identity_key":"{}","stake":"1000","staker":"{}"}},"#,
                r#"{{"endpoint":"node2.example:7002","identity_key":"{}","stake":"2000","staker":"{}"}}"#,
                r#"],"threshold":0}}"#
            ),
            n0.identity_key, n0.staker, n1.identity_key, n1.staker
        );
        assert_eq!(r.canonical_message(), expected);
    }

    #[test]
    fn file_round_trips() {
        let signed = match sign(sample(), &key(9)) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let json = signed.to_json();
        assert_eq!(
            SignedRegistry::parse_unverified(json.as_bytes()),
            Ok(signed)
        );
    }

    #[test]
    fn default_threshold_is_two_thirds_rounded_up() {
        let mut r = sample();
        let node = r.nodes[0].clone();
        let expect = [
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 4),
            (7, 5),
            (9, 6),
        ];
        for (n, t) in expect {
            r.nodes = vec![node.clone(); n];
            assert_eq!(r.threshold(), t, "n = {n}");
        }
        r.threshold = 2;
        assert_eq!(r.threshold(), 2);
    }
}
