//! `openstack:` inventories against a fake cloud: a small HTTP server on 127.0.0.1 (port 0)
//! answering as Keystone, Nova, Glance and Neutron do per their public API reference (a token
//! in `X-Subject-Token` with the catalog in the body, a paged server list with `servers_links`
//! rel=next, addresses per network with `OS-EXT-IPS:type`, ports, security groups and rules).
//! The real binary runs `clusterup inventory` with HOME holding a clouds.yaml that points at it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-battery";
const TOKEN: &str = "gAAAAfake-token-0123456789";

/// How the fake cloud behaves.
#[derive(Clone)]
struct Cloud {
    servers: Vec<Value>,
    page_size: usize,
    /// Seconds the server list takes to answer.
    compute_delay: u64,
    groups: Value,
    /// device_id -> its ports.
    ports: BTreeMap<String, Value>,
}

/// One request the fake saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    token: Option<String>,
}

struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(cloud: Cloud) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (cloud, log) = (cloud.clone(), log.clone());
                std::thread::spawn(move || serve(stream, port, &cloud, &log));
            }
        });
        Fake { port, seen }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, port: u16, cloud: &Cloud, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let token = headers.get("x-auth-token").cloned();
    log.lock().unwrap().push(Seen { method: method.clone(), target: target.clone(), token: token.clone() });

    let base = format!("http://127.0.0.1:{port}");
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let authorized = token.as_deref() == Some(TOKEN);
    let (status, extra, reply): (u16, String, Value) = match (method.as_str(), path) {
        ("POST", "/identity/v3/auth/tokens") => {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let given = request.pointer("/auth/identity/password/user/password").and_then(Value::as_str);
            if given == Some(PASSWORD) {
                (201, format!("X-Subject-Token: {TOKEN}\r\n"), token_body(&base))
            } else {
                (
                    401,
                    String::new(),
                    json!({"error": {"code": 401, "title": "Unauthorized",
                    "message": "The request you have made requires authentication."}}),
                )
            }
        }
        _ if !authorized => (401, String::new(), json!({"error": {"code": 401, "message": "no token"}})),
        ("GET", "/compute/v2.1/servers/detail") => {
            std::thread::sleep(Duration::from_secs(cloud.compute_delay));
            let start = query
                .strip_prefix("marker=")
                .and_then(|m| cloud.servers.iter().position(|s| s["id"] == m))
                .map_or(0, |i| i + 1);
            let page: Vec<Value> = cloud.servers.iter().skip(start).take(cloud.page_size).cloned().collect();
            let mut reply = json!({"servers": page});
            if start + cloud.page_size < cloud.servers.len() {
                let last = page.last().unwrap()["id"].as_str().unwrap().to_string();
                reply["servers_links"] = json!([{"rel": "next",
                    "href": format!("{base}/compute/v2.1/servers/detail?marker={last}")}]);
            }
            (200, String::new(), reply)
        }
        ("GET", p) if p.starts_with("/image/v2/images/") => (
            200,
            String::new(),
            json!({"id": &p[17..], "name": "debian-12-genericcloud-amd64", "os_distro": "debian"}),
        ),
        ("GET", "/network/v2.0/ports") => {
            let device = query.strip_prefix("device_id=").unwrap_or("");
            (200, String::new(), json!({"ports": cloud.ports.get(device).cloned().unwrap_or(json!([]))}))
        }
        ("GET", "/network/v2.0/security-groups") => {
            (200, String::new(), json!({"security_groups": cloud.groups.clone()}))
        }
        _ => (404, String::new(), json!({"itemNotFound": {"code": 404, "message": "not here"}})),
    };
    let text = reply.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{text}",
        text.len()
    );
}

/// A token as Keystone issues it, with a catalog of every service at the fake.
fn token_body(base: &str) -> Value {
    let service = |kind: &str, path: &str| {
        json!({"type": kind, "name": kind, "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": format!("{base}{path}")},
            {"interface": "internal", "region_id": "RegionOne", "region": "RegionOne", "url": "http://192.0.2.1:1/never"}]})
    };
    json!({"token": {
    "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
    "project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
    "catalog": [
        {"type": "identity", "name": "keystone", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": format!("{base}/identity/v3")}]},
        service("compute", "/compute/v2.1"),
        service("image", "/image"),
        service("network", "/network"),
    ]}})
}

fn server(id: &str, name: &str, status: &str, metadata: Value, addresses: Value) -> Value {
    json!({"id": id, "name": name, "status": status, "metadata": metadata, "tags": [],
           "image": {"id": "img-debian", "links": []}, "addresses": addresses, "flavor": {"original_name": "m1.small"}})
}

fn fixed(addr: &str) -> Value {
    json!({"addr": addr, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"})
}

fn floating(addr: &str) -> Value {
    json!({"addr": addr, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"})
}

fn port(id: &str, device: &str, ip: &str, groups: &[&str]) -> Value {
    json!({"id": id, "device_id": device, "network_id": "net-private", "port_security_enabled": true,
           "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}], "security_groups": groups})
}

fn rule(protocol: &str, port: u16, remote_group: Option<&str>, remote_ip: Option<&str>) -> Value {
    json!({"id": format!("r-{protocol}-{port}"), "direction": "ingress", "ethertype": "IPv4", "protocol": protocol,
           "port_range_min": port, "port_range_max": port, "remote_group_id": remote_group,
           "remote_ip_prefix": remote_ip, "security_group_id": "sg-swarm"})
}

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
    let config = dir.join("home/.config/openstack");
    std::fs::create_dir_all(&config).unwrap();
    let auth_url =
        fake.map_or("http://127.0.0.1:9/identity/v3".to_string(), |f| format!("{}/identity/v3", f.base()));
    std::fs::write(
        config.join("clouds.yaml"),
        format!(
            "clouds:\n  mycloud:\n    region_name: RegionOne\n    auth:\n      auth_url: {auth_url}\n      \
             username: alice\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n"
        ),
    )
    .unwrap();
    std::fs::write(
        config.join("secure.yaml"),
        format!("clouds:\n  mycloud:\n    auth:\n      password: {password}\n"),
    )
    .unwrap();
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
