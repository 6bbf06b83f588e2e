//! Package roles on the hosts: `docker` and `firewall` on the swarm nodes, `nfs-client` when
//! the inventory has NFS storage, `nfs-server` on a managed NAS. Each role's check runs first;
//! its apply runs only where the check asked, and an engine restart rolls host by host.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow};

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::facts::Facts;
use crate::inventory::{Inventory, Role as InvRole};
use crate::plan::hosts::{firewall_rules, node_ips};
use crate::roles::{self, CHECK_NEEDS_APPLY, Role};

/// The roles a host gets, with the inputs their scripts need: `docker` (and `nfs-client`
/// with NFS storage) on swarm nodes, `nfs-server` on a managed NAS.
fn roles_for(
    inv: &Inventory,
    facts: &BTreeMap<String, Facts>,
    host: &str,
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
        let packages = crate::plan::packages::engine_packages(inv.docker.source, &host_facts).join(" ");
        let inputs = docker.inputs(&[
            ("SOURCE", source),
            ("PACKAGES", packages),
            ("SSH_USER", h.ssh.user.clone()),
            ("APT_LOCK_TIMEOUT", lock.clone()),
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
        let volumes: Vec<String> =
            inv.volumes.iter().map(|v| format!("{} {} {}", v.name, v.uid, v.gid)).collect();
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
    let results = run
        .each(&hosts, |name, session| {
            let roles = roles_for(&inv, &facts, &name);
            async move {
                let roles = roles?;
                let mut needs = Vec::new();
                let mut warnings = Vec::new();
                for (role, checked) in check_roles(&session, &roles).await? {
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
    roles: &[(Role, Vec<Input>)],
) -> Result<Vec<(&'static str, Checked)>> {
    if roles.is_empty() {
        return Ok(Vec::new());
    }
    let scripts: Vec<_> = roles.iter().map(|(role, inputs)| (role.check(), inputs.clone())).collect();
    let output = session.run(&commands::checks(&scripts, session.sudo)).await?;
    let Some(results) = commands::split_checks(&output.stdout, roles.len()) else {
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
    // hosts whose running engine gets a new daemon.json roll one at a time, managers first,
    // each back in the swarm before the next. Everything else (fresh installs, other changes)
    // runs on all hosts at once.
    let (mut rolling, together): (Vec<String>, Vec<String>) =
        hosts.into_iter().partition(|h| restarts_engine(run, h));
    apply_on(run, &together).await;
    rolling.sort_by_key(|h| {
        !run.facts.get(h).and_then(|f| f.swarm.as_ref()).is_some_and(|s| s.control_available)
    });
    let mut stopped_at: Option<String> = None;
    for host in rolling {
        if let Some(first) = &stopped_at {
            run.fail(
                &host,
                format!("{host}: its engine was not restarted: the rolling restart stopped at {first}"),
            );
            continue;
        }
        let drained = drain_worker(run, &host).await;
        apply_on(run, std::slice::from_ref(&host)).await;
        if !run.report.is_failed(&host) {
            settle(run, &host).await;
        }
        if let Some(node) = drained {
            reactivate(run, &host, &node).await;
        }
        if run.report.is_failed(&host) {
            stopped_at = Some(host);
        }
    }
}

/// The host's engine runs and its daemon.json changes: applying restarts it.
fn restarts_engine(run: &Run, host: &str) -> bool {
    let installed = run.facts.get(host).is_some_and(|f| f.docker_installed);
    let rewrites = run.role_needs.get(host).is_some_and(|needs| {
        needs
            .iter()
            .any(|(role, reasons)| *role == "docker" && reasons.iter().any(|r| r.contains("daemon.json")))
    });
    installed && rewrites
}

/// Before a worker's engine restarts, its tasks move to other nodes (a drain, waited for until
/// none runs there), so they are not all down at once. Not a change of the run: the node takes
/// tasks again right after. Returns the node drained, if any.
async fn drain_worker(run: &mut Run, host: &str) -> Option<String> {
    if !run.inv.docker.drain_workers_on_restart {
        return None; // the inventory asks for restarts in place
    }
    let swarm = run.facts.get(host)?.swarm.clone()?;
    if !swarm.is_active() || swarm.control_available {
        return None; // not in the swarm, or a manager: managers roll for quorum, tasks stay
    }
    let active = run.nodes.iter().any(|n| n.id == swarm.node_id && n.spec.availability == "active");
    let leader = run.swarm.leader.clone()?;
    let session = run.sessions.get(&leader).cloned()?;
    if !active || run.report.is_failed(&leader) {
        return None; // drained by someone else on purpose: left as it is
    }
    run.progress.step(host, "moving its tasks to other nodes");
    let inputs = [
        Input::new("NODE", swarm.node_id.clone()),
        Input::new("TIMEOUT", run.options.converge_timeout.max(30).to_string()),
    ];
    match session.run_ok(&commands::script(&roles::role("swarm").step("drain"), &inputs, session.sudo)).await
    {
        Ok(_) => Some(swarm.node_id),
        Err(e) => {
            run.report
                .warnings
                .push(format!("{host}: its tasks could not be moved before the restart: {e:#}"));
            None
        }
    }
}

async fn reactivate(run: &mut Run, host: &str, node: &str) {
    let Some(session) = run.swarm.leader.clone().and_then(|l| run.sessions.get(&l).cloned()) else { return };
    let inputs = [Input::new("NODE", node.to_string())];
    let step = roles::role("swarm").step("activate");
    if let Err(e) = session.run_ok(&commands::script(&step, &inputs, session.sudo)).await {
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
    let results = run
        .each(hosts, |name, session| {
            let roles = roles_for(&inv, &facts, &name);
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
