//! Waiting for deployed stacks: the swarm's services and tasks of each stack, read through the
//! manager's Engine API once a second and judged by `plan::converge` until it converged, an
//! update failed, or the time is up. Stacks are deployed one after another and then awaited
//! together: a run with five stacks waits as long as its slowest one, not their sum.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListNodesOptions, ListServicesOptions, ListTasksOptions};

use crate::plan::converge::{Verdict, judge};

/// The stacks still awaited, each against the same deadline.
pub struct StackWaiter {
    nodes: BTreeMap<String, String>,
    pending: Vec<String>,
    timeout: u64,
    deadline: Instant,
}

impl StackWaiter {
    pub async fn new(docker: &Docker, stacks: Vec<String>, timeout: u64) -> StackWaiter {
        // Node IDs to host names, for task errors that name where they happened.
        let nodes = docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| Some((n.id?, n.description?.hostname?)))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(timeout);
        StackWaiter { nodes, pending: stacks, timeout, deadline }
    }

    /// The stacks still awaited, in the order they were deployed.
    pub fn pending(&self) -> &[String] {
        &self.pending
    }

    /// The next stack that is done: `Ok` once it converged, `Err` with what is wrong (each
    /// failing task's error, or what it still waited for when the time ran out). `None` when
    /// none is left.
    pub async fn next(&mut self, docker: &Docker) -> Option<(String, Result<(), String>)> {
        loop {
            if self.pending.is_empty() {
                return None;
            }
            let timed_out = Instant::now() >= self.deadline;
            for i in 0..self.pending.len() {
                let outcome = match judge_stack(docker, &self.pending[i], &self.nodes).await {
                    Verdict::Converged => Ok(()),
                    Verdict::Failed(why) => Err(why.join("\n")),
                    Verdict::Waiting(why) if timed_out => Err(format!(
                        "services did not reach their desired replicas within {} s:\n{}",
                        self.timeout,
                        why.join("\n")
                    )),
                    Verdict::Waiting(_) => continue,
                };
                return Some((self.pending.remove(i), outcome));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn judge_stack(docker: &Docker, stack: &str, nodes: &BTreeMap<String, String>) -> Verdict {
    let filters: HashMap<String, Vec<String>> =
        [("label".to_string(), vec![format!("com.docker.stack.namespace={stack}")])].into();
    let services = docker
        .list_services(Some(ListServicesOptions { filters: Some(filters.clone()), status: None }))
        .await;
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await;
    match (services, tasks) {
        (Ok(services), Ok(tasks)) => judge(&services, &tasks, nodes),
        (Err(e), _) | (_, Err(e)) => {
            Verdict::Waiting(vec![format!("listing the stack's services failed: {e}")])
        }
    }
}
