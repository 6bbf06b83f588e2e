//! The engine client against an in-process SSH server whose `docker system dial-stdio` is a
//! fake engine speaking HTTP/1.1 on the channel: real russh channels, real hyper, real bollard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{self, Auth, Msg, Session as ServerSession};
use russh::{Channel, ChannelId};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::objects::create_secret;
use super::swarm::{NodeChange, Role, join as swarm_join, node_id, still_on_node, update_node};
use super::{connect, connect_with};
use crate::connection::{self, Session};
use crate::inventory::Inventory;
use crate::report::RunLog;

/// What the fake engine saw and how it behaves.
#[derive(Default)]
struct Engine {
    /// The command line of every exec channel, in order.
    execs: Vec<String>,
    /// How many exec channels got EOF from the client (`dial-stdio` exits then).
    eofs: usize,
    requests: Vec<Seen>,
    /// Every exec fails as `sudo -n` does without a rule for the user.
    refuse: bool,
    /// sshd connects `direct-streamlocal` channels to the engine's socket (else it refuses
    /// them, as with `AllowStreamLocalForwarding no` or a user outside the docker group).
    socket: bool,
    /// The socket path of every `direct-streamlocal` channel asked for, in order.
    sockets: Vec<String>,
    /// The engine closes each channel after one response (as when it restarts).
    hang_up: bool,
    joined: bool,
    /// The one node of the fake swarm: its spec and version index.
    node_spec: Value,
    node_version: u64,
    /// How many node updates are answered "update out of sequence" before one is taken.
    out_of_sequence: u32,
    /// The image references the engine has; inspecting "broken:lab" fails with a 500.
    images: Vec<String>,
    /// The node's volumes: name -> (o, device, used by a container).
    volumes: HashMap<String, (String, String, bool)>,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One SSH connection to the fake host; its channels share the [`Engine`].
struct FakeHost {
    engine: Arc<Mutex<Engine>>,
    pending: HashMap<ChannelId, Vec<u8>>,
    /// The channels connected to the socket: they end without an exit status.
    socket_channels: Vec<ChannelId>,
}

impl server::Handler for FakeHost {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _: &str,
        _: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        socket_path: &str,
        reply: server::ChannelOpenHandle,
        _session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        let accept = {
            let mut engine = self.engine.lock().unwrap();
            engine.sockets.push(socket_path.to_string());
            engine.socket && socket_path == super::SOCKET
        };
        if accept {
            self.socket_channels.push(channel.id());
            reply.accept().await;
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        command: &[u8],
        session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        let refuse = {
            let mut engine = self.engine.lock().unwrap();
            engine.execs.push(String::from_utf8_lossy(command).into_owned());
            engine.refuse
        };
        session.channel_success(channel)?;
        if refuse {
            session.extended_data(channel, 1, "sudo: a password is required\n")?;
            session.exit_status_request(channel, 1)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        let pending = self.pending.entry(channel).or_default();
        pending.extend_from_slice(data);
        while let Some(seen) = take_request(pending) {
            let mut engine = self.engine.lock().unwrap();
            let response = answer(&mut engine, &seen);
            engine.requests.push(seen);
            session.data(channel, response)?;
            if engine.hang_up {
                session.eof(channel)?;
                session.exit_status_request(channel, 0)?;
                session.close(channel)?;
            }
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut ServerSession,
    ) -> Result<(), Self::Error> {
        self.engine.lock().unwrap().eofs += 1;
        session.eof(channel)?;
        if !self.socket_channels.contains(&channel) {
            session.exit_status_request(channel, 0)?;
        }
        session.close(channel)?;
        Ok(())
    }
}

/// One whole HTTP/1.1 request off the front of `pending`, if it has arrived.
fn take_request(pending: &mut Vec<u8>) -> Option<Seen> {
    let end = pending.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&pending[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
    if pending.len() < end + 4 + length {
        return None;
    }
    let body = String::from_utf8_lossy(&pending[end + 4..end + 4 + length]).into_owned();
    pending.drain(..end + 4 + length);
    Some(Seen { method, target, headers, body })
}

/// What Docker 20.10 answers, as far as these tests go.
fn answer(engine: &mut Engine, seen: &Seen) -> String {
    let path = seen.target.split('?').next().unwrap_or_default();
    let (status, body) = if seen.header("host").is_none_or(str::is_empty) || !seen.target.starts_with('/') {
        (400, json!({"message": "missing required Host header"}))
    } else if path.ends_with("/version") {
        (
            200,
            json!({"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux"}),
        )
    } else if path.ends_with("/info") {
        let (id, state) = if engine.joined { ("n0de1d", "active") } else { ("", "inactive") };
        (
            200,
            json!({"Name": "fakehost", "ServerVersion": "20.10.24", "Swarm": {"NodeID": id, "LocalNodeState": state}}),
        )
    } else if path.ends_with("/swarm/join") && seen.method == "POST" {
        if engine.joined {
            (503, json!({"message": "This node is already part of a swarm."}))
        } else {
            engine.joined = true;
            (200, Value::Null)
        }
    } else if path.ends_with("/nodes/n0de1d") && seen.method == "GET" {
        (200, json!({"ID": "n0de1d", "Version": {"Index": engine.node_version}, "Spec": engine.node_spec}))
    } else if path.ends_with("/nodes/n0de1d/update") && seen.method == "POST" {
        let version = seen.target.split("version=").nth(1).and_then(|v| v.parse::<u64>().ok());
        if engine.out_of_sequence > 0 || version != Some(engine.node_version) {
            engine.out_of_sequence = engine.out_of_sequence.saturating_sub(1);
            // Someone else changed the node meanwhile.
            engine.node_version += 1;
            (500, json!({"message": "rpc error: code = Unknown desc = update out of sequence"}))
        } else {
            engine.node_spec = serde_json::from_str(&seen.body).unwrap();
            engine.node_version += 1;
            (200, Value::Null)
        }
    } else if let Some(image) = path.split_once("/images/").and_then(|(_, i)| i.strip_suffix("/json")) {
        if image == "broken:lab" {
            (500, json!({"message": "layer store unreadable"}))
        } else if engine.images.iter().any(|i| i == image) {
            (200, json!({"Id": "sha256:1d", "RepoTags": [image]}))
        } else {
            (404, json!({"message": format!("No such image: {image}")}))
        }
    } else if let Some(name) = path.split_once("/volumes/").map(|(_, n)| n.to_string()) {
        match (seen.method.as_str(), engine.volumes.get(&name).cloned()) {
            (_, None) => (404, json!({"message": format!("get {name}: no such volume")})),
            ("GET", Some((o, device, _))) => (
                200,
                json!({"Name": name, "Driver": "local", "Mountpoint": "", "Scope": "local",
                       "Labels": {}, "Options": {"type": "nfs", "o": o, "device": device}}),
            ),
            ("DELETE", Some(_)) => {
                engine.volumes.remove(&name);
                (204, Value::Null)
            }
            _ => (400, json!({"message": "unexpected volume request"})),
        }
    } else if path.ends_with("/containers/json") && seen.method == "GET" {
        // Only the `volume` filter is understood: the containers that use that volume.
        let query = seen.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let used: Vec<Value> = engine
            .volumes
            .iter()
            .filter(|(name, (_, _, busy))| *busy && query.contains(name.as_str()))
            .map(|(name, _)| json!({"Id": format!("c-{name}"), "Names": [format!("/{name}-user")]}))
            .collect();
        (200, Value::Array(used))
    } else if path.contains("/secrets/") && seen.method == "GET" {
        (404, json!({"message": "secret not found"}))
    } else if path.ends_with("/secrets/create") && seen.method == "POST" {
        (201, json!({"ID": "s3cr3t1d"}))
    } else {
        (404, json!({"message": "page not found"}))
    };
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        500 => "Internal Server Error",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Starts the fake host on a loopback port.
async fn start(engine: Engine) -> (u16, Arc<Mutex<Engine>>) {
    let engine = Arc::new(Mutex::new(engine));
    let host_key =
        PrivateKey::from_openssh(std::fs::read_to_string(fixture("host_ed25519")).unwrap()).unwrap();
    let config = Arc::new(server::Config { keys: vec![host_key], ..Default::default() });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = engine.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler =
                FakeHost { engine: shared.clone(), pending: HashMap::new(), socket_channels: Vec::new() };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(session) = server::run_stream(config, stream, handler).await {
                    let _ = session.await;
                }
            });
        }
    });
    (port, engine)
}

