//! `keynode run --config FILE`: the node's configuration, in TOML. It comes from the host,
//! so it is untrusted input: every field is validated, unknown fields are refused, and the
//! endpoint it names is bound into the node's REPORT_DATA, so peers can compare it with the
//! registry.

use std::net::SocketAddr;
use std::path::PathBuf;

use attestation_verifier::validate::MinTcb;
use keynet_eth::Address;
use keynet_protocol::registry::validate_endpoint;
use serde::Deserialize;

/// Why a build without the `simulated` feature refuses simulation, whatever the command line.
const NOT_BUILT_IN: &str = "this keynode build has no simulated platform (it was built without \
    the `simulated` feature, as the published image's keynode is)";

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeSection,
    /// Where attestation evidence comes from.
    pub evidence: EvidenceSection,
    /// The staking registry.
    pub registry: RegistrySection,
    /// What peers must prove.
    #[serde(default)]
    pub peers: PeersSection,
    /// The guest's network interface, set up by the image's init (keynode only checks it).
    pub network: Option<NetworkSection>,
    /// Users' authorisations and the threshold protocols' time limits.
    #[serde(default)]
    pub threshold: ThresholdSection,
    /// What one stranger, or all of them together, can make the node hold or spend.
    #[serde(default)]
    pub limits: LimitsSection,
}

/// What one stranger, or all of them together, can make the node hold or spend. The
/// defaults suit a node of the published image (init gives keynode 65,536 open files);
/// README's "Limits" section says what a client sees when each is reached.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Connections held at once (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    /// Connections held at once from one IP address.
    pub max_connections_per_address: usize,
    /// Time a TLS handshake may take, seconds.
    pub handshake_timeout_seconds: u64,
    /// Time a request's headers may take to arrive, seconds.
    pub header_timeout_seconds: u64,
    /// Time a connection may sit between requests, seconds.
    pub idle_timeout_seconds: u64,
    /// Time a whole request (body and answer) may take, seconds.
    pub request_timeout_seconds: u64,
    /// Authorisations remembered against replay, per user address (until they expire).
    pub auth_pending_per_address: usize,
    /// Authorisations remembered against replay, in all.
    pub auth_pending_total: usize,
    /// Fresh reports made at once.
    pub attest_concurrent: usize,
    /// Fresh reports queued or running, in all.
    pub attest_queue: usize,
    /// Fresh reports queued or running for one IP address.
    pub attest_per_address: usize,
    /// Least time between two fresh reports on one connection, milliseconds.
    pub attest_per_connection_ms: u64,
    /// Verification and signing work (a peer's certificate, BLS shares and the checks
    /// before them) running at once; 0 means one per CPU.
    pub cpu_concurrent: usize,
    /// That work queued or running, in all.
    pub cpu_queue: usize,
    /// That work queued or running for one IP address.
    pub cpu_per_address: usize,
    /// Signing sessions open at once for one user address.
    pub signing_sessions_per_address: usize,
    /// Signing sessions open at once, in all.
    pub signing_sessions_total: usize,
    /// Derived keys with permissions, per owner.
    pub pkp_keys_per_owner: usize,
    /// Derived keys with permissions, in all.
    pub pkp_keys: usize,
    /// Bytes of sealed permission records on disk, in all (each counts at least 4 KiB).
    pub pkp_bytes: usize,
    /// Permission changes waiting for the disk at once.
    pub pkp_queued: usize,
    /// Permission changes taken per second (a burst of twice that).
    pub pkp_changes_per_second: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        // The permissions' defaults are kept where the permissions are.
        let pkp = crate::pkp::PkpLimits::default();
        LimitsSection {
            max_connections: 16_384,
            max_connections_per_address: 512,
            handshake_timeout_seconds: 10,
            header_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            request_timeout_seconds: 30,
            auth_pending_per_address: 4_096,
            auth_pending_total: 262_144,
            attest_concurrent: 2,
            attest_queue: 64,
            attest_per_address: 8,
            attest_per_connection_ms: 1_000,
            cpu_concurrent: 0,
            cpu_queue: 256,
            cpu_per_address: 16,
            signing_sessions_per_address: 32,
            signing_sessions_total: 4_096,
            pkp_keys_per_owner: pkp.per_owner,
            pkp_keys: pkp.keys,
            pkp_bytes: pkp.bytes,
            pkp_queued: pkp.queued,
            pkp_changes_per_second: pkp.per_second,
        }
    }
}

