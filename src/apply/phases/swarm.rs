//! Swarm membership: read the node list from a manager, plan (pure, in `plan::swarm`), then
//! create the swarm if there is none, join the missing hosts (managers one at a time, then
//! workers together) and set the labels.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::engine;
use crate::engine::swarm::{NodeChange, Role};
use crate::plan::swarm::{self, Absent, HeartbeatChange, Member, Step, SwarmNode};
use crate::plan::{CLUSTER, Change};
use crate::roles;

pub async fn observe(run: &mut Run) {
    let swarm_hosts: Vec<String> = run.healthy_swarm_nodes();
    if swarm_hosts.is_empty() {
        return;
    }
    // Any reachable manager of the swarm can list its nodes.
    let lister = swarm_hosts.iter().find(|h| {
        run.facts.get(*h).and_then(|f| f.swarm.as_ref()).is_some_and(|s| s.is_active() && s.control_available)
    });
    if let Some(lister) = lister.cloned() {
        run.progress.step(&lister, "reading the swarm's nodes");
        let nodes = match run.engine(&lister).await {
            Ok(docker) => engine::swarm::nodes(&docker).await.map_err(|e| anyhow!("{lister}: {e:#}")),
            Err(e) => Err(e),
        };
        match nodes {
            Ok(nodes) => run.nodes = nodes,
            Err(e) => run.fail(&lister, format!("{e:#}")),
        }
    }
    let members: Vec<Member> = run
        .inv
        .hosts
        .iter()
        .filter(|h| h.is_swarm_node() && !run.report.is_failed(&h.name))
        .filter_map(|h| run.facts.get(&h.name).map(|facts| Member { host: h, facts }))
        .collect();
    let managers_missing =
        run.inv.hosts.iter().any(|h| h.is_manager() && !members.iter().any(|m| m.host.name == h.name));
    let absent = absent_hosts(run);
    let mut plan = swarm::plan(&members, &run.nodes, managers_missing, &absent);
    if run.options.limit.is_some() {
        // Only the hosts of `--limit` change (creating the swarm is a precondition of any join).
        plan.steps.retain(|s| matches!(s, Step::Init { .. }) || run.in_scope(s.host()));
        plan.refused.retain(|(host, _)| run.in_scope(host));
        plan.warnings.retain(|w| !w.contains("is not a reachable host of the inventory"));
    }
    for (host, reason) in plan.refused.clone() {
        run.fail(&host, reason);
    }
    let wanted = run.inv.swarm.dispatcher_heartbeat;
    if let Some(Step::Init { heartbeat, .. }) = plan.steps.first_mut() {
        *heartbeat = wanted;
    } else if let (Some(_), Some(leader), None) = (wanted, plan.leader.clone(), &run.options.limit) {
        // An existing swarm: its settings as one of its managers reads them.
        let now = match run.engine(&leader).await {
            Ok(docker) => engine::swarm::heartbeat(&docker).await.map_err(|e| anyhow!("{leader}: {e:#}")),
            Err(e) => Err(e),
        };
        match now {
            Ok(now) => plan.heartbeat = HeartbeatChange::of(wanted, now),
            Err(e) => run.fail(&leader, format!("{e:#}")),
        }
    }
    run.swarm = plan;
}

/// Hosts marked `state: absent`, each with its node: from its own facts when it answers,
/// else found in the node list by address or hostname.
fn absent_hosts(run: &Run) -> Vec<Absent> {
    run.inv
        .hosts
        .iter()
        .filter(|h| h.is_absent())
        .map(|h| {
            let own = run.facts.get(&h.name).and_then(|f| f.swarm.as_ref()).filter(|s| s.is_active());
            let node = own.map(|s| s.node_id.clone()).or_else(|| {
                run.nodes
                    .iter()
                    .find(|n| {
                        n.status.addr == h.address
                            || h.advertise_address.as_deref() == Some(n.status.addr.as_str())
                            || n.description.hostname == h.name
                    })
                    .map(|n| n.id.clone())
            });
            Absent {
                host: h.name.clone(),
                node,
                reachable: own.is_some() && run.sessions.contains_key(&h.name),
            }
        })
        .collect()
}

/// Every node of the swarm, as the manager of `session` lists them.
pub async fn list_nodes(session: &Session) -> Result<Vec<SwarmNode>> {
    let docker = engine::connect(session).await?;
    engine::swarm::nodes(&docker).await.map_err(|e| anyhow!("{}: {e:#}", session.host))
}

