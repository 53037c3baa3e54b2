//! The `[network]` table of the host config: the only part init reads. The rest of the file
//! is keynode's, so other tables and keys are ignored here.

use std::net::Ipv4Addr;

use serde::Deserialize;

/// Interface used when `[network]` names none.
pub const DEFAULT_INTERFACE: &str = "eth0";
/// Linux's IFNAMSIZ, including the terminating NUL.
pub const IFNAMSIZ: usize = 16;

/// The host config as init sees it: everything but `[network]` is skipped.
#[derive(Deserialize)]
struct HostConfig {
    network: Option<NetworkSection>,
}

/// `[network]`, strict: a misspelt key is an error rather than a silently ignored setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    interface: Option<String>,
    address: String,
    gateway: Option<Ipv4Addr>,
}

/// A validated network setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkPlan {
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// Parses the host config's `[network]` table; `Ok(None)` when there is none.
pub fn parse_host_config(text: &str) -> Result<Option<NetworkPlan>, String> {
    let config: HostConfig = toml::from_str(text).map_err(|error| error.to_string())?;
    let Some(section) = config.network else {
        return Ok(None);
    };
    let interface = section
        .interface
        .unwrap_or_else(|| DEFAULT_INTERFACE.to_owned());
    if !valid_interface_name(&interface) {
        return Err(format!(
            "network.interface {interface:?}: must be 1 to {} characters of [a-z0-9]",
            IFNAMSIZ - 1
        ));
    }
    let (address, prefix) = parse_cidr(&section.address)
        .map_err(|reason| format!("network.address {:?}: {reason}", section.address))?;
    Ok(Some(NetworkPlan {
        interface,
        address,
        prefix,
        gateway: section.gateway,
    }))
}

/// Whether an interface name fits IFNAMSIZ and uses only `[a-z0-9]`.
pub fn valid_interface_name(name: &str) -> bool {
    (1..IFNAMSIZ).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Parses `a.b.c.d/prefix` with a prefix of 0 to 32.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let (address, prefix) = text
        .split_once('/')
        .ok_or_else(|| "expected an IPv4 address/prefix such as 10.0.2.15/24".to_owned())?;
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| "not an IPv4 address".to_owned())?;
    // Digits only: `u8::from_str` would also take a sign.
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err("prefix must be a number from 0 to 32".to_owned());
    }
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| "prefix must be a number from 0 to 32".to_owned())?;
    if prefix > 32 {
        return Err("prefix must be a number from 0 to 32".to_owned());
    }
    Ok((address, prefix))
}

/// The netmask of a prefix length (lengths above 32 are treated as 32).
pub fn prefix_to_netmask(prefix: u8) -> Ipv4Addr {
    let prefix = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - prefix).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_section() {
        let text = r#"
            [node]
            listen = "0.0.0.0:8443"

            [network]
            interface = "ens3"
            address = "10.0.2.15/24"
            gateway = "10.0.2.2"

            [registry]
            path = "/run/keynet/host/registry.json"
        "#;
        assert_eq!(
            parse_host_config(text),
            Ok(Some(NetworkPlan {
                interface: "ens3".to_owned(),
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            }))
        );
    }

    #[test]
    fn defaults_and_no_gateway() {
        let plan = parse_host_config("[network]\naddress = \"192.168.1.7/32\"\n");
        assert_eq!(
            plan,
            Ok(Some(NetworkPlan {
                interface: "eth0".to_owned(),
                address: Ipv4Addr::new(192, 168, 1, 7),
                prefix: 32,
                gateway: None,
            }))
        );
    }

    #[test]
    fn no_section_and_other_tables_ignored() {
        assert_eq!(parse_host_config(""), Ok(None));
        assert_eq!(
            parse_host_config("top = 1\n[node]\nanything = [1, 2]\n[peers.x]\ny = true\n"),
            Ok(None)
        );
    }

    #[test]
    fn bad_cidr_refused() {
        for address in [
            "10.0.2.15",
            "10.0.2/24",
            "10.0.2.300/24",
            "10.0.2.15/",
            "10.0.2.15/+8",
            "x/8",
        ] {
            let text = format!("[network]\naddress = \"{address}\"\n");
            assert!(parse_host_config(&text).is_err(), "{address} accepted");
        }
    }

    #[test]
    fn prefix_over_32_refused() {
        assert!(parse_host_config("[network]\naddress = \"10.0.2.15/33\"\n").is_err());
        assert!(parse_cidr("10.0.2.15/99").is_err());
        assert!(parse_cidr("10.0.2.15/100").is_err());
        assert_eq!(
            parse_cidr("10.0.2.15/0"),
            Ok((Ipv4Addr::new(10, 0, 2, 15), 0))
        );
    }

    #[test]
    fn bad_interface_refused() {
        for name in ["", "Eth0", "eth-0", "eth0.1", "averyveryverylong", "../x"] {
            let text = format!("[network]\ninterface = \"{name}\"\naddress = \"10.0.2.15/24\"\n");
            assert!(parse_host_config(&text).is_err(), "{name:?} accepted");
        }
        assert!(valid_interface_name("abcdefghijklmno"));
        assert!(!valid_interface_name("abcdefghijklmnop"));
    }

    #[test]
    fn unknown_network_key_refused() {
        let text = "[network]\naddress = \"10.0.2.15/24\"\nnetmask = \"255.255.255.0\"\n";
        let error = parse_host_config(text).err().unwrap_or_default();
        assert!(error.contains("netmask"), "{error}");
    }

    #[test]
    fn missing_address_and_bad_gateway_refused() {
        assert!(parse_host_config("[network]\ninterface = \"eth0\"\n").is_err());
        assert!(
            parse_host_config("[network]\naddress = \"10.0.2.15/24\"\ngateway = \"10.0.2\"\n")
                .is_err()
        );
        assert!(parse_host_config("network = 5\n").is_err());
    }

    #[test]
    fn netmasks() {
        assert_eq!(prefix_to_netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(prefix_to_netmask(1), Ipv4Addr::new(128, 0, 0, 0));
        assert_eq!(prefix_to_netmask(8), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(prefix_to_netmask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(prefix_to_netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(prefix_to_netmask(31), Ipv4Addr::new(255, 255, 255, 254));
        assert_eq!(prefix_to_netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(prefix_to_netmask(40), Ipv4Addr::new(255, 255, 255, 255));
    }
}
