//! Network bring-up: `lo` always, and the interface the host config's `[network]` names.
//! Failures are logged, not fatal: keynode then fails to serve and is retried.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use crate::hostinput::HOST_DIR;
use crate::log::{io_error, log, one_line};
use crate::net;
use crate::netconfig::{NetworkPlan, parse_host_config};

pub fn setup() {
    match net::bring_up("lo") {
        Ok(()) => log!("network: lo up"),
        Err(error) => log!("network: lo: {error}"),
    }
    let path = Path::new(HOST_DIR).join("config");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            log!("network: no host config; only lo is up");
            return;
        }
        Err(error) => {
            log!(
                "network: read {}: {}; only lo is up",
                path.display(),
                io_error(&error)
            );
            return;
        }
    };
    match parse_host_config(&text) {
        Ok(None) => log!("network: no [network] section in the host config; only lo is up"),
        Ok(Some(plan)) => match net::configure(&plan) {
            Ok(()) => log!("network: {}", describe(&plan)),
            Err(error) => log!("network: {}: {error}", plan.interface),
        },
        Err(error) => log!("network: host config: {}; only lo is up", one_line(&error)),
    }
}

/// `eth0 10.0.2.15/24 via 10.0.2.2` or `eth0 10.0.2.15/24 no gateway`.
fn describe(plan: &NetworkPlan) -> String {
    let route = match plan.gateway {
        Some(gateway) => format!("via {gateway}"),
        None => "no gateway".to_owned(),
    };
    format!(
        "{} {}/{} {route}",
        plan.interface, plan.address, plan.prefix
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn description_lines() {
        let mut plan = NetworkPlan {
            interface: "eth0".to_owned(),
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
        };
        assert_eq!(describe(&plan), "eth0 10.0.2.15/24 via 10.0.2.2");
        plan.gateway = None;
        assert_eq!(describe(&plan), "eth0 10.0.2.15/24 no gateway");
    }
}