/// Users' authorisations and the threshold protocols' time limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdSection {
    /// The domain users' authorisations must name (what their wallet shows them).
    pub auth_domain: String,
    /// Longest validity an authorisation may have, seconds.
    pub auth_max_lifetime_seconds: u64,
    /// How far in the future an authorisation's issue time may be, seconds; also how far the
    /// sealed replay horizon runs ahead of the clock, so how long after a restart the node
    /// waits before it serves (see `replay`).
    pub auth_clock_skew_seconds: u64,
    /// Time each DKG round may take, seconds (nodes started apart must meet within it).
    pub dkg_round_timeout_seconds: u64,
    /// How long a signing waits for the other participants' commitments, milliseconds.
    pub signing_wait_ms: u64,
}

impl Default for ThresholdSection {
    fn default() -> Self {
        ThresholdSection {
            auth_domain: "keynet.local".into(),
            auth_max_lifetime_seconds: 600,
            auth_clock_skew_seconds: 10,
            dkg_round_timeout_seconds: 120,
            signing_wait_ms: 5000,
        }
    }
}

/// The guest's network, configured by init before keynode starts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Interface name (default `eth0`).
    pub interface: Option<String>,
    /// IPv4 address with prefix length, e.g. `10.0.2.15/24`.
    pub address: String,
    /// Default gateway.
    pub gateway: Option<std::net::Ipv4Addr>,
}

/// This node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Socket address to listen on.
    pub listen: SocketAddr,
    /// `host:port` peers and clients use, exactly as in the registry.
    pub endpoint: String,
    /// Directory for the node's state (identity key).
    pub state_dir: PathBuf,
}

/// Evidence provider choice.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderChoice {
    /// The first hardware interface found; never simulation.
    Auto,
    /// Linux configfs-tsm.
    ConfigfsTsm,
    /// The SEV guest device, `/dev/sev-guest`.
    SevGuest,
    /// The simulated platform (tests and local development only).
    Simulated,
}

/// Where attestation evidence comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSection {
    /// The provider.
    pub provider: ProviderChoice,
    /// State file of the simulated platform (required with `simulated`).
    pub simulated_state: Option<PathBuf>,
}

/// The staking registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// The signed registry document on disk; reloaded when it changes.
    pub file: Option<PathBuf>,
    /// Or an http(s) URL serving it; polled every `poll_seconds`. The document is signed,
    /// so the transport needs no trust.
    pub url: Option<String>,
    /// Seconds between checks for a new registry (default 2 for a file, 30 for a URL).
    pub poll_seconds: Option<u64>,
    /// The registry authority's Ethereum address.
    pub authority: String,
}

/// Where the registry comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrySource {
    /// A file.
    File(PathBuf),
    /// An http(s) URL.
    Url(String),
}

impl std::fmt::Display for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrySource::File(p) => write!(f, "{}", p.display()),
            RegistrySource::Url(u) => f.write_str(u),
        }
    }
}

