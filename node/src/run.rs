//! Starting a node from its configuration: identity, evidence provider (refusing to serve
//! without a platform), registry, peer verifier, attested TLS, and the API.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use attestation_verifier::kds::Product;
use attestation_verifier::kds::offline::pem_or_der_certs;
use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::validate::{Manifest, Policy};
use attestation_verifier::verify::cert::AmdCert;
use attestation_verifier::verify::roots::{Anchor, TrustStore};
use keynet_protocol::auth::AuthVerifier;
use keynet_protocol::registry::{IdentityKey, SignedRegistry};
use keynet_store::Store;
use tokio::net::TcpListener;

use crate::config::{Config, ProviderChoice};
use crate::dkg::DkgRunner;
use crate::evidence::configfs::ConfigfsTsm;
use crate::evidence::sevguest::SevGuest;
use crate::evidence::simulated::{SimulatedPlatform, SimulatedState, WARNING};
use crate::evidence::{EvidenceProvider, SimulatedProvider};
use crate::identity::Identity;
use crate::keys::NetworkKeys;
use crate::peer::Peers;
use crate::pkp::Permissions;
use crate::server::{NodeState, read_registry, serve, watch_registry};
use crate::sign::SignService;
use crate::tls::NodeTls;

/// No SEV-SNP platform: the node refuses to serve.
#[derive(Debug, thiserror::Error)]
#[error("refusing to serve: {0}")]
pub struct NoPlatform(pub String);

fn provider(c: &Config) -> Result<Box<dyn EvidenceProvider>> {
    match c.evidence.provider {
        ProviderChoice::Auto => {
            crate::evidence::auto().map_err(|e| NoPlatform(e.to_string()).into())
        }
        ProviderChoice::ConfigfsTsm => {
            let p = ConfigfsTsm::default();
            if !p.available() {
                return Err(NoPlatform(format!(
                    "{} is absent or has no sev_guest provider",
                    crate::evidence::configfs::REPORT_ROOT
                ))
                .into());
            }
            Ok(Box::new(p))
        }
        ProviderChoice::SevGuest => {
            let p = SevGuest::default();
            if !p.available() {
                return Err(NoPlatform(format!("{} is absent", p.device().display())).into());
            }
            Ok(Box::new(p))
        }
        ProviderChoice::Simulated => {
            let path = c
                .evidence
                .simulated_state
                .as_ref()
                .ok_or_else(|| anyhow!("evidence.simulated_state missing"))?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let state: SimulatedState =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            tracing::warn!("{WARNING}");
            Ok(Box::new(SimulatedProvider(SimulatedPlatform::from_state(
                &state,
            )?)))
        }
    }
}

/// The simulated roots in a PEM file: the ARK followed by its ASK.
pub fn simulated_anchor(pem: &[u8]) -> Result<Anchor> {
    let certs = pem_or_der_certs(pem)?;
    let (Some(ark), Some(ask)) = (certs.first(), certs.get(1)) else {
        bail!("the simulated roots file must hold the ARK then the ASK");
    };
    Ok(Anchor {
        product: Product::Milan,
        ark: AmdCert::parse("ARK", ark)?,
        ask: AmdCert::parse("ASK", ask)?,
        asvk: None,
        simulated: true,
    })
}

fn peer_verifier(c: &Config) -> Result<NodeVerifier> {
    let mut trust = TrustStore::amd();
    if let Some(p) = &c.peers.trust_simulated {
        let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        trust = trust.with_simulated(simulated_anchor(&pem)?);
        tracing::warn!(
            "peers on the SIMULATED platform of {} are trusted (development only)",
            p.display()
        );
    }
    let manifest = match &c.peers.manifest {
        Some(p) => {
            Manifest::parse(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)?
        }
        None => bail!(
            "peers.manifest is required: peers are accepted only with a published measurement"
        ),
    };
    Ok(NodeVerifier::new(
        trust,
        Policy {
            manifest: Some(manifest),
            ..Policy::default()
        },
    ))
}

/// A node that is serving.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server task.
    pub task: tokio::task::JoinHandle<Result<()>>,
    /// Its state.
    pub state: Arc<NodeState>,
}

/// Starts a node: everything is checked before the port is opened.
pub async fn start(c: Config) -> Result<Running> {
    let provider = provider(&c)?;
    let sealing = provider.sealing_key().context("deriving the sealing key")?;
    let store = Store::open(&c.node.state_dir, sealing)
        .with_context(|| format!("opening the sealed state in {}", c.node.state_dir.display()))?;
    let identity = Identity::load_or_create(&store)?;
    let authority = c.authority()?;
    let source = c.registry_source()?;
    let reg_bytes = {
        let s = source.clone();
        tokio::task::spawn_blocking(move || read_registry(&s))
            .await?
            .map_err(|e| anyhow!("registry {e}"))?
    };
    let registry = SignedRegistry::verify(&reg_bytes, &authority)
        .with_context(|| format!("registry {source}"))?;
    let id_key = IdentityKey::from_verifying_key(&identity.public());
    match registry.member(&id_key) {
        Some(e) if e.endpoint != c.node.endpoint => {
            tracing::warn!(
                "registry lists this node at {}, config says {}",
                e.endpoint,
                c.node.endpoint
            )
        }
        Some(_) => {}
        None => tracing::warn!("this node ({id_key}) is not in the registry: peers will refuse it"),
    }
    let peers = Arc::new(peer_verifier(&c)?);
    let endpoint = c.node.endpoint.clone();
    let compressed = identity.public_compressed();
    let (tls, provider) = tokio::task::spawn_blocking(move || {
        let tls = NodeTls::create(provider.as_ref(), &compressed, &endpoint);
        (tls, provider)
    })
    .await?;
    let tls = tls?;
    let th = &c.threshold;
    let keys = NetworkKeys::load(&store, &registry.network_id, registry.epoch)
        .context("reading the sealed network keys")?;
    let pkp = Permissions::load(&store).context("reading the sealed key permissions")?;
    let state = Arc::new(NodeState {
        peer_client: Peers::new(&tls, peers.clone(), Duration::from_secs(10))?,
        tls,
        provider,
        identity: id_key,
        endpoint: c.node.endpoint.clone(),
        auth: AuthVerifier::new(
            &th.auth_domain,
            &registry.network_id,
            th.auth_max_lifetime_seconds,
            th.auth_clock_skew_seconds,
        ),
        registry: RwLock::new(registry),
        peers,
        store,
        keys: RwLock::new(None),
        dkg: DkgRunner::new(Duration::from_secs(th.dkg_round_timeout_seconds)),
        signing: SignService::new(Duration::from_millis(th.signing_wait_ms)),
        bls: Default::default(),
        pkp,
    });
    if let Some(k) = keys {
        tracing::info!(network = %k.network, epoch = k.epoch, "network keys unsealed; no DKG needed");
        state.dkg.unsealed(&k.network, k.epoch);
        state.install_keys(k);
    }
    let listener = TcpListener::bind(c.node.listen)
        .await
        .with_context(|| format!("binding {}", c.node.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, endpoint = %c.node.endpoint, provider = state.provider.name(), "serving");
    tokio::spawn(watch_registry(
        state.clone(),
        source,
        authority,
        c.registry_poll(),
    ));
    let task = tokio::spawn(serve(state.clone(), listener));
    tokio::spawn(crate::dkg::ticker(state.clone()));
    tokio::spawn(crate::sign::ticker(state.clone()));
    crate::dkg::ensure(&state);
    Ok(Running { addr, task, state })
}
