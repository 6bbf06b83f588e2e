//! Swarm membership through the Engine API: creating a swarm, joining and leaving it, the node
//! list, node updates (labels, role, availability) and node removal. Each call names what it
//! did or why it failed; the caller adds the host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::{
    Node, NodeSpec as EngineNodeSpec, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, SwarmInitRequest,
    SwarmJoinRequest, SwarmSpec, SwarmSpecDispatcher, Task, TaskState,
};
use bollard::query_parameters::{
    DeleteNodeOptions, LeaveSwarmOptions, ListNodesOptions, ListTasksOptions, UpdateNodeOptions,
    UpdateSwarmOptions,
};

use crate::plan::swarm::{
    EngineDescription, ManagerStatus, NodeDescription, NodeSpec, NodeStatus, SwarmNode,
};

/// The port a swarm node listens on for other managers, as `docker swarm init/join` set it.
const SWARM_LISTEN_ADDR: &str = "0.0.0.0:2377";

/// How often a node update is tried again when the swarm answers "update out of sequence":
/// the node object changed between our read and our write (as it does right after a role
/// change, when the node renews its certificate).
const UPDATE_TRIES: u32 = 10;

/// Creates a new swarm with the engine's host as its first manager, advertising `advertise`;
/// returns its node ID. Refused when the host is in a swarm already.
/// `heartbeat`, when given, is the swarm's dispatcher heartbeat from the start.
pub async fn init(docker: &Docker, advertise: &str, heartbeat: Option<Duration>) -> Result<String> {
    let state = swarm_state(docker).await?;
    if state != "inactive" {
        return Err(anyhow!(
            "this host's swarm state is '{state}', not 'inactive': refusing to create a new swarm"
        ));
    }
    let spec = heartbeat.map(|period| SwarmSpec {
        dispatcher: Some(SwarmSpecDispatcher { heartbeat_period: Some(period.as_nanos() as i64) }),
        ..Default::default()
    });
    let request = SwarmInitRequest {
        listen_addr: Some(SWARM_LISTEN_ADDR.to_string()),
        advertise_addr: Some(advertise.to_string()),
        spec,
        ..Default::default()
    };
    docker
        .init_swarm(request)
        .await
        .map_err(|e| anyhow!("creating the swarm (advertising {advertise}): {}", said(&e)))
}

/// Makes the engine's host the only manager of the swarm whose state it holds, advertising
/// `advertise` (`docker swarm init --force-new-cluster`): a restore, after the swarm lost its
/// managers. The services, secrets, configs and the other nodes' entries are kept.
pub async fn force_new_cluster(docker: &Docker, advertise: &str) -> Result<String> {
    let request = SwarmInitRequest {
        listen_addr: Some(SWARM_LISTEN_ADDR.to_string()),
        advertise_addr: Some(advertise.to_string()),
        force_new_cluster: Some(true),
        ..Default::default()
    };
    docker.init_swarm(request).await.map_err(|e| {
        anyhow!("forcing a new cluster from the restored state (advertising {advertise}): {}", said(&e))
    })
}

/// The swarm's dispatcher heartbeat period, as a manager reads it.
pub async fn heartbeat(docker: &Docker) -> Result<Option<Duration>> {
    let swarm =
        docker.inspect_swarm().await.map_err(|e| anyhow!("reading the swarm's settings: {}", said(&e)))?;
    let ns = swarm.spec.and_then(|s| s.dispatcher).and_then(|d| d.heartbeat_period);
    Ok(ns.and_then(|ns| u64::try_from(ns).ok()).map(Duration::from_nanos))
}

/// Sets the swarm's dispatcher heartbeat period (`docker swarm update --dispatcher-heartbeat`):
/// the spec is read with its version and written back with only that changed, read again
/// when another change came first.
pub async fn set_heartbeat(docker: &Docker, period: Duration) -> Result<()> {
    let mut tries = 0;
    loop {
        let swarm = docker
            .inspect_swarm()
            .await
            .map_err(|e| anyhow!("reading the swarm's settings: {}", said(&e)))?;
        let version = swarm.version.and_then(|v| v.index).unwrap_or_default();
        let mut spec = swarm.spec.unwrap_or_default();
        spec.dispatcher = Some(SwarmSpecDispatcher { heartbeat_period: Some(period.as_nanos() as i64) });
        let options = UpdateSwarmOptions { version: version as i64, ..Default::default() };
        match docker.update_swarm(spec, options).await {
            Ok(()) => return Ok(()),
            Err(e) if said(&e).contains("out of sequence") && tries + 1 < UPDATE_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow!("updating the swarm's settings: {}", said(&e))),
        }
    }
}

