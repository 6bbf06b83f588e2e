//! `clusterup backup` and `clusterup restore`. A backup copies the raft state of one manager
//! that is not the leader, its engine stopped for the copy while the others keep quorum, into a
//! checksummed folder with a manifest (what clusterup needs to rebuild the rest, never a
//! secret's value), optionally kept on the NAS too. A restore puts that state back on a manager
//! after the swarm lost its managers and makes it the only manager (`--force-new-cluster`);
//! the other hosts then rejoin through `init`. Both hold the cluster lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;

use super::{Run, lock, phases};
use crate::commands::{self, Input};
use crate::engine;
use crate::plan::backup::{self as decide, Manager, Manifest};
use crate::plan::swarm::Member;
use crate::report::timestamp;
use crate::roles::{self, sha256_hex};

/// How long a manager's engine has to be back in the swarm after a copy or a restore.
const BACK_WITHIN: Duration = Duration::from_secs(120);

pub struct BackupOptions {
    /// The folder the backup folder is made in.
    pub out: PathBuf,
    /// Keep a copy on the NAS (`storage.nfs`, a host of the inventory), under PATH/backups.
    pub to_nas: bool,
    /// Copy from a swarm whose managers cannot spare one (a single manager).
    pub force: bool,
}

pub struct BackupDone {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Where the NAS keeps its copy.
    pub nas: Option<String>,
}

/// Connects, gathers facts and takes the lock; runs `work`; gives the lock back and closes.
async fn locked<T>(mut run: Run, work: impl AsyncFnOnce(&mut Run) -> Result<T>) -> Result<T> {
    phases::connect::run(&mut run).await;
    phases::facts::run(&mut run).await;
    let wait = run.options.lock_wait;
    let lock = lock::acquire(&mut run, wait).await.map_err(|e| anyhow!(e))?;
    let result = work(&mut run).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    run.close().await;
    result
}

pub async fn backup(run: Run, options: &BackupOptions) -> Result<BackupDone> {
    locked(run, async |run: &mut Run| take_backup(run, options).await).await
}

/// The reachable managers of the inventory, each with its node when its engine is in a swarm.
async fn managers(run: &mut Run) -> Vec<Manager> {
    let mut out = Vec::new();
    for host in run.healthy_managers() {
        let node = match run.engine(&host).await {
            Ok(docker) => engine::swarm::node_id(&docker).await.ok(),
            Err(_) => None,
        };
        out.push(Manager { host, node });
    }
    out
}

async fn take_backup(run: &mut Run, options: &BackupOptions) -> Result<BackupDone> {
    let managers = managers(run).await;
    // Any manager with the swarm's control plane lists the nodes.
    let lister = run
        .healthy_managers()
        .into_iter()
        .find(|h| run.facts.get(h).and_then(|f| f.swarm.as_ref()).is_some_and(|s| s.control_available))
        .ok_or_else(|| {
            anyhow!("no manager of the inventory answers for a swarm: there is nothing to back up")
        })?;
    let docker = run.engine(&lister).await?;
    let nodes = engine::swarm::nodes(&docker).await.map_err(|e| anyhow!("{lister}: {e:#}"))?;
    let (source, node) = decide::choose_source(&managers, &nodes, options.force).map_err(|e| anyhow!(e))?;
    // What the cluster holds, read through a manager that stays up during the copy.
    let driver = managers.iter().map(|m| m.host.clone()).find(|h| *h != source).unwrap_or(source.clone());
    let docker = run.engine(&driver).await?;
    let observed = engine::objects::observe(&docker).await.map_err(|e| anyhow!("{driver}: {e:#}"))?;
    let configs = engine::objects::config_names(&docker).await.map_err(|e| anyhow!("{driver}: {e:#}"))?;
    let facts = run.facts.get(&source).cloned().unwrap_or_default();
    let swarm = facts.swarm.clone().unwrap_or_default();

    let session = run.sessions.get(&source).cloned().ok_or_else(|| anyhow!("{source}: not connected"))?;
    run.progress.step(&source, "copying the swarm state (its engine stopped meanwhile)");
    let script = roles::role("backup").step("snapshot");
    let out = session.run_ok(&commands::script(&script, &[], session.sudo)).await?;
    let field = |key: &str| out.stdout.lines().find_map(|l| l.strip_prefix(key)).map(str::to_string);
    let stopped_ms = field("stopped_ms=").and_then(|v| v.parse().ok()).unwrap_or(0);
    let archive = base64::engine::general_purpose::STANDARD
        .decode(field("archive=").unwrap_or_default().trim())
        .map_err(|e| anyhow!("{source}: the copy of the swarm state did not arrive whole: {e}"))?;
    if archive.is_empty() {
        bail!("{source}: the copy of the swarm state is empty");
    }

    let created = timestamp::now_rfc3339();
    let inventory_text = std::fs::read(&run.inv.path).unwrap_or_default();
    let manifest = Manifest {
        format: decide::FORMAT,
        cluster: run.inv.cluster.clone(),
        created: created.clone(),
        source_host: source.clone(),
        source_node: node.clone(),
        advertise_addr: swarm.node_addr.clone(),
        cluster_id: cluster_id_of(run, &source),
        engine_version: facts.docker_version.clone().unwrap_or_default(),
        inventory_sha256: sha256_hex(&inventory_text),
        stacks: observed.deployed.clone(),
        secrets: observed.secrets.iter().cloned().collect(),
        configs,
        archive: decide::ARCHIVE.into(),
        archive_sha256: sha256_hex(&archive),
        archive_bytes: archive.len() as u64,
        engine_stopped_ms: stopped_ms,
    };
    let dir = options.out.join(decide::folder_name(&run.inv.cluster, &created));
    let (manifest_text, sums_text) = write_folder(&dir, &archive, &manifest)?;
    // The copy is kept first: a manager slow to come back does not cost the backup.
    back_in_swarm(run, &source, &node, &driver)
        .await
        .map_err(|e| anyhow!("{e:#}\n  the backup itself is complete in {}", dir.display()))?;
    let mut nas = None;
    if options.to_nas {
        let stored = store_on_nas(run, &dir, &manifest_text, &sums_text).await.map_err(|e| {
            anyhow!(
                "{e:#}\n  the backup itself is complete in {}; only its copy on the NAS failed",
                dir.display()
            )
        })?;
        nas = Some(stored);
    }
    Ok(BackupDone { dir, manifest, nas })
}

