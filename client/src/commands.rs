//! `keynet status`, `keynet sign` and `keynet pkp ...`: the network commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use k256::ecdsa::SigningKey;
use keynet::network::{ClientError, Network, NetworkFile};
use keynet_eth::{Address, address_of};
use keynet_protocol::request::KeyRef;
use zeroize::Zeroizing;

/// Where the network is.
#[derive(Args)]
pub struct NetworkArgs {
    /// Network file: registry, authority, manifest, auth domain (`keynode dev-network` writes
    /// one as DIR/network.toml).
    #[arg(long, value_name = "FILE")]
    pub(crate) network: PathBuf,
}

/// `keynet status`.
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    net: NetworkArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `keynet sign`.
#[derive(Args)]
pub struct SignArgs {
    #[command(flatten)]
    net: NetworkArgs,
    /// The user's wallet key (a file holding the secp256k1 secret in hex); it signs the
    /// request's authorisation.
    #[arg(long, value_name = "FILE")]
    user_key: PathBuf,
    /// The derived key's owner (default: the user's own address).
    #[arg(long, value_name = "ADDRESS")]
    owner: Option<String>,
    /// The derived key's name.
    #[arg(long)]
    name: String,
    /// The 32-byte digest to sign, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    digest: String,
    /// How many nodes take part (default and minimum: the threshold).
    #[arg(long)]
    nodes: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `keynet pkp ...`.
#[derive(Subcommand)]
pub enum PkpCommand {
    /// The public key of a derived key, from the network's root key and the key id; works
    /// offline with --group-key.
    Derive {
        /// The owner's address.
        #[arg(long, value_name = "ADDRESS")]
        owner: String,
        /// The key's name.
        #[arg(long)]
        name: String,
        /// The network's FROST group key (33 bytes compressed, hex); without it the
        /// network is asked (--network).
        #[arg(long, value_name = "HEX")]
        group_key: Option<String>,
        /// Network file (when --group-key is not given).
        #[arg(long, value_name = "FILE")]
        network: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// As a key's owner, set who else may sign with it (sent to every node).
    Permit {
        #[command(flatten)]
        net: NetworkArgs,
        /// The owner's wallet key file (hex secret).
        #[arg(long, value_name = "FILE")]
        user_key: PathBuf,
        /// The key's name.
        #[arg(long)]
        name: String,
        /// An address allowed to sign (repeatable; none = only the owner).
        #[arg(long, value_name = "ADDRESS")]
        allow: Vec<String>,
        /// Sequence number; must grow with every change.
        #[arg(long)]
        seq: u64,
    },
}

pub(crate) fn exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Usage(_) => 2,
        ClientError::NotEnoughNodes { .. } => 3,
        _ => 1,
    }
}

pub(crate) fn fail(e: ClientError) -> ExitCode {
    eprintln!("keynet: {e}");
    ExitCode::from(exit_code(&e))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Runtime::new().map_err(|e| ClientError::Failed(e.to_string()))
}

pub(crate) fn open(net: &NetworkArgs) -> Result<Network, ClientError> {
    Network::open(&NetworkFile::load(&net.network)?)
}

pub(crate) fn read_key(path: &PathBuf) -> Result<SigningKey, ClientError> {
    let u = |e: String| ClientError::Usage(format!("{}: {e}", path.display()));
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| u(e.to_string()))?);
    let bytes = Zeroizing::new(
        hex::decode(text.trim().trim_start_matches("0x")).map_err(|e| u(e.to_string()))?,
    );
    SigningKey::from_slice(&bytes).map_err(|e| u(format!("not a secp256k1 secret: {e}")))
}

fn address(s: &str, what: &str) -> Result<Address, ClientError> {
    s.parse()
        .map_err(|e| ClientError::Usage(format!("{what} {s}: {e}")))
}

