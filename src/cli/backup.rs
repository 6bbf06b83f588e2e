//! `clusterup backup` and `clusterup restore`: what they print and how they end.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clusterup::apply::{self, backup as take};
use clusterup::report::RunLog;
use serde_json::json;

use super::load::{Needs, load, load_for};
use super::{BackupArgs, EXIT_FAILED, EXIT_INVALID, RestoreArgs};

pub async fn backup(args: BackupArgs, log: Option<&Path>) -> ExitCode {
    let inv = match load_for(&args.target.inventory, Needs::Hosts).await {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    let log = Arc::new(RunLog::open(&crate::log_path(log, &inv), "backup"));
    let options = apply::Options {
        dry_run: false,
        yes: true,
        concurrency: 32,
        force: false,
        converge_timeout: 0,
        lock_wait: std::time::Duration::from_secs(args.lock_wait),
        recreate_volumes: false,
        diff: false,
        recreate_networks: false,
        prune_stacks: false,
        limit: None,
        disruption: Default::default(),
        allow_downgrade: false,
        lock_reachable: false,
    };
    let run = apply::Run::new(inv, options, log.clone(), "backup");
    let wanted = take::BackupOptions { out: args.out, to_nas: args.to_nas, force: args.force };
    match take::backup(run, &wanted).await {
        Ok(done) if args.target.json => {
            let report = json!({"dir": done.dir, "nas": done.nas, "manifest": done.manifest});
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(done) => {
            let m = &done.manifest;
            println!("backup: {}", done.dir.display());
            println!(
                "  the swarm state of {} ({} bytes, sha256 {}); its engine was stopped {:.1} s for the copy",
                m.source_host,
                m.archive_bytes,
                &m.archive_sha256[..12],
                m.engine_stopped_ms as f64 / 1000.0
            );
            println!("  stacks: {}", m.stacks.keys().cloned().collect::<Vec<_>>().join(", "));
            println!("  secrets (names only): {}", m.secrets.join(", "));
            println!("  configs: {}", m.configs.join(", "));
            if let Some(nas) = &done.nas {
                println!("  a copy on the NAS: {nas}");
            }
            println!(
                "The archive holds the secrets' values (with the key of the raft log): keep it as you keep them."
            );
            println!("Volume data on the NAS is not in it: back the NAS up on its own.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

pub async fn restore(args: RestoreArgs, log: Option<&Path>) -> ExitCode {
    let inv = match load(&args.init.target.inventory).await {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    if let Some(host) = &args.on
        && !inv.host(host).is_some_and(|h| h.is_manager())
    {
        eprintln!("error: --on {host}: not a manager of {}", inv.path.display());
        return ExitCode::from(EXIT_INVALID);
    }
    let options = crate::init_options(&args.init);
    let restore_log = Arc::new(RunLog::open(&crate::log_path(log, &inv), "restore"));
    let restoring = apply::Options { lock_reachable: true, ..options.clone() };
    let run = apply::Run::new(inv.clone(), restoring, restore_log, "restore");
    let wanted = take::RestoreOptions { from: args.from.clone(), on: args.on.clone(), force: args.replace };
    match take::restore(run, &wanted).await {
        Ok(done) => {
            eprintln!(
                "restored the swarm state of {} (backup of {}, taken {}) on {}",
                done.manifest.source_host, done.manifest.cluster, done.manifest.created, done.host
            );
            if let Some(kept) = &done.kept {
                eprintln!("  {}'s own swarm state was kept in {kept}", done.host);
            }
            for node in &done.removed {
                eprintln!("  removed the old entry of {node}: it joins anew");
            }
            eprintln!("converging: the other hosts rejoin, the stacks are checked");
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    match crate::converge_inventory(inv, args.init.target.json, log, options, "init", true).await {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    }
}
