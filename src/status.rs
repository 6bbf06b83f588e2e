//! `clusterup status`: the swarm's nodes as the first reachable manager sees them.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::apply::list_nodes;
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
pub struct Status {
    /// The manager that answered.
    pub via: String,
    pub nodes: Vec<NodeRow>,
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
        let nodes = list_nodes(&session).await;
        session.close().await;
        match nodes {
            Ok(nodes) => {
                let mut rows: Vec<NodeRow> = nodes
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
                                if m.leader {
                                    "Leader".to_string()
                                } else {
                                    capitalise(&m.reachability)
                                }
                            })
                            .unwrap_or_default(),
                        engine_version: n.description.engine.engine_version,
                        address: n.status.addr,
                        labels: n.spec.labels,
                    })
                    .collect();
                rows.sort_by(|a, b| a.hostname.cmp(&b.hostname));
                return Ok(Status {
                    via: host.name.clone(),
                    nodes: rows,
                });
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Err(anyhow!(
        "no manager of the inventory could list the swarm:\n  {}",
        errors.join("\n  ")
    ))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub fn print_human(status: &Status) {
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
