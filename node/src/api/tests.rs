//! The API at the router, without TLS or a cluster (tower `oneshot`): every route refuses
//! malformed JSON, unknown fields and oversized bodies in the API's error shape, and every
//! error code a route can give is given, with its status; every success decodes as the
//! type the client reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::evidence::{Evidence, Platform};
use attestation_verifier::validate::Policy;
use attestation_verifier::verify::roots::TrustStore;
use axum::body::Body as HttpBody;
use axum::http::Request;
use base64::Engine;
use http_body_util::BodyExt;
use k256::ecdsa::SigningKey;
use keynet_eth::{address_of, eip191_sign};
use keynet_net::verify::Admitted;
use keynet_protocol::api::{
    self, Ack, Attestation, BlsShare, CommitmentsAnswer, DkgBody, DkgState, ErrorBody, ErrorCode,
    Health, NodeInfo, PeerCommitments, PermissionsSet, Route, SignShare, route,
};
use keynet_protocol::auth::{AuthMessage, AuthVerifier, ReplayLimits, SignedAuth};
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry, Stake};
use keynet_protocol::request::{
    Authorised, BlsSignRequest, DecryptRequest, KeyRef, PermissionsRequest, SignRequest,
    UserRequest,
};
use keynet_store::{SealingKey, Store};
use keynet_threshold::frost;
use keynet_threshold::wire::FrostWire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{Conn, router};
use crate::config::LimitsSection;
use crate::dkg::DkgService;
use crate::evidence::simulated::{SimulatedOptions, SimulatedPlatform};
use crate::evidence::{EvidenceProvider, PlatformEvidence, ProviderError, SimulatedProvider};
use crate::identity::Identity;
use crate::keys::NetworkKeys;
use crate::peer::Peers;
use crate::pkp::Permissions;
use crate::sign::SignService;
use crate::state::{NodeState, Parts};
use crate::tls::NodeTls;

const NETWORK: &str = "keynet-test";
const DOMAIN: &str = "keynet.local";
const N: u16 = 4;
const T: u16 = 3;

/// One simulated chip for every test (RSA key generation is the slow part).
fn platform() -> SimulatedPlatform {
    static P: OnceLock<SimulatedPlatform> = OnceLock::new();
    P.get_or_init(|| {
        SimulatedPlatform::generate(SimulatedOptions {
            rsa_bits: 2048,
            ..SimulatedOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

/// The simulated platform, whose evidence can be switched off after start (a secure
/// processor that stops answering).
struct Switchable {
    inner: SimulatedProvider,
    fail: Arc<AtomicBool>,
}

impl EvidenceProvider for Switchable {
    fn name(&self) -> &'static str {
        "switchable"
    }
    fn platform(&self) -> Platform {
        self.inner.platform()
    }
    fn evidence(&self, report_data: [u8; 64]) -> Result<PlatformEvidence, ProviderError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(ProviderError::Failed {
                provider: "switchable",
                reason: "the secure processor does not answer".into(),
            });
        }
        self.inner.evidence(report_data)
    }
    fn sealing_key(&self) -> Result<SealingKey, ProviderError> {
        self.inner.sealing_key()
    }
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32].into()).unwrap_or_else(|e| panic!("{e}"))
}

/// A closed port: peers there are unreachable at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1)
}

/// A node (participant 1 of a 4-node registry, threshold 3) with its keys from a local
/// DKG, peers unreachable, and signing waiting 200 ms for them.
struct Fixture {
    state: Arc<NodeState>,
    dir: tempfile::TempDir,
    registry: Registry,
    frost: Vec<(frost::keys::KeyPackage, frost::keys::PublicKeyPackage)>,
    evidence_fails: Arc<AtomicBool>,
    nonce: AtomicU64,
}

impl Fixture {
    fn new(with_keys: bool) -> Fixture {
        Self::with_limits(
            with_keys,
            LimitsSection {
                // Reached without thousands of keys.
                pkp_keys_per_owner: 2,
                pkp_keys: 100,
                ..LimitsSection::default()
            },
        )
    }