pub(crate) fn json_out(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `keynet status`.
pub fn status(a: StatusArgs) -> ExitCode {
    let run = || -> Result<Vec<keynet::network::NodeStatus>, ClientError> {
        let net = open(&a.net)?;
        Ok(runtime()?.block_on(net.status()))
    };
    match run() {
        Ok(all) => {
            if a.json {
                json_out(&all);
            } else {
                for s in &all {
                    println!(
                        "{:<22} {:<9} dkg {:<8} {}",
                        s.endpoint,
                        if s.verified { "genuine" } else { "-" },
                        s.dkg.as_deref().unwrap_or("-"),
                        s.error
                            .clone()
                            .or_else(|| s.group_key.clone().map(|g| format!("group key {g}")))
                            .unwrap_or_default()
                    );
                }
            }
            if all.iter().all(|s| s.error.is_none()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(e),
    }
}

/// `keynet sign`.
pub fn sign(a: SignArgs) -> ExitCode {
    let run = || -> Result<keynet::network::Signed, ClientError> {
        let user = read_key(&a.user_key)?;
        let owner = match &a.owner {
            Some(o) => address(o, "--owner")?,
            None => address_of(user.verifying_key()),
        };
        let key =
            KeyRef::new(owner, a.name.clone()).map_err(|e| ClientError::Usage(e.to_string()))?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(a.digest.trim_start_matches("0x"), &mut digest)
            .map_err(|e| ClientError::Usage(format!("--digest: 64 hex digits: {e}")))?;
        let net = open(&a.net)?;
        runtime()?.block_on(net.sign(&user, &key, digest, a.nodes))
    };
    match run() {
        Ok(s) => {
            if a.json {
                json_out(&s);
            } else {
                println!("signature   {}", s.signature);
                println!("public key  {}", s.public_key);
                println!("message     {}", s.message);
                println!("signed by   {}", s.participants.join(", "));
                println!("verified    RFC 9591 FROST(secp256k1, SHA-256) equation");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// What `keynet pkp derive` reports (fields in the order `--json` has always printed them).
#[derive(serde::Serialize)]
struct Derived {
    group_key: String,
    key_id: String,
    name: String,
    owner: String,
    public_key: String,
}

/// `keynet pkp ...`.
pub fn pkp(c: PkpCommand) -> ExitCode {
    match c {
        PkpCommand::Derive {
            owner,
            name,
            group_key,
            network,
            json,
        } => {
            let run = || -> Result<Derived, ClientError> {
                let key = KeyRef::new(address(&owner, "--owner")?, name)
                    .map_err(|e| ClientError::Usage(e.to_string()))?;
                let root = match (group_key, network) {
                    (Some(g), _) => hex::decode(g.trim_start_matches("0x"))
                        .map_err(|e| ClientError::Usage(format!("--group-key: {e}")))?,
                    (None, Some(n)) => {
                        let net = open(&NetworkArgs { network: n })?;
                        let (pkg, _) = runtime()?.block_on(net.public_keys())?;
                        pkg.verifying_key()
                            .serialize()
                            .map_err(|e| ClientError::Failed(e.to_string()))?
                    }
                    (None, None) => {
                        return Err(ClientError::Usage(
                            "give --group-key HEX or --network FILE".into(),
                        ));
                    }
                };
                let id = key.key_id();
                let public = keynet_threshold::derive::derive_public(&root, &id)
                    .map_err(|e| ClientError::Usage(format!("--group-key: {e}")))?;
                Ok(Derived {
                    owner: key.owner().to_checksum(),
                    name: key.name().to_owned(),
                    key_id: hex::encode(id),
                    group_key: hex::encode(&root),
                    public_key: hex::encode(public),
                })
            };
            match run() {
                Ok(v) => {
                    if json {
                        json_out(&v);
                    } else {
                        println!("key id      {}", v.key_id);
                        println!("public key  {}", v.public_key);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        PkpCommand::Permit {
            net,
            user_key,
            name,
            allow,
            seq,
        } => {
            let run = || -> Result<keynet::network::NodeAnswers, ClientError> {
                let owner = read_key(&user_key)?;
                let allowed = allow
                    .iter()
                    .map(|a| address(a, "--allow"))
                    .collect::<Result<Vec<_>, _>>()?;
                let net = open(&net)?;
                runtime()?.block_on(net.set_permissions(&owner, &name, allowed, seq))
            };
            match run() {
                Ok(answers) => {
                    let mut ok = 0;
                    for (endpoint, r) in &answers {
                        match r {
                            Ok(()) => {
                                ok += 1;
                                println!("{endpoint:<22} ok");
                            }
                            Err(e) => println!("{endpoint:<22} {e}"),
                        }
                    }
                    if ok == answers.len() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(e),
            }
        }
    }
}
