//! Has a deployed stack converged? Decided from the swarm's typed service and task lists (the
//! Engine API's), so that it can be tested on made-up lists: a service is done when the tasks
//! of its *current* spec run (or completed, for a job) as many as it wants and no rolling
//! update is still under way; an update that paused or rolled back is a failure at once.

use std::collections::BTreeMap;

use bollard::models::{Service, ServiceUpdateStatusStateEnum as Update, Task, TaskSpec, TaskState};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Converged,
    /// Not yet; why, per service (and each failing task's error).
    Waiting(Vec<String>),
    /// It will not get there by waiting.
    Failed(Vec<String>),
}

/// The verdict for one stack's `services` and their `tasks`; `node_names` maps node IDs to
/// host names for messages.
pub fn judge(services: &[Service], tasks: &[Task], node_names: &BTreeMap<String, String>) -> Verdict {
    if services.is_empty() {
        return Verdict::Waiting(vec!["no service of the stack is listed yet".into()]);
    }
    let mut waiting = Vec::new();
    let mut failed = Vec::new();
    for service in services {
        let name = service.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
        let id = service.id.clone().unwrap_or_default();
        let own: Vec<&Task> = tasks.iter().filter(|t| t.service_id.as_deref() == Some(id.as_str())).collect();
        let current: Vec<&Task> = own.iter().copied().filter(|t| is_current(service, t)).collect();
        let update = service.update_status.as_ref().and_then(|u| u.state);
        match update {
            Some(Update::UPDATING | Update::ROLLBACK_STARTED) => {
                waiting.push(format!("service {name}: its rolling update is under way"));
                continue;
            }
            Some(state @ (Update::PAUSED | Update::ROLLBACK_PAUSED | Update::ROLLBACK_COMPLETED)) => {
                let message =
                    service.update_status.as_ref().and_then(|u| u.message.clone()).unwrap_or_default();
                let mut lines =
                    vec![format!("service {name}: its rolling update ended as '{state}': {message}")];
                lines.extend(task_errors(&name, &current, node_names));
                failed.extend(lines);
                continue;
            }
            _ => {}
        }
        let mode = service.spec.as_ref().and_then(|s| s.mode.clone()).unwrap_or_default();
        let count = |state: TaskState| current.iter().filter(|t| task_state(t) == Some(state)).count();
        let (done, wanted) = if let Some(job) = &mode.replicated_job {
            (count(TaskState::COMPLETE), job.total_completions.unwrap_or(1).max(0) as usize)
        } else if mode.global_job.is_some() {
            let all = current.len();
            (count(TaskState::COMPLETE), all.max(1))
        } else if mode.global.is_some() {
            // One task per eligible node: every current task meant to run must run.
            let meant = current.iter().filter(|t| t.desired_state == Some(TaskState::RUNNING)).count();
            (count_running(&current), meant.max(1))
        } else {
            let replicas = mode.replicated.as_ref().and_then(|r| r.replicas).unwrap_or(1).max(0) as usize;
            (count_running(&current), replicas)
        };
        if done < wanted {
            waiting.push(format!("service {name}: {done}/{wanted}"));
            waiting.extend(task_errors(&name, &current, node_names));
        }
    }
    match (failed.is_empty(), waiting.is_empty()) {
        (false, _) => Verdict::Failed(failed),
        (true, false) => Verdict::Waiting(waiting),
        (true, true) => Verdict::Converged,
    }
}

/// A task of the service's current spec: the orchestrator copies the service's task template
/// into each task it creates, so an old task (from before an update) has another one. Only
/// what a deploy changes is compared: the engine shows the service's template with defaults
/// filled in (stop grace period, restart policy, runtime) that the tasks' copies lack.
fn is_current(service: &Service, task: &Task) -> bool {
    let Some(template) = service.spec.as_ref().and_then(|s| s.task_template.as_ref()) else { return false };
    let iteration_ok = match (&service.job_status, &task.job_iteration) {
        (Some(status), Some(iteration)) => {
            status.job_iteration.as_ref().and_then(|v| v.index) == iteration.index
        }
        _ => true,
    };
    task.spec.as_ref().is_some_and(|spec| fingerprint(spec) == fingerprint(template)) && iteration_ok
}

/// The parts of a task spec that a deploy changes and that the engine shows alike in a
/// service's template and in its tasks.
fn fingerprint(spec: &TaskSpec) -> Vec<Value> {
    let spec = serde_json::to_value(spec).unwrap_or_default();
    let container = ["Image", "Command", "Args", "Env", "Labels", "Mounts", "Secrets", "Configs"]
        .iter()
        .map(|key| spec.pointer(&format!("/ContainerSpec/{key}")).cloned().unwrap_or(Value::Null));
    let task = ["/ForceUpdate", "/Networks", "/Placement/Constraints"]
        .iter()
        .map(|pointer| spec.pointer(pointer).cloned().unwrap_or(Value::Null));
    container.chain(task).collect()
}

fn task_state(task: &Task) -> Option<TaskState> {
    task.status.as_ref().and_then(|s| s.state)
}

fn count_running(tasks: &[&Task]) -> usize {
    tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING) && task_state(t) == Some(TaskState::RUNNING))
        .count()
}

/// "task web.1 on w1: rejected: No such image: ..." for each current task that failed (the
/// last few: a task the swarm keeps restarting fails again and again).
fn task_errors(service: &str, tasks: &[&Task], node_names: &BTreeMap<String, String>) -> Vec<String> {
    let failed: Vec<String> = tasks
        .iter()
        .filter(|t| matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED)))
        .map(|t| {
            let status = t.status.clone().unwrap_or_default();
            let node =
                t.node_id.as_deref().map(|n| node_names.get(n).cloned().unwrap_or_else(|| n.to_string()));
            let slot = t.slot.map(|s| format!(".{s}")).unwrap_or_default();
            format!(
                "  task {service}{slot} on {}: {}: {}",
                node.unwrap_or_else(|| "no node".into()),
                status.state.map(|s| s.to_string()).unwrap_or_default(),
                status.err.or(status.message).unwrap_or_default()
            )
        })
        .collect();
    failed[failed.len().saturating_sub(5)..].to_vec()
}

#[cfg(test)]
#[path = "converge_tests.rs"]
mod tests;
