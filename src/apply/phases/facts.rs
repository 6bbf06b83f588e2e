//! Gather every connected host's facts in one round trip each.

use crate::apply::Run;
use crate::facts;

pub async fn run(run: &mut Run) {
    let hosts = run.healthy();
    for h in &hosts {
        run.progress.step(h, "gathering facts");
    }
    let inv = run.inv.clone();
    let results = run
        .each(&hosts, |name, session| {
            let user = inv.host(&name).map(|h| h.ssh.user.clone()).unwrap_or_default();
            async move { facts::gather(&session, &user).await }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(facts) => {
                run.facts.insert(name, facts);
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}
