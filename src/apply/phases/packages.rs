//! Package roles on the hosts: `docker` and `firewall` on the swarm nodes, `nfs-client` when
//! the inventory has NFS storage, `nfs-server` on a managed NAS. Each role's check runs first;
//! its apply runs only where the check asked, and an engine restart rolls host by host.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::engine;
use crate::engine::swarm::{Availability, NodeChange};
use crate::facts::Facts;
use crate::inventory::{Inventory, Role as InvRole};
use crate::plan::hosts::{firewall_rules, node_ips};
use crate::plan::roll::{self, Restart};
use crate::roles::{self, CHECK_NEEDS_APPLY, Role};

/// The roles a host gets, with the inputs their scripts need: `docker` (and `nfs-client`
/// with NFS storage) on swarm nodes, `nfs-server` on a managed NAS.
fn roles_for(
    inv: &Inventory,
    facts: &BTreeMap<String, Facts>,
    host: &str,
    allow_downgrade: bool,
) -> Result<Vec<(Role, Vec<Input>)>> {
    let Some(h) = inv.host(host) else { return Ok(Vec::new()) };
    let lock = inv.apt_lock_timeout.to_string();
    let mut list = Vec::new();
    if h.is_swarm_node() {
        let docker = roles::role("docker");
        let metrics = crate::plan::hosts::engine_metrics_address(inv, facts, host);
        let daemon_json = crate::plan::files::daemon_json(&inv.docker, metrics.as_deref());
        let source = serde_json::to_value(inv.docker.source)?.as_str().unwrap_or("distro").to_string();
        let host_facts = facts.get(host).cloned().unwrap_or_default();
        let version = inv.docker.version.as_deref();
        let packages =
            crate::plan::packages::pinned_packages(inv.docker.source, version, &host_facts, allow_downgrade)
                .map_err(|e| anyhow!("{host}: {e}"))?
                .join(" ");
        let inputs = docker.inputs(&[
            ("SOURCE", source),
            ("PACKAGES", packages),
            ("SSH_USER", h.ssh.user.clone()),
            ("APT_LOCK_TIMEOUT", lock.clone()),
            ("ALLOW_DOWNGRADE", if allow_downgrade { "yes" } else { "no" }.to_string()),
            // apply.sh writes it with a final newline: that is what the digest covers.
            ("DAEMON_JSON_SHA256", roles::sha256_hex(format!("{daemon_json}\n").as_bytes())),
            ("DAEMON_JSON", daemon_json),
        ])?;
        list.push((docker, inputs));
        if inv.nfs.is_some() {
            let nfs = roles::role("nfs-client");
            let inputs = nfs.inputs(&[("APT_LOCK_TIMEOUT", lock.clone())])?;
            list.push((nfs, inputs));
        }
    }
    let nfs_server = inv.nfs.as_ref().is_some_and(|n| n.server == h.name);
    if h.is_swarm_node() || nfs_server {
        let firewall = roles::role("firewall");
        let inputs = firewall.inputs(&[("RULES", firewall_rules(inv, facts, host).join("\n"))])?;
        list.push((firewall, inputs));
    }
    if let Some(nfs) = inv.nfs.as_ref().filter(|n| n.managed && n.server == h.name)
        && h.roles.contains(&InvRole::NfsServer)
    {
        let server = roles::role("nfs-server");
        let root = nfs.path.trim_end_matches('/').to_string();
        let volumes: Vec<String> = crate::templates::nas_directories(inv)
            .into_iter()
            .map(|(dir, uid, gid)| format!("{dir} {uid} {gid}"))
            .collect();
        let exports = crate::plan::files::nfs_exports(&root, &node_ips(inv, facts)?);
        let inputs = server.inputs(&[
            ("EXPORT_ROOT", root.clone()),
            ("VOLUMES", volumes.join("\n")),
            ("APT_LOCK_TIMEOUT", lock),
            // apply.sh writes it with a final newline: that is what the digest covers.
            ("EXPORTS_SHA256", roles::sha256_hex(format!("{exports}\n").as_bytes())),
            ("EXPORTS", exports),
        ])?;
        list.push((server, inputs));
    }
    Ok(list)
}

