//! The node's HTTPS API, both sides of it: every route, its request and response bodies,
//! and the error body with its stable codes. The node serves exactly these types and the
//! client reads exactly these types, so a change here is a change of the wire contract
//! (the round-trip test in `tests/api.rs` decodes what the other side encodes).
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /health` | - | [`Health`] |
//! | `GET /v1/attestation?nonce=HEX` | - | [`Attestation`] |
//! | `POST /v1/handshake` | [`HandshakeRequest`] | [`NodeInfo`] |
//! | `POST /v1/sign` | `Authorised<SignRequest>` | [`SignShare`] |
//! | `POST /v1/pkp/permissions` | `Authorised<PermissionsRequest>` | [`PermissionsSet`] |
//! | `POST /v1/decrypt-share` | `Authorised<DecryptRequest>` | [`BlsShare`] |
//! | `POST /v1/bls-sign` | `Authorised<BlsSignRequest>` | [`BlsShare`] |
//! | `POST /v1/peer/dkg` (peers only) | [`PeerDkg`] | [`Ack`] |
//! | `POST /v1/peer/commitments` (peers only) | [`PeerCommitments`] | [`CommitmentsAnswer`] |
//!
//! Every refusal is an [`ErrorBody`] whose [`ErrorCode`] fixes the HTTP status. Requests
//! refuse unknown fields; answers may gain fields, which older clients ignore.

use std::collections::BTreeMap;

use keynet_threshold::dkg::Participant;
use keynet_threshold::wire::{BlsWire, FrostWire};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::registry::{IdentityKey, NodeEntry};
use crate::request::{Authorised, BlsSignRequest, DecryptRequest, PermissionsRequest, SignRequest};

/// `GET /health`: liveness and counters.
pub const HEALTH: &str = "/health";
/// `GET /v1/attestation?nonce=HEX`: fresh evidence bound to the nonce and the connection.
pub const ATTESTATION: &str = "/v1/attestation";
/// Shortest and longest attestation nonce, bytes.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Largest request body a node reads on any route, bytes (each route's own limit,
/// [`Route::MAX_BODY`], is at most this).
pub const MAX_BODY: usize = 2 << 20;

/// The path of a fresh-evidence request for `nonce`.
pub fn attestation_path(nonce: &[u8]) -> String {
    format!("{ATTESTATION}?nonce={}", hex::encode(nonce))
}

/// A POST route: its path and the types of its body and answer.
pub trait Route {
    /// The path.
    const PATH: &'static str;
    /// Largest body the node reads on this route, bytes (larger: `payload_too_large`).
    const MAX_BODY: usize;
    /// The JSON body.
    type Request: Serialize + DeserializeOwned;
    /// The JSON answer (status 200).
    type Response: Serialize + DeserializeOwned;
}

/// The POST routes.
pub mod route {
    use super::*;

    macro_rules! routes {
        ($($(#[$doc:meta])* $name:ident $path:literal ($max:expr): $req:ty => $resp:ty;)*) => {$(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl Route for $name {
                const PATH: &'static str = $path;
                const MAX_BODY: usize = $max;
                type Request = $req;
                type Response = $resp;
            }
        )*};
    }

    // Body limits: each a few times the largest valid body (a conditions document is at
    // most 64 KiB, and JSON escaping can double it; a BLS message is at most 64 KiB, sent
    // as hex; DKG messages grow with the number of nodes).
    routes! {
        /// Network, epoch, identity, registry entry, public keys and DKG state.
        Handshake "/v1/handshake" (1 << 10): HandshakeRequest => NodeInfo;
        /// A FROST signature share for a request the user authorised.
        Sign "/v1/sign" (64 << 10): Authorised<SignRequest> => SignShare;
        /// The owner of a derived key sets who else may sign with it.
        Permissions "/v1/pkp/permissions" (64 << 10): Authorised<PermissionsRequest> => PermissionsSet;
        /// A decryption share under access-control conditions.
        DecryptShare "/v1/decrypt-share" (512 << 10): Authorised<DecryptRequest> => BlsShare;
        /// A BLS signature share over a statement under access-control conditions.
        BlsSign "/v1/bls-sign" (512 << 10): Authorised<BlsSignRequest> => BlsShare;
        /// A DKG message from a peer.
        PeerDkg "/v1/peer/dkg" (MAX_BODY): super::PeerDkg => Ack;
        /// A peer's signing commitments, with the user's request they belong to.
        PeerCommitments "/v1/peer/commitments" (128 << 10): super::PeerCommitments => CommitmentsAnswer;
    }
}

/// Which platform a node's evidence comes from. Every answer that carries evidence or
/// describes the node says it, and a simulated platform always comes with its warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PlatformKind {
    /// AMD SEV-SNP hardware.
    Snp,
    /// The simulated platform (tests and development only).
    SnpSimulated,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` when the node answers.
    pub status: Status,
    /// The endpoint bound into the node's evidence.
    pub endpoint: String,
    /// The DKG's state.
    pub dkg: DkgState,
    /// Signing counters.
    pub signing: SigningCounters,
    /// Conditional BLS counters.
    pub bls: BlsCounters,
    /// Metered work: what ran and what was refused for a full share or queue.
    #[serde(default)]
    pub work: WorkCounters,
    /// Which platform the node's evidence comes from.
    pub platform: PlatformKind,
    /// What a simulated platform means, said wherever it is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Metered work since the node started ([`Health::work`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCounters {
    /// Verification and signing jobs (peer certificates, decryption and statement shares).
    pub verifications: WorkCount,
    /// Fresh reports from the secure processor.
    pub fresh_reports: WorkCount,
}

