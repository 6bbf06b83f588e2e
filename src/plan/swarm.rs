//! Swarm membership planning: which manager creates the swarm (if none exists), which hosts
//! join and as what, which labels change. Pure: facts and the node list in, steps out.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::facts::Facts;
use crate::inventory::Host;

/// A host the inventory marks `state: absent`, with its node if it is still in the swarm.
pub struct Absent {
    pub host: String,
    pub node: Option<String>,
    pub reachable: bool,
}

/// A swarm node of the inventory that could be reached, with its facts.
pub struct Member<'a> {
    pub host: &'a Host,
    pub facts: &'a Facts,
}

impl Member<'_> {
    /// The address other nodes reach this one at.
    pub fn advertise_address(&self) -> Option<String> {
        self.host
            .advertise_address
            .clone()
            .or_else(|| self.facts.route_addr.clone())
            .or_else(|| self.host.address.parse::<std::net::IpAddr>().ok().map(|_| self.host.address.clone()))
    }
}

/// A node as the swarm's managers see it (`docker node inspect`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmNode {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub description: NodeDescription,
    #[serde(default)]
    pub status: NodeStatus,
    pub manager_status: Option<ManagerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeSpec {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub availability: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeDescription {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub engine: EngineDescription,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EngineDescription {
    #[serde(default)]
    pub engine_version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeStatus {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub addr: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagerStatus {
    #[serde(default)]
    pub leader: bool,
    #[serde(default)]
    pub reachability: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the swarm on this manager (with the inventory's dispatcher heartbeat, if any).
    Init { host: String, advertise: String, heartbeat: Option<std::time::Duration> },
    /// Join the swarm, as a manager or a worker.
    Join { host: String, manager: bool, advertise: String },
    /// Set one label on the host's node.
    Label { host: String, key: String, value: String },
    /// Remove a label clusterup had set and the inventory no longer has.
    Unlabel { host: String, key: String },
    /// Worker to manager.
    Promote { host: String, node: String },
    /// Manager to worker (quorum checked).
    Demote { host: String, node: String },
    /// Drain the node, let it leave, remove it from the node list (a manager is demoted first).
    Remove { host: String, node: String, manager: bool, reachable: bool },
}

impl Step {
    pub fn host(&self) -> &str {
        match self {
            Step::Init { host, .. }
            | Step::Join { host, .. }
            | Step::Label { host, .. }
            | Step::Unlabel { host, .. }
            | Step::Promote { host, .. }
            | Step::Demote { host, .. }
            | Step::Remove { host, .. } => host,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Step::Init { advertise, heartbeat: None, .. } => {
                format!("create the swarm (advertise {advertise})")
            }
            Step::Init { advertise, heartbeat: Some(h), .. } => format!(
                "create the swarm (advertise {advertise}, dispatcher heartbeat {})",
                crate::inventory::format_duration(*h)
            ),
            Step::Join { manager, advertise, .. } => {
                format!(
                    "join the swarm as {} (advertise {advertise})",
                    if *manager { "manager" } else { "worker" }
                )
            }
            Step::Label { key, value, .. } => format!("set node label {key}={value}"),
            Step::Unlabel { key, .. } => format!("remove node label {key} (no longer in the inventory)"),
            Step::Promote { .. } => "promote to manager".into(),
            Step::Demote { .. } => "demote to worker".into(),
            Step::Remove { manager, reachable, .. } => format!(
                "remove from the swarm ({}drain, {}remove the node)",
                if *manager { "demote, " } else { "" },
                if *reachable { "leave, " } else { "unreachable: force " }
            ),
        }
    }
}

/// The swarm's dispatcher heartbeat to set: (as it is, as the inventory wants it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatChange {
    pub now: Option<std::time::Duration>,
    pub wanted: std::time::Duration,
}

impl HeartbeatChange {
    /// A change when the inventory asks for a heartbeat the swarm does not have.
    pub fn of(
        wanted: Option<std::time::Duration>,
        now: Option<std::time::Duration>,
    ) -> Option<HeartbeatChange> {
        let wanted = wanted?;
        (now != Some(wanted)).then_some(HeartbeatChange { now, wanted })
    }

    pub fn describe(&self) -> String {
        let now = self.now.map_or("unset".to_string(), crate::inventory::format_duration);
        format!(
            "set the dispatcher heartbeat from {now} to {}",
            crate::inventory::format_duration(self.wanted)
        )
    }
}

#[derive(Debug, Default)]
pub struct SwarmPlan {
    /// The manager that drives the swarm: hands out join tokens and sets labels.
    pub leader: Option<String>,
    pub cluster_id: Option<String>,
    pub steps: Vec<Step>,
    /// Hosts that must not be touched, and why.
    pub refused: Vec<(String, String)>,
    pub warnings: Vec<String>,
    /// The swarm's own settings to change (an existing swarm; a new one is created with them).
    pub heartbeat: Option<HeartbeatChange>,
}

/// Plans membership for `members` (in inventory order) given the swarm's current `nodes`
/// (empty when there is no swarm yet, or no manager could list it). `managers_missing` says
/// that some of the inventory's managers could not be observed this run: hosts already in a
/// swarm are then left alone rather than judged against an incomplete picture.
pub fn plan(members: &[Member], nodes: &[SwarmNode], managers_missing: bool, absent: &[Absent]) -> SwarmPlan {
    let mut out = SwarmPlan::default();
    let mut quorum = Quorum::of(nodes);
    let mut role_changes = Vec::new();

    // The swarm this inventory describes: the one its first reachable active manager is in.
    out.cluster_id = members
        .iter()
        .filter(|m| m.host.is_manager())
        .filter_map(|m| m.facts.swarm.as_ref().filter(|s| s.is_active() && s.control_available))
        .find_map(|s| s.cluster_id().map(str::to_string));
    // The driver: a manager of that swarm that stays one (a manager about to be demoted
    // would lose the rights it drives with halfway through the run).
    let drivers: Vec<&Member> = members
        .iter()
        .filter(|m| {
            m.facts.swarm.as_ref().is_some_and(|s| {
                s.is_active() && s.control_available && s.cluster_id() == out.cluster_id.as_deref()
            })
        })
        .collect();
    out.leader =
        drivers.iter().find(|m| m.host.is_manager()).or(drivers.first()).map(|m| m.host.name.clone());

    let mut joining = Vec::new();
    for m in members {
        let name = &m.host.name;
        let state = m.facts.swarm_state();
        match state {
            "inactive" => joining.push(m),
            "active" => {
                let theirs = m.facts.swarm.as_ref().and_then(|s| s.cluster_id());
                let local_manager = m.facts.swarm.as_ref().is_some_and(|s| s.control_available);
                if out.cluster_id.is_none() && managers_missing {
                    out.warnings.push(format!(
                        "{name} is in a swarm, but none of the inventory's managers could be checked this run; left as it is"
                    ));
                    continue;
                }
                if out.cluster_id.is_none() || (theirs.is_some() && theirs != out.cluster_id.as_deref()) {
                    out.refused.push((name.clone(), other_swarm(name, theirs, out.cluster_id.as_deref())));
                    continue;
                }
                if theirs.is_none() && !local_manager {
                    // A worker cannot see the cluster id; trust the manager's node list.
                    let node_id = m.facts.swarm.as_ref().map(|s| s.node_id.as_str()).unwrap_or("");
                    if !nodes.is_empty() && !nodes.iter().any(|n| n.id == node_id) {
                        out.refused.push((name.clone(), other_swarm(name, None, out.cluster_id.as_deref())));
                        continue;
                    }
                }
                if m.host.is_manager() != local_manager {
                    let node = m.facts.swarm.as_ref().map(|s| s.node_id.clone()).unwrap_or_default();
                    if m.host.is_manager() {
                        quorum.promote();
                        role_changes.push(Step::Promote { host: name.clone(), node });
                    } else {
                        match quorum.demote(name, "demoting", manager_reachable(nodes, &node)) {
                            Ok(()) => role_changes.push(Step::Demote { host: name.clone(), node }),
                            Err(reason) => out.warnings.push(reason),
                        }
                    }
                }
                let node_id = m.facts.swarm.as_ref().map(|s| s.node_id.as_str()).unwrap_or("");
                let current = nodes.iter().find(|n| n.id == node_id).map(|n| &n.spec.labels);
                plan_labels(&mut out.steps, m.host, current);
            }
            other => out.refused.push((
                name.clone(),
                format!(
                    "{name}: its swarm state is '{other}'{}; clusterup will not touch it. \
                     Inspect it with `docker info`, and if it should start over run `docker swarm leave --force` there.",
                    m.facts.swarm.as_ref().filter(|s| !s.error.is_empty()).map(|s| format!(" ({})", s.error)).unwrap_or_default()
                ),
            )),
        }
    }

    // No swarm yet: the first reachable manager creates it.
    if out.cluster_id.is_none()
        && let Some(first) = joining.iter().position(|m| m.host.is_manager())
    {
        let m = joining.remove(first);
        match m.advertise_address() {
            Some(advertise) => {
                out.steps.insert(0, Step::Init { host: m.host.name.clone(), advertise, heartbeat: None });
                out.leader = Some(m.host.name.clone());
                plan_labels(&mut out.steps, m.host, None);
            }
            None => out.refused.push((m.host.name.clone(), no_address(&m.host.name))),
        }
    }

    if out.leader.is_none() {
        for m in joining {
            out.refused.push((
                m.host.name.clone(),
                format!("{}: no manager of the swarm could be reached to join it through", m.host.name),
            ));
        }
        return out;
    }

    // Managers one at a time first (each join changes the quorum), then workers.
    joining.sort_by_key(|m| !m.host.is_manager());
    let mut labels = Vec::new();
    let mut joins = Vec::new();
    for m in joining {
        match m.advertise_address() {
            Some(advertise) => {
                joins.push(Step::Join { host: m.host.name.clone(), manager: m.host.is_manager(), advertise });
                plan_labels(&mut labels, m.host, None);
            }
            None => out.refused.push((m.host.name.clone(), no_address(&m.host.name))),
        }
    }
    let init_len = out.steps.iter().take_while(|s| matches!(s, Step::Init { .. })).count();
    out.steps.splice(init_len..init_len, joins.into_iter().chain(role_changes));
    out.steps.extend(labels);

    // Removals last, when the joins gave the tasks somewhere to go.
    for a in absent {
        let Some(node) = &a.node else { continue };
        let manager = nodes.iter().any(|n| &n.id == node && n.manager_status.is_some());
        if manager && let Err(reason) = quorum.demote(&a.host, "removing", manager_reachable(nodes, node)) {
            out.refused.push((a.host.clone(), reason));
            continue;
        }
        out.steps.push(Step::Remove {
            host: a.host.clone(),
            node: node.clone(),
            manager,
            reachable: a.reachable,
        });
    }

    for node in nodes {
        let known = members.iter().any(|m| m.facts.swarm.as_ref().is_some_and(|s| s.node_id == node.id))
            || absent.iter().any(|a| a.node.as_deref() == Some(node.id.as_str()));
        if !known {
            out.warnings.push(format!(
                "node {} ({}) is in the swarm but is not a reachable host of the inventory; clusterup leaves it alone",
                node.description.hostname, node.id
            ));
        }
    }
    out
}

/// The node label that lists the label keys clusterup manages on a node, so that a label
/// removed from the inventory is removed from the node, and labels set by others are not.
pub const MANAGED_LABELS: &str = "clusterup.labels";

fn plan_labels(steps: &mut Vec<Step>, host: &Host, current: Option<&BTreeMap<String, String>>) {
    let label = |key: &str, value: &str| Step::Label {
        host: host.name.clone(),
        key: key.into(),
        value: value.into(),
    };
    for (key, value) in &host.labels {
        if current.and_then(|c| c.get(key)) != Some(value) {
            steps.push(label(key, value));
        }
    }
    let managed = current.and_then(|c| c.get(MANAGED_LABELS));
    for key in managed.map(|m| m.split(',').filter(|k| !k.is_empty()).collect::<Vec<_>>()).unwrap_or_default()
    {
        if !host.labels.contains_key(key) && current.is_some_and(|c| c.contains_key(key)) {
            steps.push(Step::Unlabel { host: host.name.clone(), key: key.to_string() });
        }
    }
    let wanted = host.labels.keys().cloned().collect::<Vec<_>>().join(",");
    if wanted.is_empty() {
        if managed.is_some() {
            steps.push(Step::Unlabel { host: host.name.clone(), key: MANAGED_LABELS.into() });
        }
    } else if managed != Some(&wanted) {
        steps.push(label(MANAGED_LABELS, &wanted));
    }
}

fn other_swarm(name: &str, theirs: Option<&str>, ours: Option<&str>) -> String {
    let theirs = theirs.map(|id| format!(" (cluster {id})")).unwrap_or_default();
    let ours = match ours {
        Some(id) => format!("the inventory's swarm is cluster {id}"),
        None => "none of the inventory's managers is in it".to_string(),
    };
    format!(
        "{name} already belongs to another swarm{theirs}; {ours}. clusterup never moves a host between swarms: \
         if that host should join this cluster, run `docker swarm leave --force` on it first."
    )
}

/// Manager counts as changes are planned: every demotion or removal must leave a majority
/// of the remaining managers reachable, or the swarm stops accepting changes.
struct Quorum {
    managers: usize,
    reachable: usize,
}

impl Quorum {
    fn of(nodes: &[SwarmNode]) -> Quorum {
        let managers: Vec<&ManagerStatus> = nodes.iter().filter_map(|n| n.manager_status.as_ref()).collect();
        Quorum {
            managers: managers.len(),
            reachable: managers.iter().filter(|m| m.reachability == "reachable").count(),
        }
    }

    fn promote(&mut self) {
        self.managers += 1;
        self.reachable += 1;
    }

    /// Takes one manager away. Only a reachable one lowers the reachable count: removing a
    /// dead manager is exactly what keeps the rest's majority (3 managers, 1 dead: after its
    /// removal 2 of 2 are reachable).
    fn demote(&mut self, host: &str, doing: &str, was_reachable: bool) -> Result<(), String> {
        let after = self.managers.saturating_sub(1);
        let reachable_after = if was_reachable { self.reachable.saturating_sub(1) } else { self.reachable };
        let majority = after / 2 + 1;
        if after == 0 {
            return Err(format!("{doing} {host} would leave the swarm without a manager; refused"));
        }
        if reachable_after < majority {
            return Err(format!(
                "{doing} {host} would leave {after} manager(s) of which {reachable_after} reachable, and a swarm \
                 needs a majority ({majority}) of its managers reachable; refused. Bring the unreachable managers \
                 back (or add managers) first."
            ));
        }
        self.managers = after;
        self.reachable = reachable_after;
        Ok(())
    }
}

/// Whether the swarm sees the manager `node` as reachable.
fn manager_reachable(nodes: &[SwarmNode], node: &str) -> bool {
    nodes
        .iter()
        .find(|n| n.id == node)
        .and_then(|n| n.manager_status.as_ref())
        .is_some_and(|m| m.reachability == "reachable")
}

/// `ADDR:2377`, the port managers listen on for joins; an IPv6 address in brackets.
pub fn manager_endpoint(addr: &str) -> String {
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:2377"),
        _ => format!("{addr}:2377"),
    }
}

fn no_address(name: &str) -> String {
    format!(
        "{name}: cannot tell which address to advertise to the swarm (no default route found); set advertise_address for it in the inventory"
    )
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
