//! Gather every connected host's facts in one round trip each (and, where the engine's
//! socket can be reached, one request to its API, whose client the run keeps).

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
            async move {
                let engine = match crate::engine::connect_socket(&session).await {
                    Ok(docker) => Some(docker),
                    Err(e) => {
                        let why =
                            format!("no engine socket over SSH, the facts script asks the engine ({e:#})");
                        session.run_log().line(&session.host, &why);
                        None
                    }
                };
                let facts = facts::gather(&session, &user, engine.as_ref()).await?;
                Ok((facts, engine))
            }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok((facts, engine)) => {
                match engine {
                    Some(docker) => {
                        run.engines.insert(name.clone(), docker);
                    }
                    None => {
                        run.socket_refused.insert(name.clone());
                    }
                }
                run.facts.insert(name, facts);
            }
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}
