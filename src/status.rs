//! `clusterup status`: the swarm's nodes as the first reachable manager sees them.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::connection;
use crate::inventory::Inventory;
use crate::report::RunLog;

#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub hostname: String,
    pub id: String,
    pub role: String,
    pub state: String,
    pub availability: String,
    pub manager_status: String,
    pub engine_version: String,
    pub address: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct NetworkRow {
    pub name: String,
    pub encrypted: bool,
    pub mtu: String,
    pub attachable: bool,
}

#[derive(Debug, Serialize)]
pub struct ServiceRow {
    pub stack: String,
    pub service: String,
    pub mode: String,
    /// running/desired
    pub replicas: String,
}

#[derive(Debug, Serialize)]
pub struct Status {
    /// The manager that answered.
    pub via: String,
    pub nodes: Vec<NodeRow>,
    pub networks: Vec<NetworkRow>,
    pub services: Vec<ServiceRow>,
    /// Every exposed route: URL -> upstream.
    pub routes: Vec<(String, String)>,
    /// The swarm's dispatcher heartbeat: how soon a lost node is noticed (about 3 periods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatcher_heartbeat: Option<String>,
    /// Where the monitoring stack's Grafana is, when the inventory has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<String>,
    /// Who holds the cluster lock now, if anyone.
    pub lock: Option<String>,
    /// The last lines of the audit log (one per run that changed something).
    pub audit: Vec<String>,
}

pub async fn status(inv: &Inventory, log: Arc<RunLog>) -> Result<Status> {
    let mut errors = Vec::new();
    for host in inv.hosts.iter().filter(|h| h.is_manager()) {
        let session = match connection::connect(host, log.clone()).await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{e:#}"));
                continue;
            }
        };
        let (nodes, objects, heartbeat) = match crate::engine::connect(&session).await {
            Ok(docker) => {
                let on_host = |e: anyhow::Error| anyhow!("{}: {e:#}", host.name);
                (
                    crate::engine::swarm::nodes(&docker).await.map_err(on_host),
                    cluster_objects(&docker).await.map_err(on_host),
                    crate::engine::swarm::heartbeat(&docker).await.ok().flatten(),
                )
            }
            Err(e) => (Err(e), Err(anyhow!("no engine")), None),
        };
        let (lock, audit) = state(&session).await;
        session.close().await;
        match (nodes, objects) {
            (Ok(nodes), Ok((networks, services))) => {
                let mut rows: Vec<NodeRow> =
                    nodes
                        .into_iter()
                        .map(|n| NodeRow {
                            hostname: n.description.hostname,
                            id: n.id,
                            role: n.spec.role,
                            state: n.status.state,
                            availability: n.spec.availability,
                            manager_status: n
                                .manager_status
                                .map(|m| {
                                    if m.leader { "Leader".to_string() } else { capitalise(&m.reachability) }
                                })
                                .unwrap_or_default(),
                            engine_version: n.description.engine.engine_version,
                            address: n.status.addr,
                            labels: n.spec.labels,
                        })
                        .collect();
                rows.sort_by(|a, b| a.hostname.cmp(&b.hostname));
                let routes = crate::templates::routes(inv)
                    .into_iter()
                    .map(|r| {
                        let scheme = if r.internal_tls { "https (internal CA)" } else { "https" };
                        (format!("{scheme}://{}", r.host), format!("{}:{}", r.upstream, r.port))
                    })
                    .collect();
                return Ok(Status {
                    via: host.name.clone(),
                    nodes: rows,
                    networks,
                    services,
                    routes,
                    dispatcher_heartbeat: heartbeat.map(crate::inventory::format_duration),
                    monitoring: monitoring(inv),
                    lock,
                    audit,
                });
            }
            (Err(e), _) | (_, Err(e)) => errors.push(format!("{e:#}")),
        }
    }
    Err(anyhow!("no manager of the inventory could list the swarm:\n  {}", errors.join("\n  ")))
}

