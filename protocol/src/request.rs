//! The requests a user sends to nodes, each under the user's own authorisation.
//!
//! A request is sent by the client, unchanged, to every participating node. Each node
//! computes the request's digest itself ([`UserRequest::digest`], a fixed binary encoding,
//! so no JSON spelling can change it), checks that the user's authorisation
//! ([`crate::auth`]) names exactly that digest, and only then acts. Peers name a request
//! by its id ([`Authorised::id`]): the hash of the digest and of the user's signed
//! authorisation, so two requests with the same content but different authorisations are
//! different requests.
//!
//! Parse, don't validate: every request type here has private fields and is made only by
//! its checking constructor or by deserialising (which runs the same checks), so a value
//! of the type is a well-formed request. [`Authorised::verify`] turns one into a
//! [`Verified`] request, the only form a node acts on: its user's authorisation was checked
//! (and its nonce used up) by this node.
//!
//! Derived keys are named by owner and name ([`KeyRef`]); the key id that the public tweak
//! is computed from is `sha256("keynet/pkp-id/v1" || owner || lp(name))`, so the owner of
//! a key is part of its identity and cannot be claimed by anyone else.

use keynet_conditions::MAX_DOCUMENT;
use keynet_eth::Address;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, AuthVerifier, SignedAuth};
use crate::registry::IdentityKey;

/// The longest key name.
pub const MAX_NAME: usize = 64;
/// The most addresses a permissions request may allow.
pub const MAX_ALLOWED: usize = 256;
/// The most participants a signing may name.
pub const MAX_PARTICIPANTS: usize = 256;
/// Longest message a BLS signing request may carry, bytes.
pub const MAX_BLS_MESSAGE: usize = 64 * 1024;
/// Most signatures a request may present for `signed_by` conditions.
pub const MAX_PRESENTED: usize = 16;
/// Longest presented statement, bytes.
pub const MAX_STATEMENT: usize = 1024;

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

/// What every user request has: the digest its authorisation names.
pub trait UserRequest {
    /// The digest the user's authorisation must name.
    fn digest(&self) -> [u8; 32];
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

impl<R: UserRequest> Authorised<R> {
    /// The request's id: what peers name it by.
    pub fn id(&self) -> [u8; 32] {
        self.id_of(&self.request.digest())
    }

    /// The id, given the request's digest (hashed once where both are needed).
    fn id_of(&self, digest: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/request-id/v1");
        h.update(digest);
        lp(&mut h, self.auth.message.as_bytes());
        lp(&mut h, self.auth.signature.as_bytes());
        h.finalize().into()
    }

    /// Checks the user's authorisation of this request at Unix time `now` (which uses up
    /// its nonce): the only way to a [`Verified`] request.
    pub fn verify(self, verifier: &AuthVerifier, now: u64) -> Result<Verified<R>, AuthError> {
        let digest = self.request.digest();
        let user = verifier.verify(&self.auth, &digest, now)?;
        let id = self.id_of(&digest);
        Ok(Verified {
            authorised: self,
            user,
            id,
        })
    }
}

/// A request whose user's authorisation this node checked itself.
#[derive(Clone, Debug)]
pub struct Verified<R> {
    authorised: Authorised<R>,
    user: Address,
    id: [u8; 32],
}

impl<R> Verified<R> {
    /// The request.
    pub fn request(&self) -> &R {
        &self.authorised.request
    }

    /// The request with the user's authorisation, as the user sent it (peers are shown
    /// it, so that each checks the user's authorisation itself).
    pub fn authorised(&self) -> &Authorised<R> {
        &self.authorised
    }

    /// The user who authorised it.
    pub fn user(&self) -> Address {
        self.user
    }

    /// Its id ([`Authorised::id`]).
    pub fn id(&self) -> [u8; 32] {
        self.id
    }
}

/// A derived ("programmable") key: its owner and a name the owner chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "wire::KeyRef")]
pub struct KeyRef {
    owner: Address,
    name: String,
}

impl KeyRef {
    /// The key `name` of `owner`: 1 to 64 printable ASCII characters without spaces.
    pub fn new(owner: Address, name: impl Into<String>) -> Result<KeyRef, RequestError> {
        let name = name.into();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(bad(
                "key.name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "key.name",
                "only printable ASCII without spaces is allowed",
            ));
        }
        Ok(KeyRef { owner, name })
    }