/// One kind of metered work since the node started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCount {
    /// Jobs run (or running).
    pub ran: u64,
    /// Jobs refused for a full share or queue (`429 rate_limited`, `503 overloaded`, or a
    /// peer's connection closed).
    pub refused: u64,
}

/// What signing did since the node started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningCounters {
    /// Signature shares handed out.
    pub shares_issued: u64,
    /// Peer commitments dropped because their request was not open here: never verified
    /// from the user, or expired or abandoned here. (Pushes for a request already signed
    /// are answered, not dropped.)
    pub dropped_unverified: u64,
}

/// What the conditional BLS operations did since the node started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlsCounters {
    /// Decryption shares handed out.
    pub decryption_shares_issued: u64,
    /// Statement shares handed out.
    pub statement_shares_issued: u64,
    /// Requests refused because their conditions did not hold.
    pub refused_conditions: u64,
}

/// `GET /v1/attestation?nonce=HEX`: the query.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AttestationQuery {
    /// 16 to 64 bytes, hex.
    pub nonce: Option<String>,
}

/// `GET /v1/attestation`: evidence whose REPORT_DATA binds the nonce and this TLS session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The evidence (base64 of its byte form).
    pub evidence: String,
    /// Which platform the node's evidence comes from.
    pub platform: PlatformKind,
    /// What a simulated platform means, said wherever it is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `POST /v1/handshake`: the body, `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeRequest {}

/// `POST /v1/handshake`: what the node says about itself and the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The registry's network id.
    pub network_id: String,
    /// The registry's epoch.
    pub epoch: u64,
    /// The registry's threshold.
    pub threshold: u32,
    /// The node's identity key.
    pub identity_key: IdentityKey,
    /// The node's registry entry, if it is listed.
    pub registry_entry: Option<NodeEntry>,
    /// The network's public keys, once this node holds its shares (`{}` before).
    #[serde(with = "empty_as_none")]
    pub public_keys: Option<PublicKeys>,
    /// The DKG.
    pub dkg: DkgStatus,
    /// Which platform the node's evidence comes from.
    pub platform: PlatformKind,
    /// What a simulated platform means, said wherever it is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The network's public keys as a node holds them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKeys {
    /// The registry epoch the keys were made in.
    pub epoch: u64,
    /// The threshold they were made for.
    pub threshold: u16,
    /// The FROST(secp256k1) keys.
    pub frost_secp256k1: FrostPublic,
    /// The BLS12-381 keys (G2).
    pub bls12_381_g2: BlsPublic,
}

/// The FROST group's public keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FrostPublic {
    /// The group key, compressed (33 bytes), hex.
    pub group_key: String,
    /// The library's public key package (every participant's verifying share), hex.
    pub public_key_package: String,
}

