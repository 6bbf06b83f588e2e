//! Package roles on the swarm nodes: `docker` everywhere, `nfs-client` when the inventory has
//! NFS storage. Each role's check runs first; its apply runs only where the check asked.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde_json::json;

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::inventory::Inventory;
use crate::roles::{self, CHECK_NEEDS_APPLY, Role};

/// The roles a host gets, with the inputs their scripts need.
fn roles_for(inv: &Inventory, host: &str) -> Result<Vec<(Role, Vec<Input>)>> {
    let Some(h) = inv.host(host).filter(|h| h.is_swarm_node()) else {
        return Ok(Vec::new());
    };
    let docker = roles::role("docker");
    let vars = json!({
        "log_max_size": inv.docker.log_max_size,
        "log_max_file": inv.docker.log_max_file,
        "metrics_address": inv.docker.metrics_address,
    });
    let source = serde_json::to_value(inv.docker.source)?.as_str().unwrap_or("distro").to_string();
    let lock = inv.apt_lock_timeout.to_string();
    let inputs = docker.inputs(
        &vars,
        &[("SOURCE", source), ("SSH_USER", h.ssh.user.clone()), ("APT_LOCK_TIMEOUT", lock.clone())],
    )?;
    let mut list = vec![(docker, inputs)];
    if inv.nfs.is_some() {
        let nfs = roles::role("nfs-client");
        let inputs = nfs.inputs(&json!({}), &[("APT_LOCK_TIMEOUT", lock)])?;
        list.push((nfs, inputs));
    }
    Ok(list)
}

pub async fn check(run: &mut Run) {
    let hosts = run.healthy();
    for h in &hosts {
        run.progress.step(h, "checking packages");
    }
    let inv = run.inv.clone();
    let results = run
        .each(&hosts, |name, session| {
            let roles = roles_for(&inv, &name);
            async move {
                let mut needs = Vec::new();
                for (role, inputs) in roles? {
                    let reasons = check_role(&session, &role, &inputs).await?;
                    if !reasons.is_empty() {
                        needs.push((role.name, reasons));
                    }
                }
                Ok(needs)
            }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(needs) if needs.is_empty() => {}
            Ok(needs) => {
                run.role_needs.insert(name, needs);
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}

async fn check_role(session: &Session, role: &Role, inputs: &[Input]) -> Result<Vec<String>> {
    let output = session.run(&commands::script(&role.check(), inputs, session.sudo)).await?;
    match output.status {
        0 => Ok(Vec::new()),
        CHECK_NEEDS_APPLY => {
            Ok(output.stdout.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
        }
        status => Err(anyhow!(
            "{}: check of role {} failed (exit {status}): {}",
            session.host,
            role.name,
            output.tail()
        )),
    }
}

pub async fn apply(run: &mut Run) {
    let hosts: Vec<String> = run.healthy().into_iter().filter(|h| run.role_needs.contains_key(h)).collect();
    if hosts.is_empty() {
        return;
    }
    let inv = run.inv.clone();
    let progress = run.progress.clone();
    let needs = Arc::new(run.role_needs.clone());
    let results = run
        .each(&hosts, |name, session| {
            let roles = roles_for(&inv, &name);
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
                    let output = session.run(&commands::script(&role.apply(), &inputs, session.sudo)).await?;
                    if !output.success() {
                        return Err(anyhow!(
                            "{name}: role {} failed (exit {}): {}",
                            role.name,
                            output.status,
                            output.tail()
                        ));
                    }
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