pub async fn apply(run: &mut Run) {
    let steps = std::mem::take(&mut run.swarm.steps);
    if steps.is_empty() && run.swarm.heartbeat.is_none() {
        return;
    }
    // Node ids of hosts already in the swarm; joins and init add theirs.
    let mut node_ids: BTreeMap<String, String> = run
        .facts
        .iter()
        .filter_map(|(h, f)| {
            f.swarm.as_ref().filter(|s| s.is_active()).map(|s| (h.clone(), s.node_id.clone()))
        })
        .collect();
    let mut leader = run.swarm.leader.clone();
    let mut manager_addr = leader
        .as_ref()
        .and_then(|l| run.facts.get(l))
        .and_then(|f| f.swarm.as_ref())
        .map(|s| swarm::manager_endpoint(&s.node_addr));

    // 1. Create the swarm.
    for step in steps.iter().filter(|s| matches!(s, Step::Init { .. })) {
        let Step::Init { host, advertise, heartbeat } = step else {
            continue;
        };
        if usable(run, host).is_none() {
            continue;
        }
        run.progress.step(host, "creating the swarm");
        let created = match run.engine(host).await {
            Ok(docker) => engine::swarm::init(&docker, advertise, *heartbeat)
                .await
                .map_err(|e| anyhow!("{host}: {e:#}")),
            Err(e) => Err(e),
        };
        match created {
            Ok(id) => {
                node_ids.insert(host.clone(), id);
                run.report.host(host).changes.push(format!("swarm: {}", step.describe()));
                leader = Some(host.clone());
                manager_addr = Some(swarm::manager_endpoint(advertise));
            }
            Err(e) => {
                run.fail(host, format!("{e:#}"));
                leader = None;
            }
        }
    }

    // 2. Join the missing hosts, through the leader's tokens.
    let joins: Vec<&Step> = steps.iter().filter(|s| matches!(s, Step::Join { .. })).collect();
    if !joins.is_empty() {
        let tokens = match (&leader, &manager_addr) {
            (Some(l), Some(_)) if usable(run, l).is_some() => join_tokens(run, l).await,
            (Some(l), Some(_)) => Err(format!("the swarm's manager {l} failed earlier in this run")),
            _ => Err("no manager of the swarm is available".to_string()),
        };
        match tokens {
            Err(reason) => {
                for step in &joins {
                    run.fail(step.host(), format!("{}: cannot join: {reason}", step.host()));
                }
            }
            Ok((worker_token, manager_token)) => {
                let addr = manager_addr.clone().unwrap_or_default();
                // Managers one at a time: each join changes the raft quorum.
                for step in joins.iter().filter(|s| matches!(s, Step::Join { manager: true, .. })) {
                    join_one(run, step, &manager_token, &addr, &mut node_ids).await;
                }
                let workers: Vec<&Step> = joins
                    .iter()
                    .copied()
                    .filter(|s| matches!(s, Step::Join { manager: false, .. }))
                    .collect();
                join_workers(run, &workers, &worker_token, &addr, &mut node_ids).await;
            }
        }
    }

    // The services phase deploys through this manager (it may have just created the swarm).
    run.swarm.leader = leader.clone();

    // The swarm's own settings.
    if let (Some(change), Some(leader)) = (run.swarm.heartbeat, &leader) {
        run.progress.step(leader, "setting the swarm's dispatcher heartbeat");
        let set = match run.engine(leader).await {
            Ok(docker) => engine::swarm::set_heartbeat(&docker, change.wanted).await,
            Err(e) => Err(e),
        };
        match set {
            Ok(()) => run.report.record(&Change::new(CLUSTER, "swarm", change.describe())),
            Err(e) => run.report.fail_cluster(format!("{leader}: {e:#}")),
        }
    }

    // 3. Role changes, one at a time on the leader.
    if let Some(leader) = &leader {
        for step in steps.iter().filter(|s| matches!(s, Step::Promote { .. } | Step::Demote { .. })) {
            let (Step::Promote { host, node } | Step::Demote { host, node }) = step else { continue };
            let promote = matches!(step, Step::Promote { .. });
            if change_role(run, leader, host, node, step, promote).await {
                run.report.host(host).changes.push(format!("swarm: {}", step.describe()));
            }
        }
    }

    // 4. Labels, all in one round trip on the leader.
    let labels: Vec<&Step> =
        steps.iter().filter(|s| matches!(s, Step::Label { .. } | Step::Unlabel { .. })).collect();
    if let (false, Some(leader)) = (labels.is_empty(), &leader) {
        set_labels(run, leader, &labels, &node_ids).await;
    }

    // 5. Removals: demote, drain, leave, remove.
    if let Some(leader) = &leader {
        for step in steps.iter().filter(|s| matches!(s, Step::Remove { .. })) {
            remove(run, leader, step).await;
        }
    }
}

