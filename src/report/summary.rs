//! The outcome of a run, per host: what changed (or would), what failed and why.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{CLUSTER, Change};

#[derive(Debug, Default, Serialize)]
pub struct HostReport {
    /// `changed`, `unchanged` or `failed`; set when the run is over.
    pub status: &'static str,
    /// Changes made (init) or planned (plan, --dry-run).
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HostReport {
    fn derive_status(&self) -> &'static str {
        match (&self.error, self.changes.is_empty()) {
            (Some(_), _) => "failed",
            (None, true) => "unchanged",
            (None, false) => "changed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub command: String,
    pub dry_run: bool,
    /// Number of changes made, or planned when `dry_run`.
    pub changed: usize,
    /// Names of the hosts that failed.
    pub failed: Vec<String>,
    pub hosts: BTreeMap<String, HostReport>,
    /// Cluster-wide objects: networks, secrets, stacks. Its error fails the run too.
    pub cluster: HostReport,
    pub warnings: Vec<String>,
    /// Why the run stopped short: preflight refused it, the lock was held or lost, Ctrl-C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Whether the run had begun to change hosts (the plan confirmed): a run stopped after
    /// that may have left steps to finish, which a re-run does.
    pub changes_began: bool,
    /// `plan --diff`: per stack to deploy, a unified diff from what is deployed to the inventory.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub diffs: BTreeMap<String, String>,
}

impl RunReport {
    pub fn new(command: &str, dry_run: bool, hosts: &[String]) -> RunReport {
        RunReport {
            command: command.to_string(),
            dry_run,
            changed: 0,
            failed: Vec::new(),
            hosts: hosts.iter().map(|h| (h.clone(), HostReport::default())).collect(),
            cluster: HostReport::default(),
            warnings: Vec::new(),
            stopped: None,
            changes_began: false,
            diffs: BTreeMap::new(),
        }
    }

    pub fn host(&mut self, name: &str) -> &mut HostReport {
        self.hosts.entry(name.to_string()).or_default()
    }

    pub fn fail(&mut self, host: &str, error: impl Into<String>) {
        let report = self.host(host);
        if report.error.is_none() {
            report.error = Some(error.into());
        }
    }

    pub fn record(&mut self, change: &Change) {
        let line = format!("{}: {}", change.area, change.what);
        if change.target == CLUSTER {
            self.cluster.changes.push(line);
        } else {
            self.host(&change.target).changes.push(line);
        }
    }

    /// A failure of a cluster-wide object (a stack that does not converge, ...).
    pub fn fail_cluster(&mut self, error: impl Into<String>) {
        let error = error.into();
        match &mut self.cluster.error {
            Some(existing) => {
                existing.push('\n');
                existing.push_str(&error);
            }
            None => self.cluster.error = Some(error),
        }
    }

    /// The run succeeded: no host failed, no cluster object failed, nothing stopped it.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.cluster.error.is_none() && self.stopped.is_none()
    }

    pub fn is_failed(&self, host: &str) -> bool {
        self.hosts.get(host).is_some_and(|h| h.error.is_some())
    }

    /// Fills the derived totals; call once the run is over.
    pub fn finish(&mut self) {
        for host in self.hosts.values_mut() {
            host.status = host.derive_status();
        }
        self.cluster.status = self.cluster.derive_status();
        self.changed =
            self.hosts.values().map(|h| h.changes.len()).sum::<usize>() + self.cluster.changes.len();
        self.failed = self.hosts.iter().filter(|(_, h)| h.error.is_some()).map(|(n, _)| n.clone()).collect();
    }

    /// The summary's line on why the run stopped short, if it did: whether it had begun to
    /// change hosts is what a person needs to know next.
    pub fn stopped_line(&self) -> Option<String> {
        let reason = self.stopped.as_ref()?;
        Some(match self.changes_began {
            false => format!("stopped before changing anything: {reason}"),
            true => {
                format!("stopped while changing the cluster: {reason}; run `clusterup init` again to finish")
            }
        })
    }

    pub fn print_human(&self) {
        let verb = if self.dry_run { "would change" } else { "changed" };
        for (name, host) in &self.hosts {
            match (&host.error, host.changes.len()) {
                (Some(e), _) => println!("{name}: FAILED: {e}"),
                (None, 0) => println!("{name}: unchanged"),
                (None, n) => {
                    println!("{name}: {verb} ({n})");
                    for c in &host.changes {
                        println!("  - {c}");
                    }
                }
            }
        }
        let cluster = &self.cluster;
        if cluster.error.is_some() || !cluster.changes.is_empty() {
            match &cluster.error {
                Some(e) => println!("cluster: FAILED: {e}"),
                None => println!("cluster: {verb} ({})", cluster.changes.len()),
            }
            for c in &cluster.changes {
                println!("  - {c}");
            }
        }
        for (stack, diff) in &self.diffs {
            println!("stack {stack}:");
            print!("{diff}");
        }
        for w in &self.warnings {
            println!("warning: {w}");
        }
        if let Some(line) = self.stopped_line() {
            println!("{line}");
        }
        let total = if self.dry_run { "planned" } else { "changed" };
        println!("{total}: {}, failed: {}", self.changed, self.failed.len());
    }
}

#[cfg(test)]
mod tests {
    use super::RunReport;

    #[test]
    fn a_stopped_run_says_whether_it_had_begun_to_change_hosts() {
        let mut report = RunReport::new("init", false, &["m1".to_string()]);
        assert_eq!(report.stopped_line(), None);
        report.stopped = Some("interrupted (Ctrl-C)".into());
        assert_eq!(report.stopped_line().unwrap(), "stopped before changing anything: interrupted (Ctrl-C)");
        report.changes_began = true;
        let line = report.stopped_line().unwrap();
        assert!(line.starts_with("stopped while changing the cluster: interrupted (Ctrl-C)"), "{line}");
        assert!(line.contains("run `clusterup init` again"), "{line}");
    }
}
