//! The cluster lock: one `init` at a time. It is a file (/var/lib/clusterup/lock) naming its
//! holder, taken on every reachable manager and held only when a majority of the cluster's
//! managers gave it: two operators can never both hold a majority, whichever managers each
//! of them reaches and wherever the swarm's leadership moves during a run. It is refreshed
//! while the run lasts; a run that can no longer refresh a majority stops. A lock whose
//! holder stopped refreshing it is stale and is taken over, atomically, with a warning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::report::timestamp;
use crate::roles;

/// A lock not refreshed for this long belongs to a run that died.
pub const STALE_AFTER: Duration = Duration::from_secs(90);
const REFRESH_EVERY: Duration = Duration::from_secs(20);

pub struct ClusterLock {
    sessions: Vec<Arc<Session>>,
    holder: String,
    refresher: tokio::task::JoinHandle<()>,
    /// Set by the refresher when a majority no longer holds the lock for this run.
    lost: watch::Receiver<Option<String>>,
}

/// Who is running: `user@machine`, for the lock and the audit log, from the OS itself
/// (`$USER` is unset under cron, systemd and some CI runners).
pub fn operator() -> String {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{uid}"));
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{user}@{host}")
}

/// What one manager answered to `lock.sh`.
enum Answer {
    Acquired { taken_over: Option<String> },
    Held(String),
}

/// Takes the lock on a majority of the cluster's managers, waiting up to `wait` for another
/// holder. `Ok(None)` when no manager is reachable (nothing cluster-wide can change); `Err`
/// says who holds it, or why no majority could be had.
pub async fn acquire(run: &mut Run, wait: Duration) -> Result<Option<ClusterLock>, String> {
    // The managers: the inventory's, and hosts that are managers now though the inventory
    // is about to demote them (they still vote in the swarm until then).
    let is_manager_now = |name: &str| {
        run.facts
            .get(name)
            .and_then(|f| f.swarm.as_ref())
            .is_some_and(|s| s.is_active() && s.control_available)
    };
    let candidates: Vec<String> = run
        .inv
        .hosts
        .iter()
        .filter(|h| h.is_manager() || (h.is_swarm_node() && is_manager_now(&h.name)))
        .map(|h| h.name.clone())
        .collect();
    let healthy = run.healthy();
    let reachable: Vec<String> = candidates.iter().filter(|h| healthy.contains(h)).cloned().collect();
    if reachable.is_empty() {
        return Ok(None);
    }
    let managers = candidates.len();
    // A restore may find most managers gone: it holds the lock wherever one answers.
    let majority = if run.options.lock_reachable { reachable.len() } else { managers / 2 + 1 };
    let nonce =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let holder = format!("{}:{}:{nonce:x}", operator(), std::process::id());
    let info = format!(
        "operator={}\npid={}\nstarted={}\ncommand={}",
        operator(),
        std::process::id(),
        timestamp::now_rfc3339(),
        run.report.command
    );
    let inputs = [
        Input::new("HOLDER", holder.clone()),
        Input::new("INFO", info),
        Input::new("STALE", STALE_AFTER.as_secs().to_string()),
    ];
    let script = roles::role("state").step("lock");
    let started = Instant::now();
    for h in &reachable {
        run.progress.step(h, "taking the cluster lock");
    }
    loop {
        let answers = run
            .each(&reachable, |_, session| {
                let invocation = commands::script(&script, &inputs, session.sudo);
                async move {
                    let out = session.run(&invocation).await?;
                    match out.status {
                        0 => Ok(Answer::Acquired {
                            taken_over: out.stdout.starts_with("taken-over").then(|| out.stdout.clone()),
                        }),
                        4 => Ok(Answer::Held(out.stdout)),
                        status => Err(anyhow::anyhow!(
                            "{}: taking the cluster lock failed (exit {status}): {}",
                            session.host,
                            out.tail()
                        )),
                    }
                }
            })
            .await;
        let mut acquired = Vec::new();
        let mut held = Vec::new();
        let mut errors = Vec::new();
        let mut takeovers = Vec::new();
        for (host, answer) in answers {
            match answer {
                Ok(Answer::Acquired { taken_over }) => {
                    if let Some(text) = taken_over {
                        takeovers.push((host.clone(), text));
                    }
                    acquired.push(host);
                }
                Ok(Answer::Held(text)) => held.push((host, text)),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if acquired.len() >= majority {
            for (host, text) in takeovers {
                run.report.warnings.push(format!(
                    "took over a stale cluster lock on {host} (not refreshed for {} s): {}",
                    field(&text, "age").unwrap_or("?"),
                    describe(&text)
                ));
            }
            let sessions: Vec<Arc<Session>> = acquired.iter().map(|h| run.sessions[h].clone()).collect();
            return Ok(Some(ClusterLock::held(sessions, holder, majority)));
        }
        // No majority: give back what this attempt took, so the other holder is not blocked.
        release_on(&acquired.iter().map(|h| run.sessions[h].clone()).collect::<Vec<_>>(), &holder).await;
        if let Some((host, text)) = held.first() {
            if started.elapsed() < wait {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            return Err(format!(
                "the cluster is locked by {} (on {host}, refreshed {} s ago). Wait for that run to end; if it \
                 died, its lock goes stale after {} s and is taken over, or remove it now with `clusterup unlock -i {}`.",
                describe(text),
                field(text, "age").unwrap_or("?"),
                STALE_AFTER.as_secs(),
                run.inv.path.display()
            ));
        }
        let mut reason = format!(
            "the cluster lock needs a majority ({majority}) of the cluster's {managers} manager(s), and only {} \
             could take it; bring the others back first",
            acquired.len()
        );
        for e in errors {
            reason.push_str(&format!("\n  {e}"));
        }
        return Err(reason);
    }
}

impl ClusterLock {
    fn held(sessions: Vec<Arc<Session>>, holder: String, majority: usize) -> ClusterLock {
        let (tell, lost) = watch::channel(None);
        let refresher = {
            let sessions = sessions.clone();
            let holder = holder.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REFRESH_EVERY).await;
                    let mut kept = 0;
                    let mut failures = Vec::new();
                    for session in &sessions {
                        let invocation = commands::script(
                            &roles::role("state").step("refresh"),
                            &[Input::new("HOLDER", holder.clone())],
                            session.sudo,
                        );
                        match session.run(&invocation).await {
                            Ok(out) if out.success() => kept += 1,
                            Ok(out) if out.status == 4 => {
                                failures.push(format!("{}: someone else holds it now", session.host))
                            }
                            Ok(out) => failures.push(format!("{}: {}", session.host, out.tail())),
                            Err(e) => failures.push(format!("{e:#}")),
                        }
                    }
                    if kept < majority {
                        let _ = tell.send(Some(format!(
                            "the cluster lock could be refreshed on {kept} manager(s) only, fewer than a majority \
                             ({majority}): stopped, so that no other run works at the same time ({})",
                            failures.join("; ")
                        )));
                        return;
                    }
                }
            })
        };
        ClusterLock { sessions, holder, refresher, lost }
    }

    /// Resolves when this run no longer holds the lock, with the reason.
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        loop {
            if let Some(reason) = lost.borrow_and_update().clone() {
                return reason;
            }
            if lost.changed().await.is_err() {
                // The refresher ended without a loss (aborted at release): never resolve.
                std::future::pending::<()>().await;
            }
        }
    }

    pub async fn release(self) {
        self.refresher.abort();
        release_on(&self.sessions, &self.holder).await;
    }
}

