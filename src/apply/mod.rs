//! Apply: the ordered phases of `init`, which read like the product's story. Each phase
//! works on the hosts still healthy, records failures per host (the others go on), and
//! does nothing when no host needs it. `plan` runs the observing half only.

pub mod backup;
pub mod lock;
mod phases;

pub use phases::services::observe_on as observe_cluster_objects;
pub use phases::swarm::list_nodes;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::Result;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::connection::Session;
use crate::facts::Facts;
use crate::inventory::Inventory;
use crate::plan::Change;
use crate::plan::swarm::{SwarmNode, SwarmPlan};
use crate::report::{Progress, RunLog, RunReport};

#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: bool,
    pub yes: bool,
    pub concurrency: usize,
    /// Redeploy every stack even when its digest is unchanged.
    pub force: bool,
    /// Seconds to wait for a deployed stack's services to run their replicas.
    pub converge_timeout: u64,
    /// How long to wait for another run's cluster lock.
    pub lock_wait: std::time::Duration,
    /// Remove NFS-backed volumes created on a node with other options, where unused.
    pub recreate_volumes: bool,
    /// `plan --diff`: show each stack's change against what is deployed.
    pub diff: bool,
    /// Remove and create again the overlay networks whose options drifted, where unused.
    pub recreate_networks: bool,
    /// Remove the stacks clusterup deployed that are no longer in the inventory.
    pub prune_stacks: bool,
    /// `--limit`: the only hosts changed. The managers are still reached (the lock, quorum
    /// and the swarm's node list need them); cluster objects (networks, secrets, stacks) are
    /// left alone.
    pub limit: Option<Vec<String>>,
    /// How many workers may restart their engines at once (a share or a count; at least 1).
    pub disruption: crate::plan::roll::Disruption,
    /// Let `docker.version` take an engine to an older version than it has.
    pub allow_downgrade: bool,
    /// Hold the cluster lock on every manager that answers, even fewer than a majority: a
    /// restore runs when the managers may be gone.
    pub lock_reachable: bool,
}

/// Everything a run knows, filled in phase by phase.
pub struct Run {
    pub inv: Arc<Inventory>,
    pub options: Options,
    pub log: Arc<RunLog>,
    pub progress: Arc<Progress>,
    pub report: RunReport,
    pub sessions: BTreeMap<String, Arc<Session>>,
    pub facts: BTreeMap<String, Facts>,
    /// Per host, the package roles whose check asked for apply, with the reasons.
    pub role_needs: BTreeMap<String, Vec<(&'static str, Vec<String>)>>,
    pub nodes: Vec<SwarmNode>,
    pub swarm: SwarmPlan,
    pub image_loads: phases::images::Loads,
    pub services: phases::services::ServicesPlan,
    /// Each host's Engine API client, connected on first use and kept for the run.
    engines: BTreeMap<String, bollard::Docker>,
    /// Hosts whose engine socket sshd refused in the facts phase: their client is connected
    /// through dial-stdio without asking for the socket again.
    socket_refused: std::collections::BTreeSet<String>,
}

impl Run {
    pub fn new(inv: Inventory, options: Options, log: Arc<RunLog>, command: &str) -> Run {
        let reached = |h: &&crate::inventory::Host| {
            options.limit.as_ref().is_none_or(|limit| limit.contains(&h.name) || h.is_manager())
        };
        let names: Vec<String> = inv.hosts.iter().filter(reached).map(|h| h.name.clone()).collect();
        let mut report = RunReport::new(command, options.dry_run, &names);
        report.warnings = inv.warnings.clone();
        Run {
            progress: Arc::new(Progress::new(&names)),
            inv: Arc::new(inv),
            options,
            log,
            report,
            sessions: BTreeMap::new(),
            facts: BTreeMap::new(),
            role_needs: BTreeMap::new(),
            nodes: Vec::new(),
            swarm: SwarmPlan::default(),
            image_loads: Default::default(),
            services: Default::default(),
            engines: BTreeMap::new(),
            socket_refused: Default::default(),
        }
    }

    /// The Engine API client of `host` (see `crate::engine`), connected on its first use in
    /// the run and kept: its channels stay open for the later requests.
    pub async fn engine(&mut self, host: &str) -> Result<bollard::Docker> {
        if let Some(docker) = self.engines.get(host) {
            return Ok(docker.clone());
        }
        let session = self.sessions.get(host).ok_or_else(|| anyhow::anyhow!("{host}: not connected"))?;
        let docker = if self.socket_refused.contains(host) {
            crate::engine::connect_stdio(session).await?
        } else {
            crate::engine::connect(session).await?
        };
        self.engines.insert(host.to_string(), docker.clone());
        Ok(docker)
    }

