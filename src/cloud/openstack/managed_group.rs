//! `openstack.manage_security_group: true`: a security group named `clusterup` that lets the
//! swarm talk (2377/tcp, 7946/tcp+udp, 4789/udp between its members, 22/tcp from the bastion),
//! attached to every node's port on the cluster's network. `plan` decides from what Neutron
//! showed (pure); `apply` makes only that difference, and is careful with what others may be
//! changing at the same time: a group made meanwhile is used rather than duplicated, a rule
//! that exists already (409) is fine, and a port is updated at the revision it was read at.

use std::net::IpAddr;

use hyper::Method;
use serde_json::{Value, json};

use super::compute::send;
use super::keystone::Session;
use super::network::{self, Rule, SecurityGroup, v2_url};
use super::security::{Member, protocol_number};
use crate::cloud::CloudError;
use crate::cloud::http::Http;

/// The managed group's name: one per project, shared by the clusters in it that ask for it.
pub const GROUP_NAME: &str = "clusterup";

/// Where a rule lets traffic in from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The members of the managed group itself.
    Members,
    /// An address prefix (the bastion's fixed address, /32 or /128).
    Prefix(String),
}

/// One ingress rule of the managed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRule {
    pub ethertype: &'static str,
    pub protocol: &'static str,
    pub port: u16,
    pub remote: Remote,
}

impl WantedRule {
    fn describe(&self) -> String {
        let from = match &self.remote {
            Remote::Members => format!("the members of `{GROUP_NAME}`"),
            Remote::Prefix(p) => p.clone(),
        };
        format!("{}/{} from {from}", self.port, self.protocol)
    }

    /// Whether an existing rule of the group (whose id is `group`) is this one.
    fn is(&self, rule: &Rule, group: &str) -> bool {
        rule.direction == "ingress"
            && rule.ethertype.as_deref().unwrap_or("IPv4") == self.ethertype
            && rule
                .protocol
                .as_deref()
                .is_some_and(|p| p == self.protocol || p == protocol_number(self.protocol))
            && rule.port_range_min == Some(self.port)
            && rule.port_range_max == Some(self.port)
            && match &self.remote {
                Remote::Members => rule.remote_group_id.as_deref() == Some(group),
                Remote::Prefix(p) => {
                    rule.remote_group_id.is_none() && rule.remote_ip_prefix.as_deref() == Some(p)
                }
            }
    }

    /// The rule as Neutron shows it once made in the group whose id is `group`.
    fn as_rule(&self, group: &str) -> Rule {
        Rule {
            direction: "ingress".into(),
            ethertype: Some(self.ethertype.into()),
            protocol: Some(self.protocol.into()),
            port_range_min: Some(self.port),
            port_range_max: Some(self.port),
            remote_ip_prefix: match &self.remote {
                Remote::Prefix(p) => Some(p.clone()),
                Remote::Members => None,
            },
            remote_group_id: (self.remote == Remote::Members).then(|| group.to_string()),
        }
    }

    fn body(&self, group: &str) -> Value {
        let mut rule = json!({
            "security_group_id": group, "direction": "ingress", "ethertype": self.ethertype,
            "protocol": self.protocol, "port_range_min": self.port, "port_range_max": self.port,
            "description": "clusterup: Docker Swarm",
        });
        match &self.remote {
            Remote::Members => rule["remote_group_id"] = json!(group),
            Remote::Prefix(p) => rule["remote_ip_prefix"] = json!(p),
        }
        json!({ "security_group_rule": rule })
    }
}

/// A node's port that lacks the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    pub server: String,
    pub port: String,
    pub address: IpAddr,
    /// The port's groups as read: the update keeps them.
    pub groups: Vec<String>,
    pub revision: Option<u64>,
}

/// What differs between the project and the managed group the cluster needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChange {
    /// The group's id; None: it does not exist and is created.
    pub group: Option<String>,
    pub rules: Vec<WantedRule>,
    pub attach: Vec<Attach>,
}

impl GroupChange {
    pub fn is_empty(&self) -> bool {
        self.group.is_some() && self.rules.is_empty() && self.attach.is_empty()
    }

    /// One line per change, in the order `apply` makes them.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.group.is_none() {
            lines.push(format!("create security group `{GROUP_NAME}`"));
        }
        lines.extend(
            self.rules.iter().map(|r| format!("allow {} in security group `{GROUP_NAME}`", r.describe())),
        );
        lines.extend(self.attach.iter().map(|a| {
            format!("add security group `{GROUP_NAME}` to {}'s port {} ({})", a.server, a.port, a.address)
        }));
        lines
    }

    /// The groups as they will be once the change is made, and the nodes with their ports in
    /// it: what the security check then sees.
    pub fn simulate(&self, nodes: &mut [Member], groups: &mut Vec<SecurityGroup>, bastion: Option<&Member>) {
        let id = self.group.clone().unwrap_or_else(|| format!("({GROUP_NAME})"));
        let rules: Vec<Rule> = wanted(nodes, bastion).iter().map(|w| w.as_rule(&id)).collect();
        match groups.iter_mut().find(|g| g.id == id) {
            Some(group) => group.security_group_rules.extend(rules),
            None => groups.push(SecurityGroup {
                id: id.clone(),
                name: GROUP_NAME.into(),
                security_group_rules: rules,
            }),
        }
        for node in nodes.iter_mut().filter(|n| n.port.is_some() && n.filtered && !n.groups.contains(&id)) {
            node.groups.push(id.clone());
        }
    }
}

