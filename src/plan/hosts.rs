//! What each host's configuration depends on besides its own facts: the addresses its peers
//! reach it at, the firewall rules the cluster needs on it, the clients of the NAS's exports.
//! Pure: inventory and facts in, values out.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use crate::facts::Facts;
use crate::inventory::Inventory;

/// The ufw rules a host needs: on a node, the swarm's ports from every other node and 80/443
/// from anywhere where the proxy runs (the nodes its placement label picks, or all of them);
/// on the NAS, NFS (2049/tcp) from the nodes.
pub fn firewall_rules(inv: &Inventory, facts: &BTreeMap<String, Facts>, host: &str) -> Vec<String> {
    let mut rules = Vec::new();
    let swarm_node = inv.host(host).is_some_and(|h| h.is_swarm_node());
    let nfs_server = inv.nfs.as_ref().is_some_and(|n| n.server == host);
    for h in inv.hosts.iter().filter(|h| h.is_swarm_node() && h.name != host) {
        let addr = node_address(h, facts);
        if swarm_node {
            for port in ["2377/tcp", "7946/tcp", "7946/udp", "4789/udp"] {
                rules.push(format!("{port} {addr}"));
            }
            if uses_builtin(inv, "monitoring") {
                rules.push(format!("{ENGINE_METRICS_PORT}/tcp {addr}"));
            }
        }
        if nfs_server {
            rules.push(format!("2049/tcp {addr}"));
        }
    }
    if !swarm_node {
        return rules;
    }
    let proxies = inv.stacks.iter().filter(|s| {
        matches!(&s.template, crate::inventory::TemplateRef::Builtin(t) if t == "caddy" || t == "traefik")
    });
    let runs_proxy =
        proxies.into_iter().any(|s| match s.vars.get("placement_label").and_then(|v| v.as_str()) {
            Some(label) if !label.is_empty() => {
                inv.host(host).is_some_and(|h| h.labels.get(label).map(String::as_str) == Some("true"))
            }
            _ => true,
        });
    if runs_proxy {
        rules.extend(["80/tcp any".to_string(), "443/tcp any".to_string()]);
    }
    rules
}

/// The port the engines serve their metrics on when the monitoring stack scrapes them.
pub const ENGINE_METRICS_PORT: u16 = 9323;

/// Whether a stack of the inventory uses the built-in template `name`.
pub fn uses_builtin(inv: &Inventory, name: &str) -> bool {
    inv.stacks.iter().any(|s| matches!(&s.template, crate::inventory::TemplateRef::Builtin(t) if t == name))
}

/// Where `host`'s engine serves its Prometheus metrics (`metrics-addr` in daemon.json): the
/// inventory's `docker.metrics_address` when set; with the monitoring stack, the node's own
/// swarm address, so that the endpoint is reachable from the swarm's network and not on every
/// interface; otherwise nowhere.
pub fn engine_metrics_address(
    inv: &Inventory,
    facts: &BTreeMap<String, Facts>,
    host: &str,
) -> Option<String> {
    if let Some(address) = &inv.docker.metrics_address {
        return Some(address.clone());
    }
    let h = inv.host(host).filter(|h| h.is_swarm_node())?;
    if !uses_builtin(inv, "monitoring") {
        return None;
    }
    let address = node_address(h, facts);
    Some(match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{ENGINE_METRICS_PORT}"),
        _ => format!("{address}:{ENGINE_METRICS_PORT}"),
    })
}

pub fn node_address(h: &crate::inventory::Host, facts: &BTreeMap<String, Facts>) -> String {
    h.advertise_address
        .clone()
        .or_else(|| facts.get(&h.name).and_then(|f| f.route_addr.clone()))
        .unwrap_or_else(|| h.address.clone())
}

