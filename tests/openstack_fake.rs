//! `openstack:` inventories against a fake cloud: a small HTTP server on 127.0.0.1 (port 0)
//! answering as Keystone, Nova, Glance and Neutron do per their public API reference (a token
//! in `X-Subject-Token` with the catalog in the body, a paged server list with `servers_links`
//! rel=next, addresses per network with `OS-EXT-IPS:type`, ports, security groups and rules).
//! The real binary runs `clusterup inventory` with HOME holding a clouds.yaml that points at it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clusterup::cloud::openstack::{self, clouds_yaml::Env, managed_group::GroupChange};
use common::openstack::{Cloud, Fake, PASSWORD, TOKEN, fixed, floating, port, rule, server, write_clouds};
use serde_json::{Value, json};

/// A project with a bastion, two cluster servers on two networks, a stopped one, and another
/// cluster's server; its security group lacks 4789/udp.
fn homelab() -> Cloud {
    let homelab = |role: &str| json!({"cluster": "homelab", "role": role});
    let servers = vec![
        server(
            "id-bastion",
            "bastion",
            "ACTIVE",
            json!({}),
            json!({"private": [fixed("10.0.0.5"), floating("203.0.113.5")]}),
        ),
        server(
            "id-m1",
            "m1",
            "ACTIVE",
            homelab("manager"),
            json!({"public": [fixed("198.51.100.11")], "private": [fixed("10.0.0.11"), floating("203.0.113.11")]}),
        ),
        server(
            "id-other",
            "other",
            "ACTIVE",
            json!({"cluster": "prod", "role": "worker"}),
            json!({"private": [fixed("10.0.0.99")]}),
        ),
        server("id-w1", "w1", "ACTIVE", homelab("worker"), json!({"private": [fixed("10.0.0.21")]})),
        server("id-w2", "w2", "SHUTOFF", homelab("worker"), json!({"private": [fixed("10.0.0.22")]})),
    ];
    let mut ports = BTreeMap::new();
    ports.insert("id-m1".to_string(), json!([port("p-m1", "id-m1", "10.0.0.11", &["sg-swarm"])]));
    ports.insert("id-w1".to_string(), json!([port("p-w1", "id-w1", "10.0.0.21", &["sg-swarm"])]));
    ports.insert("id-bastion".to_string(), json!([port("p-b", "id-bastion", "10.0.0.5", &["sg-bastion"])]));
    let groups = json!([
        {"id": "sg-swarm", "name": "swarm", "security_group_rules": [
            rule("tcp", 2377, Some("sg-swarm"), None),
            rule("tcp", 7946, Some("sg-swarm"), None),
            rule("udp", 7946, Some("sg-swarm"), None),
            rule("tcp", 22, Some("sg-bastion"), None)]},
        {"id": "sg-bastion", "name": "bastion", "security_group_rules": [rule("tcp", 22, None, Some("0.0.0.0/0"))]}
    ]);
    Cloud { servers, page_size: 2, compute_delay: 0, groups, ports }
}

/// A fresh folder with HOME/.config/openstack/{clouds,secure}.yaml and the inventory.
fn setup(name: &str, fake: Option<&Fake>, password: &str, inventory: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openstack_fake").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let auth_url =
        fake.map_or("http://127.0.0.1:9/identity/v3".to_string(), |f| format!("{}/identity/v3", f.base()));
    write_clouds(&dir.join("home"), &auth_url, password);
    std::fs::write(dir.join("inventory.yml"), inventory).unwrap();
    dir
}

const INVENTORY: &str = "cluster: {name: homelab}
hosts:
  - {name: nas, address: 10.0.0.50, kind: nas}
openstack:
  cloud: mycloud
  select: {metadata: {cluster: homelab}}
  role_from: {metadata: role}
  network: private
  bastion: {server: bastion}
  timeout: 2
";

