//! `keynode dev-network`: everything a local simulated network of N nodes on loopback needs:
//! the simulated platform (one chip per node under one simulated ARK/ASK), each node's
//! identity key and configuration, a registry signed by a fresh dev authority key, and the
//! measurement manifest peers and clients check.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use attestation_verifier::validate::manifest::{Entry, ImageId, Manifest, SCHEMA_V1};
use keynet_eth::address_of;
use keynet_protocol::registry::{IdentityKey, NodeEntry, Registry, sign};

use keynet_store::Store;

use crate::evidence::simulated::{SimulatedOptions, SimulatedPlatform};
use crate::evidence::{EvidenceProvider, SimulatedProvider};
use crate::identity::Identity;

/// The domain the dev network's users authorise requests for.
pub const AUTH_DOMAIN: &str = "keynet.local";

/// What `dev-network` wrote.
pub struct DevNetwork {
    /// Each node's configuration file.
    pub configs: Vec<PathBuf>,
    /// The simulated ARK (PEM) clients must be given explicitly.
    pub ark_pem: PathBuf,
    /// The manifest of allowed measurements.
    pub manifest: PathBuf,
    /// The endpoints, in node order.
    pub endpoints: Vec<String>,
    /// What the client needs (`keynet --network FILE`).
    pub client_config: PathBuf,
    /// A development user's wallet key (hex), and its address.
    pub user_key: PathBuf,
    /// The user's address.
    pub user_address: String,
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))
}

/// (Re)writes the `profile` line of the dev network's `network.toml` in `dir` from node 0's
/// configuration (call it again after editing the nodes' configurations, which must stay
/// alike in their rules).
pub fn write_profile(dir: &Path) -> Result<()> {
    let config = crate::config::Config::load(&dir.join("node-0/keynode.toml"))?;
    let profile = hex::encode(crate::profile::of(&config)?);
    let path = dir.join("network.toml");
    let text = std::fs::read_to_string(&path)?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("profile = "))
        .map(str::to_owned)
        .collect();
    lines.push(format!("profile = \"{profile}\""));
    write(&path, (lines.join("\n") + "\n").as_bytes())
}

/// Writes a dev network of `n` nodes into `dir`, ports `base_port..`. The simulated
/// platform reports `measurement` (all zeros if `None`), and the manifest allows it.
pub fn create(
    n: usize,
    dir: &Path,
    base_port: u16,
    rsa_bits: usize,
    measurement: Option<[u8; 48]>,
) -> Result<DevNetwork> {
    if !(1..=64).contains(&n) {
        bail!("--nodes must be 1 to 64");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let root = SimulatedPlatform::generate(SimulatedOptions {
        rsa_bits,
        measurement: measurement.unwrap_or([0; 48]),
        ..SimulatedOptions::default()
    })?;
    let ark_pem = dir.join("simulated-ark.pem");
    write(
        &ark_pem,
        format!("{}{}", root.ark_pem()?, root.ask_pem()?).as_bytes(),
    )?;

    let manifest = Manifest {
        schema: SCHEMA_V1.to_owned(),
        image: Some(ImageId {
            name: "keynet-dev (simulated)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
        measurements: vec![Entry {
            digest: hex::encode(root.measurement()),
            shape: serde_json::Map::from_iter([(
                "platform".to_owned(),
                serde_json::json!("snp-simulated"),
            )]),
        }],
    };
    let manifest_path = dir.join("manifest.json");
    write(
        &manifest_path,
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;

    let authority = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let authority_addr = address_of(authority.verifying_key());
    let mut nodes = Vec::new();
    let mut configs = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..n {
        let node_dir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&node_dir)?;
        let chip = root.new_chip()?;
        // The node's identity is sealed under its (simulated) chip's key, as the node
        // itself would on first start; its public key goes into the registry.
        let state_dir = node_dir.join("state");
        let sealing = SimulatedProvider(chip.clone()).sealing_key()?;
        let id = Identity::load_or_create(&Store::open(&state_dir, sealing)?)?;
        let platform_file = node_dir.join("simulated-platform.json");
        write(
            &platform_file,
            serde_json::to_string(&chip.state()?)?.as_bytes(),
        )?;
        let port = base_port
            .checked_add(u16::try_from(i)?)
            .context("port out of range")?;
        let endpoint = format!("127.0.0.1:{port}");
        let staker =
            address_of(k256::ecdsa::SigningKey::random(&mut rand_core::OsRng).verifying_key());
        nodes.push(NodeEntry {
            identity_key: IdentityKey::from_verifying_key(&id.public()),
            staker,
            stake: "32000000000000000000".parse()?,
            endpoint: endpoint.clone(),
        });
        let config = format!(
            "# keynode dev-network node {i}: SIMULATED platform, for local development only.\n\
             [node]\nlisten = \"{endpoint}\"\nendpoint = \"{endpoint}\"\nstate_dir = \"{}\"\n\n\
             [evidence]\nprovider = \"simulated\"\nsimulated_state = \"{}\"\n\n\
             [registry]\nfile = \"{}\"\nauthority = \"{}\"\n\n\
             [peers]\nmanifest = \"{}\"\ntrust_simulated = \"{}\"\n\n\
             [limits]\n\
             # Every dev node dials its peers from one address (loopback): that address's\n\
             # share of verification work is the whole queue.\n\
             cpu_per_address = 256\n\n\
             [threshold]\nauth_domain = \"{AUTH_DOMAIN}\"\n\
             # A short replay horizon: a restarted dev node serves again within 3 s.\n\
             auth_clock_skew_seconds = 3\n",
            state_dir.display(),
            platform_file.display(),
            dir.join("registry.json").display(),
            authority_addr.to_checksum(),
            manifest_path.display(),
            ark_pem.display(),
        );
        let path = node_dir.join("keynode.toml");
        write(&path, config.as_bytes())?;
        configs.push(path);
        endpoints.push(endpoint);
    }
    let registry = Registry {
        network_id: "keynet-dev".into(),
        epoch: 1,
        threshold: 0,
        min_stake: "1000000000000000000".parse()?,
        nodes,
    };
    let signed = sign(registry, &authority)?;
    write(&dir.join("registry.json"), signed.to_json().as_bytes())?;
    write(
        &dir.join("authority.key"),
        hex::encode(authority.to_bytes()).as_bytes(),
    )?;
    let user = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let user_key = dir.join("user.key");
    write(&user_key, hex::encode(user.to_bytes()).as_bytes())?;
    write(
        &dir.join("user.address"),
        address_of(user.verifying_key()).to_checksum().as_bytes(),
    )?;
    let client_config = dir.join("network.toml");
    write(
        &client_config,
        format!(
            "# keynet network file for the dev network (SIMULATED platform).\n\
             registry = \"{}\"\nauthority = \"{}\"\nmanifest = \"{}\"\n\
             trust_simulated = \"{}\"\nauth_domain = \"{AUTH_DOMAIN}\"\n",
            dir.join("registry.json").display(),
            authority_addr.to_checksum(),
            manifest_path.display(),
            ark_pem.display(),
        )
        .as_bytes(),
    )?;
    write_profile(&dir)?;
    Ok(DevNetwork {
        configs,
        ark_pem,
        manifest: manifest_path,
        endpoints,
        client_config,
        user_key,
        user_address: address_of(user.verifying_key()).to_checksum(),
    })
}