async fn session(port: u16, user: &str) -> Session {
    session_logged(port, user, Arc::new(RunLog::disabled())).await
}

async fn session_logged(port: u16, user: &str, log: Arc<RunLog>) -> Session {
    let dir = std::env::temp_dir().join(format!(
        "clusterup-engine-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "cluster: {{name: t}}\nssh: {{user: {user}, port: {port}, identity_file: {}, known_hosts: {}, \
         host_key_policy: accept-new, connect_timeout: 2, command_timeout: 5}}\n\
         hosts:\n  - {{name: fake, address: 127.0.0.1, roles: [manager]}}\n",
        fixture("client_ed25519").display(),
        dir.join("known_hosts").display()
    );
    let host = Inventory::from_text(&dir.join("inv.yml"), &text).unwrap().hosts.remove(0);
    let session = connection::connect(&host, log).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    session
}

fn seen(engine: &Arc<Mutex<Engine>>) -> (Vec<String>, Vec<Seen>) {
    let engine = engine.lock().unwrap();
    (engine.execs.clone(), engine.requests.clone())
}

#[tokio::test]
async fn negotiates_the_version_and_sends_origin_form_requests_with_a_host_header() {
    let (port, engine) = start(Engine::default()).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    assert_eq!(docker.client_version().to_string(), "1.41", "bollard speaks 1.53 unless told the engine's");
    assert_eq!(docker.version().await.unwrap().api_version.as_deref(), Some("1.41"));
    let (execs, requests) = seen(&engine);
    // One channel for both requests (pooled), through sudo for a non-root user.
    assert_eq!(execs, ["sudo -n docker system dial-stdio"]);
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert!(request.target.starts_with('/'), "not origin-form: {request:?}");
        assert_eq!(request.header("host"), Some("docker"), "{request:?}");
    }
    // The first request asks for the version; the second is versioned with the negotiated one.
    assert!(requests[0].target.ends_with("/version"), "{requests:?}");
    assert_eq!(requests[1].target, "/v1.41/version", "{requests:?}");
}

