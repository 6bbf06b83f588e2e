//! What a template sees (documented in templates/README.md).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::inventory::{Inventory, PROXY_NETWORK, Stack};

/// One host name routed by the proxy to a service.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub stack: String,
    pub service: String,
    pub host: String,
    pub port: u16,
    pub sticky: bool,
    /// The swarm service name, resolvable on the proxy network.
    pub upstream: String,
    /// The host can never get a public certificate: the proxy's internal CA must serve it.
    pub internal_tls: bool,
}

/// Names that public CAs never certify.
const PRIVATE_SUFFIXES: &[&str] = &[".test", ".lan", ".home.arpa", ".internal", ".local", ".localhost"];

pub fn internal_tls(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.parse::<IpAddr>().is_ok()
        || host == "localhost"
        || PRIVATE_SUFFIXES.iter().any(|s| host.ends_with(s) || host == s.trim_start_matches('.'))
}

pub fn routes(inv: &Inventory) -> Vec<Route> {
    inv.stacks
        .iter()
        .flat_map(|s| {
            s.expose.iter().map(|e| Route {
                stack: s.name.clone(),
                service: e.service.clone(),
                host: e.host.clone(),
                port: e.port,
                sticky: e.sticky,
                upstream: format!("{}_{}", s.name, e.service),
                internal_tls: internal_tls(&e.host),
            })
        })
        .collect()
}

pub fn build(
    inv: &Inventory,
    stack: &Stack,
    vars: Map<String, Value>,
    secrets: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let all = routes(inv);
    let own: Vec<&Route> = all.iter().filter(|r| r.stack == stack.name).collect();
    let context = json!({
        "stack": stack.name,
        "cluster": inv.cluster,
        "vars": vars,
        "networks": stack.networks,
        "proxy_network": PROXY_NETWORK,
        "expose": own,
        "routes": all,
        "secrets": secrets,
        "configs": {},
    });
    match context {
        Value::Object(map) => map,
        _ => unreachable!("built from an object literal"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_that_public_cas_never_certify() {
        for host in [
            "10.0.0.5",
            "::1",
            "whoami.lab.test",
            "nas.home.arpa",
            "x.internal",
            "printer.local",
            "a.lan",
            "localhost",
        ] {
            assert!(super::internal_tls(host), "{host}");
        }
        for host in ["whoami.example.com", "testing.io", "local.example.org"] {
            assert!(!super::internal_tls(host), "{host}");
        }
    }
}
