//! The client's view of a Keynet network: the signed registry, a verified connection to
//! each node, the network's public keys, and the threshold operations.
//!
//! Every node is checked before any request leaves the client: its certificate is verified
//! during the TLS handshake (chain to the pinned roots, report, published measurement,
//! binding to the TLS key), the node must be the registry member at that endpoint, and it
//! must answer a fresh-evidence challenge bound to a nonce and to this very TLS session.
//! The network's public keys are taken only if every reachable node serves the same ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::validate::{Manifest, Policy};
use attestation_verifier::verdict::Status;
use base64::Engine;
use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use k256::ecdsa::SigningKey;
use keynet_protocol::auth::{AuthMessage, SignedAuth};
use keynet_protocol::registry::{Address, NodeEntry, Registry, SignedRegistry, address_of};
use keynet_protocol::request::{Authorised, Bytes32, KeyRef, PermissionsRequest, SignRequest};
use keynet_threshold::aggregate::{AggregateError, aggregate};
use keynet_threshold::derive::derive_public_package;
use keynet_threshold::dkg::Participant;
use keynet_threshold::frost::SigningPackage;
use keynet_threshold::frost::keys::PublicKeyPackage;
use keynet_threshold::frost::round2::SignatureShare;
use serde::{Deserialize, Serialize};

use crate::attest::{check_fresh, client_config, trust_store};
use crate::http::{Pool, send};

mod bls;
mod collect;
pub use bls::{BlsKeys, BlsOp, BlsShareAnswers, BlsSigned, Combined, SharesReport, present};

/// Each node's answer to a request sent to all: endpoint, and ok or the node's error.
pub type NodeAnswers = Vec<(String, Result<(), String>)>;

/// Each participant's signature share and the package it signed, or its error.
pub type ShareAnswers = Vec<(
    Participant,
    Result<(SignatureShare, SigningPackage), String>,
)>;

/// How long an authorisation the client makes is valid.
pub const AUTH_LIFETIME: u64 = 300;

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
        /// Its stable error code.
        code: String,
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
        Ok(f)
    }
}

/// A node as the client sees it.
struct Link {
    entry: NodeEntry,
    participant: Participant,
    pool: Pool,
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
    #[serde(skip)]
    public_package: Option<String>,
    /// The BLS public key and public shares it serves (`bls12_381_g2` of the handshake).
    #[serde(skip)]
    bls: Option<serde_json::Value>,
}

/// A connected network.
pub struct Network {
    registry: Registry,
    domain: String,
    verifier: Arc<NodeVerifier>,
    links: Vec<Link>,
    timeout: Duration,
    /// The agreed public key package and the usable participants, from the last look.
    cache: std::sync::Mutex<Option<(PublicKeyPackage, Vec<Participant>)>>,
    /// The agreed BLS keys and the usable participants, from the last look.
    bls_cache: std::sync::Mutex<Option<(Arc<bls::BlsKeys>, Vec<Participant>)>>,
    /// Where the next BLS request starts among the usable nodes (spreads the load).
    rotate: std::sync::atomic::AtomicUsize,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_nonce() -> Result<String, ClientError> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| ClientError::Failed("no randomness".into()))?;
    Ok(hex::encode(b))
}