fn cluster_id_of(run: &Run, source: &str) -> String {
    let of = |h: &str| {
        run.facts.get(h).and_then(|f| f.swarm.as_ref()).and_then(|s| s.cluster_id()).map(str::to_string)
    };
    of(source).or_else(|| run.healthy_managers().iter().find_map(|h| of(h))).unwrap_or_default()
}

/// Writes the archive, the manifest and their checksums into `dir` (made private); returns the
/// manifest's and the checksums' text.
fn write_folder(dir: &Path, archive: &[u8], manifest: &Manifest) -> Result<(String, String)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot make {}", dir.display()))?;
    let manifest_text = serde_json::to_string_pretty(manifest)?;
    let manifest_file = format!("{manifest_text}\n");
    let sums_text = decide::sums(&[
        (decide::ARCHIVE, &sha256_hex(archive)),
        (decide::MANIFEST, &sha256_hex(manifest_file.as_bytes())),
    ]);
    for (name, bytes) in [
        (decide::ARCHIVE, archive),
        (decide::MANIFEST, manifest_file.as_bytes()),
        (decide::SUMS, format!("{sums_text}\n").as_bytes()),
    ] {
        let path = dir.join(name);
        let part = dir.join(format!(".{name}.part"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)
            .with_context(|| format!("cannot write {}", part.display()))?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&part, &path)?;
    }
    Ok((manifest_text, sums_text))
}

/// Waits until the manager whose engine was stopped is back: its engine answers as a manager,
/// and the swarm, seen from `driver`, has it Ready and Reachable.
async fn back_in_swarm(run: &mut Run, host: &str, node: &str, driver: &str) -> Result<()> {
    run.progress.step(host, "waiting for its engine to be back in the swarm");
    let session = run.sessions.get(host).cloned().ok_or_else(|| anyhow!("{host}: not connected"))?;
    let inputs = [Input::new("IN_SWARM", "yes"), Input::new("TIMEOUT", BACK_WITHIN.as_secs().to_string())];
    session.run_ok(&commands::script(&roles::role("docker").step("settle"), &inputs, session.sudo)).await?;
    let docker = run.engine(driver).await?;
    engine::swarm::await_ready(&docker, node, true, BACK_WITHIN).await.map_err(|e| anyhow!("{host}: {e:#}"))
}

