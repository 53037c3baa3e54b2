//! The requests a user sends to nodes, each under the user's own authorisation.
//!
//! A request is sent by the client, unchanged, to every participating node. Each node
//! computes the request's digest itself ([`SignRequest::digest`], a fixed binary encoding,
//! so no JSON spelling can change it), checks that the user's authorisation
//! ([`crate::auth`]) names exactly that digest, and only then acts. Peers name a request
//! by its id ([`Authorised::id`]): the hash of the digest and of the user's signed
//! authorisation, so two requests with the same content but different authorisations are
//! different requests.
//!
//! Derived keys are named by owner and name ([`KeyRef`]); the key id that the public tweak
//! is computed from is `sha256("keynet/pkp-id/v1" || owner || lp(name))`, so the owner of
//! a key is part of its identity and cannot be claimed by anyone else.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::SignedAuth;
use crate::registry::{Address, IdentityKey};

/// The longest key name.
pub const MAX_NAME: usize = 64;
/// The most addresses a permissions request may allow.
pub const MAX_ALLOWED: usize = 256;
/// The most participants a signing may name.
pub const MAX_PARTICIPANTS: usize = 256;

/// Why a request is malformed; names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request field {field}: {reason}")]
pub struct RequestError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> RequestError {
    RequestError {
        field,
        reason: reason.into(),
    }
}

/// A derived ("programmable") key: its owner and a name the owner chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    /// The owner: the only address that may set who else signs with the key.
    pub owner: Address,
    /// 1 to 64 printable ASCII characters.
    pub name: String,
}

impl KeyRef {
    /// Checks the name.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME {
            return Err(bad(
                "key.name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if !self.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "key.name",
                "only printable ASCII without spaces is allowed",
            ));
        }
        Ok(())
    }

    /// The key id the derivation tweak is computed from.
    pub fn key_id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/pkp-id/v1");
        h.update(self.owner.as_bytes());
        lp(&mut h, self.name.as_bytes());
        h.finalize().into()
    }
}

fn lp(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Hashes a set of fixed-length items: their count, then the items in sorted order (the set
/// matters, not how the client listed it).
fn hash_set<'a>(h: &mut Sha256, items: impl Iterator<Item = &'a [u8]>) {
    let mut items: Vec<&[u8]> = items.collect();
    items.sort();
    h.update((items.len() as u64).to_be_bytes());
    for i in items {
        h.update(i);
    }
}

/// Refuses a list naming an item twice.
fn no_repeats<'a, T: std::fmt::Display>(
    field: &'static str,
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a [u8],
) -> Result<(), RequestError> {
    let mut seen = std::collections::BTreeSet::new();
    for i in items {
        if !seen.insert(key(i)) {
            return Err(bad(field, format!("{i} is listed twice")));
        }
    }
    Ok(())
}

/// 32 bytes as `0x` + 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes32(pub [u8; 32]);

impl Serialize for Bytes32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("expected 0x followed by 64 hex digits"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out)
            .map_err(|e| serde::de::Error::custom(format!("expected 64 hex digits: {e}")))?;
        Ok(Bytes32(out))
    }
}

/// Sign a 32-byte digest with a derived key, by threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The network id (from the registry).
    pub network: String,
    /// The derived key.
    pub key: KeyRef,
    /// The 32-byte digest to sign.
    pub message: Bytes32,
    /// The nodes that take part (at least the threshold), by identity key.
    pub participants: Vec<IdentityKey>,
}

impl SignRequest {
    /// Checks every field that can be checked without the registry.
    pub fn validate(&self) -> Result<(), RequestError> {
        self.key.validate()?;
        if self.participants.is_empty() || self.participants.len() > MAX_PARTICIPANTS {
            return Err(bad(
                "participants",
                format!("must name 1 to {MAX_PARTICIPANTS} nodes"),
            ));
        }
        no_repeats("participants", &self.participants, |p| {
            p.as_bytes().as_slice()
        })
    }

