//! `init` on servers discovered in an OpenStack project: the fake cloud of
//! `tests/common/openstack.rs` lists the lab's machines as its servers (their addresses on
//! the `private` network, and a bastion server whose floating IP is lab machine b1), and
//! clusterup reaches them through that bastion and forms the swarm on them.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use common::openstack::{Cloud, Fake, PASSWORD, TOKEN, fixed, floating, port, rule, server, write_clouds};
use common::{json, lab, lab_dir, on};
use serde_json::json;

fn addr(machine: &str) -> String {
    lab(&["addr", machine]).trim().to_string()
}

/// The project: a bastion (b1) and three cluster servers (m1, w1, w2) whose ports are in the
/// project's `default` group only, which lets nothing in: the inventory asks clusterup to
/// manage a security group for the swarm.
fn cloud() -> Cloud {
    let node = |name: &str, role: &str| {
        let metadata = json!({"cluster": "lab", "role": role});
        server(&format!("id-{name}"), name, "ACTIVE", metadata, json!({"private": [fixed(&addr(name))]}))
    };
    let bastion = json!({"private": [fixed(&addr("b1")), floating(&addr("b1"))]});
    let servers = vec![
        server("id-b1", "bastion", "ACTIVE", json!({}), bastion),
        node("m1", "manager"),
        node("w1", "worker"),
        node("w2", "worker"),
    ];
    let mut ports = BTreeMap::new();
    for name in ["m1", "w1", "w2"] {
        let id = format!("id-{name}");
        ports.insert(id.clone(), json!([port(&format!("p-{name}"), &id, &addr(name), &["sg-default"])]));
    }
    ports.insert("id-b1".into(), json!([port("p-b1", "id-b1", &addr("b1"), &["sg-bastion"])]));
    let groups = json!([
        {"id": "sg-default", "name": "default", "security_group_rules": []},
        {"id": "sg-bastion", "name": "bastion", "security_group_rules": [rule("tcp", 22, None, Some("0.0.0.0/0"))]}
    ]);
    Cloud { servers, page_size: 2, compute_delay: 0, groups, ports }
}

fn clusterup(home: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clusterup"));
    command.args(args).arg("--log").arg(lab_dir().join("clusterup-test.log")).env("HOME", home);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
        command.env_remove(key);
    }
    let out = command.stdin(Stdio::null()).output().expect("run clusterup");
    eprintln!("$ clusterup {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    for output in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(output);
        assert!(!text.contains(PASSWORD) && !text.contains(TOKEN), "a secret of the cloud was shown");
    }
    out
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn init_forms_the_swarm_on_the_clouds_servers_through_its_bastion() {
    common::lab_up_with_engine(&["m1", "w1", "w2", "b1"]);
    let fake = Fake::start(cloud());
    let dir = lab_dir().join("openstack");
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    write_clouds(&home, &format!("{}/identity/v3", fake.base()), PASSWORD);
    let inventory = dir.join("inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            "cluster: {{name: lab}}\n\
             ssh: {{user: admin, identity_file: {key}, known_hosts: {known}, host_key_policy: accept-new}}\n\
             openstack:\n  cloud: mycloud\n  select: {{metadata: {{cluster: lab}}}}\n  role_from: {{metadata: role}}\n  \
             network: private\n  bastion: {{server: bastion}}\n  manage_security_group: true\n",
            key = lab_dir().join("id_ed25519").display(),
            known = lab_dir().join("known_hosts").display(),
        ),
    )
    .unwrap();
    let inv = inventory.to_str().unwrap();

    // 1. The cloud's servers become the hosts, the bastion is not one of them.
    let listed = json(&clusterup(&home, &["inventory", "-i", inv, "--json"]));
    let names: Vec<&str> =
        listed["hosts"].as_array().unwrap().iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["m1", "w1", "w2"], "{listed}");
    assert_eq!(listed["hosts"][0]["ssh"]["bastion"]["host"], addr("b1").as_str(), "{listed}");
    let planned: Vec<String> = listed["openstack_changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no openstack_changes: {listed}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned.len(), 1 + 5 + 3, "the group, its rules, three ports: {planned:?}");
    assert!(planned.contains(&format!("allow 22/tcp from {}/32 in security group `clusterup`", addr("b1"))));
    assert!(fake.changes().is_empty(), "`inventory` changed the cloud: {:?}", fake.changes());

    // 2. init installs the engines and forms the swarm, every connection through the bastion.
    let out = clusterup(&home, &["init", "-i", inv, "--json", "--yes"]);
    let report = json(&out);
    assert!(out.status.success(), "init failed: {report}");
    let made = fake.changes();
    assert_eq!(made.len(), planned.len(), "{made:?}");
    let reported = report.to_string();
    for line in &planned {
        assert!(reported.contains(line.as_str()), "the report lacks `{line}`: {report}");
    }
    let nodes = on("m1", "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'");
    let mut rows: Vec<&str> = nodes.lines().collect();
    rows.sort();
    assert_eq!(rows, ["m1 Ready Leader", "w1 Ready ", "w2 Ready "], "{nodes}");
    for machine in ["m1", "w1", "w2"] {
        let logins =
            on(machine, "journalctl -u ssh --no-pager -o cat | grep 'Accepted publickey for admin' || true");
        assert!(!logins.trim().is_empty(), "{machine}: no SSH login recorded");
        let from_elsewhere: Vec<&str> =
            logins.lines().filter(|l| !l.contains(&format!(" from {} ", addr("b1")))).collect();
        assert!(from_elsewhere.is_empty(), "{machine}: logins not through the bastion: {from_elsewhere:?}");
    }

    // 3. A re-run, the cloud asked again, changes nothing, there or on the hosts.
    let out = clusterup(&home, &["init", "-i", inv, "--json", "--yes"]);
    assert_eq!(json(&out)["changed"], 0, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(fake.changes(), made, "the re-run changed the cloud");
    assert!(
        fake.seen().iter().any(|s| s.target.contains("servers/detail?marker=")),
        "the server list was paged"
    );
}