/// Copies the backup folder to the NAS, `PATH/backups/FOLDER`; returns that path.
async fn store_on_nas(run: &mut Run, dir: &Path, manifest: &str, sums: &str) -> Result<String> {
    let nfs = run.inv.nfs.clone().ok_or_else(|| anyhow!("--to-nas: the inventory has no storage.nfs"))?;
    let session = run.sessions.get(&nfs.server).cloned().ok_or_else(|| {
        anyhow!(
            "--to-nas: the NAS `{}` is not a host of the inventory that could be reached; copy {} there yourself",
            nfs.server,
            dir.display()
        )
    })?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let root = format!("{}/backups", nfs.path.trim_end_matches('/'));
    let upload = format!("{root}/.{name}.{}", decide::ARCHIVE);
    let archive = dir.join(decide::ARCHIVE);
    let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    run.progress.step(&nfs.server, "keeping a copy of the backup");
    session.run_ok(&commands::upload(&archive, &upload, size, session.sudo)).await?;
    let target = format!("{root}/{name}");
    let inputs = [
        Input::new("DIR", target.clone()),
        Input::new("ARCHIVE", upload),
        Input::new("MANIFEST", manifest),
        Input::new("SUMS", sums),
    ];
    session.run_ok(&commands::script(&roles::role("backup").step("store"), &inputs, session.sudo)).await?;
    Ok(format!("{}:{target}", nfs.server))
}

pub struct RestoreOptions {
    /// The backup folder.
    pub from: PathBuf,
    /// The manager to restore onto (default: the one the backup was taken from).
    pub on: Option<String>,
    /// Restore even where a swarm answers, or from another cluster's backup.
    pub force: bool,
}

pub struct RestoreDone {
    pub host: String,
    pub manifest: Manifest,
    /// Old node entries removed (the managers that lost their state, to rejoin anew).
    pub removed: Vec<String>,
    /// Where the host's own swarm state was kept.
    pub kept: Option<String>,
}

/// Reads a backup folder and checks it against its checksums.
pub fn read_backup(dir: &Path) -> Result<(Manifest, PathBuf)> {
    let sums = std::fs::read_to_string(dir.join(decide::SUMS))
        .with_context(|| format!("{} is not a clusterup backup (no {})", dir.display(), decide::SUMS))?;
    let bad = decide::mismatches(&sums, |name| std::fs::read(dir.join(name)).ok().map(|b| sha256_hex(&b)));
    if !bad.is_empty() {
        bail!(
            "{}: {} do not match {} (damaged or changed): refusing to restore from it",
            dir.display(),
            bad.join(", "),
            decide::SUMS
        );
    }
    let text = std::fs::read_to_string(dir.join(decide::MANIFEST))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: cannot read {}", dir.display(), decide::MANIFEST))?;
    if manifest.archive != decide::ARCHIVE {
        bail!(
            "{}: its manifest names the archive `{}`, not {}",
            dir.display(),
            manifest.archive,
            decide::ARCHIVE
        );
    }
    if manifest.format != decide::FORMAT {
        bail!(
            "{}: a backup of format {}, this clusterup reads {}",
            dir.display(),
            manifest.format,
            decide::FORMAT
        );
    }
    let archive = dir.join(&manifest.archive);
    Ok((manifest, archive))
}

pub async fn restore(run: Run, options: &RestoreOptions) -> Result<RestoreDone> {
    let (manifest, archive) = read_backup(&options.from)?;
    if manifest.cluster != run.inv.cluster && !options.force {
        bail!(
            "{} is a backup of cluster `{}`, and this inventory is cluster `{}`: refused (--replace restores it all the same)",
            options.from.display(),
            manifest.cluster,
            run.inv.cluster
        );
    }
    locked(run, async |run: &mut Run| put_back(run, options, manifest, &archive).await).await
}

/// Refuses while a manager of the inventory still answers for a swarm: restoring would replace
/// a working control plane.
async fn refuse_healthy(run: &mut Run) -> Result<()> {
    for host in run.healthy_managers() {
        let manages =
            run.facts.get(&host).and_then(|f| f.swarm.as_ref()).is_some_and(|s| s.control_available);
        if !manages {
            continue;
        }
        let docker = run.engine(&host).await?;
        if let Ok(nodes) = engine::swarm::nodes(&docker).await {
            bail!(
                "{host} still answers for a swarm of {} node(s): restoring would replace it. Restore after the swarm \
                 lost its managers (its node list does not answer), or give --replace",
                nodes.len()
            );
        }
    }
    Ok(())
}

