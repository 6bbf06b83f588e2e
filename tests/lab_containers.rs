//! End-to-end tests on the container lab: real sshd, real Docker engines, a real swarm.
//! They need the lab (`vm-tests/run containers` starts it), so plain `cargo test` skips them.

mod common;

use std::path::{Path, PathBuf};

use common::{clusterup, json, lab, lab_dir, on, with_agent};
use serde_json::Value;

fn write_inventory(name: &str, hosts: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::from(
        "cluster: {name: lab}\nssh:\n  user: admin\n  identity_file: id_ed25519\n  known_hosts: known_hosts\n  host_key_policy: accept-new\nhosts:\n",
    );
    for (host, role, labels) in hosts {
        let addr = lab(&["addr", host]);
        text.push_str(&format!(
            "  - {{name: {host}, address: {}, roles: [{role}], labels: {{{labels}}}}}\n",
            addr.trim()
        ));
    }
    let path = lab_dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Hostname -> (status, manager status, labels) from `docker node ls` / `inspect` on m1.
fn nodes() -> Vec<(String, String, String, String)> {
    let text = on(
        "m1",
        "docker node ls -q | xargs docker node inspect --format \
         '{{.Description.Hostname}} {{.Status.State}} {{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{else}}-{{end}} {{json .Spec.Labels}}'",
    );
    let mut rows: Vec<_> = text
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.splitn(4, ' ').collect();
            (parts[0].to_string(), parts[1].to_string(), parts[2].to_string(), parts[3].to_string())
        })
        .collect();
    rows.sort();
    rows
}