/// What peers must prove.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersSection {
    /// Published measurement manifest peers' reports must be in.
    pub manifest: Option<PathBuf>,
    /// The simulated platform's ARK (PEM), trusted for peers only when given (dev networks).
    pub trust_simulated: Option<PathBuf>,
    /// The network's minimum TCB, e.g. `bl=7,tee=0,snp=22,ucode=213` (`fmc=` too on Turin):
    /// peers reporting less are refused, and when every component is named the sealing key
    /// is pinned to it, so firmware below it cannot unseal this node's state.
    pub min_tcb: Option<String>,
    /// AMD's CRL for the network's product (DER or PEM, from the KDS): every peer's chain is
    /// checked against it.
    pub crl: Option<PathBuf>,
}

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML of the right shape.
    #[error("config {path}: {source}")]
    Toml {
        /// The file.
        path: String,
        /// The parse error (with line and field).
        #[source]
        source: toml::de::Error,
    },
    /// A field's value is not acceptable.
    #[error("config: {field}: {reason}")]
    Field {
        /// Dotted field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Toml { source, .. } => ConfigError::Toml {
                path: shown,
                source,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Self::parse_for(text, crate::evidence::SIMULATION_BUILT_IN)
    }

    /// [`Config::parse`] for a build that has the simulated platform, or not.
    fn parse_for(text: &str, simulation_built_in: bool) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|source| ConfigError::Toml {
            path: "-".into(),
            source,
        })?;
        validate_endpoint(&c.node.endpoint).map_err(|e| ConfigError::Field {
            field: "node.endpoint",
            reason: e.to_string(),
        })?;
        c.authority()?;
        c.registry_source()?;
        c.min_tcb()?;
        if !simulation_built_in {
            c.refuse_simulation(NOT_BUILT_IN)?;
        }
        if c.evidence.provider == ProviderChoice::Simulated && c.evidence.simulated_state.is_none()
        {
            return Err(ConfigError::Field {
                field: "evidence.simulated_state",
                reason: "required when provider = \"simulated\"".into(),
            });
        }
        if let Some(n) = &c.network {
            n.validate()?;
        }
        c.threshold.validate()?;
        c.limits.validate(&c.threshold)?;
        if c.evidence.provider != ProviderChoice::Simulated && c.evidence.simulated_state.is_some()
        {
            return Err(ConfigError::Field {
                field: "evidence.simulated_state",
                reason: "only allowed with provider = \"simulated\"".into(),
            });
        }
        Ok(c)
    }

    /// Refuses anything simulated: inside a test image the host writes this configuration,
    /// and only the measured command line may allow simulation.
    pub fn require_hardware(&self) -> Result<(), ConfigError> {
        self.refuse_simulation("this node runs with --hardware-only")
    }

    fn refuse_simulation(&self, why: &str) -> Result<(), ConfigError> {
        if self.evidence.provider == ProviderChoice::Simulated {
            return Err(ConfigError::Field {
                field: "evidence.provider",
                reason: format!("\"simulated\" is refused: {why}"),
            });
        }
        if self.peers.trust_simulated.is_some() {
            return Err(ConfigError::Field {
                field: "peers.trust_simulated",
                reason: format!("refused: {why}"),
            });
        }
        Ok(())
    }

    /// The registry's source: exactly one of `registry.file` and `registry.url`.
    pub fn registry_source(&self) -> Result<RegistrySource, ConfigError> {
        match (&self.registry.file, &self.registry.url) {
            (Some(f), None) => Ok(RegistrySource::File(f.clone())),
            (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {
                Ok(RegistrySource::Url(u.clone()))
            }
            (None, Some(_)) => Err(ConfigError::Field {
                field: "registry.url",
                reason: "must be an http:// or https:// URL".into(),
            }),
            _ => Err(ConfigError::Field {
                field: "registry",
                reason: "give exactly one of `file` and `url`".into(),
            }),
        }
    }

    /// How often to look for a new registry.
    pub fn registry_poll(&self) -> std::time::Duration {
        let default = if self.registry.url.is_some() { 30 } else { 2 };
        std::time::Duration::from_secs(self.registry.poll_seconds.unwrap_or(default).max(1))
    }

    /// The network's minimum TCB, if one is set.
    pub fn min_tcb(&self) -> Result<Option<MinTcb>, ConfigError> {
        self.peers
            .min_tcb
            .as_deref()
            .map(|t| {
                t.parse().map_err(|reason| ConfigError::Field {
                    field: "peers.min_tcb",
                    reason,
                })
            })
            .transpose()
    }

    /// The registry authority's address.
    pub fn authority(&self) -> Result<Address, ConfigError> {
        self.registry
            .authority
            .parse()
            .map_err(|e: keynet_eth::AddressError| ConfigError::Field {
                field: "registry.authority",
                reason: e.to_string(),
            })
    }
}

/// `Ok` if `v` is within `lo..=hi`, else names `field`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    if lo <= v && v <= hi {
        Ok(())
    } else {
        Err(ConfigError::Field {
            field,
            reason: format!("{v} is not within {lo} to {hi}"),
        })
    }
}