/// A node's JSON error, as (code, message).
fn node_error(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    (
        v["code"].as_str().unwrap_or("unknown").to_owned(),
        v["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
    )
}

/// Why a node did not answer a request with 200.
struct Refusal {
    /// The HTTP status, if the node answered at all.
    status: Option<u16>,
    /// Its stable error code (`unreachable` without an answer).
    code: String,
    message: String,
}

impl Refusal {
    fn text(&self) -> String {
        match self.status {
            Some(status) => format!("{status} {}: {}", self.code, self.message),
            None => self.message.clone(),
        }
    }

    fn into_error(self, endpoint: &str) -> ClientError {
        ClientError::Refused {
            endpoint: endpoint.to_owned(),
            code: self.code,
            message: self.message,
        }
    }
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
        let verifier = Arc::new(NodeVerifier::new(
            trust,
            Policy {
                manifest: Some(manifest),
                ..Policy::default()
            },
        ));
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
            client_config(verifier.clone()).map_err(|e| ClientError::Usage(e.to_string()))?,
        );
        let links = registry
            .nodes
            .iter()
            .enumerate()
            .map(|(i, e)| Link {
                entry: e.clone(),
                participant: Participant::try_from(i + 1).unwrap_or(0),
                pool: Pool::new(&e.endpoint, config.clone(), timeout),
            })
            .collect();
        Ok(Network {
            registry,
            domain: domain.to_owned(),
            verifier,
            links,
            timeout,
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

    /// One request to a node on a verified connection: (status, body).
    async fn call(
        &self,
        link: &Link,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), String> {
        let (mut sender, cert) = link.pool.take().await.map_err(|e| e.to_string())?;
        if let Some((cert, exporter)) = cert {
            self.check_new(link, &mut sender, &cert, &exporter).await?;
        }
        let r = send(
            &mut sender,
            &link.entry.endpoint,
            method,
            path,
            body,
            self.timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
        link.pool.put(sender);
        Ok(r)
    }

    /// A new connection: the handshake verified a genuine node; it must be the registry
    /// member at this endpoint and answer a fresh challenge bound to this very session.
    async fn check_new(
        &self,
        link: &Link,
        sender: &mut SendRequest<Full<Bytes>>,
        cert: &[u8],
        exporter: &[u8],
    ) -> Result<(), String> {
        let node = self
            .verifier
            .cached(cert, now() as i64)
            .ok_or("certificate verified but not cached")?;
        if node.evidence.identity.as_slice() != link.entry.identity_key.as_bytes().as_slice()
            || !node
                .evidence
                .endpoint
                .eq_ignore_ascii_case(&link.entry.endpoint)
        {
            return Err(format!(
                "the node there is not the registry member {}",
                link.entry.identity_key
            ));
        }
        let nonce = random_nonce().map_err(|e| e.to_string())?;
        let (status, body) = send(
            sender,
            &link.entry.endpoint,
            "GET",
            &format!("/v1/attestation?nonce={nonce}"),
            vec![],
            self.timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "/v1/attestation answered {status}: {}",
                node_error(&body).1
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("/v1/attestation: {e}"))?;
        let ev = base64::engine::general_purpose::STANDARD
            .decode(v["evidence"].as_str().unwrap_or(""))
            .map_err(|e| format!("/v1/attestation: {e}"))?;
        let mut verdict = node.verdict.clone();
        let nonce_bytes = hex::decode(&nonce).map_err(|e| e.to_string())?;
        check_fresh(
            &mut verdict,
            &self.verifier,
            &node.evidence,
            &node.spki,
            &ev,
            &nonce_bytes,
            exporter,
        );
        let failed: Vec<String> = verdict
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| format!("{}: {}", c.check, c.detail))
            .collect();
        if !failed.is_empty() {
            return Err(format!("fresh evidence rejected: {}", failed.join("; ")));
        }
        Ok(())
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
        self.links
            .iter()
            .find(|l| l.participant == *p)
            .map_or_else(|| format!("participant {p}"), |l| l.entry.endpoint.clone())
    }

    /// Fewer than the threshold of usable nodes: `available`, and why each other is not.
    fn not_enough(&self, all: &[NodeStatus], available: usize) -> ClientError {
        ClientError::NotEnoughNodes {
            available,
            n: self.links.len(),
            threshold: self.threshold(),
            failures: all
                .iter()
                .filter_map(|s| s.error.clone().map(|e| (s.endpoint.clone(), e)))
                .collect(),
        }
    }

    /// One request to node `participant` (1-based registry position) on a verified
    /// connection: (HTTP status, body).
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
        self.call(link, method, path, body).await
    }

    /// Connects to every node (concurrently) and reports what each serves.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let calls = self.links.iter().map(|l| async move {
            let mut s = NodeStatus {
                endpoint: l.entry.endpoint.clone(),
                participant: l.participant,
                verified: false,
                dkg: None,
                error: None,
                group_key: None,
                public_package: None,
                bls: None,
            };
            match self.call(l, "POST", "/v1/handshake", b"{}".to_vec()).await {
                Ok((200, body)) => {
                    s.verified = true;
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    s.dkg = v["dkg"]["state"].as_str().map(str::to_owned);
                    let f = &v["public_keys"]["frost_secp256k1"];
                    s.group_key = f["group_key"].as_str().map(str::to_owned);
                    s.public_package = f["public_key_package"].as_str().map(str::to_owned);
                    s.bls =
                        Some(v["public_keys"]["bls12_381_g2"].clone()).filter(|b| b.is_object());
                    if s.group_key.is_none() {
                        s.error = Some(format!(
                            "holds no network keys (DKG {})",
                            s.dkg.as_deref().unwrap_or("unknown")
                        ));
                    }
                }
                Ok((status, body)) => {
                    s.verified = true;
                    s.error = Some(format!(
                        "/v1/handshake answered {status}: {}",
                        node_error(&body).1
                    ));
                }
                Err(e) => s.error = Some(e),
            }
            s
        });
        join_all(calls).await
    }

    /// The network's FROST public key package, agreed by every node that serves one, and
    /// the nodes that are usable.
    pub async fn public_keys(&self) -> Result<(PublicKeyPackage, Vec<NodeStatus>), ClientError> {
        let all = self.status().await;
        let usable: Vec<NodeStatus> = all.iter().filter(|s| s.error.is_none()).cloned().collect();
        let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &usable {
            if let Some(p) = &s.public_package {
                packages
                    .entry(p.clone())
                    .or_default()
                    .push(s.endpoint.clone());
            }
        }
        if packages.len() > 1 {
            let groups: Vec<String> = packages.values().map(|v| v.join(" ")).collect();
            return Err(ClientError::Inconsistent(groups.join(" | ")));
        }
        if usable.len() < self.threshold() || packages.is_empty() {
            return Err(self.not_enough(&all, usable.len()));
        }
        let hexed = packages.keys().next().cloned().unwrap_or_default();
        let bytes = hex::decode(&hexed).map_err(|e| ClientError::Failed(e.to_string()))?;
        let package = PublicKeyPackage::deserialize(&bytes)
            .map_err(|e| ClientError::Failed(format!("public key package: {e}")))?;
        Ok((package, usable))
    }

    /// Signs `message` with the derived key `key` as `user`, using `count` nodes (at least
    /// the threshold; `None` means the threshold). The network's keys and the usable nodes
    /// are looked up once and kept; if a chosen node cannot be reached they are looked up
    /// again and the signing is retried once with the nodes that answer.
    pub async fn sign(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        count: Option<usize>,
    ) -> Result<Signed, ClientError> {
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let fresh = cached.is_none();
        let (root, usable) = match cached {
            Some(c) => c,
            None => self.refresh().await?,
        };
        match self
            .sign_once(&root, &usable, user, key, message, count)
            .await
        {
            Err(ClientError::Refused { code, .. }) if code == "unreachable" && !fresh => {
                let (root, usable) = self.refresh().await?;
                self.sign_once(&root, &usable, user, key, message, count)
                    .await
            }
            other => other,
        }
    }

    async fn refresh(&self) -> Result<(PublicKeyPackage, Vec<Participant>), ClientError> {
        let (root, usable) = self.public_keys().await?;
        let entry = (
            root,
            usable.iter().map(|s| s.participant).collect::<Vec<_>>(),
        );
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(entry.clone());
        Ok(entry)
    }

    async fn sign_once(
        &self,
        root: &PublicKeyPackage,
        usable: &[Participant],
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        count: Option<usize>,
    ) -> Result<Signed, ClientError> {
        let t = self.threshold();
        let count = count.unwrap_or(t).max(t);
        if usable.len() < count {
            return Err(ClientError::NotEnoughNodes {
                available: usable.len(),
                n: self.links.len(),
                threshold: count,
                failures: vec![],
            });
        }
        let chosen = self.links_of(&usable[..count]);
        let request = SignRequest {
            network: self.registry.network_id.clone(),
            key: key.clone(),
            message: Bytes32(message),
            participants: chosen.iter().map(|l| l.entry.identity_key).collect(),
        };
        request
            .validate()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let body = self.authorised(user, request.digest(), request)?;
        let mut shares = BTreeMap::new();
        let mut refusals = Vec::new();
        for (l, a) in self.post_all(&chosen, "/v1/sign", body).await {
            let share = a.and_then(|b| {
                parse_share(&b).map_err(|message| Refusal {
                    status: Some(200),
                    code: "bad_answer".into(),
                    message,
                })
            });
            match share {
                Ok(s) => {
                    shares.insert(l.participant, s);
                }
                Err(r) => refusals.push(r.into_error(&l.entry.endpoint)),
            }
        }
        // An unreachable node explains the others' timeouts: report it first.
        refusals.sort_by_key(
            |r| !matches!(r, ClientError::Refused { code, .. } if code == "unreachable"),
        );
        if let Some(first) = refusals.into_iter().next() {
            return Err(first);
        }
        // The nodes must have signed our message, with exactly the nodes we chose.
        let want: std::collections::BTreeSet<keynet_threshold::frost::Identifier> = chosen
            .iter()
            .filter_map(|l| keynet_threshold::frost::Identifier::try_from(l.participant).ok())
            .collect();
        for (p, (_, pkg)) in &shares {
            let signers: std::collections::BTreeSet<_> =
                pkg.signing_commitments().keys().copied().collect();
            if pkg.message().as_slice() != message.as_slice() || signers != want {
                let endpoint = chosen
                    .iter()
                    .find(|l| l.participant == *p)
                    .map_or_else(String::new, |l| l.entry.endpoint.clone());
                return Err(ClientError::BadShares(vec![endpoint]));
            }
        }
        let public = derive_public_package(root, &key.key_id())
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        let signature = self.combine(&public, &shares)?;
        let public_key = public
            .verifying_key()
            .serialize()
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        Ok(Signed {
            signature: hex::encode(signature),
            public_key: hex::encode(public_key),
            message: hex::encode(message),
            participants: chosen.iter().map(|l| l.entry.endpoint.clone()).collect(),
        })
    }

    /// Aggregates shares (participant → share and the package it signed), naming the
    /// nodes whose shares do not verify. The result is checked with the RFC 9591
    /// equation before it is returned.
    pub fn combine(
        &self,
        public: &PublicKeyPackage,
        shares: &BTreeMap<Participant, (SignatureShare, SigningPackage)>,
    ) -> Result<Vec<u8>, ClientError> {
        aggregate(public, shares).map_err(|e| match e {
            AggregateError::BadShares { culprits } => {
                ClientError::BadShares(culprits.iter().map(|p| self.name(p)).collect())
            }
            AggregateError::PackageMismatch(p) => ClientError::BadShares(vec![self.name(&p)]),
            other => ClientError::Failed(other.to_string()),
        })
    }

    /// Collects the raw share answers of `participants` for a request (for tests and
    /// tools that inspect shares before combining).
    pub async fn sign_shares(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        participants: &[Participant],
    ) -> Result<ShareAnswers, ClientError> {
        let chosen = self.links_of(participants);
        self.sign_shares_to(user, key, message, &chosen, &chosen)
            .await
    }

    /// Sends a request naming `named` participants to the nodes `sent_to` only.
    pub async fn sign_shares_partial(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        named: &[Participant],
        sent_to: &[Participant],
    ) -> Result<ShareAnswers, ClientError> {
        self.sign_shares_to(
            user,
            key,
            message,
            &self.links_of(named),
            &self.links_of(sent_to),
        )
        .await
    }

    async fn sign_shares_to(
        &self,
        user: &SigningKey,
        key: &KeyRef,
        message: [u8; 32],
        named: &[&Link],
        sent_to: &[&Link],
    ) -> Result<ShareAnswers, ClientError> {
        let request = SignRequest {
            network: self.registry.network_id.clone(),
            key: key.clone(),
            message: Bytes32(message),
            participants: named.iter().map(|l| l.entry.identity_key).collect(),
        };
        let body = self.authorised(user, request.digest(), request)?;
        Ok(self
            .post_all(sent_to, "/v1/sign", body)
            .await
            .into_iter()
            .map(|(l, a)| {
                let r = a.map_err(|r| r.text()).and_then(|b| parse_share(&b));
                (l.participant, r)
            })
            .collect())
    }

    /// Sets who besides the owner (`owner`'s address) may sign with the owner's key
    /// `name`, on every reachable node; returns each node's answer.
    pub async fn set_permissions(
        &self,
        owner: &SigningKey,
        name: &str,
        allowed: Vec<Address>,
        seq: u64,
    ) -> Result<NodeAnswers, ClientError> {
        let request = PermissionsRequest {
            network: self.registry.network_id.clone(),
            key: KeyRef {
                owner: address_of(owner.verifying_key()),
                name: name.to_owned(),
            },
            seq,
            allowed,
        };
        request
            .validate()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let body = self.authorised(owner, request.digest(), request)?;
        let all: Vec<&Link> = self.links.iter().collect();
        Ok(self
            .post_all(&all, "/v1/pkp/permissions", body)
            .await
            .into_iter()
            .map(|(l, a)| {
                (
                    l.entry.endpoint.clone(),
                    a.map(|_| ()).map_err(|r| r.text()),
                )
            })
            .collect())
    }

    /// `request` with the user's authorisation of its `digest`, as the JSON body nodes take.
    fn authorised<R: Serialize>(
        &self,
        user: &SigningKey,
        digest: [u8; 32],
        request: R,
    ) -> Result<Vec<u8>, ClientError> {
        let auth = self.authorise(user, &digest)?;
        serde_json::to_vec(&Authorised { request, auth })
            .map_err(|e| ClientError::Failed(e.to_string()))
    }

    /// POSTs `body` to `path` on each of `links` concurrently: each one's 200 body, or why not.
    async fn post_all<'a>(
        &self,
        links: &[&'a Link],
        path: &str,
        body: Vec<u8>,
    ) -> Vec<(&'a Link, Result<Vec<u8>, Refusal>)> {
        self.post_each(path, links.iter().map(|l| (*l, body.clone())).collect())
            .await
    }

    /// POSTs each body to `path` on its link, concurrently.
    async fn post_each<'a>(
        &self,
        path: &str,
        items: Vec<(&'a Link, Vec<u8>)>,
    ) -> Vec<(&'a Link, Result<Vec<u8>, Refusal>)> {
        join_all(items.into_iter().map(|(l, body)| async move {
            let r = match self.call(l, "POST", path, body).await {
                Ok((200, b)) => Ok(b),
                Ok((status, b)) => {
                    let (code, message) = node_error(&b);
                    Err(Refusal {
                        status: Some(status),
                        code,
                        message,
                    })
                }
                Err(message) => Err(Refusal {
                    status: None,
                    code: "unreachable".into(),
                    message,
                }),
            };
            (l, r)
        }))
        .await
    }

    /// The user's authorisation of a request digest (EIP-191 personal message).
    pub fn authorise(
        &self,
        user: &SigningKey,
        digest: &[u8; 32],
    ) -> Result<SignedAuth, ClientError> {
        let issued = now();
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
        let sig = keynet_protocol::registry::eip191_sign(text.as_bytes(), user)
            .map_err(|e| ClientError::Failed(e.to_string()))?;
        Ok(SignedAuth {
            message: text,
            signature: format!("0x{}", hex::encode(sig)),
        })
    }
}

/// A threshold signature.
#[derive(Clone, Debug, Serialize)]
pub struct Signed {
    /// 65 bytes: R (compressed) || z, hex.
    pub signature: String,
    /// The derived public key (compressed), hex.
    pub public_key: String,
    /// The signed digest, hex.
    pub message: String,
    /// The nodes that took part.
    pub participants: Vec<String>,
}

fn parse_share(body: &[u8]) -> Result<(SignatureShare, SigningPackage), String> {
    #[derive(Deserialize)]
    struct Answer {
        share: String,
        package: String,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| format!("share answer: {e}"))?;
    let share = SignatureShare::deserialize(&hex::decode(&a.share).map_err(|e| e.to_string())?)
        .map_err(|e| format!("share: {e}"))?;
    let package = SigningPackage::deserialize(&hex::decode(&a.package).map_err(|e| e.to_string())?)
        .map_err(|e| format!("signing package: {e}"))?;
    Ok((share, package))
}