    /// Hosts that have a connection and have not failed, in inventory order.
    pub fn healthy(&self) -> Vec<String> {
        self.inv
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .filter(|n| self.sessions.contains_key(n) && !self.report.is_failed(n))
            .collect()
    }

    /// Whether `--limit` (if any) lets this run change `host`.
    pub fn in_scope(&self, host: &str) -> bool {
        self.options.limit.as_ref().is_none_or(|limit| limit.iter().any(|h| h == host))
    }

    /// The hosts this run connects to: those in scope, and every manager.
    pub fn reached(&self) -> Vec<crate::inventory::Host> {
        self.inv.hosts.iter().filter(|h| self.in_scope(&h.name) || h.is_manager()).cloned().collect()
    }

    /// Healthy hosts that are swarm nodes (managers and workers, not a NAS, not absent).
    pub fn healthy_swarm_nodes(&self) -> Vec<String> {
        self.healthy_where(|h| h.is_swarm_node())
    }

    /// Healthy hosts that are the inventory's managers.
    pub fn healthy_managers(&self) -> Vec<String> {
        self.healthy_where(|h| h.is_manager())
    }

    fn healthy_where(&self, keep: impl Fn(&crate::inventory::Host) -> bool) -> Vec<String> {
        self.healthy().into_iter().filter(|n| self.inv.host(n).is_some_and(&keep)).collect()
    }

    /// Ends the run's connections: the engine clients first, whose channels ride on them.
    pub async fn close(&mut self) {
        self.engines.clear();
        for (_, session) in std::mem::take(&mut self.sessions) {
            if let Ok(session) = Arc::try_unwrap(session) {
                session.close().await;
            }
        }
    }

    pub fn fail(&mut self, host: &str, error: impl Into<String>) {
        let error = error.into();
        self.progress.finish(host, &format!("failed: {}", error.lines().next().unwrap_or("")));
        self.log.line(host, &format!("FAILED: {error}"));
        self.report.fail(host, error);
    }

    /// Runs `work` for each host, at most `concurrency` at once, and returns the results in
    /// the order the hosts were given.
    pub async fn each<T, F, Fut>(&self, hosts: &[String], work: F) -> Vec<(String, Result<T>)>
    where
        T: Send + 'static,
        F: Fn(String, Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let work = hosts
            .iter()
            .filter_map(|host| Some((host.clone(), Ok(work(host.clone(), self.sessions.get(host)?.clone())))))
            .collect();
        fan_out(self.options.concurrency, work).await
    }

    /// Like [`Run::each`], with each host's Engine API client instead of its session (connected
    /// first, one host after another, then used at most `concurrency` at once). A host whose
    /// engine cannot be reached gets that error as its result.
    pub async fn each_engine<T, F, Fut>(&mut self, hosts: &[String], work: F) -> Vec<(String, Result<T>)>
    where
        T: Send + 'static,
        F: Fn(String, bollard::Docker) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let mut work_on = Vec::new();
        for host in hosts {
            work_on.push((host.clone(), self.engine(host).await.map(|docker| work(host.clone(), docker))));
        }
        fan_out(self.options.concurrency, work_on).await
    }

    fn planned(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (host, needs) in &self.role_needs {
            for (role, reasons) in needs {
                changes.extend(reasons.iter().map(|r| Change::new(host, role, r.clone())));
            }
        }
        for step in &self.swarm.steps {
            changes.push(Change::new(step.host(), "swarm", step.describe()));
        }
        if let Some(change) = &self.swarm.heartbeat {
            changes.push(Change::new(crate::plan::CLUSTER, "swarm", change.describe()));
        }
        changes.extend(phases::images::planned(&self.image_loads));
        changes.extend(self.services.changes());
        changes
    }
}

