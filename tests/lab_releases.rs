//! The systems people install today, on the container lab: a cluster mixing Debian 12 and
//! Debian 13 machines (as during a rolling OS upgrade), and a stack error that stops `init`
//! before its first change. `vm-tests/run containers` runs it.

mod common;

use std::path::PathBuf;

use common::{clusterup, json, lab, lab_dir, on};
use serde_json::Value;

/// An inventory of lab machines: (name, role).
fn write_inventory(file: &str, hosts: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut text = String::from(
        "cluster: {name: lab}\nssh:\n  user: admin\n  identity_file: id_ed25519\n  known_hosts: known_hosts\n  host_key_policy: accept-new\nhosts:\n",
    );
    for (host, role) in hosts {
        let addr = lab(&["addr", host]);
        text.push_str(&format!("  - {{name: {host}, address: {}, roles: [{role}]}}\n", addr.trim()));
    }
    text.push_str(extra);
    let path = lab_dir().join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether a Debian package is installed on a lab machine.
fn installed(machine: &str, package: &str) -> bool {
    on(machine, &format!("dpkg-query -W -f '${{db:Status-Status}}' {package} 2>/dev/null || true"))
        == "installed"
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn debian_12_managers_and_debian_13_workers_form_one_swarm_after_a_refused_template() {
    lab(&["up", "m1@bookworm", "w1@trixie", "w2@trixie"]);
    assert_eq!(lab(&["release", "w1"]).trim(), "trixie");
    assert!(on("w1", "cat /etc/os-release").contains("VERSION_ID=\"13\""));
    let hosts = [("m1", "manager"), ("w1", "worker"), ("w2", "worker")];

    // 1. A stack template that prints an undefined variable: refused as an invalid inventory
    //    (exit 3) before any host is touched.
    std::fs::write(lab_dir().join("broken.yml.tera"), "services:\n  web:\n    image: {{ vars.image }}\n")
        .unwrap();
    let broken = write_inventory(
        "releases-broken.yml",
        &hosts,
        "stacks:\n  - {name: web, template: ./broken.yml.tera}\n",
    );
    let out = clusterup(&["init", "-i", broken.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(3), "a template error is an inventory error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yml.tera") && stderr.contains("`image` is not defined"), "{stderr}");
    for host in ["m1", "w1", "w2"] {
        assert!(!installed(host, "docker.io"), "{host}: docker.io was installed by a refused run");
        assert_eq!(
            on(host, "test -e /etc/docker/daemon.json && echo present || echo absent").trim(),
            "absent"
        );
    }

    // 2. The same machines without the stack: Debian 13 gets the docker command's own package.
    let good = write_inventory("releases.yml", &hosts, "");
    let out = clusterup(&["plan", "-i", good.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    let plan = json(&out);
    let w1_plan = plan["hosts"]["w1"]["changes"].to_string();
    assert!(w1_plan.contains("docker.io docker-cli"), "{w1_plan}");
    assert!(!plan["hosts"]["m1"]["changes"].to_string().contains("docker-cli"), "{plan}");

    let out = clusterup(&["init", "-i", good.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "init of the mixed cluster failed");
    let report = json(&out);
    assert_eq!(report["failed"], Value::Array(vec![]));
    // The plan was the applied list: the same changes, item for item, on every host.
    for host in ["m1", "w1", "w2"] {
        assert_eq!(plan["hosts"][host]["changes"], report["hosts"][host]["changes"], "{host}");
    }
    assert_eq!(plan["changed"], report["changed"]);
    for host in ["w1", "w2"] {
        assert!(installed(host, "docker-cli"), "{host}: docker-cli missing");
        assert!(on(host, "docker version --format '{{.Server.Version}}'").starts_with("26."));
    }
    assert!(on("m1", "docker version --format '{{.Server.Version}}'").starts_with("20.10"));
    let nodes = on("m1", "docker node ls --format '{{.Hostname}} {{.Status}} {{.EngineVersion}}'");
    let mut rows: Vec<&str> = nodes.lines().collect();
    rows.sort();
    assert_eq!(rows.len(), 3, "{nodes}");
    assert!(rows.iter().all(|r| r.contains("Ready")), "{nodes}");
    assert!(rows[1].starts_with("w1 Ready 26.") && rows[2].starts_with("w2 Ready 26."), "{nodes}");

    // 3. Nothing left to do on either release.
    let out = clusterup(&["init", "-i", good.to_str().unwrap(), "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["changed"], 0, "second init changed something");
}
