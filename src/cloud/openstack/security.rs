//! Whether the security groups let the swarm talk: 2377/tcp to managers, 7946/tcp+udp and
//! 4789/udp between all nodes, 22/tcp from the bastion. Pure: ports and groups as Neutron gave
//! them, each missing rule reported with the command that adds it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::network::{Rule, SecurityGroup};

/// A server's port on the cluster's network.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub address: IpAddr,
    /// Security group ids of the port.
    pub groups: Vec<String>,
    /// False when the port has port security off: nothing is filtered.
    pub filtered: bool,
    pub manager: bool,
    /// The port's id and Neutron revision, once found.
    pub port: Option<(String, Option<u64>)>,
}

/// What the swarm needs a node to accept, and from whom.
const SWARM: [(u16, &str, bool); 4] =
    [(2377, "tcp", true), (7946, "tcp", false), (7946, "udp", false), (4789, "udp", false)];

/// One line per missing rule: `SERVER: ... ; add: openstack security group rule create ...`.
pub fn missing_rules(nodes: &[Member], bastion: Option<&Member>, groups: &[SecurityGroup]) -> Vec<String> {
    let by_id: BTreeMap<&str, &SecurityGroup> = groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let name_of = |id: &str| by_id.get(id).map_or(id.to_string(), |g| g.name.clone());
    let mut findings = Vec::new();
    for target in nodes.iter().filter(|n| n.filtered) {
        let Some(first) = target.groups.first() else {
            findings.push(format!(
                "{}: its port on the cluster network has no security group, so it accepts nothing: add one \
                 (openstack port set --security-group GROUP PORT)",
                target.name
            ));
            continue;
        };
        let rules: Vec<&Rule> = target
            .groups
            .iter()
            .filter_map(|g| by_id.get(g.as_str()))
            .flat_map(|g| &g.security_group_rules)
            .collect();
        let mut needs: Vec<(u16, &str, Vec<&Member>)> = Vec::new();
        for (port, protocol, managers_only) in SWARM {
            if managers_only && !target.manager {
                continue;
            }
            let peers: Vec<&Member> = nodes.iter().filter(|p| p.name != target.name).collect();
            needs.push((port, protocol, peers));
        }
        if let Some(b) = bastion {
            needs.push((22, "tcp", vec![b]));
        }
        for (port, protocol, peers) in needs {
            let missing: Vec<&Member> =
                peers.into_iter().filter(|p| !rules.iter().any(|r| allows(r, protocol, port, p))).collect();
            if missing.is_empty() {
                continue;
            }
            let names: Vec<&str> = missing.iter().map(|p| p.name.as_str()).collect();
            // A group every node's port is in lets one rule cover them all.
            let shared = nodes
                .iter()
                .map(|n| &n.groups)
                .fold(None::<Vec<String>>, |acc, g| {
                    Some(acc.map_or_else(|| g.clone(), |a| a.into_iter().filter(|x| g.contains(x)).collect()))
                })
                .and_then(|common| common.into_iter().next());
            let family = if missing[0].address.is_ipv4() { "IPv4" } else { "IPv6" };
            let base = format!(
                "openstack security group rule create --ingress --ethertype {family} --protocol {protocol} --dst-port {port}"
            );
            let commands: Vec<String> = match shared {
                Some(group) if port != 22 => {
                    vec![format!("{base} --remote-group {} {}", name_of(&group), name_of(first))]
                }
                _ => missing
                    .iter()
                    .map(|p| {
                        let bits = if p.address.is_ipv4() { 32 } else { 128 };
                        format!("{base} --remote-ip {}/{bits} {}", p.address, name_of(first))
                    })
                    .collect(),
            };
            findings.push(format!(
                "{}: its security groups ({}) do not allow {port}/{protocol} from {}; add: {}",
                target.name,
                target.groups.iter().map(|g| name_of(g)).collect::<Vec<_>>().join(", "),
                names.join(", "),
                commands.join(" ; ")
            ));
        }
    }
    findings
}

/// Whether `rule` lets `protocol`/`port` in from `peer`.
pub fn allows(rule: &Rule, protocol: &str, port: u16, peer: &Member) -> bool {
    if rule.direction != "ingress" {
        return false;
    }
    let family = if peer.address.is_ipv4() { "IPv4" } else { "IPv6" };
    if rule.ethertype.as_deref().is_some_and(|e| e != family) {
        return false;
    }
    if let Some(p) = rule.protocol.as_deref()
        && !(p == protocol || p == protocol_number(protocol) || p == "any")
    {
        return false;
    }
    let low = rule.port_range_min.unwrap_or(1);
    let high = rule.port_range_max.unwrap_or(if rule.port_range_min.is_some() { low } else { u16::MAX });
    if !(low..=high).contains(&port) {
        return false;
    }
    match (&rule.remote_group_id, &rule.remote_ip_prefix) {
        (Some(group), _) => peer.groups.contains(group),
        (None, Some(prefix)) => cidr_contains(prefix, peer.address),
        (None, None) => true,
    }
}