#[tokio::test]
async fn the_engine_socket_is_used_where_sshd_connects_it_and_nothing_is_started_on_the_host() {
    let (port, engine) = start(Engine { socket: true, ..Engine::default() }).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    assert_eq!(docker.info().await.unwrap().server_version.as_deref(), Some("20.10.24"));
    let (execs, requests) = seen(&engine);
    assert!(execs.is_empty(), "no dial-stdio, no sudo: {execs:?}");
    assert_eq!(engine.lock().unwrap().sockets, ["/var/run/docker.sock"], "one pooled channel");
    assert_eq!(requests.len(), 2, "negotiation and /info: {requests:?}");
    assert_eq!(requests[1].target, "/v1.41/info");
}

#[tokio::test]
async fn a_refused_socket_falls_back_to_dial_stdio_and_connect_socket_says_why() {
    let (port, engine) = start(Engine::default()).await;
    let session = session(port, "admin").await;
    let error = format!("{:#}", super::connect_socket(&session).await.unwrap_err());
    assert!(error.contains("fake") && error.contains("/var/run/docker.sock"), "{error}");
    let docker = connect(&session).await.unwrap();
    assert_eq!(docker.client_version().to_string(), "1.41");
    let (execs, _) = seen(&engine);
    assert_eq!(engine.lock().unwrap().sockets.len(), 2, "each connect tried the socket first");
    assert_eq!(execs, ["sudo -n docker system dial-stdio"]);
}

#[tokio::test]
async fn root_needs_no_sudo_and_without_a_pool_every_request_has_a_channel_that_then_ends() {
    let (port, engine) = start(Engine { joined: true, ..Engine::default() }).await;
    let session = session(port, "root").await;
    let docker = connect_with(&session, 0).await.unwrap();
    for _ in 0..3 {
        assert_eq!(node_id(&docker).await.unwrap(), "n0de1d");
    }
    let (execs, requests) = seen(&engine);
    assert_eq!(execs, vec!["docker system dial-stdio"; 4], "negotiation and three /info, a channel each");
    assert_eq!(requests.len(), 4);
    // Each connection, dropped after its response, sent EOF: no dial-stdio is left behind.
    for _ in 0..100 {
        if engine.lock().unwrap().eofs == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.lock().unwrap().eofs, 4);
}