/// Joins the engine's host to the swarm a manager at `remote_addr` (`ADDRESS[:PORT]`, port
/// 2377 when left out) runs, advertising `advertise_addr` to the other nodes, as
/// `docker swarm join --token TOKEN --advertise-addr ADVERTISE REMOTE` does — except that the
/// token travels in the request body, never on a command line.
pub async fn join(docker: &Docker, join_token: &str, remote_addr: &str, advertise_addr: &str) -> Result<()> {
    docker.join_swarm(join_request(join_token, remote_addr, advertise_addr)).await.map_err(|e| {
        anyhow!("joining the swarm of {remote_addr} (advertising {advertise_addr}): {}", said(&e))
    })
}

fn join_request(join_token: &str, remote_addr: &str, advertise_addr: &str) -> SwarmJoinRequest {
    SwarmJoinRequest {
        listen_addr: Some(SWARM_LISTEN_ADDR.to_string()),
        advertise_addr: Some(advertise_addr.to_string()),
        data_path_addr: None,
        remote_addrs: Some(vec![remote_addr.to_string()]),
        join_token: Some(join_token.to_string()),
    }
}

/// Makes the engine's host leave its swarm (it was demoted and drained first). `false` when it
/// was in no swarm.
pub async fn leave(docker: &Docker) -> Result<bool> {
    if swarm_state(docker).await? == "inactive" {
        return Ok(false);
    }
    docker
        .leave_swarm(Some(LeaveSwarmOptions { force: false }))
        .await
        .map_err(|e| anyhow!("leaving the swarm: {}", said(&e)))?;
    Ok(true)
}

/// The swarm node ID of the engine's host (from `/info`); an error when it is in no swarm.
pub async fn node_id(docker: &Docker) -> Result<String> {
    let info = docker.info().await.map_err(|e| anyhow!("reading the engine's /info: {}", said(&e)))?;
    let name = info.name.unwrap_or_default();
    let swarm = info.swarm.unwrap_or_default();
    match swarm.node_id.filter(|id| !id.is_empty()) {
        Some(id) => Ok(id),
        None => {
            let state = swarm.local_node_state.map_or_else(|| "unknown".to_string(), |s| s.to_string());
            Err(anyhow!("the engine of {name} is in no swarm (its swarm state is '{state}')"))
        }
    }
}

/// The engine's swarm state as `docker info` names it: `inactive`, `pending`, `active`,
/// `error` or `locked`.
pub async fn swarm_state(docker: &Docker) -> Result<String> {
    let info = docker.info().await.map_err(|e| anyhow!("reading the engine's /info: {}", said(&e)))?;
    Ok(info.swarm.and_then(|s| s.local_node_state).map_or_else(|| "unknown".to_string(), |s| s.to_string()))
}

/// The swarm's join tokens, (worker, manager), from a manager's engine.
pub async fn join_tokens(docker: &Docker) -> Result<(String, String)> {
    let swarm =
        docker.inspect_swarm().await.map_err(|e| anyhow!("reading the swarm's join tokens: {}", said(&e)))?;
    let tokens = swarm.join_tokens.unwrap_or_default();
    match (tokens.worker.filter(|t| !t.is_empty()), tokens.manager.filter(|t| !t.is_empty())) {
        (Some(worker), Some(manager)) => Ok((worker, manager)),
        _ => Err(anyhow!("the swarm answered without join tokens")),
    }
}

/// Every node of the swarm, as a manager sees it.
pub async fn nodes(docker: &Docker) -> Result<Vec<SwarmNode>> {
    let nodes = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(|e| anyhow!("listing the swarm's nodes: {}", said(&e)))?;
    Ok(nodes.into_iter().map(swarm_node).collect())
}

