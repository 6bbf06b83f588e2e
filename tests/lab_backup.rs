//! Swarm backup and restore on the container lab: three managers, a worker running the stacks
//! (Caddy with its Caddyfile as a config, Postgres with its password as a secret), and a NAS
//! machine that keeps a copy. Every manager then loses its swarm state; `restore` brings the
//! swarm back from the backup on one of them, the others rejoin, and every service is back with
//! the same secrets and configs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{clusterup_with_env, json, lab, lab_dir, on, sampling_engines};
use serde_json::Value;

const PASSWORD: &str = "lab-backup-password-0d1e";
const MANAGERS: [&str; 3] = ["m1", "m2", "m3"];

/// The cluster's inventory; with `nas`, also the NAS machine that keeps backups (an inventory
/// for `backup --to-nas` only: the container lab cannot serve NFS, so `init` never sees it).
fn inventory(nas: bool) -> PathBuf {
    let addr = |m: &str| lab(&["addr", m]).trim().to_string();
    let images = lab_dir().join("images");
    let mut text = format!(
        r#"cluster: {{name: lab}}
ssh: {{user: admin, identity_file: id_ed25519, known_hosts: known_hosts, host_key_policy: accept-new}}
hosts:
  - {{name: m1, address: {m1}, roles: [manager]}}
  - {{name: m2, address: {m2}, roles: [manager]}}
  - {{name: m3, address: {m3}, roles: [manager]}}
  - {{name: w1, address: {w1}, roles: [worker], labels: {{proxy: true, db: true}}}}
"#,
        m1 = addr("m1"),
        m2 = addr("m2"),
        m3 = addr("m3"),
        w1 = addr("w1"),
    );
    if nas {
        text += &format!(
            "  - {{name: nas, address: {}, kind: nas}}\nstorage:\n  nfs: {{server: nas, path: /srv/clusterup, managed: false}}\n",
            addr("nas")
        );
    }
    text += &format!(
        r#"networks:
  - name: reverse-proxy
  - name: database
secrets:
  - {{name: postgres_password, env: LAB_PG_PASSWORD}}
images:
  resolve: never
  preload: [{images}/caddy.tar, {images}/postgres.tar]
stacks:
  - name: proxy
    template: caddy
    vars: {{image: "clusterup-lab/caddy:lab", endpoint_mode: dnsrr, placement_label: proxy}}
  - name: db
    template: postgres
    vars: {{image: "clusterup-lab/postgres:lab", endpoint_mode: dnsrr, placement_label: db, user: app, db: app}}
    networks: [database]
"#,
        images = images.display()
    );
    let path = lab_dir().join(if nas { "backup-nas.yml" } else { "backup.yml" });
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str], inv: &Path) -> (Option<i32>, Value, String) {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-i", inv.to_str().unwrap(), "--json"]);
    let out = clusterup_with_env(&full, &[("LAB_PG_PASSWORD", PASSWORD)]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!shown.contains(PASSWORD), "the secret's value appeared in the output");
    (out.status.code(), json(&out), shown)
}

/// `NAME ID` of the swarm's secrets or configs, as a manager lists them.
fn objects(kind: &str, manager: &str) -> BTreeMap<String, String> {
    on(manager, &format!("docker {kind} ls --format '{{{{.Name}}}} {{{{.ID}}}}'"))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, id)| (n.to_string(), id.to_string()))
        .collect()
}