#[tokio::test]
async fn a_pooled_channel_the_engine_closed_is_not_reused() {
    let (port, engine) = start(Engine { joined: true, hang_up: true, ..Engine::default() }).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node_id(&docker).await.unwrap(), "n0de1d");
    let (execs, _) = seen(&engine);
    assert_eq!(execs.len(), 2, "a second channel for the request after the hang-up: {execs:?}");
}

#[tokio::test]
async fn swarm_join_sends_the_token_in_the_body_and_never_on_a_command_line() {
    let (port, engine) = start(Engine::default()).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    let error = node_id(&docker).await.unwrap_err().to_string();
    assert!(
        error.contains("fakehost") && error.contains("in no swarm") && error.contains("inactive"),
        "{error}"
    );

    let token = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
    swarm_join(&docker, token, "10.0.0.1:2377", "10.0.0.2").await.unwrap();
    assert_eq!(node_id(&docker).await.unwrap(), "n0de1d");
    let (execs, requests) = seen(&engine);
    let join = requests.iter().find(|r| r.target.ends_with("/swarm/join")).unwrap();
    assert_eq!(join.method, "POST");
    assert_eq!(join.target, "/v1.41/swarm/join");
    let body: Value = serde_json::from_str(&join.body).unwrap();
    assert_eq!(
        body,
        json!({"JoinToken": token, "RemoteAddrs": ["10.0.0.1:2377"], "AdvertiseAddr": "10.0.0.2", "ListenAddr": "0.0.0.0:2377"})
    );
    assert!(!join.target.contains("SWMTKN") && !format!("{:?}", join.headers).contains("SWMTKN"));
    assert!(execs.iter().all(|e| !e.contains("SWMTKN")), "{execs:?}");

    // The engine's refusal reaches the caller with its words.
    let error = swarm_join(&docker, token, "10.0.0.1:2377", "10.0.0.2").await.unwrap_err().to_string();
    assert!(error.contains("already part of a swarm") && error.contains("10.0.0.1:2377"), "{error}");
    assert!(!error.contains("SWMTKN"), "{error}");
}

#[tokio::test]
async fn a_dial_stdio_that_fails_is_explained_with_the_host_and_its_stderr() {
    let (port, _engine) = start(Engine { refuse: true, ..Engine::default() }).await;
    let session = session(port, "admin").await;
    let error = connect(&session).await.unwrap_err().to_string();
    assert!(error.starts_with("fake: "), "{error}");
    assert!(error.contains("sudo -n docker system dial-stdio"), "{error}");
    assert!(error.contains("exited 1: sudo: a password is required"), "{error}");
}

#[test]
fn paths_get_the_negotiated_version_once_and_keep_their_query() {
    let fix = |uri: &str, version: Option<&str>| {
        let request = hyper::Request::builder().uri(uri).body(()).unwrap();
        let request = super::transport::origin_form(request, version).unwrap();
        (request.uri().to_string(), request.headers()["host"].to_str().unwrap().to_string())
    };
    // `/volumes` starts with `/v` but names no version.
    assert_eq!(
        fix("http://docker/volumes/create?a=1&b=2", Some("1.41")),
        ("/v1.41/volumes/create?a=1&b=2".to_string(), "docker".to_string())
    );
    assert_eq!(fix("http://docker/v1.45/info", Some("1.41")).0, "/v1.45/info");
    assert_eq!(fix("http://docker/version", None).0, "/version");
    assert_eq!(fix("http://docker", Some("1.41")).0, "/v1.41/");
}

