//! The homelab example (`inventories/homelab.yml`) on the qemu lab: VMs with their own kernel,
//! so the NAS serves real NFS and the overlays use IPsec and service addresses as on hardware.
//! Postgres and the proxy keep their state on the NAS; the proxy gets its certificate from a
//! real ACME server (Pebble); the worker under both is powered off and they come back on
//! another worker with the same rows and the same certificate, issued once; volumes a node
//! created with other options are found and, where unused, removed. Run with
//! `vm-tests/run qemu`.
//!
//! The example is deployed as written but for what a lab needs: addresses and SSH ports of the
//! VMs, the lab's images (preloaded: there is no registry), the stacks whose images cannot be
//! built here left out (MinIO, monitoring), the proxy pointed at Pebble, and a name Pebble can
//! validate for the app.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::qemu::{
    Vm, clock, clusterup_json, exec_in, failover_steps, init, lab_images, on, psql_in, running_on,
    running_on_all, vm, vm_dir, vmlab, wait_for,
};
use serde_json::{Value, json};

const HOST: &str = "shop.clusterup-lab.example";

/// The secrets the example declares, from the environment as it asks.
const SECRETS: [(&str, &str); 5] = [
    ("POSTGRES_PASSWORD", "vm-lab-postgres"),
    ("MINIO_ROOT_PASSWORD", "vm-lab-minio"),
    ("INFLUXDB_ADMIN_PASSWORD", "vm-lab-influx-admin"),
    ("INFLUXDB_PASSWORD", "vm-lab-influx"),
    ("GRAFANA_ADMIN_PASSWORD", "vm-lab-grafana"),
];

/// The ACME server the proxy is pointed at: its directory as the VMs reach it, and the
/// certificate of its HTTPS listener.
struct Acme {
    directory: String,
    listener_pem: String,
}

/// `inventories/homelab.yml` made to run on the lab's VMs (see the module's docs); `grown`
/// gives w2 the labels the example's comment names, so the proxy and the database may move there.
fn homelab(acme: &Acme, grown: bool) -> PathBuf {
    let text = std::fs::read_to_string(common::repo().join("inventories/homelab.yml")).unwrap();
    let mut inv: Value = serde_saphyr::from_str(&text).unwrap();
    inv["ssh"]["identity_file"] = json!(vm_dir().join("id_ed25519"));
    inv["ssh"]["known_hosts"] = json!(vm_dir().join("known_hosts"));
    // Under software emulation a busy VM can take long to answer.
    inv["ssh"]["connect_timeout"] = json!(60);
    for host in inv["hosts"].as_array_mut().unwrap() {
        let Vm { private, ssh, .. } = vm(host["name"].as_str().unwrap());
        host["address"] = json!("127.0.0.1");
        host["advertise_address"] = json!(private);
        if host["ssh"].is_null() {
            host["ssh"] = json!({});
        }
        host["ssh"]["port"] = json!(ssh.parse::<u16>().unwrap());
        if grown && host["name"] == "w2" {
            host["labels"]["edge"] = json!(true);
            host["labels"]["db"] = json!(true);
        }
    }
    let images = lab_images();
    inv["images"] = json!({"resolve": "never", "preload": [
        images.join("postgres.tar"), images.join("caddy.tar"), images.join("app.tar")]});
    let stacks = inv["stacks"].as_array_mut().unwrap();
    stacks.retain(|s| matches!(s["name"].as_str(), Some("proxy" | "db" | "whoami")));
    assert_eq!(stacks.len(), 3, "the example's proxy, db and whoami stacks");
    for stack in stacks.iter_mut() {
        if matches!(stack["name"].as_str(), Some("proxy" | "db")) {
            // health_timeout: an emulated VM busy with a database's first start can take longer
            // than the templates' 5 s to answer a health check; its tasks are not replaced for
            // that. health_interval: each check is a `runc exec` that costs the emulated CPU
            // seconds; every 5 s, the two checks kept w1 busy through Postgres's first start.
            stack["vars"]["health_timeout"] = json!("30s");
            stack["vars"]["health_interval"] = json!("30s");
        }
        match stack["name"].as_str().unwrap() {
            "proxy" => {
                let vars = &mut stack["vars"];
                vars["image"] = json!("clusterup-lab/caddy:lab");
                vars["acme_ca"] = json!(acme.directory);
                vars["acme_ca_root"] = json!(acme.listener_pem);
                vars["acme_challenge"] = json!("http");
            }
            "db" => {
                stack["vars"]["image"] = json!("clusterup-lab/postgres:lab");
            }
            _ => {
                stack["vars"] = json!({"image": "clusterup-lab/app:lab"});
                stack["expose"] = json!([{"service": "web", "host": HOST, "port": 8080}]);
            }
        }
    }
    let path = vm_dir().join(if grown { "homelab-grown.yml" } else { "homelab.yml" });
    std::fs::write(&path, serde_json::to_string_pretty(&inv).unwrap()).unwrap();
    path
}

