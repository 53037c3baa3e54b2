//! The client's view of a Keynet network: the signed registry, a verified connection to
//! each node, the network's public keys, and the threshold operations.
//!
//! Every node is checked before any request leaves the client
//! ([`keynet_net::verify::verify_node`], on each new connection): its certificate is
//! verified during the TLS handshake (chain to the pinned roots, report, published
//! measurement, binding to the TLS key), the node must be the registry member at that
//! endpoint, and it must answer a fresh-evidence challenge bound to a nonce and to this very
//! TLS session. The network's public keys are taken only if the reachable nodes agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::validate::{Manifest, Policy};
use futures_util::future::join_all;
use k256::ecdsa::SigningKey;
use keynet_eth::{Address, address_of, eip191_sign};
use keynet_net::pool::{CallError, Pool};
use keynet_protocol::api::{ErrorBody, ErrorCode, HandshakeRequest, PublicKeys, Route, route};
use keynet_protocol::auth::{AuthMessage, SignedAuth};
use keynet_protocol::registry::{Registry, SignedRegistry};
use keynet_protocol::request::{Authorised, UserRequest};
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::keys::PublicKeyPackage;
use serde::{Deserialize, Serialize};

use crate::attest::trust_store;

mod bls;
mod collect;
mod sign;
pub use bls::{BlsKeys, BlsOp, BlsShareAnswers, BlsSigned, Combined, SharesReport, present};
pub use sign::{NodeAnswers, ShareAnswers, Signed};

/// How long an authorisation the client makes is valid. It is sent to every node at once,
/// so it need not live long; a node remembers each until it expires (a few thousand per
/// user at most), so a short life lets a busy user make more.
pub const AUTH_LIFETIME: u64 = 60;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Bad arguments or files.
    #[error("{0}")]
    Usage(String),
    /// Fewer genuine, reachable nodes with keys than the threshold.
    #[error(
        "only {available} of {n} nodes are reachable, genuine and hold the network's keys; \
         the threshold is {threshold}{}", failures_text(.failures)
    )]
    NotEnoughNodes {
        /// Usable nodes.
        available: usize,
        /// Nodes in the registry.
        n: usize,
        /// The threshold.
        threshold: usize,
        /// Each unusable node and why.
        failures: Vec<(String, String)>,
    },
    /// Nodes serve different public keys.
    #[error("nodes disagree on the network's public keys: {0}")]
    Inconsistent(String),
    /// A node refused the request (its answer says why).
    #[error("{endpoint} refused: {code}: {message}")]
    Refused {
        /// The node.
        endpoint: String,
        /// Why: the node's stable error code, or that it could not be reached.
        code: RefusalCode,
        /// Its message.
        message: String,
    },
    /// Nodes returned shares that do not verify: named.
    #[error("invalid signature shares from {}", .0.join(", "))]
    BadShares(Vec<String>),
    /// A file could not be decrypted (altered, or not this network's).
    #[error(transparent)]
    Decrypt(#[from] keynet_encryption::DecryptError),
    /// Anything else that went wrong while talking to the network.
    #[error("{0}")]
    Failed(String),
}

/// Why a node gave no answer the client could use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalCode {
    /// No connection, no answer, or not the registry member (not shown genuine).
    Unreachable,
    /// A 200 answer that is not the route's answer.
    BadAnswer,
    /// The node's own error code.
    Node(ErrorCode),
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusalCode::Unreachable => f.write_str("unreachable"),
            RefusalCode::BadAnswer => f.write_str("bad_answer"),
            RefusalCode::Node(c) => f.write_str(c.as_str()),
        }
    }
}

fn failures_text(f: &[(String, String)]) -> String {
    if f.is_empty() {
        return String::new();
    }
    let list: Vec<String> = f.iter().map(|(e, r)| format!("{e}: {r}")).collect();
    format!(" ({})", list.join("; "))
}

/// The network file (`keynet --network FILE`, written by `keynode dev-network`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// The signed registry document.
    pub registry: PathBuf,
    /// The registry authority's address.
    pub authority: String,
    /// The published measurement manifest nodes must match.
    pub manifest: PathBuf,
    /// A simulated platform's roots (development networks only).
    pub trust_simulated: Option<PathBuf>,
    /// The domain authorisations name.
    pub auth_domain: String,
    /// The network's minimum TCB (`bl=..,tee=..,snp=..,ucode=..`): nodes reporting less are
    /// refused.
    #[serde(default)]
    pub min_tcb: Option<String>,
    /// AMD's CRL for the network's product (DER or PEM): every node's chain is checked
    /// against it.
    #[serde(default)]
    pub crl: Option<PathBuf>,
    /// The network profile nodes must run under (64 hex digits, `keynode profile` prints
    /// it); without it any profile is accepted and the verdict says which.
    #[serde(default)]
    pub profile: Option<String>,
}

