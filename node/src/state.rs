//! What a running node holds: its identity and TLS, the registry in force, its share of the
//! network's keys, and its services. Fields are private: the rest of the node reads them
//! through the methods here, and only [`crate::registry`] and [`crate::dkg`] change the
//! registry and the keys.

use std::sync::{Arc, RwLock};

use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::tls::evidence::Platform;
use keynet_protocol::api::{ErrorCode, Health, NodeInfo, PlatformKind, Status, WorkCounters};
use keynet_protocol::auth::AuthVerifier;
use keynet_protocol::registry::{IdentityKey, Registry};
use keynet_store::Store;

use crate::api::ApiError;
use crate::attest::AttestMeter;
use crate::bls::BlsCounters;
use crate::dkg::DkgService;
use crate::evidence::{EvidenceProvider, SIMULATED_WARNING};
use crate::keys::NetworkKeys;
use crate::peer::Peers;
use crate::pkp::Permissions;
use crate::sign::SignService;
use crate::tls::NodeTls;
use crate::work::Work;

/// What [`NodeState::new`] is made of.
pub struct Parts {
    /// TLS certificate and key.
    pub tls: NodeTls,
    /// Evidence source.
    pub provider: Box<dyn EvidenceProvider>,
    /// This node's identity key.
    pub identity: IdentityKey,
    /// The endpoint bound into the evidence.
    pub endpoint: String,
    /// The registry in force at start.
    pub registry: Registry,
    /// Verifies peers' certificates.
    pub peer_verifier: Arc<NodeVerifier>,
    /// Sealed state: identity, network keys, permissions, the registry held.
    pub store: Store,
    /// Checks users' authorisations (and remembers their nonces).
    pub auth: AuthVerifier,
    /// Who may sign with each derived key.
    pub pkp: Permissions,
    /// The key generation.
    pub dkg: DkgService,
    /// Signing sessions.
    pub signing: SignService,
    /// Connections to the other nodes.
    pub peers: Peers,
    /// Meters fresh evidence.
    pub attest: AttestMeter,
    /// Verification and signing work, metered.
    pub cpu: Work,
}

/// Everything a running node holds.
pub struct NodeState {
    tls: NodeTls,
    provider: Box<dyn EvidenceProvider>,
    identity: IdentityKey,
    endpoint: String,
    registry: RwLock<Arc<Registry>>,
    peer_verifier: Arc<NodeVerifier>,
    store: Store,
    keys: RwLock<Option<Arc<NetworkKeys>>>,
    auth: AuthVerifier,
    pkp: Permissions,
    dkg: DkgService,
    signing: SignService,
    bls: BlsCounters,
    peers: Peers,
    attest: AttestMeter,
    cpu: Work,
}

impl NodeState {
    /// A node holding `parts`, with no network keys yet.
    pub fn new(parts: Parts) -> NodeState {
        NodeState {
            tls: parts.tls,
            provider: parts.provider,
            identity: parts.identity,
            endpoint: parts.endpoint,
            registry: RwLock::new(Arc::new(parts.registry)),
            peer_verifier: parts.peer_verifier,
            store: parts.store,
            keys: RwLock::new(None),
            auth: parts.auth,
            pkp: parts.pkp,
            dkg: parts.dkg,
            signing: parts.signing,
            bls: BlsCounters::default(),
            peers: parts.peers,
            attest: parts.attest,
            cpu: parts.cpu,
        }
    }

    /// This node's identity key.
    pub fn identity(&self) -> IdentityKey {
        self.identity
    }

    /// The endpoint bound into this node's evidence.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// TLS certificate and key.
    pub fn tls(&self) -> &NodeTls {
        &self.tls
    }

    /// Where evidence and the sealing key come from.
    pub fn provider(&self) -> &dyn EvidenceProvider {
        self.provider.as_ref()
    }

    /// Verifies peers' certificates.
    pub fn peer_verifier(&self) -> &Arc<NodeVerifier> {
        &self.peer_verifier
    }

    /// The sealed store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks users' authorisations.
    pub fn auth(&self) -> &AuthVerifier {
        &self.auth
    }

