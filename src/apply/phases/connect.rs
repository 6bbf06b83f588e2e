//! Open one SSH connection per host, concurrently; a host that cannot be reached fails alone.

use std::sync::Arc;

use crate::apply::Run;
use crate::connection;

pub async fn run(run: &mut Run) {
    let limit = Arc::new(tokio::sync::Semaphore::new(run.options.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for host in run.reached() {
        run.progress.step(&host.name, "connecting");
        let log = run.log.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = connection::connect(&host, log).await;
            (host.name, result)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((name, result)) = joined else { continue };
        match result {
            Ok(session) => {
                run.sessions.insert(name, Arc::new(session));
            }
            // A host on its way out may well be gone already: its node is removed without it.
            Err(e) if run.inv.host(&name).is_some_and(|h| h.is_absent()) => {
                run.progress.finish(&name, "unreachable (absent: removed without it)");
                run.report.warnings.push(format!("{name} is marked absent and could not be reached: {e:#}"));
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}