impl NetworkFile {
    /// Reads a network file; relative paths are relative to it.
    pub fn load(path: &Path) -> Result<NetworkFile, ClientError> {
        let u = |e: String| ClientError::Usage(format!("{}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| u(e.to_string()))?;
        let mut f: NetworkFile = toml::from_str(&text).map_err(|e| u(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        f.registry = base.join(&f.registry);
        f.manifest = base.join(&f.manifest);
        f.trust_simulated = f.trust_simulated.map(|p| base.join(p));
        f.crl = f.crl.map(|p| base.join(p));
        Ok(f)
    }
}

/// A node as the client sees it: its participant index and verified connections to it.
struct Link {
    participant: Participant,
    pool: Pool,
}

impl Link {
    fn endpoint(&self) -> &str {
        &self.pool.member().endpoint
    }
}

/// A node that could be used, with what it serves.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// The node's endpoint.
    pub endpoint: String,
    /// Its participant index.
    pub participant: Participant,
    /// Genuine and the registry member it should be (checked before anything else).
    pub verified: bool,
    /// Its key generation's state, if it answered.
    pub dkg: Option<String>,
    /// Why it cannot be used, if so.
    pub error: Option<String>,
    /// The FROST group key it serves (hex), if any.
    pub group_key: Option<String>,
    /// The public keys it serves.
    #[serde(skip)]
    keys: Option<PublicKeys>,
}

/// Why a node did not answer a request with its answer.
enum Refusal {
    /// Not reached, or not shown to be the registry member.
    Unreachable(String),
    /// The node's error.
    Node { status: u16, body: ErrorBody },
    /// A 200 that is not the route's answer.
    BadAnswer(String),
}

impl From<CallError> for Refusal {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Refused { status, body, .. } => Refusal::Node { status, body },
            CallError::BadAnswer { reason, .. } => Refusal::BadAnswer(reason),
            other => Refusal::Unreachable(other.to_string()),
        }
    }
}

impl Refusal {
    fn code(&self) -> RefusalCode {
        match self {
            Refusal::Unreachable(_) => RefusalCode::Unreachable,
            Refusal::Node { body, .. } => RefusalCode::Node(body.code),
            Refusal::BadAnswer(_) => RefusalCode::BadAnswer,
        }
    }

    fn message(&self) -> &str {
        match self {
            Refusal::Unreachable(m) | Refusal::BadAnswer(m) => m,
            Refusal::Node { body, .. } => &body.message,
        }
    }

    fn text(&self) -> String {
        match self {
            Refusal::Unreachable(m) => m.clone(),
            Refusal::Node { status, body } => format!("{status} {}: {}", body.code, body.message),
            Refusal::BadAnswer(m) => format!("200 bad_answer: {m}"),
        }
    }

    /// Is it the user's to fix (conditions, authorisation, request)?
    fn users_fault(&self) -> bool {
        matches!(self, Refusal::Node { status, .. } if (400..500).contains(status))
    }

    fn into_error(self, endpoint: &str) -> ClientError {
        ClientError::Refused {
            endpoint: endpoint.to_owned(),
            code: self.code(),
            message: self.message().to_owned(),
        }
    }
}

/// A connected network.
pub struct Network {
    registry: Registry,
    domain: String,
    links: Vec<Link>,
    /// The agreed public key package and the usable participants, from the last look.
    cache: std::sync::Mutex<Option<(PublicKeyPackage, Vec<Participant>)>>,
    /// The agreed BLS keys and the usable participants, from the last look.
    bls_cache: std::sync::Mutex<Option<(Arc<bls::BlsKeys>, Vec<Participant>)>>,
    /// Where the next BLS request starts among the usable nodes (spreads the load).
    rotate: std::sync::atomic::AtomicUsize,
}

fn random_nonce() -> Result<String, ClientError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| ClientError::Failed("no randomness".into()))?;
    Ok(hex::encode(b))
}

