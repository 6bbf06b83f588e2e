//! Backup and restore decisions, pure: which manager's raft state to copy (one that is not the
//! leader, whose engine can stop while the others keep quorum), what a backup records beside
//! the state, which node entries a restore leaves behind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::swarm::SwarmNode;

/// What a backup folder's `manifest.json` says: enough to rebuild the rest and to check the
/// archive, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// This layout's version.
    pub format: u32,
    /// The inventory's `cluster.name`.
    pub cluster: String,
    pub created: String,
    /// The inventory host whose state was copied, its node and the address it advertised.
    pub source_host: String,
    pub source_node: String,
    pub advertise_addr: String,
    pub cluster_id: String,
    pub engine_version: String,
    /// sha256 of the inventory file as it was.
    pub inventory_sha256: String,
    /// Each stack clusterup recorded as deployed, with the digest of what it deployed.
    pub stacks: BTreeMap<String, String>,
    /// The swarm's secrets and configs by name, as they were.
    pub secrets: Vec<String>,
    pub configs: Vec<String>,
    pub archive: String,
    pub archive_sha256: String,
    pub archive_bytes: u64,
    /// How long the source manager's engine was stopped for the copy.
    pub engine_stopped_ms: u64,
}

pub const FORMAT: u32 = 1;
pub const ARCHIVE: &str = "swarm.tar.gz";
pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";

/// A manager of the inventory, as reached this run.
#[derive(Debug, Clone)]
pub struct Manager {
    pub host: String,
    /// Its node in the swarm, when it answered.
    pub node: Option<String>,
}

/// The manager whose state to copy: reachable, not the leader, and such that while its engine
/// is stopped the managers left still make a majority. A swarm with one manager has no such
/// one: `force` copies from it all the same (its control plane stops for the copy).
/// Returns the host and its node.
pub fn choose_source(
    managers: &[Manager],
    nodes: &[SwarmNode],
    force: bool,
) -> Result<(String, String), String> {
    let status = |id: &str| nodes.iter().find(|n| n.id == id).and_then(|n| n.manager_status.as_ref());
    let total = nodes.iter().filter(|n| n.manager_status.is_some()).count();
    let reachable = nodes
        .iter()
        .filter_map(|n| n.manager_status.as_ref())
        .filter(|m| m.reachability == "reachable")
        .count();
    let candidates: Vec<(&Manager, bool)> = managers
        .iter()
        .filter_map(|m| {
            let node = m.node.as_deref()?;
            let s = status(node)?;
            (s.reachability == "reachable").then_some((m, s.leader))
        })
        .collect();
    let majority = total / 2 + 1;
    if reachable.saturating_sub(1) >= majority
        && let Some((m, _)) = candidates.iter().find(|(_, leader)| !leader)
    {
        return Ok((m.host.clone(), m.node.clone().unwrap_or_default()));
    }
    if force && let Some((m, _)) = candidates.iter().find(|(_, leader)| !leader).or(candidates.first()) {
        return Ok((m.host.clone(), m.node.clone().unwrap_or_default()));
    }
    if candidates.is_empty() {
        return Err("no manager of the inventory could be reached in the swarm to copy its state from".into());
    }
    Err(format!(
        "copying a manager's state stops its engine for a few seconds, and the swarm has {total} manager(s) of \
         which {reachable} reachable: without one of them fewer than a majority ({majority}) would be left. \
         Back up a swarm with 3 or more managers, or give --force to stop {} for the copy all the same \
         (the swarm's services keep running; no change to them can be made meanwhile)",
        candidates[0].0.host
    ))
}

/// Node entries a restore leaves behind: after `--force-new-cluster` the old managers other
/// than `restored` are still listed (as workers whose state is unknown, then down). Those of
/// hosts that lost their swarm state and will join anew (`rejoining`) are removed, so the node
/// list holds each host once; every other node (the workers, which reconnect by themselves) is
/// left alone.
pub fn stale_nodes(nodes: &[SwarmNode], restored: &str, rejoining: &[String]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.id != restored && n.status.state != "ready")
        .filter(|n| rejoining.contains(&n.description.hostname))
        .map(|n| n.id.clone())
        .collect()
}

/// The name of a backup folder: the cluster and the time (`clusterup-backup-lab-20261201T184500Z`).
pub fn folder_name(cluster: &str, rfc3339: &str) -> String {
    let compact: String = rfc3339.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("clusterup-backup-{cluster}-{compact}")
}