/// HTTPS to the app through `node`'s forwarded 443, verified with Pebble's issuing root: the
/// page, or why not.
fn https_via(node: &str, root: &std::path::Path) -> Result<String, String> {
    let port = vm(node).https;
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{HOST}:{port}:127.0.0.1"), &format!("https://{HOST}:{port}/")])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The serial number of the certificate the proxy serves for the app through `node`, asked
/// for a minute at most: a proxy that has just answered a request can still take one handshake
/// longer than `openssl s_client` waits under emulation.
fn served_serial(node: &str) -> String {
    let port = vm(node).https;
    let mut serial = String::new();
    wait_for(&format!("a certificate served through {node}"), Duration::from_secs(60), || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{port} -servername {HOST} </dev/null 2>/dev/null | openssl x509 -noout -serial"
            ))
            .output()
            .unwrap();
        serial = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match serial.starts_with("serial=") {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    });
    serial
}

fn pebble_log() -> String {
    std::fs::read_to_string(vm_dir().join("acme/pebble.log")).unwrap_or_default()
}

fn changed_hosts(report: &Value) -> Vec<String> {
    let hosts = report["hosts"].as_object().unwrap_or_else(|| panic!("no hosts in {report}"));
    hosts
        .iter()
        .filter(|(_, h)| h["changes"].as_array().is_some_and(|c| !c.is_empty()))
        .map(|(n, _)| n.clone())
        .collect()
}