fn clusterup(dir: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_clusterup"));
    command
        .args(args)
        .arg("-i")
        .arg(dir.join("inventory.yml"))
        .current_dir(dir)
        .env("HOME", dir.join("home"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
        command.env_remove(key);
    }
    let out = command.stdin(Stdio::null()).output().expect("run clusterup");
    (out, started.elapsed())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn inventory_json_lists_the_cloud_servers_beside_the_static_hosts() {
    let fake = Fake::start(homelab());
    let dir = setup("json", Some(&fake), PASSWORD, INVENTORY);
    let (out, _) = clusterup(&dir, &["inventory", "--json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let inv: Value = serde_json::from_str(&stdout).unwrap();
    let hosts = inv["hosts"].as_array().unwrap();
    let summary: Vec<(String, String, String, String)> = hosts
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or("-").to_string();
            (s("name"), s("address"), s("advertise_address"), s("source"))
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("nas".into(), "10.0.0.50".into(), "-".into(), "static".into()),
            ("m1".into(), "10.0.0.11".into(), "10.0.0.11".into(), "openstack:id-m1".into()),
            ("w1".into(), "10.0.0.21".into(), "10.0.0.21".into(), "openstack:id-w1".into()),
        ]
    );
    let m1 = &hosts[1];
    assert_eq!(m1["kind"], "openstack");
    assert_eq!(m1["roles"], json!(["manager"]));
    assert_eq!(m1["ssh"]["user"], "debian", "the login user of the Debian image");
    assert_eq!(m1["ssh"]["bastion"], json!({"user": "debian", "host": "203.0.113.5", "port": 22}));
    assert_eq!(hosts[2]["roles"], json!(["worker"]));

    // The stopped server is named, and the missing rule comes with the command that adds it.
    assert!(stderr.contains("server `w2` (id-w2) is SHUTOFF, not ACTIVE: skipped"), "{stderr}");
    assert!(
        stderr.contains(
            "m1: its security groups (swarm) do not allow 4789/udp from w1; add: openstack security group rule \
             create --ingress --ethertype IPv4 --protocol udp --dst-port 4789 --remote-group swarm swarm"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("7946"), "7946 is allowed: {stderr}");
    assert!(!stderr.contains("22/tcp"), "22 from the bastion is allowed: {stderr}");

    // Both pages were read; every request but the token's carried the token; no secret shown.
    let seen = fake.seen();
    assert!(seen.iter().any(|s| s.target.contains("servers/detail?marker=id-m1")), "{seen:?}");
    assert!(seen.iter().filter(|s| s.method == "GET").all(|s| s.token.as_deref() == Some(TOKEN)), "{seen:?}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains(PASSWORD) && !output.contains(TOKEN), "a secret leaked:\n{output}");
    }

    // The human listing says where each host comes from.
    let (out, _) = clusterup(&dir, &["inventory"]);
    let listing = text(&out.stdout);
    eprintln!("{stderr}\n{listing}");
    assert!(listing.contains("[static]") && listing.contains("[openstack:id-w1]"), "{listing}");
}

#[test]
fn refused_credentials_are_a_clear_error_without_the_password() {
    let fake = Fake::start(homelab());
    let dir = setup("unauthorized", Some(&fake), "wrong-password", INVENTORY);
    let (out, _) = clusterup(&dir, &["inventory", "--json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the credentials of cloud `mycloud` (user alice"), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_slow_cloud_times_out() {
    let fake = Fake::start(Cloud { compute_delay: 8, ..homelab() });
    let dir = setup("slow", Some(&fake), PASSWORD, &INVENTORY.replace("timeout: 2", "timeout: 1"));
    let (out, elapsed) = clusterup(&dir, &["inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("servers/detail: no answer within 1 s"), "{stderr}");
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
}

#[test]
fn an_empty_project_matches_no_server() {
    let fake = Fake::start(Cloud { servers: Vec::new(), ..homelab() });
    let dir = setup("empty", Some(&fake), PASSWORD, INVENTORY);
    let (out, _) = clusterup(&dir, &["inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no server of cloud `mycloud` matches openstack.select (metadata cluster=homelab)"),
        "{stderr}"
    );
}

#[test]
fn a_server_without_its_role_is_named() {
    let mut cloud = homelab();
    cloud.servers[3]["metadata"] = json!({"cluster": "homelab"});
    let fake = Fake::start(cloud);
    let dir = setup("norole", Some(&fake), PASSWORD, INVENTORY);
    let (out, _) = clusterup(&dir, &["inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("server `w1` (id-w1) has no `role` metadata"), "{stderr}");
    assert!(stderr.contains("openstack server set --property role=worker w1"), "{stderr}");
}

#[test]
fn a_name_in_both_sources_is_an_error() {
    let fake = Fake::start(homelab());
    let dir = setup("duplicate", Some(&fake), PASSWORD, &INVENTORY.replace("name: nas,", "name: w1,"));
    let (out, _) = clusterup(&dir, &["inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("host `w1` is both in `hosts:` and a server of cloud `mycloud` (openstack:id-w1)"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_cloud_lists_the_known_ones_and_render_stays_offline() {
    let dir = setup("unknown_cloud", None, PASSWORD, &INVENTORY.replace("cloud: mycloud", "cloud: mycluod"));
    let (out, _) = clusterup(&dir, &["inventory"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no cloud `mycluod` in"), "{stderr}");
    assert!(stderr.contains("did you mean `mycloud`?"), "{stderr}");
    // `render` asks no cloud: it works with the cloud unknown (and nothing listening).
    let (out, _) = clusterup(&dir, &["render"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// The hosts and the managed group's change as `init` sees them, read with `dir`'s clouds.yaml.
fn discover(dir: &Path) -> (clusterup::inventory::OpenstackSource, Env, clusterup::cloud::openstack::Found) {
    let inv = clusterup::inventory::Inventory::load(&dir.join("inventory.yml")).expect("a valid inventory");
    let source = inv.openstack.clone().expect("an openstack source");
    let env = Env { vars: Default::default(), home: Some(dir.join("home")), cwd: dir.to_path_buf() };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let found = runtime.block_on(openstack::discover(&source, &env)).expect("the cloud answers");
    (source, env, found)
}

fn make(
    source: &clusterup::inventory::OpenstackSource,
    env: &Env,
    change: &GroupChange,
) -> (Vec<String>, Result<(), String>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut done = Vec::new();
    let result = runtime.block_on(openstack::manage_security_group(source, env, change, &mut done));
    (done, result.map_err(|e| e.to_string()))
}

#[test]
fn a_managed_security_group_is_shown_first_then_made_once_and_kept() {
    let fake = Fake::start(homelab());
    let dir = setup("managed", Some(&fake), PASSWORD, &format!("{INVENTORY}  manage_security_group: true\n"));

    // 1. `inventory` shows what init would change in the cloud, and changes nothing there.
    let (out, _) = clusterup(&dir, &["inventory", "--json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let inv: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wanted: Vec<String> = serde_json::from_value(inv["openstack_changes"].clone()).unwrap_or_default();
    assert_eq!(wanted.len(), 1 + 5 + 2, "the group, its 5 rules, 2 ports: {wanted:?}");
    for line in [
        "create security group `clusterup`",
        "allow 22/tcp from 10.0.0.5/32 in security group `clusterup`",
        "add security group `clusterup` to w1's port p-w1 (10.0.0.21)",
    ] {
        assert!(wanted.iter().any(|w| w == line), "`{line}` not in {wanted:?}");
    }
    assert!(!stderr.contains("do not allow"), "the group makes up for the missing rule: {stderr}");
    assert_eq!(fake.changes(), Vec::<String>::new(), "`inventory` changed the cloud");

    // 2. Made as init's first step makes it: the group, its rules, the ports (the groups they
    //    had kept, each updated at the revision read).
    let (source, env, found) = discover(&dir);
    let change = found.security_group.expect("a change is planned");
    let (done, result) = make(&source, &env, &change);
    assert_eq!(result, Ok(()));
    assert_eq!(done, wanted);
    let groups = fake.groups();
    let made =
        groups.as_array().unwrap().iter().find(|g| g["name"] == "clusterup").expect("the group").clone();
    let id = made["id"].as_str().unwrap();
    let ingress: Vec<String> = made["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .map(|r| {
            let from = if r["remote_group_id"] == id {
                "members".to_string()
            } else {
                r["remote_ip_prefix"].to_string()
            };
            format!("{}/{} {from}", r["port_range_min"], r["protocol"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        ingress,
        [
            "2377/tcp members",
            "7946/tcp members",
            "7946/udp members",
            "4789/udp members",
            "22/tcp \"10.0.0.5/32\""
        ]
    );
    for port in fake.ports().iter().filter(|p| p["id"] == "p-m1" || p["id"] == "p-w1") {
        assert_eq!(port["security_groups"], json!(["sg-swarm", id]), "{port}");
        assert_eq!(port["revision_number"], 2, "{port}");
    }
    let bastion = fake.ports().into_iter().find(|p| p["id"] == "p-b").unwrap();
    assert_eq!(bastion["security_groups"], json!(["sg-bastion"]), "the bastion is not a node");

    // 3. Asked again (the group list now takes two pages), nothing is left to change.
    let (_, _, again) = discover(&dir);
    let again = again.security_group.expect("still managed");
    assert!(again.is_empty(), "{:?}", again.describe());
    assert!(
        fake.seen().iter().any(|s| s.target.contains("security-groups?limit=2&marker=")),
        "groups were paged"
    );
    let before = fake.changes().len();
    let (done, result) = make(&source, &env, &again);
    assert_eq!((done.len(), result), (0, Ok(())));
    assert_eq!(fake.changes().len(), before, "an empty change sent something");
}

#[test]
fn a_port_changed_by_someone_else_meanwhile_is_left_alone() {
    let fake = Fake::start(homelab());
    let dir =
        setup("managed-race", Some(&fake), PASSWORD, &format!("{INVENTORY}  manage_security_group: true\n"));
    let (source, env, found) = discover(&dir);
    let change = found.security_group.unwrap();
    fake.touch_port("p-w1");
    let (done, result) = make(&source, &env, &change);
    let error = result.unwrap_err();
    assert!(error.contains("w1's port p-w1 changed since clusterup read it (HTTP 412)"), "{error}");
    assert!(
        done.contains(&"add security group `clusterup` to m1's port p-m1 (10.0.0.11)".to_string()),
        "{done:?}"
    );
    let w1 = fake.ports().into_iter().find(|p| p["id"] == "p-w1").unwrap();
    assert_eq!(w1["security_groups"], json!(["sg-swarm"]), "the port was overwritten");
    // The next run reads it again and finishes.
    let (_, _, again) = discover(&dir);
    let again = again.security_group.unwrap();
    assert_eq!(again.describe(), ["add security group `clusterup` to w1's port p-w1 (10.0.0.21)"]);
    assert_eq!(make(&source, &env, &again).1, Ok(()));
}