/// `SHA256SUMS` as `sha256sum -c` reads it: "DIGEST  NAME" per line.
pub fn sums(files: &[(&str, &str)]) -> String {
    files.iter().map(|(name, digest)| format!("{digest}  {name}")).collect::<Vec<_>>().join("\n")
}

/// The files `SHA256SUMS` names whose digest is not `digest_of` theirs (`None`: unreadable).
pub fn mismatches(sums: &str, digest_of: impl Fn(&str) -> Option<String>) -> Vec<String> {
    sums.lines()
        .filter_map(|l| l.split_once("  "))
        .filter(|(digest, name)| digest_of(name).as_deref() != Some(*digest))
        .map(|(_, name)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::swarm::{ManagerStatus, NodeDescription, NodeStatus};

    fn manager_node(id: &str, host: &str, leader: bool, reachable: bool) -> SwarmNode {
        SwarmNode {
            id: id.into(),
            description: NodeDescription { hostname: host.into(), ..Default::default() },
            status: NodeStatus {
                state: if reachable { "ready" } else { "down" }.into(),
                addr: String::new(),
            },
            manager_status: Some(ManagerStatus {
                leader,
                reachability: if reachable { "reachable" } else { "unreachable" }.into(),
            }),
            ..Default::default()
        }
    }

    fn managers(names: &[&str]) -> Vec<Manager> {
        names.iter().map(|n| Manager { host: n.to_string(), node: Some(format!("id-{n}")) }).collect()
    }

    #[test]
    fn a_reachable_manager_that_is_not_the_leader_is_copied() {
        let nodes = [
            manager_node("id-m1", "m1", true, true),
            manager_node("id-m2", "m2", false, true),
            manager_node("id-m3", "m3", false, true),
        ];
        assert_eq!(
            choose_source(&managers(&["m1", "m2", "m3"]), &nodes, false),
            Ok(("m2".into(), "id-m2".into()))
        );
    }

    #[test]
    fn a_copy_that_would_lose_quorum_is_refused_unless_forced() {
        // m3 is down: stopping m2 would leave 1 of 3.
        let nodes = [
            manager_node("id-m1", "m1", true, true),
            manager_node("id-m2", "m2", false, true),
            manager_node("id-m3", "m3", false, false),
        ];
        let all = managers(&["m1", "m2", "m3"]);
        let refused = choose_source(&all, &nodes, false).unwrap_err();
        assert!(
            refused.contains("3 manager(s) of which 2 reachable") && refused.contains("--force"),
            "{refused}"
        );
        assert_eq!(choose_source(&all, &nodes, true), Ok(("m2".into(), "id-m2".into())));
        // One manager: only with force, and then the leader itself.
        let one = [manager_node("id-m1", "m1", true, true)];
        assert!(choose_source(&managers(&["m1"]), &one, false).is_err());
        assert_eq!(choose_source(&managers(&["m1"]), &one, true), Ok(("m1".into(), "id-m1".into())));
        // Nobody reached.
        let none = [Manager { host: "m1".into(), node: None }];
        assert!(choose_source(&none, &one, true).unwrap_err().contains("no manager"));
    }

    #[test]
    fn only_the_old_entries_of_rejoining_hosts_are_stale() {
        let unknown = |id: &str, host: &str| SwarmNode {
            id: id.into(),
            description: NodeDescription { hostname: host.into(), ..Default::default() },
            status: NodeStatus { state: "unknown".into(), addr: String::new() },
            ..Default::default()
        };
        let nodes = [
            manager_node("new", "m1", true, true),
            unknown("old-m2", "m2"),
            manager_node("old-m3", "m3", false, false),
            unknown("w1", "w1"),
            manager_node("m4", "m4", false, true),
        ];
        let rejoining = vec!["m2".to_string(), "m3".to_string(), "m4".to_string()];
        assert_eq!(
            stale_nodes(&nodes, "new", &rejoining),
            ["old-m2", "old-m3"],
            "a worker reconnecting by itself and a node already back are kept"
        );
    }

    #[test]
    fn folders_and_checksums() {
        assert_eq!(folder_name("lab", "2026-12-01T18:45:00Z"), "clusterup-backup-lab-20261201T184500Z");
        let text = sums(&[("swarm.tar.gz", "aa"), ("manifest.json", "bb")]);
        assert_eq!(text, "aa  swarm.tar.gz\nbb  manifest.json");
        let digest = |name: &str| (name == "swarm.tar.gz").then(|| "aa".to_string());
        assert_eq!(mismatches(&text, digest), ["manifest.json"]);
    }
}