    /// The digest the user's authorisation names. Participants are hashed in sorted
    /// order: the set matters, not how the client listed it.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/sign/v1");
        lp(&mut h, self.network.as_bytes());
        h.update(self.key.owner.as_bytes());
        lp(&mut h, self.key.name.as_bytes());
        h.update(self.message.0);
        hash_set(
            &mut h,
            self.participants.iter().map(|p| p.as_bytes().as_slice()),
        );
        h.finalize().into()
    }
}

/// The owner of a derived key sets who else may sign with it. `seq` must grow with every
/// change, so an old permissions request cannot be replayed over a newer one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    /// The network id.
    pub network: String,
    /// The derived key (its owner must sign the authorisation).
    pub key: KeyRef,
    /// Sequence number; a node keeps the highest it has accepted.
    pub seq: u64,
    /// Addresses that may sign with the key besides the owner.
    pub allowed: Vec<Address>,
}

impl PermissionsRequest {
    /// Checks every field that can be checked without node state.
    pub fn validate(&self) -> Result<(), RequestError> {
        self.key.validate()?;
        if self.allowed.len() > MAX_ALLOWED {
            return Err(bad("allowed", format!("at most {MAX_ALLOWED} addresses")));
        }
        no_repeats("allowed", &self.allowed, |a| a.as_bytes().as_slice())
    }

    /// The digest the owner's authorisation names (addresses in sorted order).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/pkp-permissions/v1");
        lp(&mut h, self.network.as_bytes());
        h.update(self.key.owner.as_bytes());
        lp(&mut h, self.key.name.as_bytes());
        h.update(self.seq.to_be_bytes());
        hash_set(&mut h, self.allowed.iter().map(|a| a.as_bytes().as_slice()));
        h.finalize().into()
    }
}

/// A request with the user's authorisation, as sent to every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorised<R> {
    /// The request.
    pub request: R,
    /// The user's signed authorisation of `request`'s digest.
    pub auth: SignedAuth,
}

impl<R> Authorised<R> {
    /// The request's id: what peers name it by. `digest` is the request's digest.
    pub fn id_of(digest: &[u8; 32], auth: &SignedAuth) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/request-id/v1");
        h.update(digest);
        lp(&mut h, auth.message.as_bytes());
        lp(&mut h, auth.signature.as_bytes());
        h.finalize().into()
    }
}

impl Authorised<SignRequest> {
    /// The id of this signing request.
    pub fn id(&self) -> [u8; 32] {
        Self::id_of(&self.request.digest(), &self.auth)
    }
}

/// Longest conditions document a request may carry, bytes.
pub const MAX_CONDITIONS: usize = 64 * 1024;
/// Longest message a BLS signing request may carry, bytes.
pub const MAX_BLS_MESSAGE: usize = 64 * 1024;
/// Most signatures a request may present for `signed_by` conditions.
pub const MAX_PRESENTED: usize = 16;
/// Longest presented statement, bytes.
pub const MAX_STATEMENT: usize = 1024;

/// A signature the requester presents for a `signed_by` condition: `address` signed
/// `statement` (EIP-191 personal message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresentedSignature {
    /// The signer.
    pub address: Address,
    /// What it signed.
    pub statement: String,
    /// `0x` + 130 hex digits: `r || s || v`.
    pub signature: String,
}

impl PresentedSignature {
    /// The 65 signature bytes.
    pub fn signature_bytes(&self) -> Result<[u8; 65], RequestError> {
        let mut out = [0u8; 65];
        let digits = self.signature.strip_prefix("0x").ok_or_else(|| {
            bad(
                "presented.signature",
                "expected 0x followed by 130 hex digits",
            )
        })?;
        hex::decode_to_slice(digits, &mut out).map_err(|e| {
            bad(
                "presented.signature",
                format!("expected 130 hex digits: {e}"),
            )
        })?;
        Ok(out)
    }
}