fn replicas(manager: &str) -> String {
    common::on_manager(manager, "docker service ls --format '{{.Name}} {{.Replicas}}' | sort")
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn a_backup_restores_a_swarm_that_lost_every_manager() {
    lab(&["images"]);
    common::lab_up_with_engine(&["m1", "m2", "m3", "w1"]);
    lab(&["up", "nas"]);
    let inv = inventory(false);
    let (code, report, _) = run(&["init", "--converge-timeout", "240"], &inv);
    assert_eq!(code, Some(0), "{report}");
    let secrets = objects("secret", "m1");
    let configs = objects("config", "m1");
    let services = replicas("m1");
    assert!(secrets.keys().any(|s| s.starts_with("postgres_password_")), "{secrets:?}");
    assert!(services.contains("db_postgres 1/1") && services.contains("proxy_caddy 1/1"), "{services}");
    let leader = on("m1", "docker node ls --filter role=manager --format '{{.Hostname}} {{.ManagerStatus}}'");
    let leader = leader
        .lines()
        .find(|l| l.ends_with(" Leader"))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();

    // The backup: a manager that is not the leader stops its engine for the copy while the
    // other two keep quorum; a copy goes to the NAS.
    let out_dir = lab_dir().join("backups");
    let _ = std::fs::remove_dir_all(&out_dir);
    let (samples, (code, backup, shown)) = sampling_engines(&MANAGERS, || {
        run(&["backup", "--to-nas", "--out", out_dir.to_str().unwrap()], &inventory(true))
    });
    assert_eq!(code, Some(0), "{shown}");
    let manifest = &backup["manifest"];
    let source = manifest["source_host"].as_str().unwrap().to_string();
    assert_ne!(source, leader, "the leader's engine was stopped for the copy");
    assert!(samples.iter().all(|&up| up >= 2), "quorum lost during the backup: {samples:?}");
    assert!(samples.contains(&2), "no sample saw the source's engine stopped: {samples:?}");
    let stopped_ms = manifest["engine_stopped_ms"].as_u64().unwrap();
    eprintln!("backup: the engine of {source} was stopped {stopped_ms} ms");
    let names = |key: &str| -> Vec<String> {
        manifest[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names("secrets"), secrets.keys().cloned().collect::<Vec<_>>());
    assert_eq!(names("configs"), configs.keys().cloned().collect::<Vec<_>>());
    assert!(manifest["stacks"]["db"].is_string() && manifest["stacks"]["proxy"].is_string(), "{manifest}");
    let dir = PathBuf::from(backup["dir"].as_str().unwrap());
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let nas = backup["nas"].as_str().unwrap().strip_prefix("nas:").unwrap().to_string();
    assert_eq!(on("nas", &format!("cd {nas} && sha256sum -c --quiet SHA256SUMS && echo ok")).trim(), "ok");

    // Every manager loses its swarm state (the worker keeps running its tasks).
    for m in MANAGERS {
        on(
            m,
            "systemctl stop docker.socket docker && rm -rf /var/lib/docker/swarm && systemctl start docker",
        );
    }
    for m in MANAGERS {
        assert_eq!(on(m, "docker info --format '{{.Swarm.LocalNodeState}}'").trim(), "inactive", "{m}");
    }

    // Restore: the swarm comes back on the source manager, the other two rejoin.
    let started = std::time::Instant::now();
    let (code, report, shown) = run(&["restore", "--from", dir.to_str().unwrap(), "--yes"], &inv);
    assert_eq!(code, Some(0), "{shown}");
    eprintln!("restore and rejoin: {:.1} s", started.elapsed().as_secs_f64());
    for m in MANAGERS.iter().filter(|m| **m != source) {
        let joined = report["hosts"][m]["changes"].to_string();
        assert!(joined.contains("join the swarm as manager"), "{m}: {report}");
    }
    // The worker reconnects by itself, within its heartbeat.
    let listing = "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}' | sort";
    common::wait_until("every node Ready", || {
        common::on_manager(&source, listing).lines().all(|l| l.contains(" Ready"))
    });
    let nodes = on(&source, listing);
    let hosts: Vec<&str> = nodes.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(hosts, ["m1", "m2", "m3", "w1"], "each host once: {nodes}");
    assert!(nodes.lines().all(|l| l.contains(" Ready")), "{nodes}");
    assert_eq!(
        nodes.lines().filter(|l| l.ends_with("Leader") || l.ends_with("Reachable")).count(),
        3,
        "{nodes}"
    );
    assert_eq!(objects("secret", &source), secrets, "the same secrets, by name and ID");
    assert_eq!(objects("config", &source), configs, "the same configs, by name and ID");
    common::wait_until("every service back", || replicas(&source) == services);

    // Nothing left to do; and a second restore, now that the swarm answers, is refused.
    let (code, report, _) = run(&["init"], &inv);
    assert_eq!((code, report["changed"].as_u64()), (Some(0), Some(0)), "{report}");
    let out = clusterup_with_env(
        &["restore", "-i", inv.to_str().unwrap(), "--from", dir.to_str().unwrap(), "--yes"],
        &[("LAB_PG_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("still answers for a swarm") && said.contains("--replace"), "{said}");
}