/// The BLS key and every participant's public share.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlsPublic {
    /// The network key, compressed G2 (96 bytes), hex.
    pub public_key: String,
    /// Each participant's public share, compressed G2, hex.
    pub public_shares: BTreeMap<Participant, String>,
}

/// What a node's DKG is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DkgState {
    /// No run, and no keys unsealed.
    Idle,
    /// A run is under way.
    Running,
    /// The run finished here and the keys are sealed.
    Done,
    /// The run failed (reason and culprits given).
    Failed,
    /// The keys were unsealed at start: no DKG ran in this process.
    Unsealed,
    /// A state this client does not know (a newer node).
    #[serde(other)]
    Unknown,
}

impl DkgState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DkgState::Idle => "idle",
            DkgState::Running => "running",
            DkgState::Done => "done",
            DkgState::Failed => "failed",
            DkgState::Unsealed => "unsealed",
            DkgState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for DkgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the node says about its key generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgStatus {
    /// The state.
    pub state: DkgState,
    /// The run's network id.
    pub network: Option<String>,
    /// The run's epoch.
    pub epoch: Option<u64>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Who was blamed on this node's own evidence (endpoints).
    #[serde(default)]
    pub culprits: Vec<String>,
    /// How long the run took here, from its start to the sealed keys, milliseconds.
    pub millis: Option<u64>,
    /// Which attempt at this (network, epoch) the state is of (a failed run is retried).
    #[serde(default)]
    pub attempt: u32,
    /// The member whose abort ended the run, if one did (its word, not evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_by: Option<String>,
    /// Whom that member accused (unchecked here, so not among the culprits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accused: Vec<String>,
    /// Members excluded from the run for proven misconduct (endpoints); the keys are
    /// shared among the others, and the excluded hold none until a resharing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
}

/// `POST /v1/sign`: a node's signature share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignShare {
    /// The node.
    pub node: IdentityKey,
    /// Its participant index (1-based registry position).
    pub participant: Participant,
    /// Its signature share (hex of the library's serialization).
    pub share: String,
    /// The signing package it signed (hex): every participant's commitments and the
    /// message. The user checks all nodes signed the same one.
    pub package: String,
}

/// `POST /v1/pkp/permissions`: the change was kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsSet {
    /// `ok`.
    pub status: Status,
    /// The sequence number now in force.
    pub seq: u64,
}

/// `POST /v1/decrypt-share` and `POST /v1/bls-sign`: a node's BLS signature share and what
/// it signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlsShare {
    /// The node.
    pub node: IdentityKey,
    /// Its participant index (1-based registry position).
    pub participant: Participant,
    /// The signature share (hex of blsful's byte form, basic scheme, G1).
    pub share: String,
    /// The bytes signed (hex): the identity, or the domain-separated statement.
    pub signed: String,
    /// The canonical conditions' hash (hex) the node evaluated.
    pub conditions_hash: String,
}

/// A DKG message between nodes, signed by its sender's identity key so that it is
/// evidence anyone can check: a member who deals an invalid share or proof signs its own
/// conviction, and the run is retried without it (ARCHITECTURE.md, "DKG misconduct").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerDkg {
    /// The registry's network id.
    pub network: String,
    /// The registry epoch the run is for.
    pub epoch: u64,
    /// Which attempt at that epoch's key generation (a failed run is retried as the next).
    #[serde(default)]
    pub attempt: u32,
    /// Members left out of this attempt for proven misconduct, ascending.
    #[serde(default)]
    pub excluded: Vec<Participant>,
    /// The sender's run: 16 random bytes (hex) drawn when it started this attempt, so that
    /// messages of two of its runs (before and after a restart) are never taken as one.
    #[serde(default)]
    pub session: String,
    /// The sender's participant index.
    #[serde(default)]
    pub from: Participant,
    /// The one member the message is for (it carries that member's secret share), or
    /// none for every member.
    #[serde(default)]
    pub to: Option<Participant>,
    /// The message.
    pub body: DkgBody,
    /// The sender's signature (hex, 64 bytes r || s, secp256k1 ECDSA) over
    /// [`PeerDkg::signing_digest`].
    #[serde(default)]
    pub signature: String,
    /// The proof of each exclusion (not signed: each proof stands on its own).
    #[serde(default)]
    pub proofs: Vec<Misconduct>,
}