impl Network {
    /// Opens the network described by `file` (reads and verifies the registry; connects to
    /// nothing yet).
    pub fn open(file: &NetworkFile) -> Result<Network, ClientError> {
        let u = |e: String| ClientError::Usage(e);
        let authority: Address = file
            .authority
            .parse()
            .map_err(|e| u(format!("authority: {e}")))?;
        let reg_bytes = std::fs::read(&file.registry)
            .map_err(|e| u(format!("{}: {e}", file.registry.display())))?;
        let registry = SignedRegistry::verify(&reg_bytes, &authority)
            .map_err(|e| u(format!("{}: {e}", file.registry.display())))?;
        let manifest = Manifest::parse(
            &std::fs::read(&file.manifest)
                .map_err(|e| u(format!("{}: {e}", file.manifest.display())))?,
        )
        .map_err(|e| u(format!("{}: {e}", file.manifest.display())))?;
        let sim = match &file.trust_simulated {
            Some(p) => Some(std::fs::read(p).map_err(|e| u(format!("{}: {e}", p.display())))?),
            None => None,
        };
        let trust = trust_store(sim.as_deref()).map_err(|e| u(e.to_string()))?;
        let min_tcb = file
            .min_tcb
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| u(format!("min_tcb: {e}")))?;
        let mut verifier = NodeVerifier::new(
            trust,
            Policy {
                manifest: Some(manifest),
                min_tcb,
                ..Policy::default()
            },
        );
        if let Some(p) = &file.profile {
            let bytes: [u8; 32] = hex::decode(p)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| u(format!("profile: '{p}' is not 64 hex digits")))?;
            verifier = verifier.with_profile(bytes);
        }
        if let Some(p) = &file.crl {
            verifier = verifier
                .with_crl(std::fs::read(p).map_err(|e| u(format!("{}: {e}", p.display())))?);
        }
        let verifier = Arc::new(verifier);
        Network::with(registry, &file.auth_domain, verifier)
    }

    /// A network from a verified registry and a node verifier.
    pub fn with(
        registry: Registry,
        domain: &str,
        verifier: Arc<NodeVerifier>,
    ) -> Result<Network, ClientError> {
        let timeout = Duration::from_secs(10);
        let config = Arc::new(
            keynet_net::tls::client_config(verifier.clone(), None)
                .map_err(|e| ClientError::Usage(e.to_string()))?,
        );
        let links = registry
            .participants()
            .map(|(participant, e)| Link {
                participant,
                pool: Pool::new(e.clone(), config.clone(), verifier.clone(), timeout),
            })
            .collect();
        Ok(Network {
            registry,
            domain: domain.to_owned(),
            links,
            cache: std::sync::Mutex::new(None),
            bls_cache: std::sync::Mutex::new(None),
            rotate: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The threshold.
    pub fn threshold(&self) -> usize {
        self.registry.threshold() as usize
    }

    /// The links of `participants`, in that order (unknown ones left out).
    fn links_of(&self, participants: &[Participant]) -> Vec<&Link> {
        participants
            .iter()
            .filter_map(|p| self.links.iter().find(|l| l.participant == *p))
            .collect()
    }

    /// A participant's endpoint, for naming it in errors.
    fn name(&self, p: &Participant) -> String {
        self.registry
            .entry(*p)
            .map_or_else(|| format!("participant {p}"), |e| e.endpoint.clone())
    }

    /// Fewer than the threshold of usable nodes: `available`, and why each other is not.
    fn not_enough(&self, all: &[NodeStatus], available: usize) -> ClientError {
        self.too_few(
            available,
            self.threshold(),
            all.iter()
                .filter_map(|s| s.error.clone().map(|e| (s.endpoint.clone(), e)))
                .collect(),
        )
    }

    /// `available` usable nodes where `threshold` are needed, and why the others are not.
    fn too_few(
        &self,
        available: usize,
        threshold: usize,
        failures: Vec<(String, String)>,
    ) -> ClientError {
        ClientError::NotEnoughNodes {
            available,
            n: self.links.len(),
            threshold,
            failures,
        }
    }

    /// One request to node `participant` (1-based registry position) on a verified
    /// connection: (HTTP status, body). For tests and tools that look at the wire itself.
    pub async fn request(
        &self,
        participant: Participant,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), String> {
        let link = self
            .links
            .iter()
            .find(|l| l.participant == participant)
            .ok_or_else(|| format!("no participant {participant}"))?;
        link.pool
            .request(method, path, body)
            .await
            .map_err(|e| e.to_string())
    }

    /// Connects to every node (concurrently) and reports what each serves.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let calls = self.links.iter().map(|l| async move {
            let mut s = NodeStatus {
                endpoint: l.endpoint().to_owned(),
                participant: l.participant,
                verified: false,
                dkg: None,
                error: None,
                group_key: None,
                keys: None,
            };
            match l.pool.call::<route::Handshake>(&HandshakeRequest {}).await {
                Ok(info) => {
                    s.verified = true;
                    s.dkg = Some(info.dkg.state.to_string());
                    s.group_key = info
                        .public_keys
                        .as_ref()
                        .map(|k| k.frost_secp256k1.group_key.clone());
                    s.keys = info.public_keys;
                    if s.keys.is_none() {
                        // Why, as the node says it (for example excluded for misconduct).
                        let why = info
                            .dkg
                            .reason
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default();
                        s.error = Some(format!(
                            "holds no network keys (DKG {}{why})",
                            info.dkg.state
                        ));
                    }
                }
                Err(CallError::Refused { status, body, .. }) => {
                    s.verified = true;
                    s.error = Some(format!(
                        "{} answered {status}: {}",
                        route::Handshake::PATH,
                        body.message
                    ));
                }
                Err(e @ CallError::BadAnswer { .. }) => {
                    s.verified = true;
                    s.error = Some(e.to_string());
                }
                Err(e) => s.error = Some(e.to_string()),
            }
            s
        });
        join_all(calls).await
    }

    /// The network's FROST public key package, as served by at least a threshold of the
    /// verified nodes, and those nodes. Nodes serving another package (a stale or foreign
    /// key share) are left out; [`Network::agreed`] says why.
    pub async fn public_keys(&self) -> Result<(PublicKeyPackage, Vec<NodeStatus>), ClientError> {
        let all = self.status().await;
        let (hexed, usable) = self.agreed(&all, |k| &k.frost_secp256k1.public_key_package)?;
        let bytes = hex::decode(hexed).map_err(|e| ClientError::Failed(e.to_string()))?;
        let package = PublicKeyPackage::deserialize(&bytes)
            .map_err(|e| ClientError::Failed(format!("public key package: {e}")))?;
        Ok((package, usable))
    }

    /// The keys (`which` of each node's public keys, with the epoch they were made in) that
    /// at least a threshold of the usable nodes in `all` serve, and those nodes. Two sets
    /// cannot both reach the threshold when 2t > n, as the registry requires; one node, or
    /// a minority, serving other keys cannot stop the rest. With no set at the threshold,
    /// the sets are named (`Inconsistent`), or the nodes missing.
    fn agreed<'a, K: Ord>(
        &self,
        all: &'a [NodeStatus],
        which: impl Fn(&'a PublicKeys) -> &'a K,
    ) -> Result<(&'a K, Vec<NodeStatus>), ClientError> {
        let mut served: BTreeMap<(u64, &K), Vec<NodeStatus>> = BTreeMap::new();
        for s in all.iter().filter(|s| s.error.is_none()) {
            if let Some(k) = &s.keys {
                served
                    .entry((k.epoch, which(k)))
                    .or_default()
                    .push(s.clone());
            }
        }
        let best = served.iter().max_by_key(|(_, v)| v.len());
        match best {
            Some(((_, keys), usable)) if usable.len() >= self.threshold() => {
                Ok((*keys, usable.clone()))
            }
            Some(_) if served.len() > 1 => {
                let groups: Vec<String> = served
                    .values()
                    .map(|v| {
                        v.iter()
                            .map(|s| s.endpoint.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                Err(ClientError::Inconsistent(groups.join(" | ")))
            }
            Some((_, usable)) => Err(self.not_enough(all, usable.len())),
            None => Err(self.not_enough(all, 0)),
        }
    }

    /// `request` with the user's authorisation of its digest, as the JSON body nodes take.
    fn authorised<R: UserRequest + Serialize>(
        &self,
        user: &SigningKey,
        request: R,
    ) -> Result<Vec<u8>, ClientError> {
        let auth = self.authorise(user, &request.digest())?;
        serde_json::to_vec(&Authorised { request, auth })
            .map_err(|e| ClientError::Failed(e.to_string()))
    }

    /// POSTs `body` to route `R` on each of `links` concurrently: each one's answer, or why not.
    async fn post_all<'a, R: Route>(
        &self,
        links: &[&'a Link],
        body: Vec<u8>,
    ) -> Vec<(&'a Link, Result<R::Response, Refusal>)> {
        self.post_each::<R>(links.iter().map(|l| (*l, body.clone())).collect())
            .await
    }

    /// POSTs each body to route `R` on its link, concurrently.
    async fn post_each<'a, R: Route>(
        &self,
        items: Vec<(&'a Link, Vec<u8>)>,
    ) -> Vec<(&'a Link, Result<R::Response, Refusal>)> {
        join_all(items.into_iter().map(|(l, body)| async move {
            (l, l.pool.call_raw::<R>(body).await.map_err(Refusal::from))
        }))
        .await
    }

    /// The user's authorisation of a request digest (EIP-191 personal message).
    pub fn authorise(
        &self,
        user: &SigningKey,
        digest: &[u8; 32],
    ) -> Result<SignedAuth, ClientError> {
        let issued = keynet_net::unix_now();
        let m = AuthMessage {
            domain: self.domain.clone(),
            address: address_of(user.verifying_key()),
            request_digest: *digest,
            network: self.registry.network_id.clone(),
            nonce: random_nonce()?,
            issued_at: issued,
            expires_at: issued + AUTH_LIFETIME,
        };
        let text = m.to_text();
        let sig =
            eip191_sign(text.as_bytes(), user).map_err(|e| ClientError::Failed(e.to_string()))?;
        Ok(SignedAuth {
            message: text,
            signature: format!("0x{}", hex::encode(sig)),
        })
    }
}
