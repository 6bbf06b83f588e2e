//! Cluster objects planning: which overlay networks to create (and which drifted), which
//! secrets to create, which stacks to deploy. Pure: desired and observed state in, steps out.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::Network;

/// VXLAN's overhead: an overlay's MTU is the underlay's minus this.
pub const VXLAN_OVERHEAD: u32 = 50;

/// What a manager's engine shows of the objects clusterup manages (`engine::objects::observe`).
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub networks: Vec<ObservedNetwork>,
    pub secrets: BTreeSet<String>,
    pub stacks: BTreeSet<String>,
    /// Stack -> digest of what clusterup last deployed.
    pub deployed: BTreeMap<String, String>,
    /// Secrets some service mounts.
    pub secrets_used: BTreeSet<String>,
    /// Networks (ids or names) some service is attached to.
    pub networks_used: BTreeSet<String>,
    /// The key secret names are made with (hex), once the cluster has one.
    pub key: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub attachable: bool,
    pub options: Option<BTreeMap<String, String>>,
}

/// The MTU a network gets: the inventory's, or the smallest node MTU minus VXLAN's overhead
/// (so an OpenStack underlay of 1450 gives 1400 without anyone knowing the pitfall).
pub fn network_mtu(network: &Network, node_mtus: &[u32]) -> u32 {
    network.mtu.unwrap_or_else(|| node_mtus.iter().copied().min().unwrap_or(1500) - VXLAN_OVERHEAD)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCreate {
    pub name: String,
    pub encrypted: bool,
    pub mtu: u32,
    /// An existing network of that name with other options, which no service uses, is
    /// removed first (`init --recreate-networks`).
    pub recreate: bool,
}

/// Networks to create, and a message for each existing one whose options differ.
pub fn plan_networks(
    wanted: &[Network],
    node_mtus: &[u32],
    observed: &Observed,
    recreate: bool,
) -> (Vec<NetworkCreate>, Vec<String>) {
    let mut create = Vec::new();
    let mut drift = Vec::new();
    for network in wanted {
        let mtu = network_mtu(network, node_mtus);
        let Some(existing) = observed.networks.iter().find(|n| n.name == network.name) else {
            create.push(NetworkCreate {
                name: network.name.clone(),
                encrypted: network.encrypted,
                mtu,
                recreate: false,
            });
            continue;
        };
        let options = existing.options.clone().unwrap_or_default();
        let mut differences = Vec::new();
        let encrypted = options.contains_key("encrypted");
        if encrypted != network.encrypted {
            differences.push(format!("encrypted: inventory {}, swarm {encrypted}", network.encrypted));
        }
        let existing_mtu = options.get("com.docker.network.driver.mtu").and_then(|m| m.parse::<u32>().ok());
        match existing_mtu {
            Some(m) if m != mtu => differences.push(format!("mtu: inventory {mtu}, swarm {m}")),
            None if network.mtu.is_some() => {
                differences.push(format!("mtu: inventory {mtu}, swarm the engine default"))
            }
            _ => {}
        }
        if !existing.attachable {
            differences.push("attachable: inventory true, swarm false".into());
        }
        if differences.is_empty() {
            continue;
        }
        let used =
            observed.networks_used.contains(&existing.id) || observed.networks_used.contains(&existing.name);
        if recreate && !used {
            create.push(NetworkCreate {
                name: network.name.clone(),
                encrypted: network.encrypted,
                mtu,
                recreate: true,
            });
        } else {
            let hint = if used {
                "services use it: remove them (or their stacks) first, then `init --recreate-networks`"
            } else {
                "`init --recreate-networks` removes and creates it again, since no service uses it"
            };
            drift.push(format!(
                "network {} differs from the inventory ({}); left as it is: {hint}",
                network.name,
                differences.join("; ")
            ));
        }
    }
    (create, drift)
}

/// What goes away: stacks marked absent (or, with `prune`, no longer in the inventory though
/// clusterup deployed them), and old versions of the inventory's secrets no service uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// (stack, why)
    pub stacks: Vec<(String, &'static str)>,
    pub secrets: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn plan_cleanup(
    present: &[&str],
    absent: &[String],
    secret_names: &BTreeMap<String, String>,
    observed: &Observed,
    prune: bool,
) -> Cleanup {
    let mut out = Cleanup::default();
    for stack in absent {
        if observed.stacks.contains(stack) || observed.deployed.contains_key(stack) {
            out.stacks.push((stack.clone(), "marked absent"));
        }
    }
    for stack in observed.deployed.keys() {
        if present.contains(&stack.as_str()) || absent.contains(stack) {
            continue;
        }
        if prune {
            out.stacks.push((stack.clone(), "no longer in the inventory"));
        } else {
            out.warnings.push(format!(
                "stack {stack} was deployed by clusterup and is no longer in the inventory; it keeps running. \
                 Mark it `state: absent`, or run `init --prune-stacks`, to remove it"
            ));
        }
    }
    // `NAME_<8 hex>`: a version clusterup made of the inventory secret NAME.
    for (logical, current) in secret_names {
        let prefix = format!("{logical}_");
        for existing in &observed.secrets {
            let version = existing.strip_prefix(&prefix).unwrap_or_default();
            let ours = version.len() == 8 && version.chars().all(|c| c.is_ascii_hexdigit());
            if ours && existing != current && !observed.secrets_used.contains(existing) {
                out.secrets.push(existing.clone());
            }
        }
    }
    out
}

/// A stack is deployed when it is new, gone, changed, or `force`d.
pub fn needs_deploy(stack: &str, sha256: &str, observed: &Observed, force: bool) -> Option<&'static str> {
    if force {
        Some("forced")
    } else if !observed.stacks.contains(stack) {
        Some("not deployed")
    } else if observed.deployed.get(stack).map(String::as_str) != Some(sha256) {
        Some("changed")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observation written as one fact per line (`network JSON`, `secret NAME`, `stack NAME`,
    /// `deployed STACK SHA`, `secret-used NAME`, `network-used ID`), for short fixtures.
    fn observed(text: &str) -> Observed {
        let mut o = Observed::default();
        for line in text.lines() {
            let (kind, rest) = line.split_once(' ').unwrap();
            let rest = rest.to_string();
            match kind {
                "network" => {
                    let n: serde_json::Value = serde_json::from_str(&rest).unwrap();
                    let options = n["Options"].as_object().map(|m| {
                        m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
                    });
                    o.networks.push(ObservedNetwork {
                        id: n["Id"].as_str().unwrap_or_default().into(),
                        name: n["Name"].as_str().unwrap().into(),
                        attachable: n["Attachable"].as_bool().unwrap_or(false),
                        options,
                    });
                }
                "secret" => drop(o.secrets.insert(rest)),
                "stack" => drop(o.stacks.insert(rest)),
                "secret-used" => drop(o.secrets_used.insert(rest)),
                "network-used" => drop(o.networks_used.insert(rest)),
                "deployed" => {
                    let (stack, sha) = rest.split_once(' ').unwrap();
                    o.deployed.insert(stack.into(), sha.into());
                }
                other => panic!("unknown fact {other}"),
            }
        }
        o
    }

    fn net(name: &str, encrypted: bool, mtu: Option<u32>) -> Network {
        Network { name: name.into(), encrypted, mtu, line: 1 }
    }

    #[test]
    fn default_mtu_is_the_smallest_node_mtu_minus_vxlan() {
        assert_eq!(network_mtu(&net("a", false, None), &[1500, 1450, 9000]), 1400);
        assert_eq!(network_mtu(&net("a", false, Some(1300)), &[1500]), 1300);
        assert_eq!(network_mtu(&net("a", false, None), &[]), 1450);
    }

    #[test]
    fn missing_networks_are_created_and_differing_ones_reported_not_touched() {
        let o = observed(
            "network {\"Name\":\"database\",\"Attachable\":true,\"Options\":{\"com.docker.network.driver.mtu\":\"1450\"}}\n\
             network {\"Name\":\"reverse-proxy\",\"Attachable\":true,\"Options\":{\"com.docker.network.driver.mtu\":\"1450\"}}\n",
        );
        let wanted = [
            net("reverse-proxy", false, None),
            net("database", true, None),
            net("object-store", false, Some(1400)),
        ];
        let (create, drift) = plan_networks(&wanted, &[1500], &o, false);
        assert_eq!(
            create,
            vec![NetworkCreate { name: "object-store".into(), encrypted: false, mtu: 1400, recreate: false }]
        );
        assert_eq!(drift.len(), 1);
        assert!(
            drift[0].contains("network database")
                && drift[0].contains("encrypted: inventory true, swarm false"),
            "{}",
            drift[0]
        );
    }

    #[test]
    fn a_drifted_network_is_recreated_only_when_asked_and_unused() {
        let text = "network {\"Id\":\"n1\",\"Name\":\"database\",\"Attachable\":true,\"Options\":{\"com.docker.network.driver.mtu\":\"1450\"}}\n";
        let wanted = [net("database", true, None)];
        let (create, drift) = plan_networks(&wanted, &[1500], &observed(text), true);
        assert_eq!(
            create,
            vec![NetworkCreate { name: "database".into(), encrypted: true, mtu: 1450, recreate: true }]
        );
        assert!(drift.is_empty());
        let used = format!("{text}network-used n1\n");
        let (create, drift) = plan_networks(&wanted, &[1500], &observed(&used), true);
        assert!(create.is_empty());
        assert!(drift[0].contains("services use it"), "{drift:?}");
        let (create, drift) = plan_networks(&wanted, &[1500], &observed(text), false);
        assert!(create.is_empty() && drift[0].contains("--recreate-networks"), "{drift:?}");
    }

    #[test]
    fn absent_and_pruned_stacks_and_unused_old_secret_versions_go() {
        let o = observed(
            "stack app\nstack old\nstack gone\nstack manual\ndeployed app a\ndeployed old b\ndeployed gone c\n\
             secret pg_00000001\nsecret pg_00000002\nsecret pg_00000003\nsecret pg_extra\nsecret other_00000001\n\
             secret-used pg_00000002\n",
        );
        let names: BTreeMap<String, String> = [("pg".to_string(), "pg_00000003".to_string())].into();
        let c = plan_cleanup(&["app"], &["old".to_string()], &names, &o, false);
        assert_eq!(c.stacks, vec![("old".to_string(), "marked absent")]);
        assert_eq!(c.secrets, ["pg_00000001"], "the current one, one in use, and others' stay");
        assert_eq!(c.warnings.len(), 1, "gone is reported, not removed: {:?}", c.warnings);
        assert!(c.warnings[0].contains("stack gone"), "{:?}", c.warnings);
        let c = plan_cleanup(&["app"], &["old".to_string()], &names, &o, true);
        assert_eq!(
            c.stacks,
            vec![("old".to_string(), "marked absent"), ("gone".to_string(), "no longer in the inventory")],
            "a stack clusterup never deployed (manual) is never pruned"
        );
    }

    #[test]
    fn stacks_deploy_only_when_new_gone_changed_or_forced() {
        let o = observed("stack app\ndeployed app aaa\ndeployed gone bbb\n");
        assert_eq!(needs_deploy("app", "aaa", &o, false), None);
        assert_eq!(needs_deploy("app", "aaa", &o, true), Some("forced"));
        assert_eq!(needs_deploy("app", "ccc", &o, false), Some("changed"));
        assert_eq!(needs_deploy("gone", "bbb", &o, false), Some("not deployed"));
        assert_eq!(needs_deploy("new", "x", &o, false), Some("not deployed"));
    }
}
