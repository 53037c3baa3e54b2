//! Starting a node from its configuration: evidence provider (refusing to serve without a
//! platform), sealed state and identity, the registry (never older than the one held),
//! attested TLS, the services, then the port. Everything is checked before the port opens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use attestation_verifier::tls::NodeVerifier;
use attestation_verifier::validate::{Manifest, Policy};
use attestation_verifier::verify::roots::{Anchor, TrustStore};
use keynet_protocol::auth::{AuthVerifier, ReplayLimits};
use keynet_protocol::registry::IdentityKey;
use keynet_store::Store;
use tokio::net::TcpListener;

use crate::attest::AttestMeter;
use crate::config::{Config, ProviderChoice};
use crate::dkg::DkgService;
use crate::evidence::EvidenceProvider;
use crate::evidence::configfs::ConfigfsTsm;
use crate::evidence::sevguest::SevGuest;
use crate::identity::Identity;
use crate::keys::NetworkKeys;
use crate::peer::Peers;
use crate::pkp::Permissions;
use crate::sign::SignService;
use crate::state::{NodeState, Parts};
use crate::tls::NodeTls;
use crate::work::Work;

/// No SEV-SNP platform: the node refuses to serve.
#[derive(Debug, thiserror::Error)]
#[error("refusing to serve: {0}")]
pub struct NoPlatform(pub String);

fn provider(c: &Config) -> Result<Box<dyn EvidenceProvider>> {
    // The sealing key is pinned to the network's minimum TCB when it names a whole one.
    let sealing_tcb = c
        .min_tcb()?
        .and_then(|m| m.raw())
        .unwrap_or(crate::evidence::sevguest::SEALING_TCB);
    let sealer = SevGuest::default().with_sealing_tcb(sealing_tcb);
    match c.evidence.provider {
        ProviderChoice::Auto => {
            crate::evidence::auto(sealing_tcb).map_err(|e| NoPlatform(e.to_string()).into())
        }
        ProviderChoice::ConfigfsTsm => {
            let p = ConfigfsTsm::default().with_sealer(sealer);
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
            let p = sealer;
            if !p.available() {
                return Err(NoPlatform(format!("{} is absent", p.device().display())).into());
            }
            Ok(Box::new(p))
        }
        ProviderChoice::Simulated => simulated_provider(c),
    }
}

#[cfg(feature = "simulated")]
fn simulated_provider(c: &Config) -> Result<Box<dyn EvidenceProvider>> {
    use crate::evidence::SimulatedProvider;
    use crate::evidence::simulated::{SimulatedPlatform, SimulatedState, WARNING};
    let path = c
        .evidence
        .simulated_state
        .as_ref()
        .context("evidence.simulated_state missing")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let state: SimulatedState =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    tracing::warn!("{WARNING}");
    Ok(Box::new(SimulatedProvider(SimulatedPlatform::from_state(
        &state,
    )?)))
}

#[cfg(not(feature = "simulated"))]
fn simulated_provider(_: &Config) -> Result<Box<dyn EvidenceProvider>> {
    // Config::parse refuses it first; this is the second lock on the same door.
    bail!("this keynode build has no simulated platform")
}