impl LimitsSection {
    fn validate(&self, threshold: &ThresholdSection) -> Result<(), ConfigError> {
        in_range(
            "limits.max_connections",
            self.max_connections,
            16,
            1_000_000,
        )?;
        in_range(
            "limits.max_connections_per_address",
            self.max_connections_per_address,
            1,
            self.max_connections,
        )?;
        in_range(
            "limits.handshake_timeout_seconds",
            self.handshake_timeout_seconds,
            1,
            300,
        )?;
        in_range(
            "limits.header_timeout_seconds",
            self.header_timeout_seconds,
            1,
            300,
        )?;
        in_range(
            "limits.idle_timeout_seconds",
            self.idle_timeout_seconds,
            1,
            3_600,
        )?;
        // A signing waits for its peers within the request: the request must outlast it.
        let floor = threshold.signing_wait_ms.div_ceil(1000) + 1;
        in_range(
            "limits.request_timeout_seconds",
            self.request_timeout_seconds,
            floor,
            3_600,
        )?;
        in_range(
            "limits.auth_pending_total",
            self.auth_pending_total,
            1,
            16_000_000,
        )?;
        in_range(
            "limits.auth_pending_per_address",
            self.auth_pending_per_address,
            1,
            self.auth_pending_total,
        )?;
        in_range("limits.attest_concurrent", self.attest_concurrent, 1, 64)?;
        in_range("limits.attest_queue", self.attest_queue, 1, 100_000)?;
        in_range(
            "limits.attest_per_address",
            self.attest_per_address,
            1,
            self.attest_queue,
        )?;
        in_range(
            "limits.attest_per_connection_ms",
            self.attest_per_connection_ms,
            0,
            3_600_000,
        )?;
        in_range("limits.cpu_concurrent", self.cpu_concurrent, 0, 256)?;
        in_range("limits.cpu_queue", self.cpu_queue, 1, 100_000)?;
        in_range(
            "limits.cpu_per_address",
            self.cpu_per_address,
            1,
            self.cpu_queue,
        )?;
        in_range(
            "limits.signing_sessions_total",
            self.signing_sessions_total,
            1,
            1_000_000,
        )?;
        in_range(
            "limits.signing_sessions_per_address",
            self.signing_sessions_per_address,
            1,
            self.signing_sessions_total,
        )?;
        in_range("limits.pkp_keys", self.pkp_keys, 1, 100_000_000)?;
        in_range(
            "limits.pkp_keys_per_owner",
            self.pkp_keys_per_owner,
            1,
            self.pkp_keys,
        )?;
        in_range("limits.pkp_bytes", self.pkp_bytes, 1 << 10, 1 << 40)?;
        in_range("limits.pkp_queued", self.pkp_queued, 1, 100_000)?;
        in_range(
            "limits.pkp_changes_per_second",
            self.pkp_changes_per_second,
            1,
            1_000_000,
        )
    }

    /// The permissions' budgets.
    pub fn pkp(&self) -> crate::pkp::PkpLimits {
        crate::pkp::PkpLimits {
            per_owner: self.pkp_keys_per_owner,
            keys: self.pkp_keys,
            bytes: self.pkp_bytes,
            queued: self.pkp_queued,
            per_second: self.pkp_changes_per_second,
        }
    }

    /// The signing sessions' limits.
    pub fn sessions(&self) -> crate::sign::SessionLimits {
        crate::sign::SessionLimits {
            per_address: self.signing_sessions_per_address,
            total: self.signing_sessions_total,
        }
    }

    /// The fresh-evidence meter's limits.
    pub fn attest(&self) -> crate::attest::AttestLimits {
        crate::attest::AttestLimits {
            work: crate::work::WorkLimits {
                concurrent: self.attest_concurrent,
                queue: self.attest_queue,
                per_address: self.attest_per_address,
            },
            per_connection: std::time::Duration::from_millis(self.attest_per_connection_ms),
        }
    }

    /// The limits of verification and signing work, with `cpus` for a `cpu_concurrent`
    /// of 0.
    pub fn cpu(&self, cpus: usize) -> crate::work::WorkLimits {
        crate::work::WorkLimits {
            concurrent: if self.cpu_concurrent == 0 {
                cpus.max(1)
            } else {
                self.cpu_concurrent
            },
            queue: self.cpu_queue,
            per_address: self.cpu_per_address,
        }
    }
}

impl ThresholdSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.auth_domain;
        if d.is_empty()
            || d.len() > 253
            || !d
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
        {
            return Err(ConfigError::Field {
                field: "threshold.auth_domain",
                reason: format!("'{d}' is not a lowercase host name"),
            });
        }
        let range = |field, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::Field {
                    field,
                    reason: format!("{v} is not within {lo} to {hi}"),
                })
            }
        };
        range(
            "threshold.auth_max_lifetime_seconds",
            self.auth_max_lifetime_seconds,
            1,
            86_400,
        )?;
        range(
            "threshold.auth_clock_skew_seconds",
            self.auth_clock_skew_seconds,
            0,
            300,
        )?;
        range(
            "threshold.dkg_round_timeout_seconds",
            self.dkg_round_timeout_seconds,
            1,
            86_400,
        )?;
        range(
            "threshold.signing_wait_ms",
            self.signing_wait_ms,
            10,
            600_000,
        )
    }
}

