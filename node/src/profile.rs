//! The network profile: the rules a node runs under, as one hash bound into its evidence
//! (REPORT_DATA, through the certificate's and every fresh report's binding), so peers and
//! clients can require that a node runs under exactly their network's rules, not rules its
//! host chose.
//!
//! ```text
//!   SHA-256("keynet/profile/v1" || lp(field) ...) over, in this order:
//!     registry authority (20 bytes)       SHA-256 of the peers' manifest file
//!     minimum TCB (canonical text)        SHA-256 of the CRL file, or empty
//!     SHA-256 of the simulated ARK, or empty
//!     auth domain, auth lifetime, clock skew, DKG round timeout, signing wait (u64 BE)
//!     every [limits] field, in the order of `LimitsSection` (u64 BE)
//! ```
//!
//! Per-node settings (listen address, endpoint, state directory, evidence provider, the
//! guest's network) are not rules and are left out. A node computes its own profile at
//! start, binds it, and requires it of every peer; `keynode profile` prints it for the
//! network file clients use.

use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};

/// The profile's hash.
pub type Profile = [u8; 32];

fn lp(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u32).to_be_bytes());
    h.update(bytes);
}

fn file_digest(
    field: &'static str,
    path: Option<&std::path::Path>,
) -> Result<Vec<u8>, ConfigError> {
    match path {
        None => Ok(vec![]),
        Some(p) => std::fs::read(p)
            .map(|b| Sha256::digest(&b).to_vec())
            .map_err(|e| ConfigError::Field {
                field,
                reason: format!("{}: {e}", p.display()),
            }),
    }
}

/// The profile of `c` (reads the manifest, CRL and simulated-root files it names).
pub fn of(c: &Config) -> Result<Profile, ConfigError> {
    let mut h = Sha256::new();
    h.update(b"keynet/profile/v1");
    lp(&mut h, c.authority()?.as_bytes());
    lp(
        &mut h,
        &file_digest("peers.manifest", c.peers.manifest.as_deref())?,
    );
    let min_tcb = c.min_tcb()?.map(|m| {
        [
            ("fmc", m.fmc),
            ("bl", m.bl),
            ("tee", m.tee),
            ("snp", m.snp),
            ("ucode", m.ucode),
        ]
        .iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
        .collect::<Vec<_>>()
        .join(",")
    });
    lp(&mut h, min_tcb.unwrap_or_default().as_bytes());
    lp(&mut h, &file_digest("peers.crl", c.peers.crl.as_deref())?);
    lp(
        &mut h,
        &file_digest("peers.trust_simulated", c.peers.trust_simulated.as_deref())?,
    );
    let th = &c.threshold;
    lp(&mut h, th.auth_domain.as_bytes());
    let l = &c.limits;
    let numbers: [u64; 26] = [
        th.auth_max_lifetime_seconds,
        th.auth_clock_skew_seconds,
        th.dkg_round_timeout_seconds,
        th.signing_wait_ms,
        l.max_connections as u64,
        l.max_connections_per_address as u64,
        l.handshake_timeout_seconds,
        l.header_timeout_seconds,
        l.idle_timeout_seconds,
        l.request_timeout_seconds,
        l.auth_pending_per_address as u64,
        l.auth_pending_total as u64,
        l.attest_concurrent as u64,
        l.attest_queue as u64,
        l.attest_per_address as u64,
        l.attest_per_connection_ms,
        l.cpu_concurrent as u64,
        l.cpu_queue as u64,
        l.cpu_per_address as u64,
        l.signing_sessions_per_address as u64,
        l.signing_sessions_total as u64,
        l.pkp_keys_per_owner as u64,
        l.pkp_keys as u64,
        l.pkp_bytes as u64,
        l.pkp_queued as u64,
        u64::from(l.pkp_changes_per_second),
    ];
    for n in numbers {
        lp(&mut h, &n.to_be_bytes());
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = "[node]\nlisten = \"127.0.0.1:7001\"\nendpoint = \"127.0.0.1:7001\"\n\
        state_dir = \"/tmp/x\"\n[evidence]\nprovider = \"auto\"\n[registry]\nfile = \"/r\"\n\
        authority = \"0x0000000000000000000000000000000000000001\"\n";

    #[test]
    fn rules_change_the_profile_and_per_node_settings_do_not() {
        let p = |extra: &str| of(&Config::parse(&format!("{BASE}{extra}")).unwrap()).unwrap();
        let base = p("");
        let other_node = Config::parse(&BASE.replace("7001", "7002")).unwrap();
        assert_eq!(
            of(&other_node).unwrap(),
            base,
            "listen and endpoint are per node"
        );
        for rule in [
            "[limits]\nmax_connections = 1000\n",
            "[threshold]\nauth_domain = \"other.example\"\n",
            "[threshold]\nsigning_wait_ms = 100\n",
            "[peers]\nmin_tcb = \"snp=22\"\n",
        ] {
            assert_ne!(p(rule), base, "{rule}");
        }
        let other_authority = BASE.replace(
            "0x0000000000000000000000000000000000000001",
            "0x0000000000000000000000000000000000000002",
        );
        assert_ne!(of(&Config::parse(&other_authority).unwrap()).unwrap(), base);
    }
}