/// The IP protocol number Neutron may give instead of the name (`tcp` or `udp`).
pub fn protocol_number(protocol: &str) -> &'static str {
    if protocol == "tcp" { "6" } else { "17" }
}

/// `10.0.0.0/24` (or a plain address) contains `ip`.
pub fn cidr_contains(prefix: &str, ip: IpAddr) -> bool {
    let (net, bits) = match prefix.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (prefix, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else { return false };
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let host_bits = width - bits.unwrap_or(width).min(width);
    host_bits >= 128 || (net >> host_bits) == (ip >> host_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, addr: &str, groups: &[&str], manager: bool) -> Member {
        Member {
            name: name.into(),
            address: addr.parse().unwrap(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            filtered: true,
            manager,
            port: None,
        }
    }

    fn rule(
        protocol: Option<&str>,
        ports: Option<(u16, u16)>,
        remote_ip: Option<&str>,
        remote_group: Option<&str>,
    ) -> Rule {
        Rule {
            direction: "ingress".into(),
            ethertype: Some("IPv4".into()),
            protocol: protocol.map(str::to_string),
            port_range_min: ports.map(|p| p.0),
            port_range_max: ports.map(|p| p.1),
            remote_ip_prefix: remote_ip.map(str::to_string),
            remote_group_id: remote_group.map(str::to_string),
        }
    }

    #[test]
    fn prefixes_contain_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/24", ip("10.0.0.77")));
        assert!(!cidr_contains("10.0.0.0/24", ip("10.0.1.1")));
        assert!(cidr_contains("0.0.0.0/0", ip("192.0.2.1")));
        assert!(cidr_contains("10.0.0.5", ip("10.0.0.5")));
        assert!(cidr_contains("10.0.0.5/32", ip("10.0.0.5")));
        assert!(!cidr_contains("10.0.0.0/8", ip("fd00::1")));
        assert!(cidr_contains("fd00::/8", ip("fd00::1")));
        assert!(!cidr_contains("fd00::/16", ip("fe00::1")));
    }

    #[test]
    fn rules_match_protocol_port_and_remote() {
        let peer = member("w1", "10.0.0.21", &["sg-swarm"], false);
        assert!(allows(&rule(Some("udp"), Some((4789, 4789)), None, Some("sg-swarm")), "udp", 4789, &peer));
        assert!(!allows(&rule(Some("tcp"), Some((4789, 4789)), None, Some("sg-swarm")), "udp", 4789, &peer));
        assert!(!allows(&rule(Some("udp"), Some((4789, 4789)), None, Some("sg-other")), "udp", 4789, &peer));
        assert!(allows(&rule(Some("17"), Some((4000, 5000)), Some("10.0.0.0/24"), None), "udp", 4789, &peer));
        assert!(allows(&rule(None, None, None, None), "tcp", 2377, &peer));
        let mut egress = rule(None, None, None, None);
        egress.direction = "egress".into();
        assert!(!allows(&egress, "tcp", 2377, &peer));
    }

    #[test]
    fn missing_rules_are_reported_with_the_command_to_add() {
        let nodes = [member("m1", "10.0.0.11", &["sg1"], true), member("w1", "10.0.0.21", &["sg1"], false)];
        let bastion = member("bastion", "10.0.0.5", &["sg-b"], false);
        let groups = [SecurityGroup {
            id: "sg1".into(),
            name: "swarm".into(),
            security_group_rules: vec![
                rule(Some("tcp"), Some((2377, 2377)), None, Some("sg1")),
                rule(Some("tcp"), Some((7946, 7946)), None, Some("sg1")),
                rule(Some("udp"), Some((7946, 7946)), Some("10.0.0.0/24"), None),
                rule(Some("tcp"), Some((22, 22)), Some("10.0.0.5/32"), None),
            ],
        }];
        let findings = missing_rules(&nodes, Some(&bastion), &groups);
        assert_eq!(
            findings,
            [
                "m1: its security groups (swarm) do not allow 4789/udp from w1; add: openstack security group rule \
                 create --ingress --ethertype IPv4 --protocol udp --dst-port 4789 --remote-group swarm swarm",
                "w1: its security groups (swarm) do not allow 4789/udp from m1; add: openstack security group rule \
                 create --ingress --ethertype IPv4 --protocol udp --dst-port 4789 --remote-group swarm swarm",
            ]
        );
        let open = SecurityGroup {
            id: "sg1".into(),
            name: "swarm".into(),
            security_group_rules: vec![rule(None, None, None, None)],
        };
        assert!(missing_rules(&nodes, Some(&bastion), &[open]).is_empty());
        let none = missing_rules(&nodes, Some(&bastion), &[]);
        assert!(none.iter().any(|f| f.starts_with("m1: ") && f.contains("2377/tcp from w1")), "{none:?}");
        assert!(
            none.iter().any(|f| f.contains("22/tcp from bastion") && f.contains("--remote-ip 10.0.0.5/32")),
            "{none:?}"
        );
        assert!(
            !none.iter().any(|f| f.starts_with("w1: ") && f.contains("2377")),
            "workers need no 2377: {none:?}"
        );
    }
}