    /// The owner: the only address that may set who else signs with the key.
    pub fn owner(&self) -> Address {
        self.owner
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
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

/// 32 bytes as `0x` + 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes32(pub [u8; 32]);

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
#[serde(try_from = "wire::SignRequest")]
pub struct SignRequest {
    network: String,
    key: KeyRef,
    message: Bytes32,
    participants: Vec<IdentityKey>,
}

impl SignRequest {
    /// Signing `message` with `key` on `network` by exactly `participants` (1 to 256
    /// distinct nodes; whether they are registry members, and enough, the nodes check).
    pub fn new(
        network: impl Into<String>,
        key: KeyRef,
        message: [u8; 32],
        participants: Vec<IdentityKey>,
    ) -> Result<SignRequest, RequestError> {
        if participants.is_empty() || participants.len() > MAX_PARTICIPANTS {
            return Err(bad(
                "participants",
                format!("must name 1 to {MAX_PARTICIPANTS} nodes"),
            ));
        }
        no_repeats("participants", &participants, |p| p.as_bytes().as_slice())?;
        Ok(SignRequest {
            network: network.into(),
            key,
            message: Bytes32(message),
            participants,
        })
    }

    /// The network id (from the registry).
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The derived key.
    pub fn key(&self) -> &KeyRef {
        &self.key
    }

    /// The 32-byte digest to sign.
    pub fn message(&self) -> [u8; 32] {
        self.message.0
    }

    /// The nodes that take part, by identity key.
    pub fn participants(&self) -> &[IdentityKey] {
        &self.participants
    }
}

impl UserRequest for SignRequest {
    /// Participants are hashed in sorted order: the set matters, not how the client listed
    /// it.
    fn digest(&self) -> [u8; 32] {
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
#[serde(try_from = "wire::PermissionsRequest")]
pub struct PermissionsRequest {
    network: String,
    key: KeyRef,
    seq: u64,
    allowed: Vec<Address>,
}

impl PermissionsRequest {
    /// Allow `allowed` (at most 256 distinct addresses) besides the owner to sign with
    /// `key`, as change number `seq`.
    pub fn new(
        network: impl Into<String>,
        key: KeyRef,
        seq: u64,
        allowed: Vec<Address>,
    ) -> Result<PermissionsRequest, RequestError> {
        if allowed.len() > MAX_ALLOWED {
            return Err(bad("allowed", format!("at most {MAX_ALLOWED} addresses")));
        }
        no_repeats("allowed", &allowed, |a| a.as_bytes().as_slice())?;
        Ok(PermissionsRequest {
            network: network.into(),
            key,
            seq,
            allowed,
        })
    }

    /// The network id.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The derived key (its owner must sign the authorisation).
    pub fn key(&self) -> &KeyRef {
        &self.key
    }

    /// Sequence number; a node keeps the highest it has accepted.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Addresses that may sign with the key besides the owner.
    pub fn allowed(&self) -> &[Address] {
        &self.allowed
    }
}

impl UserRequest for PermissionsRequest {
    /// Addresses in sorted order.
    fn digest(&self) -> [u8; 32] {
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

/// A signature the requester presents for a `signed_by` condition: `address` signed
/// `statement` (EIP-191 personal message). On the wire the signature is `0x` + 130 hex
/// digits, `r || s || v`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "wire::PresentedSignature")]
pub struct PresentedSignature {
    address: Address,
    statement: String,
    #[serde(serialize_with = "hex_0x")]
    signature: [u8; 65],
}

impl PresentedSignature {
    /// `address`'s signature over `statement` (at most 1024 bytes).
    pub fn new(
        address: Address,
        statement: impl Into<String>,
        signature: [u8; 65],
    ) -> Result<PresentedSignature, RequestError> {
        let statement = statement.into();
        if statement.len() > MAX_STATEMENT {
            return Err(bad(
                "presented.statement",
                format!("at most {MAX_STATEMENT} bytes"),
            ));
        }
        Ok(PresentedSignature {
            address,
            statement,
            signature,
        })
    }

    /// The signer.
    pub fn address(&self) -> Address {
        self.address
    }

    /// What it signed.
    pub fn statement(&self) -> &str {
        &self.statement
    }

    /// The 65 signature bytes.
    pub fn signature(&self) -> &[u8; 65] {
        &self.signature
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
#[serde(try_from = "wire::DecryptRequest")]
pub struct DecryptRequest {
    network: String,
    node: IdentityKey,
    conditions: String,
    plaintext_sha256: Bytes32,
    presented: Vec<PresentedSignature>,
}

impl DecryptRequest {
    /// A share of the key of the file whose plaintext hash is `plaintext_sha256`, encrypted
    /// under `conditions` (the JSON text, 1 to 64 KiB), from `node`.
    pub fn new(
        network: impl Into<String>,
        node: IdentityKey,
        conditions: impl Into<String>,
        plaintext_sha256: [u8; 32],
        presented: Vec<PresentedSignature>,
    ) -> Result<DecryptRequest, RequestError> {
        let conditions = conditions.into();
        check_conditional(&conditions, &presented)?;
        Ok(DecryptRequest {
            network: network.into(),
            node,
            conditions,
            plaintext_sha256: Bytes32(plaintext_sha256),
            presented,
        })
    }

    /// The sha256 of the plaintext (from the file's header).
    pub fn plaintext_sha256(&self) -> [u8; 32] {
        self.plaintext_sha256.0
    }
}

impl UserRequest for DecryptRequest {
    /// Every field, the conditions as the exact text sent (the node evaluates and hashes
    /// what it parses from that text).
    fn digest(&self) -> [u8; 32] {
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
/// Like [`DecryptRequest`] it names the one node it is for. On the wire the message is hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "wire::BlsSignRequest")]
pub struct BlsSignRequest {
    network: String,
    node: IdentityKey,
    conditions: String,
    #[serde(serialize_with = "hex_plain")]
    message: Vec<u8>,
    presented: Vec<PresentedSignature>,
}

impl BlsSignRequest {
    /// A share of the network's signature over `message` (at most 64 KiB) under
    /// `conditions`, from `node`.
    pub fn new(
        network: impl Into<String>,
        node: IdentityKey,
        conditions: impl Into<String>,
        message: Vec<u8>,
        presented: Vec<PresentedSignature>,
    ) -> Result<BlsSignRequest, RequestError> {
        if message.len() > MAX_BLS_MESSAGE {
            return Err(bad("message", format!("at most {MAX_BLS_MESSAGE} bytes")));
        }
        let conditions = conditions.into();
        check_conditional(&conditions, &presented)?;
        Ok(BlsSignRequest {
            network: network.into(),
            node,
            conditions,
            message,
            presented,
        })
    }

    /// The message bytes.
    pub fn message(&self) -> &[u8] {
        &self.message
    }
}

impl UserRequest for BlsSignRequest {
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"keynet/bls-sign/v1");
        hash_conditional(
            &mut h,
            &self.network,
            &self.node,
            &self.conditions,
            &self.presented,
        );
        lp(&mut h, hex::encode(&self.message).as_bytes());
        h.finalize().into()
    }
}

/// What the two conditional requests share, for the node's one admission path.
pub trait Conditional: UserRequest {
    /// The network id.
    fn network(&self) -> &str;
    /// The node this request is for (its identity key).
    fn node(&self) -> &IdentityKey;
    /// The conditions document (JSON text, as in the file's header).
    fn conditions(&self) -> &str;
    /// Signatures for `signed_by` conditions.
    fn presented(&self) -> &[PresentedSignature];
}

macro_rules! conditional {
    ($($t:ty),*) => {$(
        impl Conditional for $t {
            fn network(&self) -> &str {
                &self.network
            }
            fn node(&self) -> &IdentityKey {
                &self.node
            }
            fn conditions(&self) -> &str {
                &self.conditions
            }
            fn presented(&self) -> &[PresentedSignature] {
                &self.presented
            }
        }
    )*};
}

conditional!(DecryptRequest, BlsSignRequest);

fn check_conditional(
    conditions: &str,
    presented: &[PresentedSignature],
) -> Result<(), RequestError> {
    if conditions.is_empty() || conditions.len() > MAX_DOCUMENT {
        return Err(bad(
            "conditions",
            format!("must be 1 to {MAX_DOCUMENT} bytes"),
        ));
    }
    if presented.len() > MAX_PRESENTED {
        return Err(bad(
            "presented",
            format!("at most {MAX_PRESENTED} signatures"),
        ));
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
        lp(h, format!("0x{}", hex::encode(p.signature)).as_bytes());
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

fn hex_0x<S: Serializer>(bytes: &[u8; 65], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("0x{}", hex::encode(bytes)))
}

fn hex_plain<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&hex::encode(bytes))
}

/// The requests as they arrive, before their checks: each converts into its checked type
/// through the same constructor a client uses.
mod wire {
    use keynet_eth::Address;
    use serde::Deserialize;

    use super::{Bytes32, RequestError, bad};
    use crate::registry::IdentityKey;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KeyRef {
        owner: Address,
        name: String,
    }

    impl TryFrom<KeyRef> for super::KeyRef {
        type Error = RequestError;
        fn try_from(w: KeyRef) -> Result<Self, RequestError> {
            super::KeyRef::new(w.owner, w.name)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SignRequest {
        network: String,
        key: super::KeyRef,
        message: Bytes32,
        participants: Vec<IdentityKey>,
    }

    impl TryFrom<SignRequest> for super::SignRequest {
        type Error = RequestError;
        fn try_from(w: SignRequest) -> Result<Self, RequestError> {
            super::SignRequest::new(w.network, w.key, w.message.0, w.participants)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PermissionsRequest {
        network: String,
        key: super::KeyRef,
        seq: u64,
        allowed: Vec<Address>,
    }

    impl TryFrom<PermissionsRequest> for super::PermissionsRequest {
        type Error = RequestError;
        fn try_from(w: PermissionsRequest) -> Result<Self, RequestError> {
            super::PermissionsRequest::new(w.network, w.key, w.seq, w.allowed)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PresentedSignature {
        address: Address,
        statement: String,
        signature: String,
    }

    impl TryFrom<PresentedSignature> for super::PresentedSignature {
        type Error = RequestError;
        fn try_from(w: PresentedSignature) -> Result<Self, RequestError> {
            let mut signature = [0u8; 65];
            let digits = w.signature.strip_prefix("0x").ok_or_else(|| {
                bad(
                    "presented.signature",
                    "expected 0x followed by 130 hex digits",
                )
            })?;
            hex::decode_to_slice(digits, &mut signature).map_err(|e| {
                bad(
                    "presented.signature",
                    format!("expected 130 hex digits: {e}"),
                )
            })?;
            super::PresentedSignature::new(w.address, w.statement, signature)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DecryptRequest {
        network: String,
        node: IdentityKey,
        conditions: String,
        plaintext_sha256: Bytes32,
        #[serde(default)]
        presented: Vec<super::PresentedSignature>,
    }

    impl TryFrom<DecryptRequest> for super::DecryptRequest {
        type Error = RequestError;
        fn try_from(w: DecryptRequest) -> Result<Self, RequestError> {
            super::DecryptRequest::new(
                w.network,
                w.node,
                w.conditions,
                w.plaintext_sha256.0,
                w.presented,
            )
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BlsSignRequest {
        network: String,
        node: IdentityKey,
        conditions: String,
        message: String,
        #[serde(default)]
        presented: Vec<super::PresentedSignature>,
    }

    impl TryFrom<BlsSignRequest> for super::BlsSignRequest {
        type Error = RequestError;
        fn try_from(w: BlsSignRequest) -> Result<Self, RequestError> {
            let message =
                hex::decode(&w.message).map_err(|e| bad("message", format!("hex: {e}")))?;
            super::BlsSignRequest::new(w.network, w.node, w.conditions, message, w.presented)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Address {
        Address::from_bytes([7; 20])
    }

    /// The wire form is unchanged by the typed requests: what a client built before still
    /// parses, and each check still names its field.
    #[test]
    fn deserialising_runs_the_constructors_checks() {
        let key = r#"{"owner":"0x0707070707070707070707070707070707070707","name":"k"}"#;
        let ok = format!(r#"{{"network":"n","key":{key},"seq":1,"allowed":[]}}"#);
        let p: PermissionsRequest = serde_json::from_str(&ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.seq(), 1);
        let cases = [
            (
                r#"{"owner":"0x0707070707070707070707070707070707070707","name":""}"#,
                "key.name",
            ),
            (
                r#"{"owner":"0x0707070707070707070707070707070707070707","name":"a b"}"#,
                "key.name",
            ),
        ];
        for (k, field) in cases {
            let text = format!(r#"{{"network":"n","key":{k},"seq":1,"allowed":[]}}"#);
            let e = serde_json::from_str::<PermissionsRequest>(&text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(field), "{text}: {e}");
        }
        let twice = format!(
            r#"{{"network":"n","key":{key},"seq":1,"allowed":["{a}","{a}"]}}"#,
            a = owner()
        );
        let e = serde_json::from_str::<PermissionsRequest>(&twice)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("allowed") && e.contains("twice"), "{e}");
        let unknown = format!(r#"{{"network":"n","key":{key},"seq":1,"allowed":[],"x":1}}"#);
        assert!(serde_json::from_str::<PermissionsRequest>(&unknown).is_err());
    }

    #[test]
    fn bls_message_and_signature_keep_their_wire_text_and_digest() {
        let node: IdentityKey =
            "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
        let p = PresentedSignature::new(owner(), "s", [0xab; 65]).unwrap_or_else(|e| panic!("{e}"));
        let r = BlsSignRequest::new("n", node, "{}", b"\x01\xff".to_vec(), vec![p])
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(v["message"], "01ff");
        assert_eq!(
            v["presented"][0]["signature"],
            format!("0x{}", "ab".repeat(65))
        );
        // Upper-case hex on the wire is the same request (same digest).
        let mut upper = v.clone();
        upper["message"] = "01FF".into();
        let back: BlsSignRequest = serde_json::from_value(upper).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.digest(), r.digest());
        let long = BlsSignRequest::new("n", node, "{}", vec![0; MAX_BLS_MESSAGE + 1], vec![]);
        assert_eq!(long.err().map(|e| e.field), Some("message"));
        let no_conditions = DecryptRequest::new("n", node, "", [0; 32], vec![]);
        assert_eq!(no_conditions.err().map(|e| e.field), Some("conditions"));
    }
}