fn peer_verifier(c: &Config) -> Result<NodeVerifier> {
    let mut trust = TrustStore::amd();
    if let Some(p) = &c.peers.trust_simulated {
        // Config::parse refuses it in such a build; a Config made otherwise meets this.
        if !crate::evidence::SIMULATION_BUILT_IN {
            bail!("peers.trust_simulated: this keynode build has no simulated platform");
        }
        let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        trust = trust.with_simulated(Anchor::simulated_from_pem(&pem)?);
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
    let verifier = NodeVerifier::new(
        trust,
        Policy {
            manifest: Some(manifest),
            min_tcb: c.min_tcb()?,
            ..Policy::default()
        },
    );
    Ok(match &c.peers.crl {
        Some(p) => {
            verifier.with_crl(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => verifier,
    })
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
    let open_files = crate::listener::raise_open_files().unwrap_or(1024);
    let listening = crate::listener::Listening::new(&c.limits, open_files);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let provider = provider(&c)?;
    let sealing = provider.sealing_key().context("deriving the sealing key")?;
    let store = Store::open(&c.node.state_dir, sealing)
        .with_context(|| format!("opening the sealed state in {}", c.node.state_dir.display()))?;
    let identity = Arc::new(Identity::load_or_create(&store)?);
    let authority = c.authority()?;
    let source = c.registry_source()?;
    let (registry, tracker) = crate::registry::load(&source, &authority, &store).await?;
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
    let profile = crate::profile::of(&c)?;
    tracing::info!(profile = %hex::encode(profile), "network profile (bound into the evidence; peers must run under the same)");
    let peer_verifier = Arc::new(peer_verifier(&c)?.with_profile(profile));
    let endpoint = c.node.endpoint.clone();
    let compressed = identity.public_compressed();
    // Making the certificate asks the secure processor for a report: off the async workers.
    let (tls, provider) = tokio::task::spawn_blocking(move || {
        let tls = NodeTls::create(provider.as_ref(), &compressed, &endpoint, &profile);
        (tls, provider)
    })
    .await?;
    let tls = tls?;
    let th = &c.threshold;
    let keys = NetworkKeys::load(&store, &registry.network_id, registry.epoch)
        .context("reading the sealed network keys")?;
    let pkp =
        Permissions::load(&store, c.limits.pkp()).context("reading the sealed key permissions")?;
    let lead = crate::replay::lead(th.auth_clock_skew_seconds);
    let floor = crate::replay::floor(&store).context("reading the sealed replay horizon")?;
    crate::replay::wait_past(floor, lead).await;
    let horizon = keynet_net::unix_now().saturating_add(lead).max(floor);
    crate::replay::seal(&store, horizon).context("sealing the replay horizon")?;
    let state = Arc::new(NodeState::new(Parts {
        peers: Peers::new(&tls, peer_verifier.clone(), Duration::from_secs(10))?,
        tls,
        provider,
        identity: id_key,
        endpoint: c.node.endpoint.clone(),
        auth: AuthVerifier::with_replay(
            &th.auth_domain,
            &registry.network_id,
            th.auth_max_lifetime_seconds,
            th.auth_clock_skew_seconds,
            ReplayLimits {
                per_address: c.limits.auth_pending_per_address,
                total: c.limits.auth_pending_total,
            },
            floor,
            horizon,
        ),
        registry,
        peer_verifier,
        store,
        dkg: DkgService::new(Duration::from_secs(th.dkg_round_timeout_seconds), {
            let identity = identity.clone();
            Arc::new(move |digest: &[u8; 32]| identity.sign_digest(digest))
        }),
        signing: SignService::new(
            Duration::from_millis(th.signing_wait_ms),
            c.limits.sessions(),
        ),
        pkp,
        attest: AttestMeter::new(c.limits.attest()),
        cpu: Work::new("verification and signing jobs", c.limits.cpu(cpus)),
    }));
    if let Some(k) = keys {
        tracing::info!(network = %k.network, epoch = k.epoch, "network keys unsealed; no DKG needed");
        state.dkg().unsealed(&k.network, k.epoch);
        state.install_keys(k);
    }
    let listener = TcpListener::bind(c.node.listen)
        .await
        .with_context(|| format!("binding {}", c.node.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        endpoint = %c.node.endpoint,
        provider = state.provider().name(),
        open_files,
        max_connections = listening.conns.total,
        cpu_workers = c.limits.cpu(cpus).concurrent,
        "serving"
    );
    tokio::spawn(crate::registry::watch(
        state.clone(),
        source,
        authority,
        c.registry_poll(),
        tracker,
    ));
    let task = tokio::spawn(crate::listener::serve(state.clone(), listener, listening));
    tokio::spawn(crate::replay::renew(state.clone(), lead));
    tokio::spawn(crate::dkg::ticker(state.clone()));
    tokio::spawn(crate::sign::ticker(state.clone()));
    crate::dkg::ensure(&state);
    Ok(Running { addr, task, state })
}