#[tokio::test]
async fn a_node_update_changes_the_spec_it_read_at_its_version_and_reads_again_when_out_of_sequence() {
    let spec = json!({"Role": "worker", "Availability": "active", "Labels": {"zone": "a", "mine": "1"}});
    let (port, engine) =
        start(Engine { node_spec: spec, node_version: 7, out_of_sequence: 2, ..Engine::default() }).await;
    let session = session(port, "root").await;
    let docker = connect(&session).await.unwrap();
    let change = NodeChange::Labels(vec![("edge".into(), Some("true".into())), ("mine".into(), None)]);
    update_node(&docker, "n0de1d", &change).await.unwrap();
    let (_, requests) = seen(&engine);
    let updates: Vec<&Seen> = requests.iter().filter(|r| r.target.contains("/update")).collect();
    assert_eq!(updates.len(), 3, "two refused as out of sequence, then one taken: {updates:?}");
    // Each try was made at the version read just before it.
    assert_eq!(updates[0].target, "/v1.41/nodes/n0de1d/update?version=7");
    assert_eq!(updates[2].target, "/v1.41/nodes/n0de1d/update?version=9");
    let engine = engine.lock().unwrap();
    assert_eq!(
        engine.node_spec,
        json!({"Role": "worker", "Availability": "active", "Labels": {"zone": "a", "edge": "true"}}),
        "labels of others kept, one set, one removed"
    );
}

#[tokio::test]
async fn a_node_update_refused_for_another_reason_is_not_tried_again() {
    let (port, engine) = start(Engine::default()).await;
    let session = session(port, "root").await;
    let docker = connect(&session).await.unwrap();
    let error = update_node(&docker, "nosuchnode", &NodeChange::Role(Role::Manager)).await.unwrap_err();
    assert!(error.to_string().contains("reading node nosuchnode: page not found"), "{error}");
    let (_, requests) = seen(&engine);
    assert!(requests.iter().all(|r| !r.target.contains("/update")));
}