    /// Who may sign with each derived key.
    pub fn pkp(&self) -> &Permissions {
        &self.pkp
    }

    /// The key generation.
    pub fn dkg(&self) -> &DkgService {
        &self.dkg
    }

    /// Signing sessions.
    pub fn signing(&self) -> &SignService {
        &self.signing
    }

    /// Counters of the conditional BLS operations.
    pub fn bls(&self) -> &BlsCounters {
        &self.bls
    }

    /// Connections to the other nodes.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Meters fresh evidence.
    pub fn attest(&self) -> &AttestMeter {
        &self.attest
    }

    /// Verification and signing work (a peer's certificate, BLS shares and the checks
    /// before them), metered.
    pub fn cpu(&self) -> &Work {
        &self.cpu
    }

    /// The registry in force (a snapshot: a reload replaces it, never changes it).
    pub fn registry(&self) -> Arc<Registry> {
        // A poisoned lock only means a writer panicked between two whole values.
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts a registry in force (only [`crate::registry`] calls this, after its tracker
    /// accepted it).
    pub(crate) fn set_registry(&self, registry: Registry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
    }

    /// The network keys, if this node holds them.
    pub fn keys(&self) -> Option<Arc<NetworkKeys>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True if this node holds the keys of (network, epoch).
    pub fn holds_keys(&self, network: &str, epoch: u64) -> bool {
        self.keys()
            .is_some_and(|k| k.network == network && k.epoch == epoch)
    }

    /// Puts keys in force (after a DKG, or unsealed at start) and opens signing.
    pub fn install_keys(&self, keys: NetworkKeys) {
        self.signing.install(keys.me, keys.n, keys.frost.clone());
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(keys));
    }

    /// The network keys in force for a request naming `network`: `no_keys` while there are
    /// none, `keys_stale` while they belong to another registry epoch (participant numbers
    /// come from the registry; a new epoch has its own DKG), `wrong_network` for another
    /// network.
    pub fn keys_for(&self, network: &str) -> Result<Arc<NetworkKeys>, ApiError> {
        let keys = self.keys().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoKeys,
                format!(
                    "this node holds no network keys yet (DKG {})",
                    self.dkg.status().state
                ),
            )
        })?;
        let epoch = self.registry().epoch;
        if keys.epoch != epoch {
            return Err(ApiError::new(
                ErrorCode::KeysStale,
                format!(
                    "this node's keys are for epoch {}, the registry is at epoch {epoch} (DKG {})",
                    keys.epoch,
                    self.dkg.status().state
                ),
            ));
        }
        if network != keys.network {
            return Err(ApiError::new(
                ErrorCode::WrongNetwork,
                format!("this node serves {}, not {network}", keys.network),
            ));
        }
        Ok(keys)
    }

    /// Which platform this node's evidence comes from, and the warning a simulated one
    /// always carries.
    pub fn platform(&self) -> (PlatformKind, Option<String>) {
        match self.provider.platform() {
            Platform::Snp => (PlatformKind::Snp, None),
            _ => (
                PlatformKind::SnpSimulated,
                Some(SIMULATED_WARNING.to_owned()),
            ),
        }
    }

    /// `GET /health`.
    pub fn health(&self) -> Health {
        let (platform, warning) = self.platform();
        Health {
            status: Status::Ok,
            endpoint: self.endpoint.clone(),
            dkg: self.dkg.status().state,
            signing: self.signing.counters(),
            bls: self.bls.counters(),
            work: WorkCounters {
                verifications: self.cpu.counts(),
                fresh_reports: self.attest.counts(),
            },
            platform,
            warning,
        }
    }

    /// `POST /v1/handshake`.
    pub fn node_info(&self) -> NodeInfo {
        let reg = self.registry();
        let (platform, warning) = self.platform();
        NodeInfo {
            network_id: reg.network_id.clone(),
            epoch: reg.epoch,
            threshold: reg.threshold(),
            identity_key: self.identity,
            registry_entry: reg.member(&self.identity).cloned(),
            public_keys: self.keys().map(|k| k.public_keys()),
            dkg: self.dkg.status(),
            platform,
            warning,
        }
    }
}
