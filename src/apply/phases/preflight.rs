//! Refuse, before anything is changed anywhere, what would break the cluster: unsupported
//! systems, cloned machines (duplicate machine-ids), and kernels that cannot carry the
//! inventory's encrypted networks.

use std::collections::BTreeMap;

use crate::apply::Run;

pub fn run(run: &mut Run) -> Result<(), String> {
    let mut refused = Vec::new();
    for (name, facts) in &run.facts {
        let host = run.inv.host(name);
        if host.is_some_and(|h| h.is_swarm_node())
            && let Err(reason) = facts.check_supported()
        {
            refused.push((name.clone(), reason));
        }
    }

    let mut by_machine_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, facts) in &run.facts {
        if !facts.machine_id.is_empty() {
            by_machine_id.entry(&facts.machine_id).or_default().push(name);
        }
    }
    for (id, names) in by_machine_id.iter().filter(|(_, n)| n.len() > 1) {
        for name in names {
            refused.push((
                name.to_string(),
                format!(
                    "hosts {} share machine-id {id} (cloned from one image?); a swarm needs distinct ids. \
                     On each clone run `rm /etc/machine-id && systemd-machine-id-setup` and reboot.",
                    names.join(", ")
                ),
            ));
        }
    }

    let kernels = crate::plan::kernel::check(&run.inv, &run.facts);
    refused.extend(kernels.refused);
    run.report.warnings.extend(kernels.warnings);

    if refused.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = refused.iter().map(|(n, _)| n.clone()).collect();
    for (name, reason) in refused {
        run.fail(&name, reason);
    }
    Err(format!("preflight refused {}", names.join(", ")))
}