#[tokio::test]
async fn missing_images_are_the_ones_the_engine_does_not_know_and_other_errors_are_errors() {
    let images = vec!["clusterup-lab/postgres:lab".to_string()];
    let (port, engine) = start(Engine { socket: true, images: images.clone(), ..Engine::default() }).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    let asked: Vec<String> = ["clusterup-lab/postgres:lab", "caddy:2", "clusterup-lab/app:lab"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lacking = super::node::missing_images(&docker, &asked).await.unwrap();
    assert_eq!(lacking, ["caddy:2", "clusterup-lab/app:lab"]);
    let (execs, requests) = seen(&engine);
    assert!(execs.is_empty(), "no docker command started on the host: {execs:?}");
    assert!(requests.iter().any(|r| r.target == "/v1.41/images/caddy:2/json"), "{requests:?}");
    let error = super::node::missing_images(&docker, &["broken:lab".to_string()]).await.unwrap_err();
    assert_eq!(format!("{error:#}"), "inspecting image broken:lab: layer store unreadable");
}

#[tokio::test]
async fn a_volume_with_other_options_is_reported_and_removed_only_when_asked_and_unused() {
    use super::node::{NfsVolume, VolumeState, check_volume};
    let (o, device) = ("addr=10.0.0.5,rw,nfsvers=4.2,hard", ":/srv/clusterup/db/pgdata");
    let old = ("addr=10.0.0.4,rw,nfsvers=4.2,hard".to_string(), device.to_string());
    let volumes = HashMap::from([
        ("db_pgdata".to_string(), (o.to_string(), device.to_string(), true)),
        ("db_moved".to_string(), (old.0.clone(), old.1.clone(), false)),
        ("db_busy".to_string(), (old.0.clone(), old.1.clone(), true)),
    ]);
    let (port, engine) = start(Engine { socket: true, volumes, ..Engine::default() }).await;
    let session = session(port, "admin").await;
    let docker = connect(&session).await.unwrap();
    let drift = format!("has o={} device={device}", old.0);
    let wanted = |name: &str| NfsVolume { name: name.into(), o: o.into(), device: device.into() };
    assert_eq!(check_volume(&docker, &wanted("db_pgdata"), true).await.unwrap(), VolumeState::Fine);
    assert_eq!(check_volume(&docker, &wanted("db_absent"), true).await.unwrap(), VolumeState::Fine);
    assert_eq!(
        check_volume(&docker, &wanted("db_moved"), false).await.unwrap(),
        VolumeState::Drifted(drift.clone())
    );
    assert!(engine.lock().unwrap().volumes.contains_key("db_moved"), "not removed unless asked");
    assert_eq!(
        check_volume(&docker, &wanted("db_busy"), true).await.unwrap(),
        VolumeState::Busy(drift.clone())
    );
    assert!(engine.lock().unwrap().volumes.contains_key("db_busy"), "a volume in use is kept");
    assert_eq!(check_volume(&docker, &wanted("db_moved"), true).await.unwrap(), VolumeState::Removed(drift));
    assert!(!engine.lock().unwrap().volumes.contains_key("db_moved"));
    let (execs, _) = seen(&engine);
    assert!(execs.is_empty(), "no docker command started on the host: {execs:?}");
}

#[tokio::test]
async fn a_secret_value_travels_base64_in_the_body_and_the_run_log_shows_only_the_request() {
    let (port, engine) = start(Engine::default()).await;
    let dir = std::env::temp_dir().join(format!("clusterup-engine-log-{}", std::process::id()));
    let log_path = dir.join("run.log");
    let session = session_logged(port, "root", Arc::new(RunLog::open(&log_path, "test"))).await;
    let docker = connect(&session).await.unwrap();
    let value = "correct horse battery staple";
    assert!(create_secret(&docker, "pg", "pg_0123abcd", value).await.unwrap());
    let (execs, requests) = seen(&engine);
    let create = requests.iter().find(|r| r.target.ends_with("/secrets/create")).unwrap();
    let body: Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(body["Name"], "pg_0123abcd");
    assert_eq!(body["Labels"], json!({"clusterup.secret": "pg"}));
    assert_eq!(body["Data"], "Y29ycmVjdCBob3JzZSBiYXR0ZXJ5IHN0YXBsZQ==");
    assert!(execs.iter().all(|e| !e.contains(value)));
    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(log.contains("engine API: POST /v1.41/secrets/create -> 201"), "{log}");
    assert!(!log.contains(value) && !log.contains("Y29ycmVjdCBob3Jz"), "{log}");
}

#[test]
fn a_drained_node_is_empty_once_nothing_is_meant_to_run_and_nothing_runs_unless_it_is_down() {
    use bollard::models::{Task, TaskState, TaskStatus};
    let task = |id: &str, desired: TaskState, state: TaskState| Task {
        id: Some(id.into()),
        desired_state: Some(desired),
        status: Some(TaskStatus { state: Some(state), ..Default::default() }),
        ..Default::default()
    };
    let stopping = [
        task("t1", TaskState::SHUTDOWN, TaskState::RUNNING),
        task("t0", TaskState::SHUTDOWN, TaskState::SHUTDOWN),
    ];
    assert_eq!(still_on_node(&stopping, false), ["  task t1 (running)"]);
    assert!(still_on_node(&stopping, true).is_empty(), "a down node runs nothing");
    let scheduled = [task("t2", TaskState::RUNNING, TaskState::RUNNING)];
    assert_eq!(still_on_node(&scheduled, true).len(), 1, "not yet told to stop");
    assert!(still_on_node(&[task("t3", TaskState::SHUTDOWN, TaskState::FAILED)], false).is_empty());
}

#[test]
fn the_engines_node_reads_as_the_planner_expects() {
    let node: bollard::models::Node = serde_json::from_value(json!({
        "ID": "abc", "Spec": {"Role": "manager", "Availability": "drain", "Labels": {"zone": "a"}},
        "Description": {"Hostname": "m1", "Engine": {"EngineVersion": "26.1.5+dfsg1"}},
        "Status": {"State": "ready", "Addr": "10.0.0.1"},
        "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}
    }))
    .unwrap();
    let n = super::swarm::swarm_node(node);
    assert_eq!(
        (n.id.as_str(), n.spec.role.as_str(), n.spec.availability.as_str()),
        ("abc", "manager", "drain")
    );
    assert_eq!(n.spec.labels["zone"], "a");
    assert_eq!(
        (n.description.hostname.as_str(), n.description.engine.engine_version.as_str()),
        ("m1", "26.1.5+dfsg1")
    );
    assert_eq!((n.status.state.as_str(), n.status.addr.as_str()), ("ready", "10.0.0.1"));
    let m = n.manager_status.unwrap();
    assert!(m.leader && m.reachability == "reachable");
}
