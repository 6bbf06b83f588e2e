//! What a template sees (documented in templates/README.md).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::facts::Facts;
use crate::inventory::{Inventory, PROXY_NETWORK, Stack};

/// A swarm node as templates see it (`nodes`): what a per-node scrape or rule needs.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    /// The address the other nodes reach it at: `advertise_address`, else the address facts
    /// found on its default route, else (offline) the inventory's `address`.
    pub address: String,
    pub manager: bool,
}

/// The inventory's swarm nodes, their addresses from facts where there are any.
pub fn nodes(inv: &Inventory, facts: &BTreeMap<String, Facts>) -> Vec<Node> {
    inv.hosts
        .iter()
        .filter(|h| h.is_swarm_node())
        .map(|h| Node {
            name: h.name.clone(),
            address: crate::plan::hosts::node_address(h, facts),
            manager: h.is_manager(),
        })
        .collect()
}

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
    nodes: &[Node],
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
        "nodes": nodes,
        "monitoring": monitoring(inv),
        "configs": {},
    });
    match context {
        Value::Object(map) => map,
        _ => unreachable!("built from an object literal"),
    }
}

/// The inventory's monitoring stack as other templates see it (`monitoring`, null without
/// one): where ShinyProxy sends its usage statistics, with which user and secret.
fn monitoring(inv: &Inventory) -> Value {
    let stack = inv
        .stacks
        .iter()
        .find(|s| matches!(&s.template, crate::inventory::TemplateRef::Builtin(t) if t == "monitoring"));
    let Some(stack) = stack else { return Value::Null };
    let defaults = super::builtin("monitoring").map(|t| t.defaults).unwrap_or_default();
    let var = |key: &str| stack.vars.get(key).or_else(|| defaults.get(key)).cloned().unwrap_or(Value::Null);
    json!({
        "stack": stack.name,
        "network": var("network"),
        "influxdb_url": format!("http://{}_influxdb:8086/write?db=shinyproxy_usagestats", stack.name),
        "user": var("influxdb_user"),
        "password_secret": var("influxdb_user_secret"),
    })
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