/// Applies a node change for `host`'s step through the leader's engine. The step's change is
/// reported by the caller once every part of it succeeded, in the plan's words.
async fn on_leader(
    run: &mut Run,
    leader: &str,
    host: &str,
    step: &Step,
    node: &str,
    change: NodeChange,
) -> bool {
    if usable(run, leader).is_none() {
        return false;
    }
    run.progress.step(host, &step.describe());
    let done = match run.engine(leader).await {
        Ok(docker) => engine::swarm::update_node(&docker, node, &change).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => true,
        Err(e) => {
            run.fail(host, format!("{host}: {} failed (through {leader}): {e:#}", step.describe()));
            false
        }
    }
}

/// Promotes or demotes on the leader, then waits on the node itself until it has taken the
/// new role: a role change issued before the previous one settled leaves a node stuck.
async fn change_role(
    run: &mut Run,
    leader: &str,
    host: &str,
    node: &str,
    step: &Step,
    promote: bool,
) -> bool {
    let swarm = roles::role("swarm");
    let own = usable(run, host);
    let mut stamp = None;
    if let Some(session) = &own
        && let Ok(out) = session.run(&commands::script(&swarm.step("cert-stamp"), &[], session.sudo)).await
    {
        stamp = Some(out.stdout.trim().to_string());
    }
    let role = if promote { Role::Manager } else { Role::Worker };
    if !on_leader(run, leader, host, step, node, NodeChange::Role(role)).await {
        return false;
    }
    let (Some(session), Some(stamp)) = (own, stamp) else { return true };
    run.progress.step(host, &format!("waiting to be a {}", if promote { "manager" } else { "worker" }));
    let inputs = [
        Input::new("WANT", if promote { "manager" } else { "worker" }),
        Input::new("STAMP", stamp),
        Input::new("TIMEOUT", "90"),
    ];
    match session.run(&commands::script(&swarm.step("settle"), &inputs, session.sudo)).await {
        Ok(out) if out.success() => true,
        Ok(out) => {
            run.fail(host, format!("{host}: {}", out.tail()));
            false
        }
        Err(e) => {
            run.fail(host, format!("{e:#}"));
            false
        }
    }
}

