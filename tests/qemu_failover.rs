//! Benchmark (not a test of `vm-tests/run`): how long Postgres on NFS is gone when its VM is
//! powered off, clusterup's deployment against plain Swarm in the same run on the qemu lab.
//! A NAS, a manager and three workers; clusterup's built-in `postgres` template on the NAS with
//! the fast settings below; the worker under it killed; then, on the workers left, plain Swarm
//! as the design documents run it (Docker's default heartbeat, a hand-written stack, no health
//! check) losing its node the same way. Each outage is broken down from the engines' events
//! and a probe's log, and the ratio printed. Run with `vm-tests/bench-failover qemu`; it
//! asserts only that the rows survive.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::qemu::{
    Steps, epoch, failover_steps, init, lab_images, on, psql_in, running_on, vm, vm_dir, vmlab,
};

/// The swarm and template settings clusterup's failover is measured with.
const HEARTBEAT: &str = "2s";
const RESTART_DELAY: &str = "0s";
const HEALTH_INTERVAL: &str = "2s";

const SECRET: [(&str, &str); 1] = [("VMLAB_PG_PASSWORD", "vm-lab-password")];

fn inventory() -> PathBuf {
    let host = |name: &str, role: &str, extra: &str| {
        let v = vm(name);
        format!(
            "  - {{name: {name}, address: 127.0.0.1, advertise_address: {}, roles: [{role}], ssh: {{port: {}}}{extra}}}\n",
            v.private, v.ssh
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
         stacks:\n  - {{name: db, template: postgres, networks: [database], vars: {{image: \"clusterup-lab/postgres:lab\", user: app, db: app, placement_label: db, restart_delay: {RESTART_DELAY}, health_interval: {HEALTH_INTERVAL}, health_timeout: 30s}}}}\n\
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

/// The probe's last answer before the outage and its first answer after it (the manager's clock).
fn probe_outage(probe: &str) -> (f64, Option<f64>) {
    let (_, log) = on("n1", &format!("docker logs -t {probe} 2>&1"));
    let lines: Vec<(f64, bool)> = log
        .lines()
        .filter_map(|l| l.split_once(' ').and_then(|(t, what)| Some((epoch(t)?, what.trim() == "up"))))
        .collect();
    let first_down = lines.iter().position(|(_, up)| !up).expect("the probe saw no outage");
    let last_up = lines[..first_down].last().map(|(t, _)| *t).unwrap_or(lines[0].0);
    let back = lines[first_down..].iter().find(|(_, up)| *up).map(|(t, _)| *t);
    (last_up, back)
}

/// Kills `node` and waits until `probe` answers again with `service` running on another node.
fn kill_and_wait(node: &str, probe: &str, service: &str) -> String {
    let stopped = Instant::now();
    vmlab(&["kill", node]);
    loop {
        let (_, log) = on("n1", &format!("docker logs -t {probe} 2>&1 | tail -n 1"));
        if log.ends_with(" up") && stopped.elapsed() > Duration::from_secs(5) {
            let now_on = running_on("n1", service);
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

/// The outage of `service` after its node was killed: its steps, printed, and its length.
fn measure(label: &str, probe: &str, service: &str, since: &str, survivor: &str) -> Option<f64> {
    let (last_up, back) = probe_outage(probe);
    let steps: Steps = failover_steps("n1", service, since, survivor);
    eprintln!("{label}: {}", steps.describe(last_up, survivor, back));
    back.map(|t| t - last_up)
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

#[test]
#[ignore = "a benchmark on the qemu lab: vm-tests/bench-failover qemu"]
fn postgres_failover_against_plain_swarm() {
    vmlab(&["up", "nas", "n1", "n2", "n3", "n4"]);
    let inv = inventory();
    let (code, report) = init(&inv, &SECRET);
    assert_eq!(code, Some(0), "init failed: {report}");
    let node = running_on("n1", "db_postgres");
    assert!(node == "n2" || node == "n3", "postgres runs on a db-labelled worker, not {node:?}");
    let (ok, out) = psql_in(
        &node,
        "db_postgres",
        "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 1000);",
    );
    assert!(ok, "writing rows failed: {out}");

    // clusterup: the node under Postgres dies; the swarm runs it on the other db worker.
    let since = start_probe("probe", "database", "db_postgres");
    let other = if node == "n2" { "n3" } else { "n2" };
    kill_and_wait(&node, "probe", "db_postgres");
    let ours = measure(
        &format!(
            "FAILOVER (heartbeat {HEARTBEAT}, restart delay {RESTART_DELAY}, health every {HEALTH_INTERVAL})"
        ),
        "probe",
        "db_postgres",
        &since,
        other,
    );
    let (ok, count) = psql_in(other, "db_postgres", "SELECT count(*) FROM kept;");
    assert!(ok && count == "1000", "rows lost: {count}");

    // The baseline, on the workers left (the other db worker and n4): the same loss under
    // plain Swarm, its data directory made on the NAS by hand as the design documents do.
    let nas = vm("nas").private;
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
        let node = running_on("n1", "plain_postgres");
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
    let plain = measure(
        "BASELINE (plain Swarm: heartbeat 5s, default restart policy, no health check)",
        "plain-probe",
        "plain_postgres",
        &since,
        &survivor,
    );
    if let (Some(ours), Some(plain)) = (ours, plain) {
        eprintln!("RATIO clusterup / plain Swarm: {ours:.1} s / {plain:.1} s = {:.2}", ours / plain);
    }
    let (ok, count) = psql_in(&survivor, "plain_postgres", "SELECT count(*) FROM kept;");
    assert!(ok && count == "1000", "plain Postgres lost rows: {count}");
}