/// The addresses the swarm nodes reach the NAS from: only they may mount its exports. Each
/// must be an IP address (an exports line takes names and wildcards too, which would widen
/// a `rw,no_root_squash` export): a node known only by a DNS name needs `advertise_address`.
pub fn node_ips(inv: &Inventory, facts: &BTreeMap<String, Facts>) -> Result<Vec<std::net::IpAddr>> {
    let mut ips = Vec::new();
    for h in inv.hosts.iter().filter(|h| h.is_swarm_node()) {
        let addr = node_address(h, facts);
        ips.push(addr.parse().map_err(|_| {
            anyhow!(
                "the NFS exports need {}'s IP address, and `{addr}` is not one; set `advertise_address` for it",
                h.name
            )
        })?);
    }
    ips.sort();
    ips.dedup();
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn firewall_opens_swarm_ports_to_peers_proxy_ports_where_the_proxy_runs_nfs_on_the_nas() {
        let inv = Inventory::from_text(
            std::path::Path::new("/inv/f.yml"),
            "cluster: {name: f}\nhosts:\n\
             - {name: m1, address: 10.0.0.1, roles: [manager]}\n\
             - {name: w1, address: 10.0.0.2, labels: {edge: true}}\n\
             - {name: nas, address: 10.0.0.9, kind: nas}\n\
             storage: {nfs: {server: nas, path: /srv/c}}\n\
             stacks: [{name: proxy, template: caddy, vars: {placement_label: edge}}]\n",
        )
        .unwrap();
        let facts = BTreeMap::new();
        let m1 = firewall_rules(&inv, &facts, "m1");
        assert!(
            m1.contains(&"2377/tcp 10.0.0.2".to_string()) && m1.contains(&"4789/udp 10.0.0.2".to_string())
        );
        assert!(!m1.iter().any(|r| r.ends_with("10.0.0.1")), "no rule for itself: {m1:?}");
        assert!(!m1.iter().any(|r| r.starts_with("443/")), "the proxy is pinned to edge nodes: {m1:?}");
        let w1 = firewall_rules(&inv, &facts, "w1");
        assert!(w1.contains(&"443/tcp any".to_string()), "{w1:?}");
        let nas = firewall_rules(&inv, &facts, "nas");
        assert_eq!(nas, ["2049/tcp 10.0.0.1", "2049/tcp 10.0.0.2"]);
    }

    #[test]
    fn the_monitoring_stack_turns_on_each_engines_metrics_on_its_swarm_address() {
        let text = |stacks: &str| {
            format!(
                "cluster: {{name: f}}\nhosts:\n\
                 - {{name: m1, address: m1.lan, roles: [manager]}}\n\
                 - {{name: w1, address: 10.0.0.2, advertise_address: \"fd00::2\"}}\n\
                 - {{name: nas, address: 10.0.0.9, kind: nas}}\n{stacks}"
            )
        };
        let inv =
            |stacks: &str| Inventory::from_text(std::path::Path::new("/inv/f.yml"), &text(stacks)).unwrap();
        let facts: BTreeMap<String, Facts> =
            [("m1".to_string(), Facts { route_addr: Some("10.0.0.1".into()), ..Default::default() })].into();

        let plain = inv("");
        assert_eq!(engine_metrics_address(&plain, &facts, "m1"), None);
        assert!(!firewall_rules(&plain, &facts, "w1").iter().any(|r| r.starts_with("9323/")));

        let monitored = inv("stacks: [{name: mon, template: monitoring}]\n");
        assert_eq!(engine_metrics_address(&monitored, &facts, "m1").as_deref(), Some("10.0.0.1:9323"));
        assert_eq!(engine_metrics_address(&monitored, &facts, "w1").as_deref(), Some("[fd00::2]:9323"));
        assert_eq!(engine_metrics_address(&monitored, &facts, "nas"), None, "the NAS runs no engine");
        let w1 = firewall_rules(&monitored, &facts, "w1");
        assert!(w1.contains(&"9323/tcp 10.0.0.1".to_string()), "{w1:?}");

        let mut chosen = inv("stacks: [{name: mon, template: monitoring}]\n");
        chosen.docker.metrics_address = Some("127.0.0.1:9323".into());
        assert_eq!(engine_metrics_address(&chosen, &facts, "w1").as_deref(), Some("127.0.0.1:9323"));
    }
}
