//! End-to-end test of NFS-backed storage on the qemu lab (VMs with their own kernel: NFS and
//! IPVS work there): a NAS exporting to the nodes, Postgres with its data on an NFS volume,
//! the node under it powered off, the swarm running it elsewhere, the rows still there.
//! Run with `vm-tests/run qemu`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn vmlab(args: &[&str]) -> String {
    let out = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vm-tests/vmlab"))
        .args(args)
        .output()
        .expect("run vm-tests/vmlab");
    assert!(out.status.success(), "vmlab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vm_dir() -> PathBuf {
    std::env::var_os("CLUSTERUP_VMLAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/clusterup-vmlab".into())
}

fn lab_images() -> PathBuf {
    std::env::var_os("CLUSTERUP_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/clusterup-lab".into())
        .join("images")
}

/// (private address, SSH port) of a VM.
fn addr(name: &str) -> (String, String) {
    let text = vmlab(&["addr", name]);
    let mut parts = text.split_whitespace();
    (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
}

fn on(name: &str, cmd: &str) -> (bool, String) {
    let (_, port) = addr(name);
    let out = Command::new("ssh")
        .args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=10", "-i"])
        .arg(vm_dir().join("id_ed25519"))
        .args(["-p", &port, "root@127.0.0.1", cmd])
        .output()
        .expect("ssh");
    let text = if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    (out.status.success(), text)
}

fn inventory() -> PathBuf {
    let host = |name: &str, role: &str, extra: &str| {
        let (private, port) = addr(name);
        format!(
            "  - {{name: {name}, address: 127.0.0.1, advertise_address: {private}, roles: [{role}], ssh: {{port: {port}}}{extra}}}\n"
        )
    };
    let text = format!(
        "cluster: {{name: vmlab}}\n\
         ssh: {{user: admin, identity_file: id_ed25519, known_hosts: known_hosts, connect_timeout: 60}}\n\
         storage:\n  nfs: {{server: nas, path: /srv/clusterup, managed: true}}\n\
         volumes:\n  - {{name: pgdata, uid: 999, gid: 999}}\n\
         networks:\n  - {{name: database}}\n\
         secrets:\n  - {{name: postgres_password, env: VMLAB_PG_PASSWORD}}\n\
         images: {{resolve: never, preload: [{}/postgres.tar]}}\n\
         stacks:\n  - {{name: db, template: postgres, networks: [database], vars: {{image: \"clusterup-lab/postgres:lab\", user: app, db: app, placement_label: db}}}}\n\
         hosts:\n{}{}{}{}",
        lab_images().display(),
        host("nas", "nfs-server", ", kind: nas"),
        host("n1", "manager", ""),
        host("n2", "worker", ", labels: {db: true}"),
        host("n3", "worker", ", labels: {db: true}"),
    );
    let path = vm_dir().join("inventory.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn init(inv: &Path) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(["init", "-i", inv.to_str().unwrap(), "--json", "--converge-timeout", "900", "--log"])
        .arg(vm_dir().join("clusterup-test.log"))
        .env("VMLAB_PG_PASSWORD", "vm-lab-password")
        .output()
        .expect("run clusterup");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report)
}

fn psql(node: &str, sql: &str) -> (bool, String) {
    on(
        node,
        &format!(
            "c=$(docker ps -q -f name=db_postgres | head -1); [ -n \"$c\" ] && \
             docker exec $c psql -U app -d app -tA -c \"{sql}\""
        ),
    )
}

#[test]
#[ignore = "needs the qemu lab: vm-tests/run qemu"]
fn postgres_keeps_its_rows_when_its_node_dies() {
    vmlab(&["up", "nas", "n1", "n2", "n3"]);
    let inv = inventory();

    let (code, report) = init(&inv);
    assert_eq!(code, Some(0), "init failed: {report}");
    let nas = report["hosts"]["nas"]["changes"].to_string();
    assert!(nas.contains("wrote /etc/exports.d/clusterup.exports"), "{nas}");
    let (_, exports) = on("nas", "cat /etc/exports.d/clusterup.exports");
    let (n1, _) = addr("n1");
    assert!(exports.contains(&format!("{n1}(rw")), "exports are not for the nodes: {exports}");
    assert!(!exports.contains('*'), "never world-exported: {exports}");

    // Rows written through the running Postgres.
    let (_, node) =
        on("n1", "docker service ps db_postgres --filter desired-state=running --format '{{.Node}}'");
    assert!(node == "n2" || node == "n3", "postgres runs on a db-labelled worker, not {node:?}");
    let (ok, out) =
        psql(&node, "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 1000);");
    assert!(ok, "writing rows failed: {out}");

    // The node under it dies; the swarm runs Postgres on the other worker, on the same data.
    let other = if node == "n2" { "n3" } else { "n2" };
    let stopped = Instant::now();
    vmlab(&["kill", &node]);
    // What the outage is made of: the swarm noticing the node is gone, the task starting on
    // the other node, Postgres recovering from its data on the NAS.
    let (mut down, mut running) = (None, None);
    let answering = loop {
        let (_, state) = on(
            "n1",
            &format!(
                "docker node inspect --format '{{{{.Status.State}}}}' {node}; \
                 docker service ps db_postgres --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'"
            ),
        );
        if down.is_none() && state.lines().next() == Some("down") {
            down = Some(stopped.elapsed());
        }
        if running.is_none() && state.lines().any(|l| l.starts_with(other) && l.contains("Running")) {
            running = Some(stopped.elapsed());
        }
        let (ok, _) = on(
            "n1",
            "docker run --rm --network database clusterup-lab/postgres:lab pg_isready -h db_postgres -t 2 >/dev/null",
        );
        if ok {
            break stopped.elapsed();
        }
        assert!(stopped.elapsed() < Duration::from_secs(900), "postgres did not come back within 15 minutes");
    };
    let secs = |d: Option<Duration>| d.map_or("?".to_string(), |d| format!("{:.1}", d.as_secs_f64()));
    eprintln!(
        "FAILOVER: node marked down after {} s, task running on {other} after {} s, postgres answering after {:.1} s",
        secs(down),
        secs(running),
        answering.as_secs_f64()
    );
    let (_, now_on) =
        on("n1", "docker service ps db_postgres --filter desired-state=running --format '{{.Node}}'");
    assert_eq!(now_on, other);
    let (ok, count) = psql(other, "SELECT count(*) FROM kept;");
    assert!(ok && count == "1000", "rows lost: {count}");

    // A second run changes nothing, and the exports file is not rewritten.
    let (_, before) = on("nas", "stat -c %Y /etc/exports.d/clusterup.exports");
    let (_, report) = init(&inv);
    assert_eq!(report["changed"], 0, "{report}");
    assert_eq!(report["failed"], serde_json::json!([node]), "only the dead node fails: {report}");
    let (_, after) = on("nas", "stat -c %Y /etc/exports.d/clusterup.exports");
    assert_eq!(before, after, "the exports file was rewritten");
}
