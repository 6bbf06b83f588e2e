//! The cluster lock: one `init` at a time. It lives on the first reachable manager
//! (/var/lib/clusterup/lock), names its holder, and is refreshed while the run lasts; a lock
//! whose holder stopped refreshing it is stale and is taken over with a warning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::connection::Session;
use crate::report::timestamp;
use crate::roles;

/// A lock not refreshed for this long belongs to a run that died.
pub const STALE_AFTER: Duration = Duration::from_secs(90);
const REFRESH_EVERY: Duration = Duration::from_secs(20);

pub struct ClusterLock {
    session: Arc<Session>,
    holder: String,
    refresher: tokio::task::JoinHandle<()>,
}

/// Who is running: `user@machine`, for the lock and the audit log.
pub fn operator() -> String {
    let user =
        std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

/// Takes the lock on the first reachable manager, waiting up to `wait` for another holder.
/// `Ok(None)` when no manager is reachable (nothing to lock); `Err` says who holds it.
pub async fn acquire(run: &mut Run, wait: Duration) -> Result<Option<ClusterLock>, String> {
    let Some(host) = run.healthy_managers().into_iter().next() else {
        return Ok(None);
    };
    let session = run.sessions[&host].clone();
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
    let invocation = commands::script(&roles::role("state").step("lock"), &inputs, session.sudo);
    let started = Instant::now();
    run.progress.step(&host, "taking the cluster lock");
    loop {
        let out = session.run(&invocation).await.map_err(|e| format!("{e:#}"))?;
        match out.status {
            0 => {
                if out.stdout.starts_with("taken-over") {
                    run.report.warnings.push(format!(
                        "took over a stale cluster lock on {host} (not refreshed for {} s): {}",
                        field(&out.stdout, "age").unwrap_or("?"),
                        describe(&out.stdout)
                    ));
                }
                break;
            }
            4 if started.elapsed() < wait => tokio::time::sleep(Duration::from_secs(2)).await,
            4 => {
                return Err(format!(
                    "the cluster is locked by {} (on {host}, refreshed {} s ago). Wait for that run to end; if it \
                     died, its lock goes stale after {} s and is taken over, or remove it now with `clusterup unlock -i {}`.",
                    describe(&out.stdout),
                    field(&out.stdout, "age").unwrap_or("?"),
                    STALE_AFTER.as_secs(),
                    run.inv.path.display()
                ));
            }
            status => {
                return Err(format!(
                    "{host}: taking the cluster lock failed (exit {status}): {}",
                    out.tail()
                ));
            }
        }
    }
    let refresher = {
        let session = session.clone();
        let invocation = commands::script(
            &roles::role("state").step("refresh"),
            &[Input::new("HOLDER", holder.clone())],
            session.sudo,
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let _ = session.run(&invocation).await;
            }
        })
    };
    Ok(Some(ClusterLock { session, holder, refresher }))
}

impl ClusterLock {
    pub async fn release(self) {
        self.refresher.abort();
        let invocation = commands::script(
            &roles::role("state").step("unlock"),
            &[Input::new("HOLDER", self.holder)],
            self.session.sudo,
        );
        let _ = self.session.run(&invocation).await;
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