    /// A node with `limits` (replay memory, signing sessions, fresh evidence).
    fn with_limits(with_keys: bool, limits: LimitsSection) -> Fixture {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let chip = platform();
        let fail = Arc::new(AtomicBool::new(false));
        let provider = Switchable {
            inner: SimulatedProvider(chip),
            fail: fail.clone(),
        };
        let store = Store::open(
            dir.path().join("state"),
            provider.sealing_key().unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let me = Arc::new(Identity::load_or_create(&store).unwrap_or_else(|e| panic!("{e}")));
        let me_key = IdentityKey::from_verifying_key(&me.public());
        let mut nodes = vec![NodeEntry {
            identity_key: me_key,
            staker: address_of(key(200).verifying_key()),
            stake: Stake::from_wei(10),
            endpoint: "127.0.0.1:7001".into(),
        }];
        for i in 2..=N as u8 {
            nodes.push(NodeEntry {
                identity_key: IdentityKey::from_verifying_key(key(i).verifying_key()),
                staker: address_of(key(200 + i).verifying_key()),
                stake: Stake::from_wei(10),
                endpoint: format!("127.0.0.1:{}", closed_port()),
            });
        }
        let registry = Registry {
            network_id: NETWORK.into(),
            epoch: 1,
            threshold: u32::from(T),
            min_stake: Stake::from_wei(1),
            nodes,
        };
        let tls = NodeTls::create(
            &provider,
            &me.public_compressed(),
            "127.0.0.1:7001",
            &[5; 32],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let verifier = Arc::new(NodeVerifier::new(TrustStore::amd(), Policy::default()));
        let state = Arc::new(NodeState::new(Parts {
            peers: Peers::new(&tls, verifier.clone(), Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("{e}")),
            tls,
            provider: Box::new(provider),
            identity: me_key,
            endpoint: "127.0.0.1:7001".into(),
            registry: registry.clone(),
            peer_verifier: verifier,
            pkp: Permissions::load(&store, limits.pkp()).unwrap_or_else(|e| panic!("{e}")),
            store,
            auth: AuthVerifier::with_replay(
                DOMAIN,
                NETWORK,
                600,
                60,
                ReplayLimits {
                    per_address: limits.auth_pending_per_address,
                    total: limits.auth_pending_total,
                },
                0,
                u64::MAX,
            ),
            dkg: DkgService::new(Duration::from_secs(5), {
                let me = me.clone();
                Arc::new(move |digest: &[u8; 32]| me.sign_digest(digest))
            }),
            signing: SignService::new(Duration::from_millis(200), limits.sessions()),
            attest: crate::attest::AttestMeter::new(limits.attest()),
            cpu: crate::work::Work::new("verification and signing jobs", limits.cpu(2)),
        }));
        // The clocks of the services, as a running node has them.
        tokio::spawn(crate::sign::ticker(state.clone()));
        tokio::spawn(crate::dkg::ticker(state.clone()));
        let frost = keynet_threshold::dkg::run_local(N, T).unwrap_or_else(|e| panic!("{e}"));
        if with_keys {
            let bls = keynet_threshold::bls_dkg::run_local(N, T).unwrap_or_else(|e| panic!("{e}"));
            state.install_keys(NetworkKeys {
                network: NETWORK.into(),
                epoch: 1,
                me: 1,
                n: N,
                frost: frost[0].0.clone(),
                frost_public: frost[0].1.clone(),
                bls: bls[0].clone(),
            });
        }
        Fixture {
            state,
            dir,
            registry,
            frost,
            evidence_fails: fail,
            nonce: AtomicU64::new(0),
        }
    }

    fn member(&self, p: u16) -> IdentityKey {
        self.registry.nodes[usize::from(p - 1)].identity_key
    }

    /// `request` authorised by `user` for `lifetime` seconds from now.
    fn authorised<R: UserRequest>(&self, user: &SigningKey, request: R) -> Authorised<R> {
        self.authorised_at(user, request, keynet_net::unix_now(), 60)
    }

    fn authorised_at<R: UserRequest>(
        &self,
        user: &SigningKey,
        request: R,
        issued: u64,
        lifetime: u64,
    ) -> Authorised<R> {
        let m = AuthMessage {
            domain: DOMAIN.into(),
            address: address_of(user.verifying_key()),
            request_digest: request.digest(),
            network: NETWORK.into(),
            nonce: format!("nonce{:08}", self.nonce.fetch_add(1, Ordering::Relaxed)),
            issued_at: issued,
            expires_at: issued + lifetime,
        };
        let text = m.to_text();
        let sig = eip191_sign(text.as_bytes(), user).unwrap_or_else(|e| panic!("{e}"));
        Authorised {
            request,
            auth: SignedAuth {
                message: text,
                signature: format!("0x{}", hex::encode(sig)),
            },
        }
    }

    fn sign(&self, owner: &SigningKey, participants: &[u16], network: &str) -> SignRequest {
        SignRequest::new(
            network,
            KeyRef::new(address_of(owner.verifying_key()), "wallet")
                .unwrap_or_else(|e| panic!("{e}")),
            [7; 32],
            participants.iter().map(|p| self.member(*p)).collect(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn permissions(
        &self,
        owner: &SigningKey,
        name: &str,
        seq: u64,
        network: &str,
    ) -> PermissionsRequest {
        PermissionsRequest::new(
            network,
            KeyRef::new(address_of(owner.verifying_key()), name).unwrap_or_else(|e| panic!("{e}")),
            seq,
            vec![address_of(key(99).verifying_key())],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn decrypt(&self, node: u16, conditions: &str, network: &str) -> DecryptRequest {
        DecryptRequest::new(network, self.member(node), conditions, [1; 32], vec![])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn bls_sign(&self, node: u16, conditions: &str, network: &str) -> BlsSignRequest {
        BlsSignRequest::new(
            network,
            self.member(node),
            conditions,
            b"statement".to_vec(),
            vec![],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A valid request of each route that needs the network keys, by `owner`.
    fn keyed_requests(&self, owner: &SigningKey) -> [(&'static str, Vec<u8>); 3] {
        [
            (
                route::Sign::PATH,
                json(&self.authorised(owner, self.sign(owner, &[1, 2, 3], NETWORK))),
            ),
            (
                route::DecryptShare::PATH,
                json(&self.authorised(owner, self.decrypt(1, TIME_AFTER_0, NETWORK))),
            ),
            (
                route::BlsSign::PATH,
                json(&self.authorised(owner, self.bls_sign(1, TIME_AFTER_0, NETWORK))),
            ),
        ]
    }

    /// A request on a user's connection, or a peer's (`peer`: participant index).
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        peer: Option<u16>,
    ) -> (u16, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(HttpBody::from(body))
            .unwrap_or_else(|e| panic!("{e}"));
        req.extensions_mut().insert(Conn {
            addr: std::net::IpAddr::from([127, 0, 0, 1]),
            last_report: Arc::default(),
            exporter: [9; 32],
            peer: peer.map(|p| match self.registry.nodes.get(usize::from(p) - 1) {
                Some(e) => Admitted {
                    identity: e.identity_key,
                    endpoint: e.endpoint.clone(),
                },
                // Beyond the registry: a node the registry does not list.
                None => Admitted {
                    identity: IdentityKey::from_verifying_key(key(77).verifying_key()),
                    endpoint: "127.0.0.1:7077".into(),
                },
            }),
        });
        let resp = router(self.state.clone())
            .oneshot(req)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        (status, body)
    }
}

/// Every error seen: the route and its code; and what each route gave.
#[derive(Default)]
struct Seen {
    by_route: BTreeMap<&'static str, BTreeSet<ErrorCode>>,
}

impl Seen {
    /// Expects a refusal with `code` (and the status it fixes) in the API's error shape.
    fn refused(
        &mut self,
        route: &'static str,
        (status, body): (u16, Vec<u8>),
        code: ErrorCode,
    ) -> ErrorBody {
        let text = String::from_utf8_lossy(&body).into_owned();
        let err: ErrorBody = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{route}: not an error body ({e}): {status} {text}"));
        assert_eq!((err.code, status), (code, code.status()), "{route}: {text}");
        assert!(!err.message.is_empty(), "{route}: {text}");
        self.by_route.entry(route).or_default().insert(code);
        err
    }
}

/// A success, decoded as the type the client reads.
fn ok<T: DeserializeOwned>(route: &str, (status, body): (u16, Vec<u8>)) -> T {
    assert_eq!(status, 200, "{route}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{route}: {e}: {}", String::from_utf8_lossy(&body)))
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|e| panic!("{e}"))
}

/// `value` with `field` (a JSON pointer's parent and key) set to `to`.
fn edited<T: Serialize>(v: &T, parent: &str, field: &str, to: Value) -> Vec<u8> {
    let mut value = serde_json::to_value(v).unwrap_or_else(|e| panic!("{e}"));
    if let Some(Value::Object(o)) = value.pointer_mut(parent) {
        o.insert(field.into(), to);
    }
    json(&value)
}

const TIME_AFTER_0: &str = r#"{"version":1,"condition":{"time_after":0}}"#;

/// What the two conditional routes can refuse with, besides what every POST route can.
const CONDITIONAL: &[ErrorCode] = &[
    ErrorCode::NoKeys,
    ErrorCode::KeysStale,
    ErrorCode::WrongNetwork,
    ErrorCode::WrongNode,
    ErrorCode::BadConditions,
    ErrorCode::AuthRefused,
    ErrorCode::ConditionFailed,
];

/// The codes no request can provoke, and why.
const UNREACHABLE: [(ErrorCode, &str); 3] = [
    (
        ErrorCode::Duplicate,
        "a second session needs the same authorisation, which the nonce check refuses first",
    ),
    (
        ErrorCode::SigningFailed,
        "the library's refusal of commitments that decode; kept as its answer",
    ),
    (
        ErrorCode::RequestTimeout,
        "given by the listener around the router (tests/limits.rs meets it on a running node)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_in_the_api_shape_and_every_code_is_given() {
    let f = Fixture::new(true);
    let owner = key(31);
    let other = key(32);
    let mut seen = Seen::default();
    let too_large = vec![b' '; api::MAX_BODY + 1];
    let posts: [&'static str; 7] = [
        route::Handshake::PATH,
        route::Sign::PATH,
        route::Permissions::PATH,
        route::DecryptShare::PATH,
        route::BlsSign::PATH,
        route::PeerDkg::PATH,
        route::PeerCommitments::PATH,
    ];

    // Shared by every POST route: malformed JSON, unknown fields, oversized bodies (on a
    // peer's connection, so that peer routes get as far as the body).
    for path in posts {
        seen.refused(
            path,
            f.send("POST", path, b"{\"x\":".to_vec(), Some(2)).await,
            ErrorCode::BadRequest,
        );
        let unknown = f
            .send("POST", path, br#"{"surprise": 1}"#.to_vec(), Some(2))
            .await;
        seen.refused(path, unknown, ErrorCode::BadRequest);
        let big = f.send("POST", path, too_large.clone(), Some(2)).await;
        seen.refused(path, big, ErrorCode::PayloadTooLarge);
        seen.refused(
            path,
            f.send("GET", path, vec![], None).await,
            ErrorCode::MethodNotAllowed,
        );
    }
    for path in [api::HEALTH, api::ATTESTATION] {
        seen.refused(
            path,
            f.send("POST", path, b"{}".to_vec(), None).await,
            ErrorCode::MethodNotAllowed,
        );
    }
    seen.refused(
        "/nope",
        f.send("GET", "/nope", vec![], None).await,
        ErrorCode::NotFound,
    );

    // GET /health, POST /v1/handshake.
    let h: Health = ok(api::HEALTH, f.send("GET", api::HEALTH, vec![], None).await);
    assert_eq!(
        (h.endpoint.as_str(), h.dkg),
        ("127.0.0.1:7001", DkgState::Idle)
    );
    assert!(h.warning.is_some(), "a simulated platform says so");
    let info: NodeInfo = ok(
        route::Handshake::PATH,
        f.send("POST", route::Handshake::PATH, b"{}".to_vec(), None)
            .await,
    );
    assert_eq!((info.epoch, info.threshold), (1, u32::from(T)));
    let keys = info
        .public_keys
        .unwrap_or_else(|| panic!("the node holds keys"));
    assert_eq!(keys.bls12_381_g2.public_shares.len(), usize::from(N));

    // GET /v1/attestation.
    let path = api::ATTESTATION;
    seen.refused(
        path,
        f.send("GET", path, vec![], None).await,
        ErrorCode::NonceMissing,
    );
    seen.refused(
        path,
        f.send("GET", "/v1/attestation?nonce=zz", vec![], None)
            .await,
        ErrorCode::NonceHex,
    );
    seen.refused(
        path,
        f.send("GET", &api::attestation_path(&[1; 8]), vec![], None)
            .await,
        ErrorCode::NonceLength,
    );
    let twice = format!("{}&nonce=00", api::attestation_path(&[1; 16]));
    seen.refused(
        path,
        f.send("GET", &twice, vec![], None).await,
        ErrorCode::BadRequest,
    );
    let a: Attestation = ok(
        path,
        f.send("GET", &api::attestation_path(&[1; 16]), vec![], None)
            .await,
    );
    let ev = Evidence::decode(
        &base64::engine::general_purpose::STANDARD
            .decode(&a.evidence)
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev.endpoint, "127.0.0.1:7001");
    f.evidence_fails.store(true, Ordering::Relaxed);
    seen.refused(
        path,
        f.send("GET", &api::attestation_path(&[1; 16]), vec![], None)
            .await,
        ErrorCode::EvidenceUnavailable,
    );
    f.evidence_fails.store(false, Ordering::Relaxed);

    // POST /v1/sign.
    let path = route::Sign::PATH;
    let post = |a: &Authorised<SignRequest>| f.send("POST", path, json(a), None);
    let bad_name = edited(
        &f.authorised(&owner, f.sign(&owner, &[1, 2, 3], NETWORK)),
        "/request/key",
        "name",
        json!(""),
    );
    let e = seen.refused(
        path,
        f.send("POST", path, bad_name, None).await,
        ErrorCode::BadRequest,
    );
    assert!(e.message.contains("key.name"), "{}", e.message);
    seen.refused(
        path,
        post(&f.authorised(&owner, f.sign(&owner, &[1, 2, 3], "other"))).await,
        ErrorCode::WrongNetwork,
    );
    let mut stranger = f.sign(&owner, &[1, 2, 3], NETWORK);
    stranger = SignRequest::new(
        NETWORK,
        stranger.key().clone(),
        stranger.message(),
        vec![
            f.member(1),
            f.member(2),
            IdentityKey::from_verifying_key(key(88).verifying_key()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    seen.refused(
        path,
        post(&f.authorised(&owner, stranger)).await,
        ErrorCode::UnknownParticipant,
    );
    seen.refused(
        path,
        post(&f.authorised(&owner, f.sign(&owner, &[1, 2], NETWORK))).await,
        ErrorCode::BelowThreshold,
    );
    seen.refused(
        path,
        post(&f.authorised(&owner, f.sign(&owner, &[2, 3, 4], NETWORK))).await,
        ErrorCode::NotAParticipant,
    );
    let expired = f.authorised_at(
        &owner,
        f.sign(&owner, &[1, 2, 3], NETWORK),
        keynet_net::unix_now() - 400,
        300,
    );
    let e = seen.refused(path, post(&expired).await, ErrorCode::AuthRefused);
    assert!(e.message.contains("expired"), "{}", e.message);
    seen.refused(
        path,
        post(&f.authorised(&other, f.sign(&owner, &[1, 2, 3], NETWORK))).await,
        ErrorCode::NotAllowed,
    );
    let started = Instant::now();
    let e = seen.refused(
        path,
        post(&f.authorised(&owner, f.sign(&owner, &[1, 2, 3], NETWORK))).await,
        ErrorCode::PeersTimeout,
    );
    assert!(
        e.message.contains(&f.registry.nodes[1].endpoint),
        "names the silent peers: {}",
        e.message
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "it waited for the peers"
    );
    assert_eq!(
        f.state.signing().waiting(),
        0,
        "the waiter left with its handler"
    );

    // POST /v1/pkp/permissions.
    let path = route::Permissions::PATH;
    let post = |a: &Authorised<PermissionsRequest>| f.send("POST", path, json(a), None);
    seen.refused(
        path,
        post(&f.authorised(&owner, f.permissions(&owner, "a", 1, "other"))).await,
        ErrorCode::WrongNetwork,
    );
    let wrong_user = f.authorised(&other, f.permissions(&owner, "a", 1, NETWORK));
    seen.refused(path, post(&wrong_user).await, ErrorCode::NotOwner);
    let mut forged = f.authorised(&owner, f.permissions(&owner, "a", 1, NETWORK));
    forged.auth.signature = format!("0x{}", "11".repeat(65));
    seen.refused(path, post(&forged).await, ErrorCode::AuthRefused);
    let set: PermissionsSet = ok(
        path,
        post(&f.authorised(&owner, f.permissions(&owner, "a", 1, NETWORK))).await,
    );
    assert_eq!(set.seq, 1);
    seen.refused(
        path,
        post(&f.authorised(&owner, f.permissions(&owner, "a", 1, NETWORK))).await,
        ErrorCode::StaleSeq,
    );
    ok::<PermissionsSet>(
        path,
        post(&f.authorised(&owner, f.permissions(&owner, "b", 1, NETWORK))).await,
    );
    seen.refused(
        path,
        post(&f.authorised(&owner, f.permissions(&owner, "c", 1, NETWORK))).await,
        ErrorCode::PkpLimit,
    );

    // POST /v1/decrypt-share and /v1/bls-sign: the same admission, two answers.
    for path in [route::DecryptShare::PATH, route::BlsSign::PATH] {
        let send = |conditions: &str, node: u16, network: &str, user: &SigningKey| {
            let body = if path == route::DecryptShare::PATH {
                json(&f.authorised(user, f.decrypt(node, conditions, network)))
            } else {
                json(&f.authorised(user, f.bls_sign(node, conditions, network)))
            };
            f.send("POST", path, body, None)
        };
        seen.refused(
            path,
            send(TIME_AFTER_0, 1, "other", &owner).await,
            ErrorCode::WrongNetwork,
        );
        seen.refused(
            path,
            send(TIME_AFTER_0, 2, NETWORK, &owner).await,
            ErrorCode::WrongNode,
        );
        let e = seen.refused(
            path,
            send(
                r#"{"version":1,"condition":{"nope":1}}"#,
                1,
                NETWORK,
                &owner,
            )
            .await,
            ErrorCode::BadConditions,
        );
        assert!(e.message.contains("condition"), "{}", e.message);
        let only_owner = format!(
            r#"{{"version":1,"condition":{{"address_is":"{}"}}}}"#,
            address_of(owner.verifying_key())
        );
        let e = seen.refused(
            path,
            send(&only_owner, 1, NETWORK, &other).await,
            ErrorCode::ConditionFailed,
        );
        let failed = e
            .condition
            .unwrap_or_else(|| panic!("the failed condition is a field"));
        assert_eq!(failed.path, "condition.address_is");
        let mut forged: Value = serde_json::from_slice(&if path == route::DecryptShare::PATH {
            json(&f.authorised(&owner, f.decrypt(1, TIME_AFTER_0, NETWORK)))
        } else {
            json(&f.authorised(&owner, f.bls_sign(1, TIME_AFTER_0, NETWORK)))
        })
        .unwrap_or_default();
        forged["auth"]["message"] = json!("not an authorisation");
        seen.refused(
            path,
            f.send("POST", path, json(&forged), None).await,
            ErrorCode::AuthRefused,
        );
        let share: BlsShare = ok(path, send(&only_owner, 1, NETWORK, &owner).await);
        assert_eq!((share.node, share.participant), (f.member(1), 1));
    }

    // Peer routes: only admitted node certificates, of registry members.
    for path in [route::PeerDkg::PATH, route::PeerCommitments::PATH] {
        seen.refused(
            path,
            f.send("POST", path, b"{}".to_vec(), None).await,
            ErrorCode::PeerOnly,
        );
        seen.refused(
            path,
            f.send("POST", path, b"{}".to_vec(), Some(9)).await,
            ErrorCode::NotMember,
        );
    }
    let path = route::PeerDkg::PATH;
    let dkg = |epoch, body| json(&crate::testing::dkg_message(NETWORK, epoch, 2, body));
    let abort = || DkgBody::Frost(FrostWire::Abort(vec![]));
    seen.refused(
        path,
        f.send("POST", path, dkg(2, abort()), Some(2)).await,
        ErrorCode::WrongRun,
    );
    seen.refused(
        path,
        f.send("POST", path, dkg(1, abort()), Some(2)).await,
        ErrorCode::DkgDone,
    );

    let path = route::PeerCommitments::PATH;
    let request = f.authorised(&owner, f.sign(&owner, &[1, 2, 3], NETWORK));
    let commitments = {
        let mut rng = rand_core::OsRng;
        let (_, c) = frost::round1::commit(f.frost[1].0.signing_share(), &mut rng);
        hex::encode(c.serialize().unwrap_or_default())
    };
    let peer = |request: &Authorised<SignRequest>, commitments: &str| {
        json(&PeerCommitments {
            request: request.clone(),
            commitments: commitments.into(),
        })
    };
    seen.refused(
        path,
        f.send("POST", path, peer(&request, "zz"), Some(2)).await,
        ErrorCode::BadRequest,
    );
    seen.refused(
        path,
        f.send("POST", path, peer(&request, &commitments), Some(4))
            .await,
        ErrorCode::NotAParticipant,
    );
    let strangers = f.authorised(
        &owner,
        SignRequest::new(
            NETWORK,
            request.request.key().clone(),
            [7; 32],
            vec![
                f.member(1),
                f.member(2),
                IdentityKey::from_verifying_key(key(88).verifying_key()),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    seen.refused(
        path,
        f.send("POST", path, peer(&strangers, &commitments), Some(2))
            .await,
        ErrorCode::UnknownParticipant,
    );
    // Taken and dropped (this node never verified the request): nothing held, no answer.
    let dropped: CommitmentsAnswer = ok(
        path,
        f.send("POST", path, peer(&request, &commitments), Some(2))
            .await,
    );
    assert_eq!(dropped, CommitmentsAnswer { commitments: None });

    // A node without keys, and keys of another epoch.
    let bare = Fixture::new(false);
    for (path, body) in bare.keyed_requests(&owner) {
        seen.refused(
            path,
            bare.send("POST", path, body, None).await,
            ErrorCode::NoKeys,
        );
    }
    // Junk starts nothing; a peer's first DKG message starts this node's run.
    let junk = dkg(1, DkgBody::Frost(FrostWire::Round1("00".into())));
    seen.refused(
        route::PeerDkg::PATH,
        bare.send("POST", route::PeerDkg::PATH, junk, Some(2)).await,
        ErrorCode::BadRequest,
    );
    assert_eq!(bare.state.dkg().status().state, DkgState::Idle);
    let (_, mut first) =
        keynet_threshold::dkg::Dkg::start(2, N, T, Duration::from_secs(5), Instant::now())
            .unwrap_or_else(|e| panic!("{e}"));
    let round1 = first.remove(0);
    let body = DkgBody::Frost(FrostWire::encode(&round1.message).unwrap_or_else(|e| panic!("{e}")));
    let _: Ack = ok(
        route::PeerDkg::PATH,
        bare.send("POST", route::PeerDkg::PATH, dkg(1, body), Some(2))
            .await,
    );
    assert_eq!(bare.state.dkg().status().state, DkgState::Running);
    // Member 3 proves that member 2 committed to a polynomial of the wrong degree (2's own
    // signed package): the node moves to the next attempt without 2, and refuses 2.
    let (_, mut wrong) =
        keynet_threshold::dkg::Dkg::start(2, N, T + 1, Duration::from_secs(5), Instant::now())
            .unwrap_or_else(|e| panic!("{e}"));
    let wrong = DkgBody::Frost(
        FrostWire::encode(&wrong.remove(0).message).unwrap_or_else(|e| panic!("{e}")),
    );
    let mut proof = crate::testing::dkg_message(NETWORK, 1, 2, wrong);
    proof.session = "02".repeat(16);
    crate::testing::resign(&mut proof, 2);
    let mut accusation = crate::testing::dkg_message(NETWORK, 1, 3, abort());
    accusation.attempt = 1;
    accusation.excluded = vec![2];
    accusation.proofs = vec![keynet_protocol::api::Misconduct {
        evidence: vec![proof],
    }];
    crate::testing::resign(&mut accusation, 3);
    let _: Ack = ok(
        route::PeerDkg::PATH,
        bare.send("POST", route::PeerDkg::PATH, json(&accusation), Some(3))
            .await,
    );
    let st = bare.state.dkg().status();
    assert_eq!((st.state, st.attempt), (DkgState::Running, 1), "{st:?}");
    assert_eq!(st.excluded, vec![bare.registry.nodes[1].endpoint.clone()]);
    seen.refused(
        route::PeerDkg::PATH,
        bare.send("POST", route::PeerDkg::PATH, dkg(1, abort()), Some(2))
            .await,
        ErrorCode::DkgExcluded,
    );
    let mut later = f.registry.clone();
    later.epoch = 2;
    f.state.set_registry(later.clone());
    for (path, body) in f.keyed_requests(&owner) {
        seen.refused(
            path,
            f.send("POST", path, body, None).await,
            ErrorCode::KeysStale,
        );
    }
    // A registry that no longer lists this node: no DKG can run here.
    later.nodes.remove(0);
    f.state.set_registry(later);
    seen.refused(
        route::PeerDkg::PATH,
        f.send("POST", route::PeerDkg::PATH, dkg(2, abort()), Some(2))
            .await,
        ErrorCode::DkgUnavailable,
    );

    // A store that can no longer be written: the permission is not kept, and says why.
    std::fs::remove_dir_all(f.dir.path().join("state")).unwrap_or_else(|e| panic!("{e}"));
    let path = route::Permissions::PATH;
    let other_owner = key(33);
    let e = seen.refused(
        path,
        f.send(
            "POST",
            path,
            json(&f.authorised(&other_owner, f.permissions(&other_owner, "z", 1, NETWORK))),
            None,
        )
        .await,
        ErrorCode::Internal,
    );
    assert!(!e.message.is_empty());

    // The replay memory's limits: the user's share used up, then the node's.
    {
        let small = Fixture::with_limits(
            true,
            LimitsSection {
                auth_pending_per_address: 1,
                auth_pending_total: 2,
                ..LimitsSection::default()
            },
        );
        let path = route::Permissions::PATH;
        let (a, b, c) = (key(61), key(62), key(63));
        let set = |user: &SigningKey, name: &str| {
            json(&small.authorised(user, small.permissions(user, name, 1, NETWORK)))
        };
        let (status, _) = small.send("POST", path, set(&a, "a1"), None).await;
        assert_eq!(status, 200);
        let e = seen.refused(
            path,
            small.send("POST", path, set(&a, "a2"), None).await,
            ErrorCode::RateLimited,
        );
        assert!(
            e.message.contains("unexpired authorisations"),
            "{}",
            e.message
        );
        let (status, _) = small.send("POST", path, set(&b, "b1"), None).await;
        assert_eq!(status, 200);
        seen.refused(
            path,
            small.send("POST", path, set(&c, "c1"), None).await,
            ErrorCode::Overloaded,
        );
    }

    // Each route gave every code it can give...
    let all_posts: BTreeSet<ErrorCode> = [
        ErrorCode::BadRequest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MethodNotAllowed,
    ]
    .into();
    let expect: [(&str, &[ErrorCode]); 9] = [
        (
            api::ATTESTATION,
            &[
                ErrorCode::BadRequest,
                ErrorCode::NonceMissing,
                ErrorCode::NonceHex,
                ErrorCode::NonceLength,
                ErrorCode::EvidenceUnavailable,
                ErrorCode::MethodNotAllowed,
            ],
        ),
        (api::HEALTH, &[ErrorCode::MethodNotAllowed]),
        (route::Handshake::PATH, &[]),
        (
            route::Sign::PATH,
            &[
                ErrorCode::NoKeys,
                ErrorCode::KeysStale,
                ErrorCode::WrongNetwork,
                ErrorCode::UnknownParticipant,
                ErrorCode::BelowThreshold,
                ErrorCode::NotAParticipant,
                ErrorCode::AuthRefused,
                ErrorCode::NotAllowed,
                ErrorCode::PeersTimeout,
            ],
        ),
        (
            route::Permissions::PATH,
            &[
                ErrorCode::WrongNetwork,
                ErrorCode::AuthRefused,
                ErrorCode::NotOwner,
                ErrorCode::StaleSeq,
                ErrorCode::PkpLimit,
                ErrorCode::Internal,
                ErrorCode::RateLimited,
                ErrorCode::Overloaded,
            ],
        ),
        (route::DecryptShare::PATH, CONDITIONAL),
        (route::BlsSign::PATH, CONDITIONAL),
        (
            route::PeerDkg::PATH,
            &[
                ErrorCode::PeerOnly,
                ErrorCode::NotMember,
                ErrorCode::WrongRun,
                ErrorCode::DkgDone,
                ErrorCode::DkgUnavailable,
                ErrorCode::DkgExcluded,
            ],
        ),
        (
            route::PeerCommitments::PATH,
            &[
                ErrorCode::PeerOnly,
                ErrorCode::NotMember,
                ErrorCode::NotAParticipant,
                ErrorCode::UnknownParticipant,
            ],
        ),
    ];
    for (path, codes) in expect {
        let mut want: BTreeSet<ErrorCode> = codes.iter().copied().collect();
        if posts.contains(&path) {
            want.extend(&all_posts);
        }
        let got = seen.by_route.get(path).cloned().unwrap_or_default();
        assert_eq!(got, want, "{path}");
    }
    // ...and every code a node sends was given by some route, but those no request can
    // provoke.
    let given: BTreeSet<ErrorCode> = seen.by_route.values().flatten().copied().collect();
    let missing: Vec<ErrorCode> = ErrorCode::ALL
        .iter()
        .filter(|c| !given.contains(c) && !UNREACHABLE.iter().any(|(u, _)| u == *c))
        .copied()
        .collect();
    assert!(missing.is_empty(), "never given: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_share_is_given_once_every_participant_committed() {
    // The user's request first (the node begins and its pushes go nowhere: no peer is
    // reachable), then the peers' pushes: each is answered with this node's commitments,
    // and the node signs once both are in.
    let f = Fixture::new(true);
    let owner = key(41);
    let request = f.authorised(&owner, f.sign(&owner, &[1, 2, 3], NETWORK));
    let mut rng = rand_core::OsRng;
    let signing = f.send("POST", route::Sign::PATH, json(&request), None);
    let peers = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while f.state.signing().open_sessions() == 0 {
            assert!(
                Instant::now() < deadline,
                "the node never began the request"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut answers = Vec::new();
        for p in [2u16, 3] {
            let (_, c) =
                frost::round1::commit(f.frost[usize::from(p - 1)].0.signing_share(), &mut rng);
            let body = json(&PeerCommitments {
                request: request.clone(),
                commitments: hex::encode(c.serialize().unwrap_or_default()),
            });
            let answer: CommitmentsAnswer = ok(
                route::PeerCommitments::PATH,
                f.send("POST", route::PeerCommitments::PATH, body, Some(p))
                    .await,
            );
            answers.push(answer.commitments);
        }
        answers
    };
    let (signed, answers) = tokio::join!(signing, peers);
    let share: SignShare = ok(route::Sign::PATH, signed);
    // Both peers were answered with the same commitments: node 1's, the ones it signed with.
    let mine = answers[0]
        .clone()
        .unwrap_or_else(|| panic!("no commitments in the answer"));
    assert_eq!(answers[1].as_ref(), Some(&mine));
    assert_eq!((share.node, share.participant), (f.member(1), 1));
    let package =
        frost::SigningPackage::deserialize(&hex::decode(&share.package).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(package.message().as_slice(), &[7u8; 32]);
    assert_eq!(package.signing_commitments().len(), 3);
    let one = frost::Identifier::try_from(1u16).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        package
            .signing_commitments()
            .get(&one)
            .map(|c| hex::encode(c.serialize().unwrap_or_default())),
        Some(mine)
    );
    assert_eq!(f.state.signing().open_sessions(), 0);
    assert_eq!(f.state.signing().counters().shares_issued, 1);
    assert_eq!(f.state.signing().waiting(), 0);
    // The same request again: a replay, refused before any session.
    let (status, body) = f
        .send("POST", route::Sign::PATH, json(&request), None)
        .await;
    let err: ErrorBody = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status, err.code), (401, ErrorCode::AuthRefused));
    assert!(err.message.contains("replayed"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cut_below_the_minimum_stake_is_refused_on_its_open_connection() {
    // The connection was admitted when node 2 was staked; the registry in force now cuts
    // its stake, and its next request on the same connection is refused.
    let f = Fixture::new(true);
    let path = route::PeerCommitments::PATH;
    let (status, _) = f.send("POST", path, b"{}".to_vec(), Some(2)).await;
    assert_eq!(status, 400, "staked: it gets as far as the body");
    let mut cut = f.registry.clone();
    cut.min_stake = Stake::from_wei(11);
    f.state.set_registry(cut);
    let (status, body) = f.send("POST", path, b"{}".to_vec(), Some(2)).await;
    let e: ErrorBody = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status, e.code), (403, ErrorCode::NotMember));
    assert!(e.message.contains("stake"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_signing_sessions_are_capped_per_user_and_in_all() {
    // Peers never answer, so each session stays open for the signing wait (200 ms).
    let f = Fixture::with_limits(
        true,
        LimitsSection {
            signing_sessions_per_address: 1,
            signing_sessions_total: 2,
            ..LimitsSection::default()
        },
    );
    let path = route::Sign::PATH;
    let (a, b, c) = (key(71), key(72), key(73));
    let sign =
        |user: &SigningKey, n: u16| json(&f.authorised(user, f.sign(user, &[1, 2, n], NETWORK)));
    let code = |(_, body): (u16, Vec<u8>)| {
        serde_json::from_slice::<ErrorBody>(&body)
            .map(|e| e.code)
            .unwrap_or(ErrorCode::Unknown)
    };
    let (first, second, other, third) = tokio::join!(
        f.send("POST", path, sign(&a, 3), None),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            f.send("POST", path, sign(&a, 4), None).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            f.send("POST", path, sign(&b, 3), None).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.send("POST", path, sign(&c, 3), None).await
        },
    );
    assert_eq!(
        code(first),
        ErrorCode::PeersTimeout,
        "admitted, then no peers"
    );
    assert_eq!(
        code(second),
        ErrorCode::RateLimited,
        "a's one session is open"
    );
    assert_eq!(
        code(other),
        ErrorCode::PeersTimeout,
        "b has a session of its own"
    );
    assert_eq!(code(third), ErrorCode::Overloaded, "two are open in all");
    // Closed sessions give their places back.
    assert_eq!(
        code(f.send("POST", path, sign(&a, 4), None).await),
        ErrorCode::PeersTimeout
    );
    // A client that goes away ends its session at once (its nonces with it), so going
    // away and asking again cannot pile up sessions behind the limit.
    for _ in 0..3 {
        let begun = async {
            while f.state.signing().open_sessions() == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::select! {
            _ = f.send("POST", path, sign(&a, 3), None) => panic!("the handler did not wait"),
            () = begun => {}
        }
        // The handler's future is dropped here, as when the client's connection goes.
        assert_eq!(f.state.signing().open_sessions(), 0);
        assert_eq!(f.state.signing().waiting(), 0);
    }
}
