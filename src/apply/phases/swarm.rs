//! Swarm membership: read the node list from a manager, plan (pure, in `plan::swarm`), then
//! create the swarm if there is none, join the missing hosts (managers one at a time, then
//! workers together) and set the labels.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::engine;
use crate::plan::swarm::{self, Absent, Member, Step, SwarmNode};
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
    if let Some(lister) = lister.cloned()
        && let Some(session) = run.sessions.get(&lister).cloned()
    {
        run.progress.step(&lister, "reading the swarm's nodes");
        match list_nodes(&session).await {
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

pub async fn list_nodes(session: &Session) -> Result<Vec<SwarmNode>> {
    let script = roles::role("swarm").step("nodes");
    let output = session.run_ok(&commands::script(&script, &[], session.sudo)).await?;
    serde_json::from_str(&output.stdout)
        .map_err(|e| anyhow!("{}: cannot read the node list: {e}", session.host))
}

pub async fn apply(run: &mut Run) {
    let steps = std::mem::take(&mut run.swarm.steps);
    if steps.is_empty() {
        return;
    }
    let swarm = roles::role("swarm");
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
        let Step::Init { host, advertise } = step else {
            continue;
        };
        let Some(session) = usable(run, host) else {
            continue;
        };
        run.progress.step(host, "creating the swarm");
        let inputs = [Input::new("ADVERTISE_ADDR", advertise.clone())];
        match node_id_from(&session, &commands::script(&swarm.step("init"), &inputs, session.sudo)).await {
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
            (Some(l), Some(_)) => match usable(run, l) {
                Some(session) => join_tokens(&session).await.map_err(|e| format!("{e:#}")),
                None => Err(format!("the swarm's manager {l} failed earlier in this run")),
            },
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

/// Runs one script of a step on the leader for `host`. The step's change is reported by the
/// caller once every script of it succeeded, in the plan's words.
async fn on_leader(
    run: &mut Run,
    leader: &str,
    host: &str,
    step: &Step,
    script: &str,
    inputs: &[Input],
) -> bool {
    let Some(session) = usable(run, leader) else { return false };
    run.progress.step(host, &step.describe());
    let invocation = commands::script(&roles::role("swarm").step(script), inputs, session.sudo);
    match session.run(&invocation).await {
        Ok(out) if out.success() => true,
        Ok(out) => {
            run.fail(host, format!("{host}: {} failed at {script}: {}", step.describe(), out.tail()));
            false
        }
        Err(e) => {
            run.fail(host, format!("{e:#}"));
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
    let script = if promote { "promote" } else { "demote" };
    if !on_leader(run, leader, host, step, script, &[Input::new("NODE", node.to_string())]).await {
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

async fn remove(run: &mut Run, leader: &str, step: &Step) {
    let Step::Remove { host, node, manager, reachable } = step else { return };
    let node_input = Input::new("NODE", node.clone());
    if *manager && !change_role(run, leader, host, node, step, false).await {
        return;
    }
    let drain = [node_input.clone(), Input::new("TIMEOUT", run.options.converge_timeout.max(30).to_string())];
    if !on_leader(run, leader, host, step, "drain", &drain).await {
        return;
    }
    let mut force = !reachable;
    if *reachable && let Some(session) = usable(run, host) {
        run.progress.step(host, "leaving the swarm");
        let invocation = commands::script(&roles::role("swarm").step("leave"), &[], session.sudo);
        match session.run(&invocation).await {
            Ok(out) if out.success() => {}
            _ => force = true,
        }
    }
    let inputs = [node_input, Input::new("FORCE", if force { "yes" } else { "no" })];
    if on_leader(run, leader, host, step, "remove", &inputs).await {
        run.report.host(host).changes.push(format!("swarm: {}", step.describe()));
    }
}

fn usable(run: &Run, host: &str) -> Option<std::sync::Arc<Session>> {
    if run.report.is_failed(host) { None } else { run.sessions.get(host).cloned() }
}

async fn node_id_from(session: &Session, invocation: &commands::Invocation) -> Result<String> {
    let output = session.run_ok(invocation).await?;
    output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("node_id="))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{}: `{}` printed no node id", session.host, invocation.display))
}

async fn join_tokens(session: &Session) -> Result<(String, String)> {
    let docker = engine::connect(session).await?;
    engine::join_tokens(&docker).await.map_err(|e| anyhow!("{}: {e:#}", session.host))
}

/// Joins the host through its engine's API, so the token travels in the request body and is
/// in no process list or sudo log on the host. A host already in a swarm is refused, never
/// silently re-joined. Returns its node ID.
async fn join_host(session: &Session, token: &str, addr: &str, advertise: &str) -> Result<String> {
    let docker = engine::connect(session).await?;
    let on_host = |e: anyhow::Error| anyhow!("{}: {e:#}", session.host);
    let state = engine::swarm_state(&docker).await.map_err(on_host)?;
    if state != "inactive" {
        return Err(anyhow!(
            "{}: this host's swarm state is '{state}', not 'inactive': refusing to join",
            session.host
        ));
    }
    session
        .run_log()
        .line(&session.host, &format!("swarm join through {addr} (advertise {advertise}, token <secret>)"));
    engine::swarm_join(&docker, token, addr, advertise).await.map_err(on_host)?;
    engine::node_id(&docker).await.map_err(on_host)
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

async fn set_labels(run: &mut Run, leader: &str, steps: &[&Step], node_ids: &BTreeMap<String, String>) {
    let Some(session) = usable(run, leader) else {
        return;
    };
    let mut lines = Vec::new();
    for step in steps {
        // "key=value" sets a label, "-key" removes one (see roles/swarm/labels.sh).
        let (host, label) = match step {
            Step::Label { host, key, value } => (host, format!("{key}={value}")),
            Step::Unlabel { host, key } => (host, format!("-{key}")),
            _ => continue,
        };
        if let (false, Some(id)) = (run.report.is_failed(host), node_ids.get(host)) {
            lines.push((host.clone(), id.clone(), label, step.describe()));
        }
    }
    if lines.is_empty() {
        return;
    }
    run.progress.step(leader, "setting node labels");
    let updates: Vec<String> = lines.iter().map(|(_, id, label, _)| format!("{id} {label}")).collect();
    let inputs = [Input::new("LABEL_UPDATES", updates.join("\n"))];
    let invocation = commands::script(&roles::role("swarm").step("labels"), &inputs, session.sudo);
    match session.run(&invocation).await {
        Ok(output) => {
            // Each applied label is reported back as "changed: label k=v on NODE_ID".
            // Reported in the plan's words: the confirmed plan reads as the applied list.
            for (host, id, label, planned) in &lines {
                if output.stdout.lines().any(|l| l == format!("changed: label {label} on {id}")) {
                    run.report.host(host).changes.push(format!("swarm: {planned}"));
                }
            }
            // A label that did not apply fails the host it belongs to, not the leader that
            // ran the batch: the leader is still fine to drive the rest of the run.
            if !output.success() {
                let reason = output.tail();
                let mut missed: Vec<&String> = lines
                    .iter()
                    .filter(|(_, id, label, _)| {
                        !output.stdout.lines().any(|l| l == format!("changed: label {label} on {id}"))
                    })
                    .map(|(host, _, _, _)| host)
                    .collect();
                missed.dedup();
                for host in missed {
                    run.fail(host, format!("{host}: setting its node labels (on {leader}) failed: {reason}"));
                }
            }
        }
        Err(e) => run.fail(leader, format!("{e:#}")),
    }
}
