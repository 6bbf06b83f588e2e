//! Waiting for a deployed stack: the swarm's services and tasks of the stack, read through the
//! manager's Engine API once a second and judged by `plan::converge` until they converged, an
//! update failed, or the time is up.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};

use crate::plan::converge::{Verdict, judge};

/// `Ok` once the stack converged; `Err` with what is wrong (each failing task's error).
pub async fn await_stack(docker: &Docker, stack: &str, timeout: u64) -> Result<(), String> {
    let nodes: BTreeMap<String, String> = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| Some((n.id?, n.description?.hostname?)))
        .collect();
    let filters: HashMap<String, Vec<String>> =
        [("label".to_string(), vec![format!("com.docker.stack.namespace={stack}")])].into();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let services = docker
            .list_services(Some(ListServicesOptions { filters: Some(filters.clone()), status: None }))
            .await;
        let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) })).await;
        let verdict = match (services, tasks) {
            (Ok(services), Ok(tasks)) => judge(&services, &tasks, &nodes),
            (Err(e), _) | (_, Err(e)) => {
                Verdict::Waiting(vec![format!("listing the stack's services failed: {e}")])
            }
        };
        match verdict {
            Verdict::Converged => return Ok(()),
            Verdict::Failed(why) => return Err(why.join("\n")),
            Verdict::Waiting(why) if Instant::now() >= deadline => {
                return Err(format!(
                    "services did not reach their desired replicas within {timeout} s:\n{}",
                    why.join("\n")
                ));
            }
            Verdict::Waiting(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