pub async fn check(run: &mut Run) {
    let hosts: Vec<String> = run.healthy().into_iter().filter(|h| run.in_scope(h)).collect();
    for h in &hosts {
        run.progress.step(h, "checking packages");
    }
    let inv = run.inv.clone();
    let facts = run.facts.clone();
    let allow_downgrade = run.options.allow_downgrade;
    let results = run
        .each(&hosts, |name, session| {
            let roles = roles_for(&inv, &facts, &name, allow_downgrade);
            let user = inv.host(&name).map(|h| h.ssh.user.clone()).unwrap_or_default();
            async move {
                let roles = roles?;
                let mut needs = Vec::new();
                let mut warnings = Vec::new();
                for (role, checked) in check_roles(&session, &user, &roles).await? {
                    warnings.extend(checked.warnings);
                    if !checked.reasons.is_empty() {
                        needs.push((role, checked.reasons));
                    }
                }
                Ok((needs, warnings))
            }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok((needs, warnings)) => {
                run.report.warnings.extend(warnings);
                if !needs.is_empty() {
                    run.role_needs.insert(name, needs);
                }
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}

/// What a role's check said: reasons to run its apply (exit 10), and warnings to pass on.
#[derive(Default)]
struct Checked {
    reasons: Vec<String>,
    warnings: Vec<String>,
}

/// Every role's check on the host, in one round trip (see [`commands::checks`]).
async fn check_roles(
    session: &Session,
    ssh_user: &str,
    roles: &[(Role, Vec<Input>)],
) -> Result<Vec<(&'static str, Checked)>> {
    if roles.is_empty() {
        return Ok(Vec::new());
    }
    let scripts: Vec<_> = roles.iter().map(|(role, inputs)| (role.check(), inputs.clone())).collect();
    let output = session.run(&commands::checks(&scripts, session.sudo)).await?;
    let Some(results) = commands::split_checks(&output.stdout, roles.len()) else {
        // The facts may have been read without sudo (over the engine's socket): this is
        // where a missing sudo rule shows first.
        if session.sudo && commands::sudo_refused(&output.stderr) {
            return Err(anyhow!("{}: {}", session.host, commands::sudo_needed(ssh_user)));
        }
        return Err(anyhow!(
            "{}: the role checks ended early (exit {}): {}",
            session.host,
            output.status,
            output.tail()
        ));
    };
    roles
        .iter()
        .zip(results)
        .map(|((role, _), (status, stdout))| {
            Ok((role.name, interpret(session, role, status, &stdout, &output)?))
        })
        .collect()
}

/// A role check's exit status and output: 0 nothing to do, 10 its apply must run (each line
/// a reason), anything else a failure; `warning: ` lines are passed on either way.
fn interpret(
    session: &Session,
    role: &Role,
    status: u32,
    stdout: &str,
    whole: &crate::connection::Output,
) -> Result<Checked> {
    let warnings: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("warning: "))
        .map(|w| format!("{}: {w}", session.host))
        .collect();
    let reasons = || {
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("warning: "))
            .map(str::to_string)
            .collect()
    };
    match status {
        0 => Ok(Checked { reasons: Vec::new(), warnings }),
        CHECK_NEEDS_APPLY => Ok(Checked { reasons: reasons(), warnings }),
        status => Err(anyhow!(
            "{}: check of role {} failed (exit {status}): {}",
            session.host,
            role.name,
            whole.tail()
        )),
    }
}

/// Seconds a restarted engine has to be back in the swarm before the roll stops.
const SETTLE_TIMEOUT: u64 = 120;

pub async fn apply(run: &mut Run) {
    let hosts: Vec<String> = run.healthy().into_iter().filter(|h| run.role_needs.contains_key(h)).collect();
    if hosts.is_empty() {
        return;
    }
    // Restarting an engine stops the node's tasks and, on a manager, takes its raft vote away:
    // hosts of the swarm whose running engine restarts (a new daemon.json, an engine upgrade)
    // roll in the order of `plan::roll`, each back in the swarm before the next. Everything
    // else (fresh installs, engines in no swarm yet, other changes) runs on all hosts at once.
    let (rolling, together): (Vec<String>, Vec<String>) =
        hosts.into_iter().partition(|h| restarts_engine(run, h));
    apply_on(run, &together).await;
    let restarts: Vec<Restart> = rolling
        .iter()
        .map(|h| {
            let swarm = run.facts.get(h).and_then(|f| f.swarm.as_ref());
            let node = swarm.map(|s| s.node_id.as_str()).unwrap_or_default();
            Restart {
                host: h.clone(),
                manager: swarm.is_some_and(|s| s.control_available),
                leader: run
                    .nodes
                    .iter()
                    .any(|n| n.id == node && n.manager_status.as_ref().is_some_and(|m| m.leader)),
            }
        })
        .collect();
    let workers_in_swarm = run.nodes.iter().filter(|n| n.manager_status.is_none()).count();
    let mut stopped_at: Option<String> = None;
    for batch in roll::batches(&restarts, workers_in_swarm, run.options.disruption) {
        if let Some(first) = &stopped_at {
            for host in &batch {
                run.fail(
                    host,
                    format!("{host}: its engine was not restarted: the rolling restart stopped at {first}"),
                );
            }
            continue;
        }
        restart_batch(run, &batch).await;
        stopped_at = batch.iter().find(|h| run.report.is_failed(h)).cloned();
    }
}

/// One batch of the roll: its workers' tasks moved to other nodes first (and waited for until
/// they run there), then the change applied on every host of the batch, each engine waited for
/// until it is back in the swarm, and the drained nodes set to take tasks again.
async fn restart_batch(run: &mut Run, batch: &[String]) {
    let mut drained = Vec::new();
    let mut moved = Vec::new();
    for host in batch {
        if let Some((node, services)) = drain_worker(run, host).await {
            drained.push((host.clone(), node));
            moved.extend(services);
        }
    }
    if !moved.is_empty() {
        await_moved(run, batch, &moved).await;
    }
    apply_on(run, batch).await;
    for host in batch {
        if !run.report.is_failed(host) {
            settle(run, host).await;
        }
    }
    for (host, node) in drained {
        reactivate(run, &host, &node).await;
    }
}

/// Waits until the services whose tasks a drain moved run all their tasks elsewhere. One that
/// cannot (its placement fits no other node) is named in a warning, and the roll goes on.
async fn await_moved(run: &mut Run, batch: &[String], services: &[String]) {
    let Some(leader) = run.swarm.leader.clone() else { return };
    let first = batch.first().cloned().unwrap_or_default();
    run.progress.step(&first, "waiting for its tasks to run on other nodes");
    let timeout = Duration::from_secs(run.options.converge_timeout.max(30));
    let waited = match run.engine(&leader).await {
        Ok(docker) => engine::swarm::await_running(&docker, services, timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = waited {
        run.report.warnings.push(format!(
            "{}: services moved off for the engine restart are {e:#}; they are down until it is back",
            batch.join(", ")
        ));
    }
}

/// The host's engine runs in a swarm, and its daemon.json or its engine package's version
/// changes: applying restarts it, in the roll. An engine in no swarm yet (a fresh host, or one
/// whose engine was installed by hand) holds no task and no vote of the cluster: it restarts
/// at once with the others.
fn restarts_engine(run: &Run, host: &str) -> bool {
    let facts = run.facts.get(host);
    let installed = facts.is_some_and(|f| f.docker_installed);
    let in_swarm = facts.is_some_and(|f| f.swarm_state() != "inactive");
    let restarting = |r: &String| r.starts_with("restart docker for ");
    let restarts = run.role_needs.get(host).is_some_and(|needs| {
        needs.iter().any(|(role, reasons)| *role == "docker" && reasons.iter().any(restarting))
    });
    installed && in_swarm && restarts
}

/// Before a worker's engine restarts, its tasks move to other nodes (a drain, waited for until
/// none runs there), so they are not all down at once. Not a change of the run: the node takes
/// tasks again right after. Returns the node drained, if any, and the services it moved.
async fn drain_worker(run: &mut Run, host: &str) -> Option<(String, Vec<String>)> {
    if !run.inv.docker.drain_workers_on_restart {
        return None; // the inventory asks for restarts in place
    }
    let swarm = run.facts.get(host)?.swarm.clone()?;
    if !swarm.is_active() || swarm.control_available {
        return None; // not in the swarm, or a manager: managers roll for quorum, tasks stay
    }
    let active = run.nodes.iter().any(|n| n.id == swarm.node_id && n.spec.availability == "active");
    let leader = run.swarm.leader.clone()?;
    if !active || run.report.is_failed(&leader) {
        return None; // drained by someone else on purpose: left as it is
    }
    run.progress.step(host, "moving its tasks to other nodes");
    let timeout = Duration::from_secs(run.options.converge_timeout.max(30));
    let drained = match run.engine(&leader).await {
        Ok(docker) => engine::swarm::drain(&docker, &swarm.node_id, timeout).await,
        Err(e) => Err(e),
    };
    match drained {
        Ok(services) => Some((swarm.node_id, services)),
        Err(e) => {
            run.report
                .warnings
                .push(format!("{host}: its tasks could not be moved before the restart: {e:#}"));
            None
        }
    }
}

async fn reactivate(run: &mut Run, host: &str, node: &str) {
    let Some(leader) = run.swarm.leader.clone() else { return };
    let change = NodeChange::Availability(Availability::Active);
    let done = match run.engine(&leader).await {
        Ok(docker) => engine::swarm::update_node(&docker, node, &change).await,
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        run.fail(
            host,
            format!("{host}: drained for its engine restart, but could not take tasks again: {e:#}"),
        );
    }
}

/// Waits on the host until its restarted engine is back (see roles/docker/settle.sh).
async fn settle(run: &mut Run, host: &str) {
    let Some(session) = run.sessions.get(host).cloned() else { return };
    run.progress.step(host, "waiting for the engine to be back in the swarm");
    let in_swarm = run.facts.get(host).is_some_and(|f| f.swarm_state() == "active");
    let inputs = [
        Input::new("IN_SWARM", if in_swarm { "yes" } else { "no" }),
        Input::new("TIMEOUT", SETTLE_TIMEOUT.to_string()),
    ];
    let step = roles::role("docker").step("settle");
    if let Err(e) = session.run_ok(&commands::script(&step, &inputs, session.sudo)).await {
        run.fail(host, format!("{e:#}"));
        return;
    }
    // And as the swarm sees it: the node Ready, a manager Reachable, before the next restart.
    let swarm = run.facts.get(host).and_then(|f| f.swarm.clone()).filter(|s| s.is_active());
    let (Some(swarm), Some(leader)) = (swarm, run.swarm.leader.clone()) else { return };
    let ready = match run.engine(&leader).await {
        Ok(docker) => {
            let timeout = Duration::from_secs(SETTLE_TIMEOUT);
            engine::swarm::await_ready(&docker, &swarm.node_id, swarm.control_available, timeout).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        run.fail(host, format!("{host}: its engine restarted, but {e:#}; not restarting other hosts"));
    }
}

async fn apply_on(run: &mut Run, hosts: &[String]) {
    if hosts.is_empty() {
        return;
    }
    let inv = run.inv.clone();
    let facts = run.facts.clone();
    let progress = run.progress.clone();
    let needs = Arc::new(run.role_needs.clone());
    let allow_downgrade = run.options.allow_downgrade;
    let results = run
        .each(hosts, |name, session| {
            let roles = roles_for(&inv, &facts, &name, allow_downgrade);
            let wanted: Vec<&'static str> =
                needs.get(&name).map(|n| n.iter().map(|(r, _)| *r).collect()).unwrap_or_default();
            let progress = progress.clone();
            async move {
                let mut changes = Vec::new();
                for (role, inputs) in roles? {
                    if !wanted.contains(&role.name) {
                        continue;
                    }
                    progress.step(&name, &format!("applying role {}", role.name));
                    let output =
                        session.run_ok(&commands::script(&role.apply(), &inputs, session.sudo)).await?;
                    changes.extend(
                        output
                            .stdout
                            .lines()
                            .filter_map(|l| l.strip_prefix("changed: "))
                            .map(|c| format!("{}: {c}", role.name)),
                    );
                }
                Ok(changes)
            }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(changes) => run.report.host(&name).changes.extend(changes),
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}
