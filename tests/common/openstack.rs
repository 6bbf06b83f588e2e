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
    /// The cloud as it is now: security groups, rules and ports change as Neutron's would.
    state: Arc<Mutex<Cloud>>,
}

impl Fake {
    pub fn start(cloud: Cloud) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(cloud));
        let (log, shared) = (seen.clone(), state.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (cloud, log) = (shared.clone(), log.clone());
                std::thread::spawn(move || serve(stream, port, &cloud, &log));
            }
        });
        Fake { port, seen, state }
    }

    /// The security groups as they are now.
    pub fn groups(&self) -> Value {
        self.state.lock().unwrap().groups.clone()
    }

    /// Every port as it is now.
    pub fn ports(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state.ports.values().flat_map(|p| p.as_array().cloned().unwrap_or_default()).collect()
    }

    /// Someone else updates a port (its revision goes up), as between a read and a write.
    pub fn touch_port(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        for port in state.ports.values_mut().flat_map(|p| p.as_array_mut().unwrap().iter_mut()) {
            if port["id"] == id {
                port["revision_number"] = json!(port["revision_number"].as_u64().unwrap_or(0) + 1);
            }
        }
    }

    /// The requests that changed something (POST, PUT, DELETE), token requests left out.
    pub fn changes(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method != "GET" && !s.target.starts_with("/identity/"))
            .map(|s| format!("{} {}", s.method, s.target))
            .collect()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, port: u16, cloud: &Mutex<Cloud>, log: &Mutex<Vec<Seen>>) {
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
    let if_match = headers.get("if-match").cloned();
    log.lock().unwrap().push(Seen { method: method.clone(), target: target.clone(), token: token.clone() });

    let base = format!("http://127.0.0.1:{port}");
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let authorized = token.as_deref() == Some(TOKEN);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The compute API's delay is not spent holding the state.
    if method == "GET" && path == "/compute/v2.1/servers/detail" {
        let delay = cloud.lock().unwrap().compute_delay;
        std::thread::sleep(Duration::from_secs(delay));
    }
    let mut cloud = cloud.lock().unwrap();
    let (status, extra, reply): (u16, String, Value) = match (method.as_str(), path) {
        ("POST", "/identity/v3/auth/tokens") => {
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
            // Paged as Neutron pages with `pagination_max_limit` set: `marker`, `_links` rel=next.
            let groups = cloud.groups.as_array().cloned().unwrap_or_default();
            let start = query
                .split('&')
                .find_map(|q| q.strip_prefix("marker="))
                .and_then(|m| groups.iter().position(|g| g["id"] == m))
                .map_or(0, |i| i + 1);
            let page: Vec<Value> = groups.iter().skip(start).take(cloud.page_size).cloned().collect();
            let mut reply = json!({"security_groups": page});
            if start + cloud.page_size < groups.len() {
                let last = page.last().unwrap()["id"].as_str().unwrap().to_string();
                reply["security_groups_links"] = json!([{"rel": "next",
                    "href": format!("{base}/network/v2.0/security-groups?limit={}&marker={last}", cloud.page_size)}]);
            }
            (200, String::new(), reply)
        }
        ("POST", "/network/v2.0/security-groups") => {
            let groups = cloud.groups.as_array_mut().unwrap();
            let id = format!("sg-made-{}", groups.len());
            let egress = |ethertype: &str| {
                json!({"id": format!("r-{id}-{ethertype}"), "direction": "egress",
                "ethertype": ethertype, "protocol": null, "port_range_min": null, "port_range_max": null,
                "remote_group_id": null, "remote_ip_prefix": null, "security_group_id": &id})
            };
            let group = json!({"id": &id, "name": request.pointer("/security_group/name").cloned().unwrap_or(json!("")),
                "description": request.pointer("/security_group/description").cloned().unwrap_or(json!("")),
                "security_group_rules": [egress("IPv4"), egress("IPv6")], "revision_number": 1});
            groups.push(group.clone());
            (201, String::new(), json!({"security_group": group}))
        }
        ("POST", "/network/v2.0/security-group-rules") => {
            let mut rule = request["security_group_rule"].clone();
            let group_id = rule["security_group_id"].clone();
            for key in ["remote_group_id", "remote_ip_prefix"] {
                if rule.get(key).is_none() {
                    rule[key] = Value::Null;
                }
            }
            let same = |r: &Value| {
                [
                    "direction",
                    "ethertype",
                    "protocol",
                    "port_range_min",
                    "port_range_max",
                    "remote_group_id",
                    "remote_ip_prefix",
                ]
                .iter()
                .all(|k| r[k] == rule[k])
            };
            match cloud.groups.as_array_mut().unwrap().iter_mut().find(|g| g["id"] == group_id) {
                None => {
                    (404, String::new(), json!({"NeutronError": {"message": "Security group not found"}}))
                }
                Some(group) => {
                    let rules = group["security_group_rules"].as_array_mut().unwrap();
                    if rules.iter().any(same) {
                        (
                            409,
                            String::new(),
                            json!({"NeutronError": {"type": "SecurityGroupRuleExists",
                            "message": "Security group rule already exists."}}),
                        )
                    } else {
                        rule["id"] = json!(format!("r-made-{}", rules.len()));
                        rules.push(rule.clone());
                        (201, String::new(), json!({"security_group_rule": rule}))
                    }
                }
            }
        }
        ("PUT", p) if p.starts_with("/network/v2.0/ports/") => {
            let id = &p["/network/v2.0/ports/".len()..];
            let found = cloud
                .ports
                .values_mut()
                .flat_map(|ports| ports.as_array_mut().unwrap().iter_mut())
                .find(|port| port["id"] == id);
            match found {
                None => (404, String::new(), json!({"NeutronError": {"message": "Port not found"}})),
                Some(port) => {
                    let revision = port["revision_number"].as_u64().unwrap_or(0);
                    if if_match.as_deref().is_some_and(|m| m != format!("revision_number={revision}")) {
                        (
                            412,
                            String::new(),
                            json!({"NeutronError": {"message": "Constrained update failed"}}),
                        )
                    } else {
                        port["security_groups"] =
                            request.pointer("/port/security_groups").cloned().unwrap_or(json!([]));
                        port["revision_number"] = json!(revision + 1);
                        (200, String::new(), json!({"port": port.clone()}))
                    }
                }
            }
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
    json!({"id": id, "device_id": device, "network_id": "net-private", "port_security_enabled": true, "revision_number": 1,
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
