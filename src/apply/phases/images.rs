//! Preloaded images: every swarm node that lacks an archive's images gets the archive
//! streamed to its `docker load`. Nodes that have them are not touched.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;

use crate::apply::Run;
use crate::commands;
use crate::engine;
use crate::images::images_in_archive;

/// Archives each node needs, with the images that made it need them.
pub type Loads = BTreeMap<String, Vec<(PathBuf, Vec<String>)>>;

pub async fn observe(run: &mut Run) {
    if run.inv.images.preload.is_empty() {
        return;
    }
    let mut archives = Vec::new();
    for path in &run.inv.images.preload {
        match images_in_archive(path) {
            Ok(tags) => archives.push((path.clone(), tags)),
            Err(e) => run.report.fail_cluster(format!("{e:#}")),
        }
    }
    let hosts: Vec<String> = run.healthy_swarm_nodes().into_iter().filter(|h| run.in_scope(h)).collect();
    let all: Vec<String> = archives.iter().flat_map(|(_, t)| t.clone()).collect();
    // Nodes without an engine yet lack everything; the others' engines are asked, all at once.
    let (asked, fresh): (Vec<String>, Vec<String>) =
        hosts.into_iter().partition(|h| run.facts.get(h).is_some_and(|f| f.docker_installed));
    let results = run
        .each_engine(&asked, |host, docker| {
            let all = all.clone();
            async move { engine::node::missing_images(&docker, &all).await.map_err(|e| anyhow!("{host}: {e:#}")) }
        })
        .await;
    let mut loads = Loads::new();
    let mut record = |host: &str, missing: &[String]| {
        let needed: Vec<(PathBuf, Vec<String>)> = archives
            .iter()
            .filter(|(_, tags)| tags.iter().any(|t| missing.contains(t)))
            .map(|(p, tags)| (p.clone(), tags.clone()))
            .collect();
        if !needed.is_empty() {
            loads.insert(host.to_string(), needed);
        }
    };
    for host in &fresh {
        record(host, &all);
    }
    let mut failures = Vec::new();
    for (host, result) in results {
        match result {
            Ok(missing) => record(&host, &missing),
            Err(e) => failures.push((host, format!("{e:#}"))),
        }
    }
    for (host, e) in failures {
        run.fail(&host, e);
    }
    run.image_loads = loads;
}

pub async fn apply(run: &mut Run) {
    let loads = std::mem::take(&mut run.image_loads);
    let hosts: Vec<String> = run.healthy().into_iter().filter(|h| loads.contains_key(h)).collect();
    if hosts.is_empty() {
        return;
    }
    let progress = run.progress.clone();
    let results = run
        .each(&hosts, |name, session| {
            let archives = loads.get(&name).cloned().unwrap_or_default();
            let progress = progress.clone();
            async move {
                let mut changes = Vec::new();
                for (path, tags) in archives {
                    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    progress.step(&name, &format!("loading {file}"));
                    let size = std::fs::metadata(&path)
                        .map_err(|e| anyhow!("reading {}: {e}", path.display()))?
                        .len();
                    session.run_ok(&commands::docker_load(&path, size, session.sudo)).await?;
                    changes.push(format!("images: loaded {file} ({})", tags.join(", ")));
                }
                Ok::<_, anyhow::Error>(changes)
            }
        })
        .await;
    for (name, result) in results {
        match result {
            Ok(changes) => run.report.host(&name).changes.extend(changes),
            Err(e) => run.fail(&name, format!("{e:#}")),
        }
    }
}

pub fn planned(loads: &Loads) -> Vec<crate::plan::Change> {
    loads
        .iter()
        .flat_map(|(host, archives)| {
            archives.iter().map(move |(p, tags)| {
                crate::plan::Change::new(
                    host,
                    "images",
                    format!(
                        "load {} ({})",
                        p.file_name().unwrap_or_default().to_string_lossy(),
                        tags.join(", ")
                    ),
                )
            })
        })
        .collect()
}