fn changed_hosts(report: &Value) -> Vec<String> {
    report["hosts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, h)| !h["changes"].as_array().unwrap().is_empty())
        .map(|(n, _)| n.clone())
        .collect()
}

fn inv(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn init_forms_the_swarm_reruns_as_noop_grows_and_refuses_changed_host_keys() {
    lab(&["up", "m1", "w1", "w2"]);
    let three = write_inventory(
        "three.yml",
        &[("m1", "manager", "zone: a"), ("w1", "worker", "zone: b"), ("w2", "worker", "zone: b, disk: ssd")],
    );

    // 1. Fresh machines: Docker installed, swarm formed, labels applied.
    let out = clusterup(&["init", "-i", inv(&three), "--json"]);
    assert!(out.status.success(), "first init failed");
    let report = json(&out);
    assert_eq!(report["failed"], Value::Array(vec![]));
    assert!(report["changed"].as_u64().unwrap() >= 9, "{report}");
    let rows = nodes();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|(_, state, _, _)| state == "ready"), "{rows:?}");
    assert_eq!(rows[0].0, "m1");
    assert_eq!(rows[0].2, "reachable");
    assert!(rows[0].3.contains(r#""zone":"a""#), "{rows:?}");
    assert!(rows[2].3.contains(r#""disk":"ssd""#) && rows[2].3.contains(r#""zone":"b""#), "{rows:?}");
    // The SSH user got socket access, and daemon.json is what the role renders.
    assert!(on("w1", "id -nG admin").split_whitespace().any(|g| g == "docker"));
    let daemon: Value = serde_json::from_str(&on("w1", "cat /etc/docker/daemon.json")).unwrap();
    assert_eq!(daemon["log-opts"]["max-size"], "10m");

    // 2. Nothing to do: zero changes, and plan agrees.
    let mtime_before = on("m1", "stat -c %Y /etc/docker/daemon.json");
    let out = clusterup(&["init", "-i", inv(&three), "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["changed"], 0, "second init changed something");
    assert_eq!(on("m1", "stat -c %Y /etc/docker/daemon.json"), mtime_before, "daemon.json was rewritten");
    let out = clusterup(&["plan", "-i", inv(&three), "--exit-code"]);
    assert_eq!(out.status.code(), Some(0), "plan --exit-code saw pending changes");

    // 2b. The swarm's dispatcher heartbeat, from the inventory: planned, set, seen, then kept.
    let text = std::fs::read_to_string(&three)
        .unwrap()
        .replace("hosts:\n", "swarm: {dispatcher_heartbeat: 2s}\nhosts:\n");
    let tuned = lab_dir().join("three-heartbeat.yml");
    std::fs::write(&tuned, text).unwrap();
    let heartbeat = || on("m1", "docker info --format '{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}'");
    assert_eq!(heartbeat().trim(), "5s", "Docker's default before");
    let planned = json(&clusterup(&["plan", "-i", inv(&tuned), "--json"]));
    assert_eq!(
        planned["cluster"]["changes"],
        serde_json::json!(["swarm: set the dispatcher heartbeat from 5s to 2s"])
    );
    let out = clusterup(&["init", "-i", inv(&tuned), "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["cluster"]["changes"], planned["cluster"]["changes"], "as planned");
    assert_eq!(heartbeat().trim(), "2s");
    let status = json(&clusterup(&["status", "-i", inv(&tuned), "--json"]));
    assert_eq!(status["dispatcher_heartbeat"], "2s");
    assert_eq!(json(&clusterup(&["init", "-i", inv(&tuned), "--json"]))["changed"], 0);

    // 2c. On converged hosts the facts ask the engine over its socket (no sudo, no docker
    //     command started); where sshd forbids socket forwarding (on the manager here), the
    //     facts script asks it through sudo, the node list comes through dial-stdio, and the
    //     run is the same no-op.
    let last_run = || {
        let log = std::fs::read_to_string(lab_dir().join("clusterup-test.log")).unwrap();
        log.rsplit("=== clusterup").next().unwrap_or_default().to_string()
    };
    assert_eq!(json(&clusterup(&["init", "-i", inv(&tuned), "--json"]))["changed"], 0);
    let run = last_run();
    for host in ["m1", "w1", "w2"] {
        assert!(
            run.contains(&format!("[{host}] socket /var/run/docker.sock -> channel open")),
            "{host}: {run}"
        );
        assert!(run.contains(&format!("[{host}] facts/gather.sh (ENGINE_VIA=api)")), "{host}: {run}");
    }
    assert!(!run.contains("dial-stdio"), "{run}");
    let forwarding = "/etc/ssh/sshd_config.d/no-forwarding.conf";
    on("m1", &format!("echo 'AllowStreamLocalForwarding no' > {forwarding} && systemctl restart ssh"));
    assert_eq!(json(&clusterup(&["init", "-i", inv(&tuned), "--json"]))["changed"], 0);
    let run = last_run();
    assert!(run.contains("[m1] facts/gather.sh (ENGINE_VIA=script)"), "{run}");
    assert!(run.contains("[m1] sudo -n docker system dial-stdio -> channel open"), "{run}");
    assert!(!run.contains("; using `sudo -n docker system dial-stdio`"), "the socket was asked twice: {run}");
    assert!(run.contains("[w1] facts/gather.sh (ENGINE_VIA=api)"), "{run}");
    on("m1", &format!("rm {forwarding} && systemctl restart ssh"));

    // 3. Two managers and a worker more: exactly those three join.
    lab(&["up", "m2", "m3", "w3"]);
    let six = write_inventory(
        "six.yml",
        &[
            ("m1", "manager", "zone: a"),
            ("m2", "manager", "zone: b"),
            ("m3", "manager", "zone: c"),
            ("w1", "worker", "zone: b"),
            ("w2", "worker", "zone: b, disk: ssd"),
            ("w3", "worker", ""),
        ],
    );
    let out = clusterup(&["plan", "-i", inv(&six), "--exit-code", "--json"]);
    assert_eq!(out.status.code(), Some(2), "plan should report pending changes");
    let plan = json(&out);
    assert_eq!(changed_hosts(&plan), ["m2", "m3", "w3"]);
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert!(out.status.success(), "growing init failed");
    let report = json(&out);
    assert_eq!(changed_hosts(&report), ["m2", "m3", "w3"], "{report}");
    // On a grown cluster too, the plan was the applied list, item for item on every host.
    for host in ["m1", "m2", "m3", "w1", "w2", "w3"] {
        assert_eq!(plan["hosts"][host]["changes"], report["hosts"][host]["changes"], "{host}");
    }
    assert_eq!(plan["changed"], report["changed"]);
    let rows = nodes();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|(_, state, _, _)| state == "ready"), "{rows:?}");
    let managers: Vec<_> = rows.iter().filter(|r| r.2 != "-").collect();
    assert_eq!(managers.len(), 3, "{rows:?}");
    assert!(managers.iter().all(|r| r.2 == "reachable"), "{rows:?}");
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert_eq!(json(&out)["changed"], 0);

    // 3b. A label dropped from the inventory is removed from the node; one set by someone
    //     else is left alone.
    on("m1", "docker node update --label-add team=ops w2 >/dev/null");
    let no_disk = write_inventory(
        "six-nodisk.yml",
        &[
            ("m1", "manager", "zone: a"),
            ("m2", "manager", "zone: b"),
            ("m3", "manager", "zone: c"),
            ("w1", "worker", "zone: b"),
            ("w2", "worker", "zone: b"),
            ("w3", "worker", ""),
        ],
    );
    let plan = json(&clusterup(&["plan", "-i", inv(&no_disk), "--json"]));
    let out = clusterup(&["init", "-i", inv(&no_disk), "--json"]);
    let report = json(&out);
    assert!(
        report["hosts"]["w2"]["changes"]
            .to_string()
            .contains("remove node label disk (no longer in the inventory)"),
        "{report}"
    );
    assert_eq!(
        plan["hosts"]["w2"]["changes"], report["hosts"]["w2"]["changes"],
        "a label removal as planned"
    );
    assert_eq!(plan["changed"], report["changed"]);
    let w2 = on("m1", "docker node inspect --format '{{json .Spec.Labels}}' w2");
    assert!(!w2.contains("\"disk\"") && w2.contains("\"team\":\"ops\""), "{w2}");
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert!(json(&out)["hosts"]["w2"]["changes"].to_string().contains("set node label disk=ssd"));

    // 3c. `--limit w1`: only w1 changes; w2's new label waits for a run without the limit.
    let both = write_inventory(
        "six-limit.yml",
        &[
            ("m1", "manager", "zone: a"),
            ("m2", "manager", "zone: b"),
            ("m3", "manager", "zone: c"),
            ("w1", "worker", "zone: b, rack: r1"),
            ("w2", "worker", "zone: b, disk: ssd, rack: r2"),
            ("w3", "worker", ""),
        ],
    );
    let out = clusterup(&["init", "-i", inv(&both), "--json", "--limit", "w1"]);
    assert!(out.status.success());
    let report = json(&out);
    assert_eq!(changed_hosts(&report), ["w1"], "{report}");
    assert!(!report["hosts"].as_object().unwrap().contains_key("w2"), "w2 is not reached: {report}");
    let out = clusterup(&["plan", "-i", inv(&both), "--json"]);
    assert_eq!(changed_hosts(&json(&out)), ["w2"]);
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert!(out.status.success());

    // 4. Through a bastion (m1, as root), with the key from ssh-agent instead of a file.
    let bastion = lab_dir().join("bastion.yml");
    let text = std::fs::read_to_string(&six).unwrap().replace("  identity_file: id_ed25519\n", "").replace(
        "  host_key_policy: accept-new\n",
        &format!("  host_key_policy: accept-new\n  bastion: root@{}\n", lab(&["addr", "m1"]).trim()),
    );
    std::fs::write(&bastion, text).unwrap();
    let out = with_agent(&["plan", "-i", inv(&bastion), "--json"]);
    assert!(out.status.success(), "plan through the bastion with ssh-agent failed");
    assert_eq!(json(&out)["changed"], 0);
    let log = std::fs::read_to_string(lab_dir().join("clusterup-test.log")).unwrap();
    assert!(log.contains("[w3] connected as admin"), "w3 not reached through the bastion");

    // 5. ufw active on w2: the swarm's ports are opened to the other nodes only, once.
    on(
        "w2",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ufw >/dev/null 2>&1 && ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null",
    );
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert!(out.status.success(), "init with ufw on w2 failed");
    let report = json(&out);
    assert_eq!(changed_hosts(&report), ["w2"], "{report}");
    let rules = on("w2", "ufw status");
    let m1 = lab(&["addr", "m1"]);
    let rule = |port: &str, from: &str| {
        rules.lines().any(|l| l.contains(port) && l.contains("ALLOW") && l.contains(from))
    };
    assert!(rule("2377/tcp", m1.trim()) && rule("4789/udp", m1.trim()), "{rules}");
    assert!(!rule("2377/tcp", "Anywhere"), "never opened to the world: {rules}");
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert_eq!(json(&out)["changed"], 0, "firewall rules are added once");
    assert!(nodes().iter().all(|(_, state, _, _)| state == "ready"));

    // 6. A machine re-created in place (new host key) is refused, naming both fingerprints;
    //    the other hosts are checked as usual.
    lab(&["rekey", "w1"]);
    let new_fp = on("w1", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub");
    let new_fp = new_fp.split_whitespace().nth(1).unwrap().to_string();
    let out = clusterup(&["init", "-i", inv(&six), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["failed"], serde_json::json!(["w1"]));
    let error = report["hosts"]["w1"]["error"].as_str().unwrap();
    assert!(error.contains("CHANGED") && error.contains(&new_fp), "{error}");
    assert!(error.contains("ssh-keygen -R"), "{error}");
    assert_eq!(report["changed"], 0);

    // 7. The run log holds every command and no join token.
    let log = std::fs::read_to_string(lab_dir().join("clusterup-test.log")).unwrap();
    assert!(log.contains("swarm join through") && log.contains("token <secret>"), "join not logged");
    assert!(!log.contains("SWMTKN"), "a join token leaked into the log");
}