/// `plan` (apply = false) or `init`: converge the cluster to the inventory.
pub async fn converge(mut run: Run, apply: bool) -> RunReport {
    let changing = apply && !run.options.dry_run;
    if let Err(reason) = phases::cloud::run(&mut run, changing).await {
        run.report.stopped = Some(reason);
        return finish(run).await;
    }
    // Ctrl-C is listened for from here to the end of the run: from now on SIGINT no longer
    // ends the process, and one that arrives while the lock is being taken (not interruptible:
    // it would leave a partial lock) is seen right after.
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let gathered = tokio::select! {
        _ = async {
            phases::connect::run(&mut run).await;
            phases::facts::run(&mut run).await;
        } => true,
        _ = interrupted(&mut sigint) => false,
    };
    if !gathered {
        stop_unfinished(&run).await;
        run.report.stopped = Some(INTERRUPTED.into());
        return finish(run).await;
    }
    if let Err(reason) = phases::preflight::run(&mut run) {
        run.report.stopped = Some(reason);
        return finish(run).await;
    }
    let lock_wait = run.options.lock_wait;
    let lock = if changing {
        match lock::acquire(&mut run, lock_wait).await {
            Ok(lock) => lock,
            Err(reason) => {
                run.report.stopped = Some(reason);
                return finish(run).await;
            }
        }
    } else {
        None
    };
    // Ctrl-C, or the lock lost, stops the run where it is: every file a step writes on a host
    // is written to a temporary file and renamed, so nothing is left half-written; the lock is
    // released.
    let lock_lost = async {
        match &lock {
            Some(lock) => lock.lost().await,
            None => std::future::pending().await,
        }
    };
    let stopped = tokio::select! {
        _ = observe_and_apply(&mut run, changing) => None,
        _ = interrupted(&mut sigint) => Some(INTERRUPTED.to_string()),
        reason = lock_lost => Some(reason),
    };
    if let Some(reason) = stopped {
        // Before the lock is given back: no step of this run goes on behind the next one's back.
        stop_unfinished(&run).await;
        run.report.stopped = Some(reason);
    }
    if changing {
        lock::audit(&run).await;
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
    finish(run).await
}

const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// Resolves on the next SIGINT; never, when listening for it could not be set up.
async fn interrupted(sigint: &mut Option<Signal>) {
    match sigint {
        Some(sigint) => {
            sigint.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Stops what the run's steps started on the hosts and have not finished.
async fn stop_unfinished(run: &Run) {
    for (host, session) in &run.sessions {
        let stopped = session.stop_unfinished().await;
        if stopped > 0 {
            run.log.line(host, &format!("stopped {stopped} unfinished step(s) on the host"));
        }
    }
}

async fn observe_and_apply(run: &mut Run, changing: bool) {
    phases::packages::check(run).await;
    phases::swarm::observe(run).await;
    phases::images::observe(run).await;
    phases::services::observe(run).await;

    let planned = run.planned();
    if !changing {
        for change in &planned {
            run.report.record(change);
        }
        return;
    }
    if !planned.is_empty() && !confirmed(run, &planned).await {
        run.report.stopped = Some("not confirmed".into());
        return;
    }
    run.report.changes_began = true;
    phases::packages::apply(run).await;
    phases::nfs_probe::run(run).await;
    phases::swarm::apply(run).await;
    phases::images::apply(run).await;
    phases::services::apply(run).await;
}

/// Whether the planned changes may be made: yes with `--yes` or without a terminal to ask on,
/// else as answered.
async fn confirmed(run: &Run, planned: &[Change]) -> bool {
    run.options.yes || !std::io::stdin().is_terminal() || confirm(run, planned).await
}

/// Asks on the terminal. The answer is read on a blocking thread so that Ctrl-C, which the
/// caller races against this, stops the run at the prompt at once.
async fn confirm(run: &Run, planned: &[Change]) -> bool {
    run.progress.clear();
    eprintln!("clusterup will make {} change(s):", planned.len());
    for c in planned {
        eprintln!("  {}: {}: {}", c.target, c.area, c.what);
    }
    eprint!("Apply them? [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        answer
    })
    .await
    .unwrap_or_default();
    matches!(answer.trim(), "y" | "Y" | "yes")
}

async fn finish(mut run: Run) -> RunReport {
    for name in run.healthy() {
        let n = run.report.host(&name).changes.len();
        let verb =
            if run.options.dry_run || run.report.command == "plan" { "would change" } else { "changed" };
        run.progress.finish(&name, &if n == 0 { "unchanged".to_string() } else { format!("{verb} ({n})") });
    }
    run.progress.clear();
    run.close().await;
    let mut report = run.report;
    report.warnings.extend(run.swarm.warnings);
    report.finish();
    run.log.line("-", &format!("=== done: changed {}, failed {:?}", report.changed, report.failed));
    report
}

/// Runs each host's work, at most `concurrency` at once (a host given an error keeps it), and
/// returns the results in the order the hosts were given.
async fn fan_out<T, Fut>(concurrency: usize, work: Vec<(String, Result<Fut>)>) -> Vec<(String, Result<T>)>
where
    T: Send + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for (index, (host, fut)) in work.into_iter().enumerate() {
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = match fut {
                Ok(fut) => fut.await,
                Err(e) => Err(e),
            };
            (index, host, result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => results.push((usize::MAX, String::new(), Err(anyhow::anyhow!("task failed: {e}")))),
        }
    }
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, h, r)| (h, r)).collect()
}