/// The engine's node, in the shape the planner reads.
pub fn swarm_node(node: Node) -> SwarmNode {
    let spec = node.spec.unwrap_or_default();
    let description = node.description.unwrap_or_default();
    let status = node.status.unwrap_or_default();
    let text = |s: Option<String>| s.unwrap_or_default();
    SwarmNode {
        id: text(node.id),
        spec: NodeSpec {
            labels: spec.labels.unwrap_or_default().into_iter().collect(),
            role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
            availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
        },
        description: NodeDescription {
            hostname: text(description.hostname),
            engine: EngineDescription {
                engine_version: text(description.engine.and_then(|e| e.engine_version)),
            },
        },
        status: NodeStatus {
            state: status.state.map(|s| s.to_string()).unwrap_or_default(),
            addr: text(status.addr),
        },
        manager_status: node.manager_status.map(|m| ManagerStatus {
            leader: m.leader.unwrap_or(false),
            reachability: m.reachability.map(|r| r.to_string()).unwrap_or_default(),
        }),
    }
}

/// A change to one node's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChange {
    /// Set (`Some`) or remove (`None`) labels, key by key.
    Labels(Vec<(String, Option<String>)>),
    Role(Role),
    Availability(Availability),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Manager,
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Active,
    Drain,
}

impl NodeChange {
    /// The spec after this change.
    pub fn applied(&self, mut spec: EngineNodeSpec) -> EngineNodeSpec {
        match self {
            NodeChange::Labels(changes) => {
                let labels = spec.labels.get_or_insert_with(HashMap::new);
                for (key, value) in changes {
                    match value {
                        Some(value) => labels.insert(key.clone(), value.clone()),
                        None => labels.remove(key),
                    };
                }
            }
            NodeChange::Role(role) => {
                spec.role = Some(match role {
                    Role::Manager => NodeSpecRoleEnum::MANAGER,
                    Role::Worker => NodeSpecRoleEnum::WORKER,
                })
            }
            NodeChange::Availability(availability) => {
                spec.availability = Some(match availability {
                    Availability::Active => NodeSpecAvailabilityEnum::ACTIVE,
                    Availability::Drain => NodeSpecAvailabilityEnum::DRAIN,
                })
            }
        }
        spec
    }
}

/// Applies `change` to node `id`: its spec is read with its version and written back at that
/// version, so a concurrent change is never overwritten; when the node changed in between
/// (the swarm says "update out of sequence"), it is read again and the change applied anew.
pub async fn update_node(docker: &Docker, id: &str, change: &NodeChange) -> Result<()> {
    let mut tries = 0;
    loop {
        let node = docker.inspect_node(id).await.map_err(|e| anyhow!("reading node {id}: {}", said(&e)))?;
        let version = node.version.and_then(|v| v.index).unwrap_or_default();
        let spec = change.applied(node.spec.unwrap_or_default());
        match docker.update_node(id, spec, UpdateNodeOptions { version: version as i64 }).await {
            Ok(()) => return Ok(()),
            Err(e) if said(&e).contains("out of sequence") && tries + 1 < UPDATE_TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(anyhow!("updating node {id}: {}", said(&e))),
        }
    }
}