/// The rules the cluster needs in the managed group.
pub fn wanted(nodes: &[Member], bastion: Option<&Member>) -> Vec<WantedRule> {
    let ethertype = if nodes.first().is_none_or(|n| n.address.is_ipv4()) { "IPv4" } else { "IPv6" };
    let mut rules: Vec<WantedRule> = [(2377, "tcp"), (7946, "tcp"), (7946, "udp"), (4789, "udp")]
        .into_iter()
        .map(|(port, protocol)| WantedRule { ethertype, protocol, port, remote: Remote::Members })
        .collect();
    if let Some(b) = bastion {
        let bits = if b.address.is_ipv4() { 32 } else { 128 };
        let ethertype = if b.address.is_ipv4() { "IPv4" } else { "IPv6" };
        rules.push(WantedRule {
            ethertype,
            protocol: "tcp",
            port: 22,
            remote: Remote::Prefix(format!("{}/{bits}", b.address)),
        });
    }
    rules
}

/// The difference between the project's groups and what the nodes need. A node whose port has
/// port security off needs no group (and Neutron refuses one there); one without a port found
/// is left out (the discovery warns about it).
pub fn plan(
    nodes: &[Member],
    bastion: Option<&Member>,
    groups: &[SecurityGroup],
) -> Result<GroupChange, String> {
    let named: Vec<&SecurityGroup> = groups.iter().filter(|g| g.name == GROUP_NAME).collect();
    if named.len() > 1 {
        let ids: Vec<&str> = named.iter().map(|g| g.id.as_str()).collect();
        return Err(format!(
            "openstack: {} security groups are named `{GROUP_NAME}` ({}): delete all but one \
             (openstack security group delete ID)",
            named.len(),
            ids.join(", ")
        ));
    }
    let existing = named.first();
    let rules = wanted(nodes, bastion)
        .into_iter()
        .filter(|w| !existing.is_some_and(|g| g.security_group_rules.iter().any(|r| w.is(r, &g.id))))
        .collect();
    let attach = nodes
        .iter()
        .filter(|n| n.filtered)
        .filter(|n| existing.is_none_or(|g| !n.groups.contains(&g.id)))
        .filter_map(|n| {
            n.port.as_ref().map(|(port, revision)| Attach {
                server: n.name.clone(),
                port: port.clone(),
                address: n.address,
                groups: n.groups.clone(),
                revision: *revision,
            })
        })
        .collect();
    Ok(GroupChange { group: existing.map(|g| g.id.clone()), rules, attach })
}

