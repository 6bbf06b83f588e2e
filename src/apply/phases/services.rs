//! Cluster objects on the swarm: overlay networks, secrets, then stacks rendered from
//! templates, each deployed only when its digest differs from what was last deployed, then
//! awaited together until every service runs its desired replicas.

use std::sync::Arc;

use anyhow::{Result, anyhow};

use super::convergence::StackWaiter;
use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::engine;
use crate::engine::node::{NfsVolume, VolumeState};
use crate::plan::services::{self, NetworkCreate, Observed};
use crate::plan::{CLUSTER, Change};
use crate::roles;
use crate::templates::{self, Rendered};

/// What the services phases decided, kept between observing and applying.
#[derive(Default)]
pub struct ServicesPlan {
    pub networks: Vec<NetworkCreate>,
    /// (logical name, swarm name, value)
    pub secrets: Vec<(String, String, String)>,
    /// Rendered stacks and why each must be deployed.
    pub deploys: Vec<(Rendered, &'static str)>,
    /// Every NFS-backed volume of every stack, checked on each node.
    pub volumes: Vec<NfsVolume>,
    /// Stacks to remove, and why.
    pub removals: Vec<(String, &'static str)>,
    /// Old versions of the inventory's secrets that no service uses.
    pub secret_prunes: Vec<String>,
    /// The key secret names are made with, when the cluster has none yet (hex): made once,
    /// at observation, so the names confirmed are the names created.
    pub new_key: Option<String>,
}

impl ServicesPlan {
    pub fn changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for (stack, why) in &self.removals {
            out.push(Change::new(CLUSTER, "stack", format!("remove stack {stack} ({why})")));
        }
        for n in &self.networks {
            let enc = if n.encrypted { ", encrypted" } else { "" };
            let verb = if n.recreate { "remove and create again" } else { "create" };
            out.push(Change::new(
                CLUSTER,
                "network",
                format!("{verb} overlay network {} (mtu {}{enc})", n.name, n.mtu),
            ));
        }
        if self.new_key.is_some() {
            out.push(Change::new(CLUSTER, "secret", "create the secret-naming key clusterup-secret-key"));
        }
        for (_, name, _) in &self.secrets {
            out.push(Change::new(CLUSTER, "secret", format!("create secret {name}")));
        }
        for (r, why) in &self.deploys {
            out.push(Change::new(CLUSTER, "stack", format!("deploy stack {} ({why})", r.stack)));
        }
        for name in &self.secret_prunes {
            out.push(Change::new(CLUSTER, "secret", format!("remove unused secret {name}")));
        }
        out
    }
}

fn wanted(run: &Run) -> bool {
    !run.inv.networks.is_empty()
        || !run.inv.stacks.is_empty()
        || !run.inv.secrets.is_empty()
        || !run.inv.absent_stacks.is_empty()
}

fn leader(run: &Run) -> Option<Arc<Session>> {
    let name = run.swarm.leader.as_ref()?;
    if run.report.is_failed(name) { None } else { run.sessions.get(name).cloned() }
}

/// What exists of the networks, secrets and stacks, as one manager sees them.
pub async fn observe_on(session: &Session) -> Result<Observed> {
    let docker = engine::connect(session).await?;
    engine::objects::observe(&docker).await.map_err(|e| anyhow!("{}: {e:#}", session.host))
}

/// As [`observe_on`], through the run's client of the leader's engine.
async fn observe_leader(run: &mut Run, leader: &str) -> Result<Observed> {
    let docker = run.engine(leader).await?;
    engine::objects::observe(&docker).await.map_err(|e| anyhow!("{leader}: {e:#}"))
}

/// Decides what to create and deploy. Before the swarm exists there is nothing to observe.
pub async fn observe(run: &mut Run) {
    if !wanted(run) {
        return;
    }
    if run.options.limit.is_some() {
        run.report.warnings.push(
            "cluster: networks, secrets and stacks are left alone under --limit; run without it to converge them"
                .into(),
        );
        return;
    }
    if run.healthy_managers().is_empty() {
        // Without a manager the swarm's objects cannot be seen: listing them all as "to
        // create" would be a guess.
        run.report.warnings.push(
            "cluster: no manager could be reached, so the changes to networks, secrets and stacks are unknown"
                .into(),
        );
        return;
    }
    let observed = match leader(run).filter(|_| run.swarm.cluster_id.is_some()) {
        Some(session) => {
            run.progress.step(&session.host, "reading networks and stacks");
            match observe_leader(run, &session.host).await {
                Ok(o) => o,
                Err(e) => {
                    run.report.fail_cluster(format!("{e:#}"));
                    return;
                }
            }
        }
        None => Observed::default(),
    };
    let new_key = observed.key.is_none().then(new_key);
    match decide(run, &observed, new_key) {
        Ok(plan) => {
            let volumes = plan.volumes.clone();
            run.services = plan;
            check_volumes(run, &volumes, false).await;
            if run.options.diff {
                diff_deploys(run).await;
            }
        }
        Err(e) => run.report.fail_cluster(format!("{e:#}")),
    }
}

/// `plan --diff`: each stack to deploy against what the cluster recorded as deployed.
async fn diff_deploys(run: &mut Run) {
    let Some(session) = leader(run).filter(|_| run.swarm.cluster_id.is_some()) else {
        for (rendered, _) in &run.services.deploys {
            let diff =
                crate::plan::diff::unified("(nothing deployed)", "", "inventory", &rendered.deployed_text());
            run.report.diffs.insert(rendered.stack.clone(), diff);
        }
        return;
    };
    let docker = match run.engine(&session.host).await {
        Ok(docker) => docker,
        Err(e) => {
            run.report.warnings.push(format!("cannot read what is deployed: {e:#}"));
            return;
        }
    };
    for (rendered, _) in &run.services.deploys {
        let deployed = match engine::objects::deployed(&docker, &rendered.stack).await {
            Ok(text) => text.unwrap_or_default(),
            Err(e) => {
                run.report
                    .warnings
                    .push(format!("stack {}: cannot read what is deployed: {e:#}", rendered.stack));
                continue;
            }
        };
        let diff = crate::plan::diff::unified("deployed", &deployed, "inventory", &rendered.deployed_text());
        // Records older than `--diff` hold only a digest: say so rather than show noise.
        let diff = if deployed.len() == 64 && deployed.chars().all(|c| c.is_ascii_hexdigit()) {
            "  (deployed before clusterup kept stack contents: only its digest is known)\n".to_string()
        } else if diff.is_empty() {
            "  (same files; redeployed because --force was given)\n".to_string()
        } else {
            diff
        };
        run.report.diffs.insert(rendered.stack.clone(), diff);
    }
}

/// Nodes whose copy of an NFS-backed volume was created with other options keep them (Docker
/// fixes them at creation): report those; with `recreate`, remove the unused ones so the next
/// deploy creates them anew. Each node's engine is asked, all at once.
async fn check_volumes(run: &mut Run, volumes: &[NfsVolume], recreate: bool) {
    if volumes.is_empty() {
        return;
    }
    let hosts: Vec<String> = run
        .healthy_swarm_nodes()
        .into_iter()
        .filter(|h| run.facts.get(h).is_some_and(|f| f.docker_installed))
        .collect();
    let results = run
        .each_engine(&hosts, |_, docker| {
            let volumes = volumes.to_vec();
            async move {
                let mut states = Vec::new();
                for volume in volumes {
                    let state = engine::node::check_volume(&docker, &volume, recreate).await?;
                    states.push((volume.name, state));
                }
                Ok(states)
            }
        })
        .await;
    for (host, result) in results {
        // A node that cannot say is left as it is: the deploy works with what it has.
        let Ok(states) = result else { continue };
        for (name, state) in states {
            match state {
                VolumeState::Fine => {}
                VolumeState::Removed(_) => run
                    .report
                    .host(&host)
                    .changes
                    .push(format!("volumes: removed volume {name} (it had other options)")),
                VolumeState::Drifted(drift) => {
                    // Under `init --recreate-volumes` it is removed once the plan is confirmed.
                    let hint = if run.options.recreate_volumes {
                        ""
                    } else {
                        "; `init --recreate-volumes` removes it where no container uses it"
                    };
                    let warning =
                        format!("{host}: volume {name}: {drift} (not the inventory's options){hint}");
                    if !run.report.warnings.contains(&warning) {
                        run.report.warnings.push(warning);
                    }
                }
                VolumeState::Busy(_) => run.report.warnings.push(format!(
                    "{host}: volume {name} is in use and keeps its old options; stop what uses it and re-run"
                )),
            }
        }
    }
}

/// 32 random bytes from the OS, as hex: a cluster's secret-naming key.
fn new_key() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if let Err(e) = read {
        // Never a weak key: without the OS's randomness nothing sensible can be made.
        panic!("cannot read /dev/urandom for the secret-naming key: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The plan for the cluster objects, given what is there. `new_key` is the key to create when
/// the cluster has none.
fn decide(run: &mut Run, observed: &Observed, new_key: Option<String>) -> Result<ServicesPlan> {
    let mtus: Vec<u32> = run
        .inv
        .hosts
        .iter()
        .filter(|h| h.is_swarm_node())
        .filter_map(|h| run.facts.get(&h.name).and_then(|f| f.route_mtu))
        .collect();
    let (networks, drift) =
        services::plan_networks(&run.inv.networks, &mtus, observed, run.options.recreate_networks);
    for d in drift {
        if !run.report.warnings.contains(&d) {
            run.report.warnings.push(d);
        }
    }
    let key = observed.key.clone().or_else(|| new_key.clone()).unwrap_or_default();
    let names = templates::secret_names(&run.inv.secrets, key.as_bytes())?;
    let mut secrets = Vec::new();
    for secret in &run.inv.secrets {
        let swarm_name = &names[&secret.name];
        if !observed.secrets.contains(swarm_name) {
            secrets.push((secret.name.clone(), swarm_name.clone(), templates::secret_value(secret)?));
        }
    }
    let mut deploys = Vec::new();
    let mut volumes = Vec::new();
    let nodes = templates::context::nodes(&run.inv, &run.facts);
    for stack in &run.inv.stacks {
        let rendered = templates::render_stack_on(&run.inv, stack, &names, &nodes)?;
        for (name, options) in &rendered.nfs_volumes {
            let opt = |k: &str| options["driver_opts"][k].as_str().unwrap_or_default().to_string();
            volumes.push(NfsVolume { name: name.clone(), o: opt("o"), device: opt("device") });
        }
        if let Some(why) = services::needs_deploy(&stack.name, &rendered.sha256, observed, run.options.force)
        {
            deploys.push((rendered, why));
        }
    }
    let present: Vec<&str> = run.inv.stacks.iter().map(|s| s.name.as_str()).collect();
    let cleanup =
        services::plan_cleanup(&present, &run.inv.absent_stacks, &names, observed, run.options.prune_stacks);
    for w in cleanup.warnings {
        if !run.report.warnings.contains(&w) {
            run.report.warnings.push(w);
        }
    }
    Ok(ServicesPlan {
        networks,
        secrets,
        deploys,
        volumes,
        removals: cleanup.stacks,
        secret_prunes: cleanup.secrets,
        new_key: if observed.key.is_none() { new_key } else { None },
    })
}

pub async fn apply(run: &mut Run) {
    if !wanted(run) || run.report.cluster.error.is_some() || run.options.limit.is_some() {
        return;
    }
    let Some(session) = leader(run) else {
        run.report.fail_cluster("no manager of the swarm is available to create networks and deploy stacks");
        return;
    };
    // Look again before acting: the steps confirmed must still be the steps to take. If
    // someone changed the cluster since it was observed, stop rather than act on a stale plan.
    run.progress.step(&session.host, "reading networks and stacks");
    let new_key = run.services.new_key.clone();
    let plan = match observe_leader(run, &session.host).await {
        Ok(observed) => decide(run, &observed, new_key),
        Err(e) => Err(e),
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            run.report.fail_cluster(format!("{e:#}"));
            return;
        }
    };
    let (confirmed, now) = (run.services.changes(), plan.changes());
    if confirmed != now {
        let list =
            |changes: &[Change]| changes.iter().map(|c| format!("\n    {}", c.what)).collect::<String>();
        run.report.fail_cluster(format!(
            "the cluster changed between the plan and now; nothing was changed on it. Planned:{}\n  now needed:{}\n  \
             Run `clusterup plan` again to see the new plan.",
            list(&confirmed),
            list(&now)
        ));
        return;
    }
    if run.options.recreate_volumes {
        let volumes = plan.volumes.clone();
        check_volumes(run, &volumes, true).await;
    }
    if let Err(e) = carry_out(run, &session, plan).await {
        run.report.fail_cluster(format!("{e:#}"));
    }
}

async fn carry_out(run: &mut Run, session: &Session, plan: ServicesPlan) -> Result<()> {
    let docker = run.engine(&session.host).await?;
    let on_leader = |e: anyhow::Error| anyhow!("{}: {e:#}", session.host);
    let timeout = run.options.converge_timeout;
    for (stack, _) in &plan.removals {
        run.progress.step(&session.host, &format!("removing stack {stack}"));
        let inputs = [Input::new("STACK", stack.clone()), Input::new("TIMEOUT", timeout.to_string())];
        changed(run, session, "remove", &inputs, "stack").await?;
    }
    for n in &plan.networks {
        run.progress.step(&session.host, &format!("creating network {}", n.name));
        let done = engine::objects::create_network(&docker, n).await.map_err(on_leader)?;
        run.report.record(&Change::new(CLUSTER, "network", done));
    }
    if let Some(key) = &plan.new_key {
        engine::objects::create_key(&docker, key).await.map_err(on_leader)?;
        run.report.record(&Change::new(
            CLUSTER,
            "secret",
            format!("created the secret-naming key {}", engine::objects::KEY_CONFIG),
        ));
    }
    for (logical, swarm_name, value) in &plan.secrets {
        if engine::objects::create_secret(&docker, logical, swarm_name, value).await.map_err(on_leader)? {
            run.report.record(&Change::new(CLUSTER, "secret", format!("created secret {swarm_name}")));
        }
    }
    let mut deployed = Vec::new();
    for (rendered, _) in &plan.deploys {
        run.progress.step(&session.host, &format!("deploying stack {}", rendered.stack));
        let inputs = deploy_inputs(rendered, &run.inv.images.resolve);
        match changed(run, session, "deploy", &inputs, "stack").await {
            Ok(()) => deployed.push(rendered),
            Err(e) => run.report.fail_cluster(format!("{e:#}")),
        }
    }
    // Awaited together, each recorded as deployed once it converged.
    let mut waiter =
        StackWaiter::new(&docker, deployed.iter().map(|r| r.stack.clone()).collect(), timeout).await;
    while !waiter.pending().is_empty() {
        run.progress.step(&session.host, &format!("waiting for stacks {}", waiter.pending().join(", ")));
        let Some((stack, outcome)) = waiter.next(&docker).await else { break };
        if let Err(why) = outcome {
            run.report.fail_cluster(format!("stack {stack}: {why}"));
            continue; // not recorded: the next run deploys it again
        }
        let rendered = deployed.iter().find(|r| r.stack == stack).expect("a deployed stack");
        engine::objects::record_stack(&docker, &stack, &rendered.sha256, &rendered.deployed_text())
            .await
            .map_err(on_leader)?;
    }
    if !plan.secret_prunes.is_empty() {
        run.progress.step(&session.host, "removing unused secret versions");
        // The swarm refuses to remove a secret in use: one that a service started using
        // since it was observed is kept, and the run says why.
        for name in &plan.secret_prunes {
            engine::objects::remove_secret(&docker, name).await.map_err(on_leader)?;
            run.report.record(&Change::new(CLUSTER, "secret", format!("removed unused secret {name}")));
        }
    }
    Ok(())
}

fn deploy_inputs(rendered: &Rendered, resolve: &str) -> Vec<Input> {
    let mut names = vec!["stack.yml".to_string()];
    let mut inputs = vec![Input::new("FILE_1", rendered.compose.clone())];
    for (i, (name, content)) in rendered.files.iter().enumerate() {
        names.push(name.clone());
        inputs.push(Input::new(&format!("FILE_{}", i + 2), content.clone()));
    }
    inputs.extend([
        Input::new("STACK", rendered.stack.clone()),
        Input::new("RESOLVE_IMAGE", resolve),
        Input::new("FILE_NAMES", names.join(" ")),
    ]);
    inputs
}

/// Runs a `stacks` step that reports `changed: ...` lines; records them as cluster changes.
async fn changed(run: &mut Run, session: &Session, step: &str, inputs: &[Input], area: &str) -> Result<()> {
    let invocation = commands::script(&roles::role("stacks").step(step), inputs, session.sudo);
    let out = session.run_ok(&invocation).await?;
    for line in out.stdout.lines().filter_map(|l| l.strip_prefix("changed: ")) {
        run.report.record(&Change::new(CLUSTER, area, line));
    }
    Ok(())
}