/// Drains node `id` and waits, at most `timeout`, until none of its tasks is still meant to run
/// or still running there: draining only asks, the tasks stop (and start elsewhere) in their
/// own time. A node that is down runs nothing, whatever its tasks last reported.
/// Returns the services that had tasks meant to run there, for [`await_running`].
pub async fn drain(docker: &Docker, id: &str, timeout: Duration) -> Result<Vec<String>> {
    let filters: HashMap<String, Vec<String>> = [("node".to_string(), vec![id.to_string()])].into();
    let before = docker
        .list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) }))
        .await
        .map_err(|e| anyhow!("listing the tasks of node {id}: {}", said(&e)))?;
    let mut services: Vec<String> = before
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .filter_map(|t| t.service_id.clone())
        .collect();
    services.sort();
    services.dedup();
    update_node(docker, id, &NodeChange::Availability(Availability::Drain)).await?;
    let deadline = Instant::now() + timeout;
    loop {
        let node = docker.inspect_node(id).await.map_err(|e| anyhow!("reading node {id}: {}", said(&e)))?;
        let down = node.status.and_then(|s| s.state).is_some_and(|s| s.to_string() == "down");
        let tasks = docker
            .list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) }))
            .await
            .map_err(|e| anyhow!("listing the tasks of node {id}: {}", said(&e)))?;
        let left = still_on_node(&tasks, down);
        if left.is_empty() {
            return Ok(services);
        }
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "tasks still on node {id} {} s after draining it:\n{}",
                timeout.as_secs(),
                left.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits, at most `timeout`, until each of `services` runs as many tasks as it wants (those of
/// a drained node having started elsewhere); a service gone meanwhile counts as done. The
/// error names those short of their tasks.
pub async fn await_running(docker: &Docker, services: &[String], timeout: Duration) -> Result<()> {
    if services.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let listed = super::objects::services(docker).await?;
        let short = short_of_tasks(&listed, services);
        if short.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(anyhow!(
                "not running all their tasks after {} s: {}",
                timeout.as_secs(),
                short.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Of the services with these IDs, those running fewer tasks than they want (`NAME r/d`).
pub fn short_of_tasks(listed: &[bollard::models::Service], ids: &[String]) -> Vec<String> {
    listed
        .iter()
        .filter(|s| s.id.as_ref().is_some_and(|id| ids.contains(id)))
        .filter_map(|s| {
            let status = s.service_status.clone().unwrap_or_default();
            let (running, desired) = (status.running_tasks.unwrap_or(0), status.desired_tasks.unwrap_or(0));
            let name = s.spec.as_ref().and_then(|spec| spec.name.clone()).unwrap_or_default();
            (running < desired).then(|| format!("{name} {running}/{desired}"))
        })
        .collect()
}

/// The tasks of a drained node that are not gone yet, one line each: those still meant to run,
/// and (unless the node is down) those whose container has not stopped.
pub fn still_on_node(tasks: &[Task], node_down: bool) -> Vec<String> {
    tasks
        .iter()
        .filter(|t| {
            let state = t.status.as_ref().and_then(|s| s.state);
            t.desired_state == Some(TaskState::RUNNING) || (!node_down && state.is_some_and(is_live))
        })
        .map(|t| {
            let state = t.status.as_ref().and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default();
            format!("  task {} ({state})", t.id.clone().unwrap_or_default())
        })
        .collect()
}

/// A task state in which the task may still have a container on its node.
pub fn is_live(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::ASSIGNED
            | TaskState::ACCEPTED
            | TaskState::PREPARING
            | TaskState::READY
            | TaskState::STARTING
            | TaskState::RUNNING
    )
}

/// Waits, at most `timeout`, until the swarm sees node `id` Ready and, for a manager, its
/// manager Reachable: back in the swarm after its engine restarted.
pub async fn await_ready(docker: &Docker, id: &str, manager: bool, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let node = docker.inspect_node(id).await.map(swarm_node);
        let seen = match &node {
            Ok(n) => {
                let reach = n.manager_status.as_ref().map(|m| m.reachability.as_str()).unwrap_or("none");
                if n.status.state == "ready" && (!manager || reach == "reachable") {
                    return Ok(());
                }
                format!("state {}, manager {reach}", n.status.state)
            }
            Err(e) => said(e),
        };
        if Instant::now() >= deadline {
            return Err(anyhow!("node {id} is not back in the swarm after {} s ({seen})", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Removes node `id` from the node list: at once with `force` (its host is unreachable and
/// cannot leave by itself), else once the swarm sees it down after it left (at most 60 s).
pub async fn remove_node(docker: &Docker, id: &str, force: bool) -> Result<()> {
    if !force {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let node =
                docker.inspect_node(id).await.map_err(|e| anyhow!("reading node {id}: {}", said(&e)))?;
            let state = node.status.and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default();
            if state == "down" {
                break;
            }
            if Instant::now() >= deadline {
                return Err(anyhow!("node {id} did not go down within 60 s after leaving (it is '{state}')"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    docker
        .delete_node(id, Some(DeleteNodeOptions { force }))
        .await
        .map_err(|e| anyhow!("removing node {id}: {}", said(&e)))
}

/// What the engine said, without bollard's wrapping: the engine's own message where it sent
/// one (`This node is already part of a swarm.`), else the error.
pub fn said(error: &EngineError) -> String {
    match error {
        EngineError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}
