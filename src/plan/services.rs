//! Cluster objects planning: which overlay networks to create (and which drifted), which
//! secrets to create, which stacks to deploy. Pure: desired and observed state in, steps out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::inventory::Network;

/// VXLAN's overhead: an overlay's MTU is the underlay's minus this.
pub const VXLAN_OVERHEAD: u32 = 50;

/// What the managers report (see roles/stacks/observe.sh).
#[derive(Debug, Default, Clone)]
pub struct Observed {
    pub networks: Vec<ObservedNetwork>,
    pub secrets: BTreeSet<String>,
    pub stacks: BTreeSet<String>,
    /// Stack -> digest of what clusterup last deployed.
    pub deployed: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObservedNetwork {
    pub name: String,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

impl Observed {
    pub fn parse(text: &str) -> Result<Observed, String> {
        let mut observed = Observed::default();
        for line in text.lines() {
            let Some((kind, rest)) = line.split_once(' ') else {
                continue;
            };
            match kind {
                "network" => observed
                    .networks
                    .push(serde_json::from_str(rest).map_err(|e| format!("cannot read a network: {e}"))?),
                "secret" => {
                    observed.secrets.insert(rest.to_string());
                }
                "stack" => {
                    observed.stacks.insert(rest.to_string());
                }
                "deployed" => {
                    if let Some((stack, sha)) = rest.split_once(' ') {
                        observed.deployed.insert(stack.to_string(), sha.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(observed)
    }
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
}

/// Networks to create, and a message for each existing one whose options differ.
pub fn plan_networks(
    wanted: &[Network],
    node_mtus: &[u32],
    observed: &Observed,
) -> (Vec<NetworkCreate>, Vec<String>) {
    let mut create = Vec::new();
    let mut drift = Vec::new();
    for network in wanted {
        let mtu = network_mtu(network, node_mtus);
        let Some(existing) = observed.networks.iter().find(|n| n.name == network.name) else {
            create.push(NetworkCreate { name: network.name.clone(), encrypted: network.encrypted, mtu });
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
        if !differences.is_empty() {
            drift.push(format!(
                "network {} differs from the inventory ({}); it is left as it is: remove it once no service uses it, and re-run",
                network.name,
                differences.join("; ")
            ));
        }
    }
    (create, drift)
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

    fn observed(text: &str) -> Observed {
        Observed::parse(text).unwrap()
    }

    fn net(name: &str, encrypted: bool, mtu: Option<u32>) -> Network {
        Network { name: name.into(), encrypted, mtu }
    }

    #[test]
    fn parses_what_observe_prints() {
        let o = observed(
            "network {\"Name\":\"database\",\"Attachable\":true,\"Options\":{\"encrypted\":\"\",\"com.docker.network.driver.mtu\":\"1450\"}}\n\
             network {\"Name\":\"ingress\",\"Attachable\":false,\"Options\":null}\n\
             secret pg_0123abcd\nstack proxy\ndeployed proxy abc123\n",
        );
        assert_eq!(o.networks.len(), 2);
        assert!(o.secrets.contains("pg_0123abcd"));
        assert_eq!(o.deployed["proxy"], "abc123");
        assert!(Observed::parse("network {not json\n").is_err());
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
        let (create, drift) = plan_networks(&wanted, &[1500], &o);
        assert_eq!(create, vec![NetworkCreate { name: "object-store".into(), encrypted: false, mtu: 1400 }]);
        assert_eq!(drift.len(), 1);
        assert!(
            drift[0].contains("network database")
                && drift[0].contains("encrypted: inventory true, swarm false"),
            "{}",
            drift[0]
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