fn validate_conditional(
    conditions: &str,
    presented: &[PresentedSignature],
) -> Result<(), RequestError> {
    if conditions.is_empty() || conditions.len() > MAX_CONDITIONS {
        return Err(bad(
            "conditions",
            format!("must be 1 to {MAX_CONDITIONS} bytes"),
        ));
    }
    if presented.len() > MAX_PRESENTED {
        return Err(bad(
            "presented",
            format!("at most {MAX_PRESENTED} signatures"),
        ));
    }
    for p in presented {
        if p.statement.len() > MAX_STATEMENT {
            return Err(bad(
                "presented.statement",
                format!("at most {MAX_STATEMENT} bytes"),
            ));
        }
        p.signature_bytes()?;
    }
    Ok(())
}

fn hash_conditional(
    h: &mut Sha256,
    network: &str,
    node: &IdentityKey,
    conditions: &str,
    presented: &[PresentedSignature],
) {
    lp(h, network.as_bytes());
    h.update(node.as_bytes());
    lp(h, conditions.as_bytes());
    h.update((presented.len() as u64).to_be_bytes());
    for p in presented {
        h.update(p.address.as_bytes());
        lp(h, p.statement.as_bytes());
        lp(h, p.signature.to_ascii_lowercase().as_bytes());
    }
}

/// A decryption share for a file encrypted under `conditions`: the node checks the user's
/// authorisation, evaluates the conditions for the user at its own clock and, if they hold,
/// signs the file's identity with its BLS key share.
///
/// The request names the one node it is for, and each node answers only requests naming
/// it: a share is a piece of the file's key, so a node that received the user's request
/// must not be able to replay it to other nodes and collect their shares itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecryptRequest {
    /// The network id.
    pub network: String,
    /// The node this request is for (its identity key).
    pub node: IdentityKey,
    /// The conditions document (JSON text, as in the file's header).
    pub conditions: String,
    /// The sha256 of the plaintext (from the file's header).
    pub plaintext_sha256: Bytes32,
    /// Signatures for `signed_by` conditions.
    #[serde(default)]
    pub presented: Vec<PresentedSignature>,
}

impl DecryptRequest {
    /// Checks every field that can be checked without parsing the conditions.
    pub fn validate(&self) -> Result<(), RequestError> {
        validate_conditional(&self.conditions, &self.presented)
    }

    /// The digest the user's authorisation names: every field, the conditions as the exact
    /// text sent (the node evaluates and hashes what it parses from that text).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/decrypt-share/v1");
        hash_conditional(
            &mut h,
            &self.network,
            &self.node,
            &self.conditions,
            &self.presented,
        );
        h.update(self.plaintext_sha256.0);
        h.finalize().into()
    }
}

/// A threshold BLS signature share over `message` under `conditions` (for example a JWT
/// granting access to something): the node signs only if the conditions hold for the user.
/// Like [`DecryptRequest`] it names the one node it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlsSignRequest {
    /// The network id.
    pub network: String,
    /// The node this request is for (its identity key).
    pub node: IdentityKey,
    /// The conditions document (JSON text).
    pub conditions: String,
    /// The message, hex (at most [`MAX_BLS_MESSAGE`] bytes).
    pub message: String,
    /// Signatures for `signed_by` conditions.
    #[serde(default)]
    pub presented: Vec<PresentedSignature>,
}

impl BlsSignRequest {
    /// The message bytes.
    pub fn message_bytes(&self) -> Result<Vec<u8>, RequestError> {
        let b = hex::decode(&self.message).map_err(|e| bad("message", format!("hex: {e}")))?;
        if b.len() > MAX_BLS_MESSAGE {
            return Err(bad("message", format!("at most {MAX_BLS_MESSAGE} bytes")));
        }
        Ok(b)
    }

    /// Checks every field that can be checked without parsing the conditions.
    pub fn validate(&self) -> Result<(), RequestError> {
        self.message_bytes()?;
        validate_conditional(&self.conditions, &self.presented)
    }

    /// The digest the user's authorisation names.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/bls-sign/v1");
        hash_conditional(
            &mut h,
            &self.network,
            &self.node,
            &self.conditions,
            &self.presented,
        );
        lp(&mut h, self.message.to_ascii_lowercase().as_bytes());
        h.finalize().into()
    }
}