/// The line `status` shows for the monitoring stack: Grafana's URL and how to log in, or how
/// to reach it when it is not exposed.
pub fn monitoring(inv: &Inventory) -> Option<String> {
    let stack = inv
        .stacks
        .iter()
        .find(|s| matches!(&s.template, crate::inventory::TemplateRef::Builtin(t) if t == "monitoring"))?;
    let secret =
        stack.vars.get("grafana_admin_secret").and_then(|v| v.as_str()).unwrap_or("grafana_admin_password");
    Some(match stack.expose.iter().find(|e| e.service == "grafana") {
        Some(route) => {
            format!("Grafana: https://{}/ (user admin, the password of secret `{secret}`)", route.host)
        }
        None => format!(
            "Grafana of stack `{}` is not exposed: add `expose: [{{service: grafana, host: NAME, port: 3000}}]` to it",
            stack.name
        ),
    })
}

/// The cluster lock's holder and the audit log's last lines, as this manager keeps them.
async fn state(session: &crate::connection::Session) -> (Option<String>, Vec<String>) {
    let script = crate::roles::role("state").step("show");
    let Ok(out) = session.run(&crate::commands::script(&script, &[], session.sudo)).await else {
        return (None, Vec::new());
    };
    let lock_lines: Vec<&str> = out.stdout.lines().filter_map(|l| l.strip_prefix("lock ")).collect();
    let lock = (!lock_lines.is_empty()).then(|| {
        let text = lock_lines.join("\n");
        let age = lock_lines.iter().find_map(|l| l.strip_prefix("age=")).unwrap_or("?");
        format!("{}, refreshed {age} s ago", crate::apply::lock::describe(&text))
    });
    let audit = out.stdout.lines().filter_map(|l| l.strip_prefix("audit ")).map(str::to_string).collect();
    (lock, audit)
}

/// `clusterup unlock`: removes the lock on every reachable manager, saying what it held.
pub async fn unlock(inv: &Inventory, log: Arc<RunLog>) -> Result<String> {
    let script = crate::roles::role("state").step("unlock");
    let mut said = Vec::new();
    let mut reached = false;
    for host in inv.hosts.iter().filter(|h| h.is_manager()) {
        let Ok(session) = connection::connect(host, log.clone()).await else { continue };
        reached = true;
        let invocation =
            crate::commands::script(&script, &[crate::commands::Input::new("HOLDER", "")], session.sudo);
        let out = session.run(&invocation).await;
        session.close().await;
        match out {
            Ok(out) if out.success() && !out.stdout.trim().is_empty() => said.push(format!(
                "{}: removed the lock of {}",
                host.name,
                crate::apply::lock::describe(&out.stdout)
            )),
            Ok(out) if out.success() => {}
            Ok(out) => return Err(anyhow!("{}: unlock failed: {}", host.name, out.tail())),
            Err(e) => return Err(e),
        }
    }
    if !reached {
        return Err(anyhow!("no manager of the inventory could be reached"));
    }
    Ok(if said.is_empty() { "the cluster was not locked".into() } else { said.join("\n") })
}

/// The overlay networks (not Docker's own `ingress`) and every stack's services.
async fn cluster_objects(docker: &bollard::Docker) -> Result<(Vec<NetworkRow>, Vec<ServiceRow>)> {
    let observed = crate::engine::objects::observe(docker).await?;
    let networks = observed
        .networks
        .into_iter()
        .filter(|n| n.name != "ingress")
        .map(|n| {
            let options = n.options.unwrap_or_default();
            NetworkRow {
                encrypted: options.contains_key("encrypted"),
                mtu: options
                    .get("com.docker.network.driver.mtu")
                    .cloned()
                    .unwrap_or_else(|| "default".into()),
                attachable: n.attachable,
                name: n.name,
            }
        })
        .collect();
    let mut services: Vec<ServiceRow> =
        crate::engine::objects::services(docker).await?.into_iter().filter_map(service_row).collect();
    services.sort_by(|a, b| (&a.stack, &a.service).cmp(&(&b.stack, &b.service)));
    Ok((networks, services))
}