/// Takes a node out: demoted first (a manager), drained until its tasks run elsewhere, left
/// from its own engine when it answers, then removed from the node list on the leader (forced
/// when it could not leave).
async fn remove(run: &mut Run, leader: &str, step: &Step) {
    let Step::Remove { host, node, manager, reachable } = step else { return };
    if *manager && !change_role(run, leader, host, node, step, false).await {
        return;
    }
    run.progress.step(host, "draining: its tasks move to other nodes");
    let timeout = Duration::from_secs(run.options.converge_timeout.max(30));
    let drained = match run.engine(leader).await {
        Ok(docker) => engine::swarm::drain(&docker, node, timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = drained {
        run.fail(host, format!("{host}: {} failed at the drain (through {leader}): {e:#}", step.describe()));
        return;
    }
    let mut force = !reachable;
    if *reachable && usable(run, host).is_some() {
        run.progress.step(host, "leaving the swarm");
        let left = match run.engine(host).await {
            Ok(docker) => engine::swarm::leave(&docker).await,
            Err(e) => Err(e),
        };
        if left.is_err() {
            force = true;
        }
    }
    run.progress.step(host, "removing its node");
    let removed = match run.engine(leader).await {
        Ok(docker) => engine::swarm::remove_node(&docker, node, force).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => run.report.host(host).changes.push(format!("swarm: {}", step.describe())),
        Err(e) => run.fail(host, format!("{host}: {} failed (through {leader}): {e:#}", step.describe())),
    }
}

fn usable(run: &Run, host: &str) -> Option<std::sync::Arc<Session>> {
    if run.report.is_failed(host) { None } else { run.sessions.get(host).cloned() }
}

async fn join_tokens(run: &mut Run, leader: &str) -> Result<(String, String), String> {
    let docker = run.engine(leader).await.map_err(|e| format!("{e:#}"))?;
    engine::swarm::join_tokens(&docker).await.map_err(|e| format!("{leader}: {e:#}"))
}

/// Joins the host through its engine's API, so the token travels in the request body and is
/// in no process list or sudo log on the host. A host already in a swarm is refused, never
/// silently re-joined. Returns its node ID.
async fn join_host(session: &Session, token: &str, addr: &str, advertise: &str) -> Result<String> {
    let docker = engine::connect(session).await?;
    let on_host = |e: anyhow::Error| anyhow!("{}: {e:#}", session.host);
    let state = engine::swarm::swarm_state(&docker).await.map_err(on_host)?;
    if state != "inactive" {
        return Err(anyhow!(
            "{}: this host's swarm state is '{state}', not 'inactive': refusing to join",
            session.host
        ));
    }
    session
        .run_log()
        .line(&session.host, &format!("swarm join through {addr} (advertise {advertise}, token <secret>)"));
    engine::swarm::join(&docker, token, addr, advertise).await.map_err(on_host)?;
    engine::swarm::node_id(&docker).await.map_err(on_host)
}

async fn join_one(
    run: &mut Run,
    step: &Step,
    token: &str,
    addr: &str,
    node_ids: &mut BTreeMap<String, String>,
) {
    let Step::Join { host, advertise, .. } = step else {
        return;
    };
    let Some(session) = usable(run, host) else { return };
    run.progress.step(host, "joining the swarm as manager");
    match join_host(&session, token, addr, advertise).await {
        Ok(id) => {
            node_ids.insert(host.clone(), id);
            run.report.host(host).changes.push(format!("swarm: {}", step.describe()));
        }
        Err(e) => run.fail(host, format!("{e:#}")),
    }
}

async fn join_workers(
    run: &mut Run,
    steps: &[&Step],
    token: &str,
    addr: &str,
    node_ids: &mut BTreeMap<String, String>,
) {
    let hosts: Vec<String> =
        steps.iter().map(|s| s.host().to_string()).filter(|h| usable(run, h).is_some()).collect();
    let advertise: BTreeMap<String, String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Join { host, advertise, .. } => Some((host.clone(), advertise.clone())),
            _ => None,
        })
        .collect();
    for h in &hosts {
        run.progress.step(h, "joining the swarm as worker");
    }
    let results = run
        .each(&hosts, |name, session| {
            let (token, addr, advertise) = (token.to_string(), addr.to_string(), advertise[&name].clone());
            async move { join_host(&session, &token, &addr, &advertise).await }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(id) => {
                node_ids.insert(name.clone(), id);
                let step = steps.iter().find(|s| s.host() == name).map(|s| s.describe()).unwrap_or_default();
                run.report.host(&name).changes.push(format!("swarm: {step}"));
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}

/// One node's label changes: its ID, the labels to set (`Some`) or remove (`None`), and the
/// planned steps they make up, as the plan words them.
#[derive(Default)]
struct NodeLabels {
    id: String,
    labels: Vec<(String, Option<String>)>,
    planned: Vec<String>,
}

/// Sets and removes the planned labels through the leader's engine, one update per node. A
/// label that did not apply fails the host it belongs to, not the leader, which is still fine
/// to drive the rest of the run.
async fn set_labels(run: &mut Run, leader: &str, steps: &[&Step], node_ids: &BTreeMap<String, String>) {
    if usable(run, leader).is_none() {
        return;
    }
    let mut per_host: BTreeMap<String, NodeLabels> = BTreeMap::new();
    for step in steps {
        let (host, key, value) = match step {
            Step::Label { host, key, value } => (host, key, Some(value.clone())),
            Step::Unlabel { host, key } => (host, key, None),
            _ => continue,
        };
        if let (false, Some(id)) = (run.report.is_failed(host), node_ids.get(host)) {
            let entry = per_host
                .entry(host.clone())
                .or_insert_with(|| NodeLabels { id: id.clone(), ..Default::default() });
            entry.labels.push((key.clone(), value));
            entry.planned.push(step.describe());
        }
    }
    if per_host.is_empty() {
        return;
    }
    run.progress.step(leader, "setting node labels");
    let docker = match run.engine(leader).await {
        Ok(docker) => docker,
        Err(e) => {
            run.fail(leader, format!("{e:#}"));
            return;
        }
    };
    for (host, NodeLabels { id, labels, planned }) in per_host {
        match engine::swarm::update_node(&docker, &id, &NodeChange::Labels(labels)).await {
            // Reported in the plan's words: the confirmed plan reads as the applied list.
            Ok(()) => run.report.host(&host).changes.extend(planned.iter().map(|p| format!("swarm: {p}"))),
            Err(e) => {
                run.fail(&host, format!("{host}: setting its node labels (through {leader}) failed: {e:#}"))
            }
        }
    }
}
