//! End-to-end test of NFS-backed storage on the qemu lab (VMs with their own kernel: NFS and
//! IPVS work there): a NAS exporting to the nodes, Postgres with its data on an NFS volume,
//! the node under it powered off, the swarm running it elsewhere, the rows still there; then,
//! in the same run on the workers left, the same loss under plain Swarm (Docker's default
//! heartbeat, a hand-written stack) as the baseline the outage is compared with.
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
         swarm: {{dispatcher_heartbeat: {HEARTBEAT}}}\n\
         storage:\n  nfs: {{server: nas, path: /srv/clusterup, managed: true}}\n\
         networks:\n  - {{name: database}}\n\
         secrets:\n  - {{name: postgres_password, env: VMLAB_PG_PASSWORD}}\n\
         images: {{resolve: never, preload: [{}/postgres.tar]}}\n\
         stacks:\n  - {{name: db, template: postgres, networks: [database], vars: {{image: \"clusterup-lab/postgres:lab\", user: app, db: app, placement_label: db, restart_delay: {RESTART_DELAY}, health_interval: {HEALTH_INTERVAL}}}}}\n\
         hosts:\n{}{}{}{}{}",
        lab_images().display(),
        host("nas", "nfs-server", ", kind: nas"),
        host("n1", "manager", ""),
        host("n2", "worker", ", labels: {db: true}"),
        host("n3", "worker", ", labels: {db: true}"),
        host("n4", "worker", ""),
    );
    let path = vm_dir().join("inventory.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The swarm and template settings the failover is measured with.
const HEARTBEAT: &str = "2s";
const RESTART_DELAY: &str = "1s";
const HEALTH_INTERVAL: &str = "2s";

/// Seconds since the Unix epoch in an RFC 3339 timestamp with nanoseconds (`docker logs -t`).
fn epoch(rfc3339: &str) -> Option<f64> {
    let (date, time) = rfc3339.trim_end_matches('Z').split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (h, mi, sec) = (
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec)
}

/// What the outage was made of, from the engines' own records: the probe's answers (the
/// manager's clock), the swarm declaring the node down (the manager's node events), and the
/// replacement container created, started and healthy on `survivor` (its container events).
/// Times are seconds after the probe's last answer before the outage.
fn failover_breakdown(probe: &str, service: &str, since: &str, survivor: &str) -> (String, Option<f64>) {
    let (_, probe) = on("n1", &format!("docker logs -t {probe} 2>&1"));
    let lines: Vec<(f64, bool)> = probe
        .lines()
        .filter_map(|l| l.split_once(' ').and_then(|(t, what)| Some((epoch(t)?, what.trim() == "up"))))
        .collect();
    let first_down = lines.iter().position(|(_, up)| !up).expect("the probe saw no outage");
    let last_up = lines[..first_down].last().map(|(t, _)| *t).unwrap_or(lines[0].0);
    let back = lines[first_down..].iter().find(|(_, up)| *up).map(|(t, _)| *t);
    let event = |machine: &str, filters: &str, wanted: &str| -> Option<f64> {
        let (_, text) = on(
            machine,
            &format!(
                "docker events --since {since} --until $(date +%s) {filters} --format '{{{{.TimeNano}}}} {{{{.Action}}}} {{{{json .Actor.Attributes}}}}'"
            ),
        );
        text.lines()
            .find(|l| l.contains(wanted))
            .and_then(|l| l.split(' ').next()?.parse::<f64>().ok())
            .map(|ns| ns / 1e9)
    };
    let down = event("n1", "--filter type=node", "\"state.new\":\"down\"");
    let containers =
        format!("--filter type=container --filter label=com.docker.swarm.service.name={service}");
    let created = event(survivor, &containers, " create ");
    let started = event(survivor, &containers, " start ");
    let healthy = event(survivor, &containers, "health_status: healthy");
    let after = |t: Option<f64>| t.map_or("?".to_string(), |t| format!("{:.1} s", t - last_up));
    let text = format!(
        "node declared down {}, container created on {survivor} {}, started {}, healthy {}, answering again {}",
        after(down),
        after(created),
        after(started),
        if healthy.is_some() { after(healthy) } else { "(no health check)".to_string() },
        after(back)
    );
    (text, back.map(|t| t - last_up))
}

/// Starts a client on the manager that asks `host` every 0.2 s whether Postgres answers (one
/// container for the whole measurement: starting one per probe takes seconds under
/// emulation); its log lines carry the manager's timestamps. Returns the manager's clock.
fn start_probe(name: &str, network: &str, host: &str) -> String {
    // Attaching a container to an overlay can time out under emulation: try again.
    let mut tries = 0;
    loop {
        let (ok, out) = on(
            "n1",
            &format!(
                "docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} --network {network} clusterup-lab/postgres:lab \
                 /bin/sh -c 'while :; do if pg_isready -h {host} -t 1 >/dev/null 2>&1; then echo up; else echo down; fi; sleep 0.2; done'"
            ),
        );
        tries += 1;
        if ok {
            break;
        }
        // Four tries one after the other all timed out once, on a manager still busy with the
        // stack it had just deployed: give it time between them.
        assert!(tries < 8, "starting the probe {name}: {out}");
        std::thread::sleep(Duration::from_secs(10));
    }
    let (_, since) = on("n1", "date +%s");
    std::thread::sleep(Duration::from_secs(3));
    since
}

/// The node a service's task runs on.
fn running_on(service: &str) -> String {
    on("n1", &format!("docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}}'"))
        .1
}

/// Kills `node` and waits until `probe` answers again with `service` running on another node.
fn kill_and_wait(node: &str, probe: &str, service: &str) -> String {
    let stopped = Instant::now();
    vmlab(&["kill", node]);
    loop {
        let (_, log) = on("n1", &format!("docker logs -t {probe} 2>&1 | tail -n 1"));
        if log.ends_with(" up") && stopped.elapsed() > Duration::from_secs(5) {
            let now_on = running_on(service);
            if !now_on.is_empty() && now_on != node {
                return now_on;
            }
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(900),
            "{service} did not come back within 15 minutes"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Plain Swarm as a user without clusterup runs it: Docker's default heartbeat (5 s), Postgres
/// from a hand-written stack on an NFS volume, Docker's default restart policy, no health
/// check, any worker. On the overlay the probe is already attached to (attaching a second
/// container to a new one timed out on the emulated manager).
fn plain_stack(nas: &str) -> String {
    format!(
        r#"version: "3.9"
services:
  postgres:
    image: clusterup-lab/postgres:lab
    environment: {{POSTGRES_USER: app, POSTGRES_PASSWORD: plain-password, POSTGRES_DB: app, PGDATA: /var/lib/postgresql/data/pgdata}}
    volumes: [data:/var/lib/postgresql/data]
    networks: [database]
    deploy:
      placement: {{constraints: [node.role == worker]}}
volumes:
  data:
    driver_opts: {{type: nfs, o: "addr={nas},rw,nfsvers=4.2", device: ":/srv/plain"}}
networks:
  database: {{external: true}}
"#
    )
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

/// `sql` through the psql of `service`'s container on `node`, found by its service label: a name
/// filter would also match the idle `SERVICE-standby` container there.
fn psql_in(node: &str, service: &str, sql: &str) -> (bool, String) {
    on(
        node,
        &format!(
            "c=$(docker ps -q -f label=com.docker.swarm.service.name={service} | head -1); [ -n \"$c\" ] && \
             docker exec $c psql -U app -d app -tA -c \"{sql}\""
        ),
    )
}

fn psql(node: &str, sql: &str) -> (bool, String) {
    psql_in(node, "db_postgres", sql)
}

#[test]
#[ignore = "needs the qemu lab: vm-tests/run qemu"]
fn postgres_keeps_its_rows_when_its_node_dies() {
    vmlab(&["up", "nas", "n1", "n2", "n3", "n4"]);
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
    if !ok {
        let (_, tasks) = on(
            "n1",
            "docker service ps db_postgres --no-trunc --format '{{.Node}} {{.CurrentState}} {{.Error}}'",
        );
        panic!("writing rows failed: {out}\ntasks:\n{tasks}");
    }
    // Its data is on the NAS, in a directory of the stack's own, without the inventory naming
    // the volume: the template lists it as its state.
    let (ok, owner) =
        on("nas", "stat -c %u:%g /srv/clusterup/db/pgdata && test -f /srv/clusterup/db/pgdata/PG_VERSION");
    assert!(ok && owner == "999:999", "postgres's data is not in /srv/clusterup/db/pgdata: {owner}");

    // The node under it dies; the swarm runs Postgres on the other worker, on the same data.
    let since = start_probe("probe", "database", "db_postgres");
    let other = if node == "n2" { "n3" } else { "n2" };
    kill_and_wait(&node, "probe", "db_postgres");
    let (breakdown, clusterup_outage) = failover_breakdown("probe", "db_postgres", &since, other);
    eprintln!(
        "FAILOVER (heartbeat {HEARTBEAT}, restart delay {RESTART_DELAY}, health every {HEALTH_INTERVAL}): {breakdown}"
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

    // The baseline, on the workers left (the other db worker and n4): the same loss under
    // plain Swarm. Its data directory made on the NAS by hand, as the design documents do.
    let (nas, _) = addr("nas");
    let (ok, out) = on(
        "nas",
        "mkdir -p /srv/plain && chown 999:999 /srv/plain && \
         echo '/srv/plain 10.77.0.0/24(rw,sync,no_subtree_check,no_root_squash)' >/etc/exports.d/plain.exports && \
         exportfs -ra",
    );
    assert!(ok, "exporting /srv/plain: {out}");
    let (ok, out) = on(
        "n1",
        &format!(
            "docker swarm update --dispatcher-heartbeat 5s >/dev/null && \
             printf '%s' '{}' >/tmp/plain.yml && docker stack deploy -c /tmp/plain.yml plain",
            plain_stack(&nas)
        ),
    );
    assert!(ok, "deploying the plain stack: {out}");
    let deployed = Instant::now();
    let plain_node = loop {
        let node = running_on("plain_postgres");
        if !node.is_empty() && psql_in(&node, "plain_postgres", "SELECT 1;").0 {
            break node;
        }
        assert!(
            deployed.elapsed() < Duration::from_secs(600),
            "plain Postgres did not start within 10 minutes"
        );
        std::thread::sleep(Duration::from_secs(3));
    };
    let (ok, out) = psql_in(
        &plain_node,
        "plain_postgres",
        "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 1000);",
    );
    assert!(ok, "writing rows to plain Postgres: {out}");
    let since = start_probe("plain-probe", "database", "plain_postgres");
    let survivor = kill_and_wait(&plain_node, "plain-probe", "plain_postgres");
    let (breakdown, plain_outage) = failover_breakdown("plain-probe", "plain_postgres", &since, &survivor);
    eprintln!("BASELINE (plain Swarm: heartbeat 5s, default restart policy, no health check): {breakdown}");
    if let (Some(ours), Some(plain)) = (clusterup_outage, plain_outage) {
        eprintln!("RATIO clusterup / plain Swarm: {ours:.1} s / {plain:.1} s = {:.2}", ours / plain);
    }
    let (ok, count) = psql_in(&survivor, "plain_postgres", "SELECT count(*) FROM kept;");
    assert!(ok && count == "1000", "plain Postgres lost rows: {count}");
}