async fn put_back(
    run: &mut Run,
    options: &RestoreOptions,
    manifest: Manifest,
    archive: &Path,
) -> Result<RestoreDone> {
    let host = options.on.clone().unwrap_or_else(|| manifest.source_host.clone());
    if !run.inv.host(&host).is_some_and(|h| h.is_manager()) {
        bail!("{host} is not a manager of the inventory: restore onto one of them (--on HOST)");
    }
    let session = match run.sessions.get(&host).cloned() {
        Some(session) if !run.report.is_failed(&host) => session,
        _ => {
            let why = run.report.host(&host).error.clone().unwrap_or_else(|| "not connected".into());
            bail!("{host}, the manager to restore onto, cannot be used: {why}");
        }
    };
    if !options.force {
        refuse_healthy(run).await?;
    }
    let advertise = {
        let h = run.inv.host(&host).ok_or_else(|| anyhow!("{host}: not in the inventory"))?;
        let facts = run.facts.get(&host).ok_or_else(|| anyhow!("{host}: no facts"))?;
        Member { host: h, facts }
            .advertise_address()
            .ok_or_else(|| anyhow!("{host}: no address to advertise"))?
    };

    run.progress.step(&host, "putting the swarm state back");
    let stamp: String = timestamp::now_rfc3339().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let upload = format!("/var/tmp/clusterup-restore-{stamp}.tar.gz");
    session.run_ok(&commands::upload(archive, &upload, manifest.archive_bytes, session.sudo)).await?;
    let inputs = [Input::new("ARCHIVE", upload), Input::new("STAMP", stamp)];
    let out = session
        .run_ok(&commands::script(&roles::role("backup").step("unpack"), &inputs, session.sudo))
        .await?;
    let kept = out.stdout.lines().find_map(|l| l.strip_prefix("kept=")).map(str::to_string);

    // The engine restarted on the old state: a fresh client, once it answers again.
    run.progress.step(&host, "making it the swarm's only manager");
    let docker = answering(&session).await?;
    engine::swarm::force_new_cluster(&docker, &advertise).await.map_err(|e| anyhow!("{host}: {e:#}"))?;
    let nodes = leader_answers(&docker).await.map_err(|e| anyhow!("{host}: {e:#}"))?;
    let own = engine::swarm::node_id(&docker).await.map_err(|e| anyhow!("{host}: {e:#}"))?;

    // Managers that lost their state: only their old entries go, and they join anew (init).
    let rejoining: Vec<String> = run
        .inv
        .hosts
        .iter()
        .filter(|h| h.is_manager() && h.name != host)
        .filter(|h| run.facts.get(&h.name).is_some_and(|f| f.swarm_state() == "inactive"))
        .map(|h| h.name.clone())
        .collect();
    let mut removed = Vec::new();
    for id in decide::stale_nodes(&nodes, &own, &rejoining) {
        let name =
            nodes.iter().find(|n| n.id == id).map(|n| n.description.hostname.clone()).unwrap_or_default();
        remove_stale(&docker, &id).await.map_err(|e| anyhow!("{host}: {e:#}"))?;
        removed.push(format!("{name} ({id})"));
    }
    Ok(RestoreDone { host, manifest, removed, kept })
}

/// Removes an old node entry after `--force-new-cluster`. An old manager's entry is refused
/// while the swarm still takes it for a manager (`node ... is a cluster manager`); the swarm
/// turns those into workers within seconds by itself (a demotion is refused meanwhile: no
/// such raft member), so the removal is tried again until it is taken (at most
/// [`BACK_WITHIN`]).
async fn remove_stale(docker: &bollard::Docker, id: &str) -> Result<()> {
    let deadline = Instant::now() + BACK_WITHIN;
    loop {
        match engine::swarm::remove_node(docker, id, true).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// A client of the host's engine once it answers again after a restart (at most
/// [`BACK_WITHIN`]).
async fn answering(session: &crate::connection::Session) -> Result<bollard::Docker> {
    let deadline = Instant::now() + BACK_WITHIN;
    loop {
        let attempt = match engine::connect(session).await {
            Ok(docker) => engine::swarm::swarm_state(&docker).await.map(|_| docker),
            Err(e) => Err(e),
        };
        match attempt {
            Ok(docker) => return Ok(docker),
            Err(e) if Instant::now() >= deadline => {
                return Err(anyhow!("{}: the engine did not answer after the restore: {e:#}", session.host));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The node list, once the restored manager leads (at most [`BACK_WITHIN`]).
async fn leader_answers(docker: &bollard::Docker) -> Result<Vec<crate::plan::swarm::SwarmNode>> {
    let deadline = Instant::now() + BACK_WITHIN;
    loop {
        match engine::swarm::nodes(docker).await {
            Ok(nodes) => return Ok(nodes),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