/// A service of a stack as `docker stack services` shows it (mode, running/desired tasks).
fn service_row(service: bollard::models::Service) -> Option<ServiceRow> {
    let spec = service.spec?;
    let stack = spec.labels.as_ref()?.get(crate::engine::objects::NAMESPACE_LABEL)?.clone();
    let mode = spec.mode.unwrap_or_default();
    let mode = if mode.global.is_some() {
        "global"
    } else if mode.replicated_job.is_some() {
        "replicated job"
    } else if mode.global_job.is_some() {
        "global job"
    } else {
        "replicated"
    };
    let status = service.service_status.unwrap_or_default();
    let (running, desired) = (status.running_tasks.unwrap_or(0), status.desired_tasks.unwrap_or(0));
    Some(ServiceRow {
        stack,
        service: spec.name.unwrap_or_default(),
        mode: mode.into(),
        replicas: format!("{running}/{desired}"),
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

pub fn print_human(status: &Status) {
    print_nodes(status);
    if let Some(heartbeat) = &status.dispatcher_heartbeat {
        println!(
            "\ndispatcher heartbeat {heartbeat}: a node that stops answering is declared down after about 3 of them"
        );
    }
    if !status.networks.is_empty() {
        println!("\n{:<24} {:<10} {:<8} ATTACHABLE", "NETWORK", "ENCRYPTED", "MTU");
        for n in &status.networks {
            println!("{:<24} {:<10} {:<8} {}", n.name, n.encrypted, n.mtu, n.attachable);
        }
    }
    if !status.services.is_empty() {
        println!("\n{:<16} {:<32} {:<12} REPLICAS", "STACK", "SERVICE", "MODE");
        for s in &status.services {
            println!("{:<16} {:<32} {:<12} {}", s.stack, s.service, s.mode, s.replicas);
        }
    }
    if !status.routes.is_empty() {
        println!("\nROUTES");
        for (url, upstream) in &status.routes {
            println!("{url} -> {upstream}");
        }
    }
    if let Some(monitoring) = &status.monitoring {
        println!("\nMONITORING\n{monitoring}");
    }
    if let Some(lock) = &status.lock {
        println!("\nLOCKED by {lock}");
    }
    if !status.audit.is_empty() {
        println!("\nLAST CHANGES (audit log on {})", status.via);
        for line in &status.audit {
            println!("{line}");
        }
    }
}

fn print_nodes(status: &Status) {
    println!(
        "{:<16} {:<8} {:<7} {:<12} {:<12} {:<16} {:<15} LABELS",
        "NODE", "ROLE", "STATE", "AVAILABILITY", "MANAGER", "ENGINE", "ADDRESS"
    );
    for n in &status.nodes {
        let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<16} {:<8} {:<7} {:<12} {:<12} {:<16} {:<15} {}",
            n.hostname,
            n.role,
            n.state,
            n.availability,
            n.manager_status,
            n.engine_version,
            n.address,
            labels.join(",")
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::inventory::Inventory;

    fn inventory(stacks: &str) -> Inventory {
        let text = format!(
            "cluster: {{name: s}}\nhosts: [{{name: m1, address: 10.0.0.1, roles: [manager]}}]\n\
             networks: [{{name: reverse-proxy}}, {{name: monitoring}}]\n\
             secrets: [{{name: influxdb_admin_password, env: A}}, {{name: influxdb_password, env: B}}, {{name: grafana_admin_password, env: C}}]\n\
             stacks:\n{stacks}"
        );
        Inventory::from_text(Path::new("/inv/s.yml"), &text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn status_names_grafanas_url_or_how_to_expose_it() {
        assert_eq!(super::monitoring(&inventory("  - {name: app, template: whoami}\n")), None);
        let exposed = inventory(
            "  - {name: mon, template: monitoring, expose: [{service: grafana, host: grafana.example.com, port: 3000}]}\n",
        );
        assert_eq!(
            super::monitoring(&exposed).as_deref(),
            Some(
                "Grafana: https://grafana.example.com/ (user admin, the password of secret `grafana_admin_password`)"
            )
        );
        let hidden = super::monitoring(&inventory("  - {name: mon, template: monitoring}\n")).unwrap();
        assert!(hidden.contains("stack `mon` is not exposed") && hidden.contains("port: 3000"), "{hidden}");
    }
}
