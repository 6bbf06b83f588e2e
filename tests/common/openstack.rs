//! A fake OpenStack cloud for the tests: a small HTTP server on 127.0.0.1 (port 0) answering
//! as Keystone, Nova, Glance and Neutron do per their public API reference (a token in
//! `X-Subject-Token` with the catalog in the body, a paged server list with `servers_links`
//! rel=next, addresses per network with `OS-EXT-IPS:type`, ports, security groups and rules).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub const PASSWORD: &str = "correct-horse-battery";
pub const TOKEN: &str = "gAAAAfake-token-0123456789";

/// How the fake cloud behaves.
#[derive(Clone)]
pub struct Cloud {
    pub servers: Vec<Value>,
    pub page_size: usize,
    /// Seconds the server list takes to answer.
    pub compute_delay: u64,
    pub groups: Value,
    /// device_id -> its ports.
    pub ports: BTreeMap<String, Value>,
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub token: Option<String>,
}

pub struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn start(cloud: Cloud) -> Fake {
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

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
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

pub fn server(id: &str, name: &str, status: &str, metadata: Value, addresses: Value) -> Value {
    json!({"id": id, "name": name, "status": status, "metadata": metadata, "tags": [],
           "image": {"id": "img-debian", "links": []}, "addresses": addresses, "flavor": {"original_name": "m1.small"}})
}

pub fn fixed(addr: &str) -> Value {
    json!({"addr": addr, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"})
}

pub fn floating(addr: &str) -> Value {
    json!({"addr": addr, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"})
}

pub fn port(id: &str, device: &str, ip: &str, groups: &[&str]) -> Value {
    json!({"id": id, "device_id": device, "network_id": "net-private", "port_security_enabled": true,
           "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}], "security_groups": groups})
}

pub fn rule(protocol: &str, port: u16, remote_group: Option<&str>, remote_ip: Option<&str>) -> Value {
    json!({"id": format!("r-{protocol}-{port}"), "direction": "ingress", "ethertype": "IPv4", "protocol": protocol,
           "port_range_min": port, "port_range_max": port, "remote_group_id": remote_group,
           "remote_ip_prefix": remote_ip, "security_group_id": "sg-swarm"})
}

/// HOME/.config/openstack/clouds.yaml naming the cloud `mycloud` at `auth_url`, and its
/// password in secure.yaml beside it, as a user keeps them.
pub fn write_clouds(home: &Path, auth_url: &str, password: &str) {
    let config = home.join(".config/openstack");
    std::fs::create_dir_all(&config).unwrap();
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
}
