//! With NFS storage, every swarm node test-mounts the share before anything depends on it.

use crate::apply::Run;
use crate::commands::{self, Input};
use crate::roles;

/// With NFS storage, every swarm node test-mounts the share; those that cannot are named.
pub async fn run(run: &mut Run) {
    let (Some(nfs), Some(server)) = (run.inv.nfs.clone(), run.inv.nfs_address()) else { return };
    let hosts: Vec<String> = run.healthy_swarm_nodes().into_iter().filter(|h| run.in_scope(h)).collect();
    let probe = roles::role("nfs-client").step("probe");
    let inputs = [
        Input::new("SERVER", server.clone()),
        Input::new("SHARE", nfs.path.clone()),
        Input::new("TIMEOUT", "20"),
    ];
    for h in &hosts {
        run.progress.step(h, "test-mounting the NFS share");
    }
    let results = run
        .each(&hosts, |_, session| {
            let invocation = commands::script(&probe, &inputs, session.sudo);
            async move { session.run(&invocation).await }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(out) if out.success() => {}
            Ok(out) => run.fail(
                &name,
                format!(
                    "{name} cannot mount {server}:{} (NFS 4.2) within 20 s: {}. Check that the NAS exports it to \
                     this node's address and that nothing blocks port 2049 between them.",
                    nfs.path,
                    out.tail()
                ),
            ),
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}