/// Makes the change; `done` gets what was done, one line each as `describe` words it, also
/// when a later step fails.
pub async fn apply(
    http: &Http,
    session: &Session,
    network_url: &str,
    change: &GroupChange,
    done: &mut Vec<String>,
) -> Result<(), CloudError> {
    let root = v2_url(network_url);
    let group = match &change.group {
        Some(id) => id.clone(),
        None => {
            // Another run may have made it since the plan: use it rather than make a second.
            let groups = network::security_groups(http, session, network_url).await?;
            match groups.iter().find(|g| g.name == GROUP_NAME) {
                Some(g) => g.id.clone(),
                None => {
                    let body = json!({"security_group": {"name": GROUP_NAME,
                        "description": "clusterup: what Docker Swarm needs between the nodes, and SSH from the bastion"}});
                    let url = format!("{root}/security-groups");
                    let made = send(http, session, Method::POST, &url, &[], &body, &[]).await?;
                    let id =
                        made.as_ref().and_then(|v| v.pointer("/security_group/id")).and_then(Value::as_str);
                    let Some(id) = id else {
                        return Err(CloudError::failed(format!(
                            "openstack: POST {url}: the answer names no security group id"
                        )));
                    };
                    done.push(format!("create security group `{GROUP_NAME}`"));
                    id.to_string()
                }
            }
        }
    };
    for rule in &change.rules {
        let url = format!("{root}/security-group-rules");
        // 409: the rule exists already (made by another run since the plan).
        send(http, session, Method::POST, &url, &[], &rule.body(&group), &[409]).await?;
        done.push(format!("allow {} in security group `{GROUP_NAME}`", rule.describe()));
    }
    for port in &change.attach {
        let mut groups = port.groups.clone();
        if !groups.contains(&group) {
            groups.push(group.clone());
        }
        let url = format!("{root}/ports/{}", port.port);
        let revision = port.revision.map(|r| format!("revision_number={r}"));
        let headers: Vec<(&'static str, &str)> = revision.iter().map(|r| ("If-Match", r.as_str())).collect();
        let body = json!({"port": {"security_groups": groups}});
        if send(http, session, Method::PUT, &url, &headers, &body, &[412]).await?.is_none() {
            return Err(CloudError::failed(format!(
                "openstack: {}'s port {} changed since clusterup read it (HTTP 412), so its security groups were \
                 left as they are: run again",
                port.server, port.port
            )));
        }
        done.push(format!(
            "add security group `{GROUP_NAME}` to {}'s port {} ({})",
            port.server, port.port, port.address
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, addr: &str, groups: &[&str]) -> Member {
        Member {
            name: name.into(),
            address: addr.parse().unwrap(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            filtered: true,
            manager: name.starts_with('m'),
            port: Some((format!("p-{name}"), Some(3))),
        }
    }

    fn ingress(protocol: &str, (low, high): (u16, u16), from_group: &str) -> Rule {
        Rule {
            direction: "ingress".into(),
            ethertype: Some("IPv4".into()),
            protocol: Some(protocol.into()),
            port_range_min: Some(low),
            port_range_max: Some(high),
            remote_group_id: Some(from_group.into()),
            remote_ip_prefix: None,
        }
    }

    #[test]
    fn a_project_without_the_group_gets_it_with_every_rule_and_every_port() {
        let nodes = [node("m1", "10.0.0.11", &["default"]), node("w1", "10.0.0.21", &["default"])];
        let bastion = node("bastion", "10.0.0.5", &["default"]);
        let change = plan(&nodes, Some(&bastion), &[]).unwrap();
        assert_eq!(change.group, None);
        assert_eq!(
            change.describe(),
            [
                "create security group `clusterup`",
                "allow 2377/tcp from the members of `clusterup` in security group `clusterup`",
                "allow 7946/tcp from the members of `clusterup` in security group `clusterup`",
                "allow 7946/udp from the members of `clusterup` in security group `clusterup`",
                "allow 4789/udp from the members of `clusterup` in security group `clusterup`",
                "allow 22/tcp from 10.0.0.5/32 in security group `clusterup`",
                "add security group `clusterup` to m1's port p-m1 (10.0.0.11)",
                "add security group `clusterup` to w1's port p-w1 (10.0.0.21)",
            ]
        );
        assert_eq!(change.attach[0].groups, ["default"], "the port keeps its groups");
        assert_eq!(change.attach[0].revision, Some(3));
    }

    #[test]
    fn once_made_the_change_is_empty_and_the_check_is_satisfied() {
        let mut nodes = vec![node("m1", "10.0.0.11", &["default"]), node("w1", "10.0.0.21", &[])];
        let bastion = node("bastion", "10.0.0.5", &["default"]);
        let mut groups = vec![SecurityGroup {
            id: "default".into(),
            name: "default".into(),
            security_group_rules: vec![],
        }];
        let before = super::super::security::missing_rules(&nodes, Some(&bastion), &groups);
        assert!(!before.is_empty());
        let change = plan(&nodes, Some(&bastion), &groups).unwrap();
        change.simulate(&mut nodes, &mut groups, Some(&bastion));
        assert_eq!(
            super::super::security::missing_rules(&nodes, Some(&bastion), &groups),
            Vec::<String>::new()
        );
        // As Neutron then shows it, with the group's real id.
        for g in &mut groups {
            if g.name == GROUP_NAME {
                g.id = "sg-c".into();
                for r in &mut g.security_group_rules {
                    if r.remote_group_id.is_some() {
                        r.remote_group_id = Some("sg-c".into());
                    }
                }
            }
        }
        for n in &mut nodes {
            n.groups.iter_mut().filter(|g| g.starts_with('(')).for_each(|g| *g = "sg-c".into());
        }
        let again = plan(&nodes, Some(&bastion), &groups).unwrap();
        assert!(again.is_empty(), "{:?}", again.describe());
    }

    #[test]
    fn only_what_is_missing_is_added_and_unfiltered_ports_are_left_alone() {
        let mut open = node("w2", "10.0.0.22", &[]);
        open.filtered = false;
        let nodes = [node("m1", "10.0.0.11", &["sg-c"]), node("w1", "10.0.0.21", &["default"]), open];
        let group = SecurityGroup {
            id: "sg-c".into(),
            name: GROUP_NAME.into(),
            security_group_rules: vec![
                ingress("6", (2377, 2377), "sg-c"),
                // Wider than wanted is not the rule clusterup keeps: it adds its own.
                ingress("udp", (4000, 5000), "sg-c"),
            ],
        };
        let change = plan(&nodes, None, &[group]).unwrap();
        assert_eq!(change.group.as_deref(), Some("sg-c"));
        let ports: Vec<&str> = change.rules.iter().map(|r| r.protocol).collect();
        assert_eq!(ports, ["tcp", "udp", "udp"]);
        assert_eq!(change.attach.iter().map(|a| a.server.as_str()).collect::<Vec<_>>(), ["w1"]);
    }

    #[test]
    fn two_groups_of_that_name_are_refused() {
        let group =
            |id: &str| SecurityGroup { id: id.into(), name: GROUP_NAME.into(), security_group_rules: vec![] };
        let error = plan(&[node("m1", "10.0.0.11", &[])], None, &[group("a"), group("b")]).unwrap_err();
        assert!(error.contains("2 security groups are named `clusterup` (a, b)"), "{error}");
    }
}
