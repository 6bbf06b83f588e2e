//! The cloud's side, before any host is reached: with `openstack.manage_security_group`, the
//! `clusterup` security group and its rules made and put on the nodes' ports (SSH from the
//! bastion may be what it adds, so it comes first). Nothing without the option; `plan` and
//! `--dry-run` only list it. Under `--limit`, only the ports of the hosts in scope get the
//! group; the group and its rules are made whatever the limit, as a host that joins needs them.

use crate::apply::{Run, confirmed};
use crate::cloud::openstack::{self, clouds_yaml, managed_group::GroupChange};
use crate::plan::{CLUSTER, Change};

const AREA: &str = "openstack";

/// Err: the run stops before touching any host, with the reason.
pub async fn run(run: &mut Run, changing: bool) -> Result<(), String> {
    let Some(source) = run.inv.openstack.clone().filter(|s| s.manage_security_group) else {
        return Ok(());
    };
    let Some(mut change) = source.security_group_change.clone() else {
        return Ok(());
    };
    change.attach.retain(|a| run.in_scope(&a.server));
    if change.is_empty() {
        return Ok(());
    }
    let planned = changes(&change);
    if !changing {
        for c in &planned {
            run.report.record(c);
        }
        return Ok(());
    }
    if !confirmed(run, &planned).await {
        return Err("not confirmed".into());
    }
    run.log.line(CLUSTER, &format!("openstack: {} change(s) to security group `clusterup`", planned.len()));
    let mut done = Vec::new();
    let result =
        openstack::manage_security_group(&source, &clouds_yaml::Env::from_process(), &change, &mut done)
            .await;
    for line in done {
        run.log.line(CLUSTER, &format!("openstack: {line}"));
        run.report.record(&Change::new(CLUSTER, AREA, line));
    }
    result.map_err(|e| {
        format!("security group `clusterup`: {e}; no host was changed yet: fix it and run again")
    })
}

fn changes(change: &GroupChange) -> Vec<Change> {
    change.describe().into_iter().map(|line| Change::new(CLUSTER, AREA, line)).collect()
}