#[test]
#[ignore = "needs the qemu lab: vm-tests/run qemu"]
fn the_homelab_keeps_its_data_and_certificate_when_a_worker_dies() {
    // Where the suite's minutes go, in CI's log.
    let began = Instant::now();
    let step = |what: &str| eprintln!("[qemu suite +{} s] {what}", began.elapsed().as_secs());
    // The VMs, from the file vm-tests/run also reads to boot them ahead of the suite: the
    // example's NAS runs no Docker (its VM boots with the engine masked); the NAS and w2 run
    // Debian 13, m1 and w1 Debian 12: NFS served by one and mounted by both, a swarm of both
    // engines (20.10 and 26.1), and the services move from a Debian 12 node to a Debian 13 one.
    let vms = include_str!("fixtures/lab_qemu_vms").split_whitespace();
    vmlab(&std::iter::once("up").chain(vms).collect::<Vec<_>>());
    step("VMs up");
    // Pebble on this machine's loopback, which the VMs reach as 10.0.2.2; it validates HTTP-01
    // through the port forwarded to w1's 80, where the example runs the proxy.
    let started = vmlab(&["acme", &vm("w1").http]);
    let (directory, listener) = started.trim().split_once(' ').expect("directory and certificate");
    let acme = Acme { directory: directory.into(), listener_pem: std::fs::read_to_string(listener).unwrap() };

    step("1. init");
    // 1. The example converges: the NAS exports to the nodes only, the proxy and Postgres run
    //    on w1 (the one worker labelled for them).
    let inv = homelab(&acme, false);
    let (code, report) = init(&inv, &SECRETS);
    assert_eq!(code, Some(0), "init failed: {report}");
    let (_, exports) = on("nas", "cat /etc/exports.d/clusterup.exports");
    assert!(
        exports.contains(&format!("{}(rw", vm("m1").private)),
        "exports are not for the nodes: {exports}"
    );
    assert!(!exports.contains('*'), "never world-exported: {exports}");
    assert_eq!(running_on("m1", "proxy_caddy"), "w1");
    assert_eq!(running_on("m1", "db_postgres"), "w1");

    step("2. certificate and rows");
    // 2. The proxy gets a certificate from Pebble over HTTP-01; HTTPS verifies with Pebble's root.
    let root = vm_dir().join("acme/issuing-root.pem");
    let fetched = Command::new("curl")
        .args(["-sS", "--cacert", listener, "-o"])
        .arg(&root)
        .arg("https://127.0.0.1:15000/roots/0")
        .status()
        .unwrap();
    assert!(fetched.success(), "fetching Pebble's root");
    let mut page = String::new();
    wait_for("verified HTTPS through w1", Duration::from_secs(300), || {
        page = https_via("w1", &root)?;
        Ok(())
    });
    assert!(page.contains("clusterup-lab-app"), "{page}");
    let serial = served_serial("w1");
    let log = pebble_log();
    assert!(
        log.contains(&format!(
            "validate w/ HTTP: http://{HOST}:{}/.well-known/acme-challenge/",
            vm("w1").http
        )),
        "validated over HTTP-01: {log}"
    );
    assert!(!log.contains("validate w/ TLS-ALPN"), "only HTTP-01 was asked for: {log}");
    // Its certificate and Postgres's data are on the NAS, each stack's in a directory of its
    // own, without the inventory naming a volume.
    let (ok, found) = on("nas", &format!("ls /srv/clusterup/proxy/caddy-data/caddy/certificates/*/{HOST}/"));
    assert!(ok && found.contains(&format!("{HOST}.crt")), "the certificate is not on the NAS: {found}");
    let (ok, owner) =
        on("nas", "stat -c %u:%g /srv/clusterup/db/pgdata && test -f /srv/clusterup/db/pgdata/PG_VERSION");
    assert!(ok && owner == "999:999", "Postgres's data is not in /srv/clusterup/db/pgdata: {owner}");
    let (ok, out) = psql_in(
        "w1",
        "db_postgres",
        "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 1000);",
    );
    assert!(ok, "writing rows: {out}");
    step("3. w2 labelled");
    // 3. w2 gets the labels the example's comment names: `plan` lists that change on w2 only,
    //    and `init` applies exactly what it listed; nothing moves.
    let grown = homelab(&acme, true);
    let (_, plan) = clusterup_json(&["plan"], &grown, &SECRETS);
    assert_eq!(changed_hosts(&plan), ["w2"], "{plan}");
    let (code, report) = init(&grown, &SECRETS);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["hosts"]["w2"]["changes"], plan["hosts"]["w2"]["changes"], "{report}");
    assert_eq!(report["changed"], plan["changed"], "{report}");
    assert_eq!(running_on("m1", "proxy_caddy"), "w1");
    // The database's idle standby now keeps w2 on its networks.
    wait_for("the standby on w2", Duration::from_secs(300), || {
        match running_on_all("m1", "db_postgres-standby").iter().any(|n| n == "w2") {
            true => Ok(()),
            false => Err(on("m1", "docker service ps db_postgres-standby").1),
        }
    });
    // The example's `database` network is encrypted: the standby on w2 reaches Postgres on w1
    // through it, over IPsec (the VMs' kernel has ESP, unlike the container lab's). From a task
    // already on the network: a `docker run --network` on a busy emulated manager can miss the
    // 20 s the engine gives a network attachment, again and again.
    let (_, options) = on("m1", "docker network inspect database --format '{{json .Options}}'");
    assert!(options.contains("\"encrypted\""), "database is not encrypted: {options}");
    wait_for(
        "Postgres answering on the encrypted network from w2",
        Duration::from_secs(300),
        || match exec_in("w2", "db_postgres-standby", "pg_isready -h db_postgres -t 10") {
            (true, _) => Ok(()),
            (false, e) => Err(e),
        },
    );
    let (_, esp) = on("w2", "ip xfrm state | grep -c 'proto esp'");
    assert!(esp.parse::<u32>().unwrap_or(0) > 0, "no IPsec state on w2: {esp}");

    step("4. w1 powered off");
    // 4. w1 is powered off: the proxy and Postgres come back on w2, with the same certificate
    //    (Pebble issued one, ever) and every row.
    let t0 = clock("m1");
    let since = format!("{}", t0 as u64);
    vmlab(&["kill", "w1"]);
    wait_for("Postgres back on w2 with its rows", Duration::from_secs(900), || {
        match psql_in("w2", "db_postgres", "SELECT count(*) FROM kept;") {
            (true, count) if count == "1000" => Ok(()),
            (true, count) => panic!("rows lost: {count} of 1000"),
            (false, e) => Err(e),
        }
    });
    let db_back = clock("m1");
    wait_for("verified HTTPS through w2", Duration::from_secs(600), || https_via("w2", &root).map(|_| ()));
    let proxy_back = clock("m1");
    eprintln!(
        "FAILOVER db_postgres (to the nearest 3 s poll): {}",
        failover_steps("m1", "db_postgres", &since, "w2").describe(t0, "w2", Some(db_back))
    );
    eprintln!(
        "FAILOVER proxy_caddy (to the nearest 3 s poll): {}",
        failover_steps("m1", "proxy_caddy", &since, "w2").describe(t0, "w2", Some(proxy_back))
    );
    assert_eq!(served_serial("w2"), serial, "the moved proxy serves another certificate");
    let log = pebble_log();
    assert_eq!(log.matches("Issued certificate serial").count(), 1, "Pebble issued again:\n{log}");

    step("5. re-run");
    // 5. A re-run after the loss changes nothing: the dead worker fails alone, and the NAS's
    //    exports are not rewritten.
    let (_, before) = on("nas", "stat -c %Y /etc/exports.d/clusterup.exports");
    let (code, report) = init(&grown, &SECRETS);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["changed"], 0, "{report}");
    assert_eq!(report["failed"], json!(["w1"]), "only the dead worker fails: {report}");
    let (_, after) = on("nas", "stat -c %Y /etc/exports.d/clusterup.exports");
    assert_eq!(before, after, "the exports file was rewritten");

    step("6. drifted volumes");
    // 6. A node holding an NFS volume of a stack with other options (an older inventory's NAS
    //    path) keeps them, since Docker fixes a volume's options at its creation: on m1, where
    //    neither stack runs, one such copy unused and one a container holds (never started, so
    //    never mounted). `init --recreate-volumes` removes the unused one only, through m1's
    //    Engine API, and says why the other stays.
    let nas = vm("nas").private;
    let (ok, out) = on(
        "m1",
        &format!(
            "for v in db_pgdata proxy_caddy-data; do docker volume create -d local -o type=nfs \
               -o o=addr={nas},rw -o device=:/srv/elsewhere/$v $v >/dev/null || exit 1; done && \
             docker create --name holds-caddy-data -v proxy_caddy-data:/data clusterup-lab/app:lab"
        ),
    );
    assert!(ok, "making drifted volumes on m1: {out}");
    let log = vm_dir().join("clusterup-test.log");
    let (code, report) = clusterup_json(
        &["init", "--recreate-volumes", "--converge-timeout", "900", "--log", log.to_str().unwrap()],
        &grown,
        &SECRETS,
    );
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["failed"], json!(["w1"]), "{report}");
    assert_eq!(report["changed"], 1, "only the unused volume is removed: {report}");
    assert_eq!(
        report["hosts"]["m1"]["changes"],
        json!(["volumes: removed volume db_pgdata (it had other options)"]),
        "{report}"
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("m1: volume db_pgdata: has o=addr=")
            && warnings.contains("/srv/elsewhere/db_pgdata"),
        "the drift is named: {warnings}"
    );
    assert!(
        warnings.contains("m1: volume proxy_caddy-data is in use and keeps its old options"),
        "the held volume is reported: {warnings}"
    );
    let (_, left) = on("m1", "docker volume ls -q");
    let left: Vec<&str> = left.lines().collect();
    assert!(!left.contains(&"db_pgdata"), "db_pgdata is still on m1: {left:?}");
    assert!(left.contains(&"proxy_caddy-data"), "a volume in use was removed: {left:?}");
    step("done");
}