impl PeerDkg {
    /// What the sender signs: every field but the signature and the proofs, framed.
    pub fn signing_digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        field(b"keynet-dkg-message-v1");
        field(self.network.as_bytes());
        field(&self.epoch.to_be_bytes());
        field(&self.attempt.to_be_bytes());
        let excluded: Vec<u8> = self.excluded.iter().flat_map(|p| p.to_be_bytes()).collect();
        field(&excluded);
        field(self.session.as_bytes());
        field(&self.from.to_be_bytes());
        // None and Some(0) differ: an empty field against two bytes.
        match self.to {
            Some(p) => field(&p.to_be_bytes()),
            None => field(&[]),
        }
        // The body's JSON is a function of its parsed value (its strings are kept as sent).
        field(&serde_json::to_vec(&self.body).unwrap_or_default());
        h.finalize().into()
    }
}

/// Why a member is excluded: messages it signed that show it cheated (an invalid proof of
/// knowledge or commitment, or a share that contradicts its own commitments). Each is a
/// [`PeerDkg`] as received, without proofs of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misconduct {
    /// The member's own signed messages (its round-one package, and the round-two package
    /// it sent to the accuser when the share is at fault).
    pub evidence: Vec<PeerDkg>,
}

/// Which protocol a DKG message belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum DkgBody {
    /// FROST(secp256k1).
    Frost(FrostWire),
    /// BLS12-381.
    Bls(BlsWire),
}

/// Commitments for a signing request, with the user's signed request they belong to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerCommitments {
    /// The user's request, as the user sent it.
    pub request: Authorised<SignRequest>,
    /// The sender's commitments (hex of the library's serialization).
    pub commitments: String,
}

/// The answer to a peer's commitments: the answering node's own commitments for the same
/// request when it has begun that request itself (verified from the user) and the sender
/// is among its participants; `null` otherwise (the sender's were dropped). Whichever of
/// two nodes begins later gets the earlier one's this way, so no node holds commitments
/// for a request it has not verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentsAnswer {
    /// The answering node's commitments (hex of the library's serialization), or `null`.
    pub commitments: Option<String>,
}

/// `{"status": "ok"}`: a peer message was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// `ok`.
    pub status: Status,
}

impl Ack {
    /// Taken.
    pub fn ok() -> Ack {
        Ack { status: Status::Ok }
    }
}

/// The one success status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done.
    Ok,
}

/// Every refusal: a stable code, a message for people, and for `condition_failed` the
/// condition that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable.
    pub code: ErrorCode,
    /// Why, in words (names the field or the node where there is one).
    pub message: String,
    /// The condition that failed (`condition_failed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<FailedCondition>,
}

/// The condition a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCondition {
    /// Which condition, e.g. `condition.all[0].time_before`.
    pub path: String,
    /// Why.
    pub reason: String,
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $text:literal, $status:literal;)*) => {
        /// The stable error codes. Each fixes the HTTP status it is sent with.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this client does not know (a newer node).
            Unknown,
        }

        impl ErrorCode {
            /// Every code a node sends.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The code on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)*
                    ErrorCode::Unknown => "unknown",
                }
            }

            /// The HTTP status it is sent with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $status,)*
                    ErrorCode::Unknown => 500,
                }
            }

            fn from_wire(text: &str) -> ErrorCode {
                match text {
                    $($text => ErrorCode::$name,)*
                    _ => ErrorCode::Unknown,
                }
            }
        }
    };
}