impl NetworkSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(i) = &self.interface
            && (i.is_empty()
                || i.len() > 15
                || !i
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        {
            return Err(ConfigError::Field {
                field: "network.interface",
                reason: format!("'{i}' is not an interface name (1-15 of a-z, 0-9)"),
            });
        }
        let bad = |reason: String| ConfigError::Field {
            field: "network.address",
            reason,
        };
        let (ip, prefix) = self
            .address
            .split_once('/')
            .ok_or_else(|| bad(format!("'{}' has no /prefix", self.address)))?;
        ip.parse::<std::net::Ipv4Addr>()
            .map_err(|e| bad(format!("'{ip}': {e}")))?;
        match prefix.parse::<u8>() {
            Ok(p) if p <= 32 => Ok(()),
            _ => Err(bad(format!("prefix '{prefix}' is not 0-32"))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test
mod tests {
    use super::*;

    const BASE: &str = r#"
[node]
listen = "0.0.0.0:7000"
endpoint = "127.0.0.1:7000"
state_dir = "/run/keynet/state"
[evidence]
provider = "auto"
[registry]
file = "/run/keynet/host/registry.json"
authority = "0x0000000000000000000000000000000000000001"
"#;

    #[test]
    fn limits_and_the_minimum_tcb_are_checked_naming_the_field() {
        for (extra, field) in [
            ("[peers]\nmin_tcb = \"snp=x\"\n", "peers.min_tcb"),
            ("[limits]\nmax_connections = 1\n", "limits.max_connections"),
            (
                "[limits]\nrequest_timeout_seconds = 2\n",
                "limits.request_timeout_seconds",
            ),
            ("[limits]\nsurprise = 1\n", "surprise"),
        ] {
            let err = Config::parse(&format!("{BASE}{extra}"))
                .err()
                .unwrap_or_else(|| panic!("{extra} accepted"))
                .to_string();
            assert!(err.contains(field), "{extra}: {err}");
        }
        let ok = Config::parse(&format!(
            "{BASE}[peers]\nmin_tcb = \"bl=4,tee=0,snp=24,ucode=219\"\n"
        ))
        .unwrap();
        assert_eq!(
            ok.min_tcb().unwrap().and_then(|m| m.raw()),
            Some(0xdb18_0000_0000_0004)
        );
    }

    #[test]
    fn network_section_is_checked() {
        let ok = format!("{BASE}[network]\naddress = \"10.0.2.15/24\"\ngateway = \"10.0.2.2\"\n");
        let c = Config::parse(&ok).unwrap();
        assert_eq!(c.network.unwrap().address, "10.0.2.15/24");
        for (net, field) in [
            ("address = \"10.0.2.15\"", "network.address"),
            ("address = \"10.0.2.15/33\"", "network.address"),
            ("address = \"10.0.2/24\"", "network.address"),
            (
                "address = \"10.0.2.15/24\"\ninterface = \"eth0; rm\"",
                "network.interface",
            ),
        ] {
            match Config::parse(&format!("{BASE}[network]\n{net}\n")) {
                Err(ConfigError::Field { field: f, .. }) => assert_eq!(f, field, "{net}"),
                other => panic!("{net}: {other:?}"),
            }
        }
        assert!(
            Config::parse(&format!(
                "{BASE}[network]\naddress = \"10.0.2.15/24\"\nmtu = 1\n"
            ))
            .is_err()
        );
    }

    #[test]
    fn a_build_without_the_simulated_platform_refuses_it_in_configuration() {
        let sim = BASE.replace(
            "provider = \"auto\"",
            "provider = \"simulated\"\nsimulated_state = \"/x\"",
        );
        let trust = format!("{BASE}[peers]\ntrust_simulated = \"/ark.pem\"\n");
        for (text, field) in [
            (sim.as_str(), "evidence.provider"),
            (trust.as_str(), "peers.trust_simulated"),
        ] {
            assert!(Config::parse_for(text, true).is_ok(), "{field}");
            match Config::parse_for(text, false) {
                Err(ConfigError::Field { field: f, reason }) => {
                    assert_eq!(f, field);
                    assert!(reason.contains("no simulated platform"), "{reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(Config::parse_for(BASE, false).is_ok());
    }

    #[test]
    fn hardware_only_refuses_simulation() {
        let c = Config::parse(BASE).unwrap();
        assert!(c.require_hardware().is_ok());
        let sim = BASE.replace(
            "provider = \"auto\"",
            "provider = \"simulated\"\nsimulated_state = \"/x\"",
        );
        let c = Config::parse(&sim).unwrap();
        assert!(matches!(
            c.require_hardware(),
            Err(ConfigError::Field {
                field: "evidence.provider",
                ..
            })
        ));
        let trust = format!("{BASE}[peers]\ntrust_simulated = \"/ark.pem\"\n");
        let c = Config::parse(&trust).unwrap();
        assert!(matches!(
            c.require_hardware(),
            Err(ConfigError::Field {
                field: "peers.trust_simulated",
                ..
            })
        ));
    }
}