async fn release_on(sessions: &[Arc<Session>], holder: &str) {
    for session in sessions {
        let invocation = commands::script(
            &roles::role("state").step("unlock"),
            &[Input::new("HOLDER", holder.to_string())],
            session.sudo,
        );
        let _ = session.run(&invocation).await;
    }
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// "alice@bastion (pid 42, `init`, since 2026-...)" from the lock file's lines.
pub fn describe(text: &str) -> String {
    format!(
        "{} (pid {}, `{}`, since {})",
        field(text, "operator").unwrap_or("?"),
        field(text, "pid").unwrap_or("?"),
        field(text, "command").unwrap_or("?"),
        field(text, "started").unwrap_or("?")
    )
}

/// Appends one line per run that changed something to the audit log of every reachable manager.
pub async fn audit(run: &Run) {
    let report = &run.report;
    let changed =
        report.hosts.values().map(|h| h.changes.len()).sum::<usize>() + report.cluster.changes.len();
    if changed == 0 {
        return;
    }
    let failed: Vec<&str> =
        report.hosts.iter().filter(|(_, h)| h.error.is_some()).map(|(n, _)| n.as_str()).collect();
    let mut summary: Vec<String> = report
        .hosts
        .iter()
        .filter(|(_, h)| !h.changes.is_empty())
        .map(|(n, h)| format!("{n}:{}", h.changes.len()))
        .collect();
    if !report.cluster.changes.is_empty() {
        summary.push(format!("cluster:{}", report.cluster.changes.len()));
    }
    let line = format!(
        "{} {} {} changed={} failed={} [{}]",
        timestamp::now_rfc3339(),
        operator(),
        report.command,
        changed,
        if failed.is_empty() { "-".to_string() } else { failed.join(",") },
        summary.join(" ")
    );
    let managers: Vec<String> = run.healthy_managers();
    let script = roles::role("state").step("audit");
    for host in managers {
        let session = &run.sessions[&host];
        let invocation = commands::script(&script, &[Input::new("LINE", line.clone())], session.sudo);
        let _ = session.run(&invocation).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn describes_a_holder_from_the_lock_file() {
        let text = "holder=a@b:1:ff\noperator=alice@bastion\npid=42\nstarted=2026-11-23T16:40:00Z\ncommand=init\nage=12\n";
        assert_eq!(super::describe(text), "alice@bastion (pid 42, `init`, since 2026-11-23T16:40:00Z)");
        assert_eq!(super::field(text, "age"), Some("12"));
    }
}