error_codes! {
    /// The body is not a well-formed request for this route (names the field).
    BadRequest = "bad_request", 400;
    /// The body is larger than the route's [`Route::MAX_BODY`].
    PayloadTooLarge = "payload_too_large", 413;
    /// No such route.
    NotFound = "not_found", 404;
    /// The route exists with another method.
    MethodNotAllowed = "method_not_allowed", 405;
    /// Something failed inside the node.
    Internal = "internal", 500;
    /// `/v1/attestation` without `?nonce=`.
    NonceMissing = "nonce_missing", 400;
    /// A nonce of the wrong length.
    NonceLength = "nonce_length", 400;
    /// A nonce that is not hex.
    NonceHex = "nonce_hex", 400;
    /// The secure processor gave no evidence.
    EvidenceUnavailable = "evidence_unavailable", 503;
    /// No network keys yet (DKG not done).
    NoKeys = "no_keys", 503;
    /// The keys held are for another registry epoch.
    KeysStale = "keys_stale", 503;
    /// The request names another network.
    WrongNetwork = "wrong_network", 400;
    /// The user's authorisation was refused (names why).
    AuthRefused = "auth_refused", 401;
    /// A participant named is not in the registry.
    UnknownParticipant = "unknown_participant", 400;
    /// Fewer participants named than the threshold.
    BelowThreshold = "below_threshold", 400;
    /// This node (or the sending peer) is not among the request's participants.
    NotAParticipant = "not_a_participant", 400;
    /// The user may not sign with this key.
    NotAllowed = "not_allowed", 403;
    /// A signing session for this request exists already.
    Duplicate = "duplicate", 409;
    /// Participants' commitments did not arrive in time (names them).
    PeersTimeout = "peers_timeout", 504;
    /// The signing library refused what the peers sent.
    SigningFailed = "signing_failed", 502;
    /// The permissions table, or the owner's part of it, is full.
    PkpLimit = "pkp_limit", 409;
    /// Only a key's owner may set its permissions.
    NotOwner = "not_owner", 403;
    /// A permissions sequence number not above the current one.
    StaleSeq = "stale_seq", 409;
    /// A conditional request addressed to another node.
    WrongNode = "wrong_node", 400;
    /// The conditions document does not parse (names the path).
    BadConditions = "bad_conditions", 400;
    /// A condition does not hold for the user (the body names it).
    ConditionFailed = "condition_failed", 403;
    /// A peer route called without an admitted node certificate.
    PeerOnly = "peer_only", 403;
    /// The sending node is not in the registry.
    NotMember = "not_member", 403;
    /// This node holds the keys of that DKG run already.
    DkgDone = "dkg_done", 409;
    /// A DKG message for another network or epoch than this node's registry.
    WrongRun = "wrong_run", 409;
    /// No DKG can run here (not a member, or the run failed here).
    DkgUnavailable = "dkg_unavailable", 409;
    /// The sender, or this node, is excluded from the run for proven misconduct.
    DkgExcluded = "dkg_excluded", 409;
    /// The request (body and answer) took longer than the node allows.
    RequestTimeout = "request_timeout", 408;
    /// This caller's share of a limited resource is used up (names the limit); retry later.
    RateLimited = "rate_limited", 429;
    /// The node's whole budget of a resource is in use (names it); retry later.
    Overloaded = "overloaded", 503;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ErrorCode::from_wire(&text))
    }
}

/// `public_keys` is `{}` while a node holds no keys. Read field by field (no buffering, which
/// would lose the integer keys of `public_shares`): all four fields or none.
mod empty_as_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{BlsPublic, FrostPublic, PublicKeys};

    #[derive(Serialize)]
    struct Empty {}

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields {
        epoch: Option<u64>,
        threshold: Option<u16>,
        frost_secp256k1: Option<FrostPublic>,
        bls12_381_g2: Option<BlsPublic>,
    }

    pub fn serialize<S: Serializer>(v: &Option<PublicKeys>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => k.serialize(s),
            None => Empty {}.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PublicKeys>, D::Error> {
        match Fields::deserialize(d)? {
            Fields {
                epoch: Some(epoch),
                threshold: Some(threshold),
                frost_secp256k1: Some(frost_secp256k1),
                bls12_381_g2: Some(bls12_381_g2),
            } => Ok(Some(PublicKeys {
                epoch,
                threshold,
                frost_secp256k1,
                bls12_381_g2,
            })),
            Fields {
                epoch: None,
                threshold: None,
                frost_secp256k1: None,
                bls12_381_g2: None,
            } => Ok(None),
            _ => Err(serde::de::Error::custom(
                "public_keys: give epoch, threshold, frost_secp256k1 and bls12_381_g2, or none",
            )),
        }
    }
}
