//! The Docker Engine API through each host's SSH connection (`clusterup::engine`), against the
//! engines people run: Debian 12's Docker 20.10 (API 1.41) and Debian 13's 26.1 (API 1.45), in a
//! swarm clusterup formed. A worker leaves and joins again through the API, with the join token
//! in a request body: sampled while the join runs, no process on the worker shows the token.
//! Its machines (ze1, ze2) are its own, removed at the end.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::{NodeState, SystemInfo};
use clusterup::connection::{self, Session};
use clusterup::engine;
use clusterup::inventory::Inventory;
use clusterup::report::RunLog;
use common::{lab, lab_dir, on};

const MACHINES: [&str; 2] = ["ze1", "ze2"];

/// Removes this test's machines, however it ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for machine in MACHINES {
            let _ = Command::new("docker").args(["rm", "-f", &format!("clusterup-lab-{machine}")]).output();
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &format!("clusterup-lab-{machine}-docker")])
                .output();
        }
    }
}

/// ze1 manages, ze2 works; known hosts of their own (the lab's file is another suite's).
fn write_inventory() -> PathBuf {
    let _ = std::fs::remove_file(lab_dir().join("engine_known_hosts"));
    let mut text = String::from(
        "cluster: {name: engine}\nssh:\n  user: admin\n  identity_file: id_ed25519\n  known_hosts: engine_known_hosts\n  host_key_policy: accept-new\nhosts:\n",
    );
    for (host, role) in [("ze1", "manager"), ("ze2", "worker")] {
        let addr = lab(&["addr", host]);
        text.push_str(&format!("  - {{name: {host}, address: {}, roles: [{role}]}}\n", addr.trim()));
    }
    let path = lab_dir().join("engine.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs clusterup with a log of its own (the lab's log is read by other suites).
fn clusterup(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .arg("--log")
        .arg(lab_dir().join("engine-test.log"))
        .output()
        .expect("run clusterup");
    eprintln!("$ clusterup {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The median time of `n` `/info` round trips.
async fn info_round_trip(docker: &Docker, n: usize) -> (Duration, SystemInfo) {
    let mut times = Vec::new();
    let mut info = None;
    for _ in 0..n {
        let started = Instant::now();
        info = Some(docker.info().await.unwrap());
        times.push(started.elapsed());
    }
    times.sort();
    (times[n / 2], info.unwrap())
}

/// Nanoseconds since the epoch: the lab machines share this machine's clock.
fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// `ps -ww -eo args` on a lab machine, over and over (a loop inside it, through one
/// `docker exec`), until [`Sampler::stop`].
struct Sampler {
    machine: String,
    child: Child,
    stdout: BufReader<ChildStdout>,
}

const SAMPLER: &str = "rm -f /tmp/engine-stop; echo sampling; \
    while [ ! -e /tmp/engine-stop ]; do echo \"@@sample $(date +%s%N)\"; ps -ww -eo args; done";

impl Sampler {
    fn start(machine: &str) -> Sampler {
        let mut child = Command::new("docker")
            .args(["exec", &format!("clusterup-lab-{machine}"), "sh", "-c", SAMPLER])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "sampling");
        Sampler { machine: machine.to_string(), child, stdout }
    }

    /// Every sample: when it was taken (ns since the epoch) and what `ps` printed.
    fn stop(mut self) -> Vec<(u128, String)> {
        on(&self.machine, "touch /tmp/engine-stop");
        let mut text = String::new();
        self.stdout.read_to_string(&mut text).unwrap();
        assert!(self.child.wait().unwrap().success());
        let mut samples: Vec<(u128, String)> = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("@@sample ") {
                Some(at) => samples.push((at.parse().unwrap(), String::new())),
                None => {
                    let (_, ps) = samples.last_mut().expect("a sample starts with its time");
                    ps.push_str(line);
                    ps.push('\n');
                }
            }
        }
        samples
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the container lab: vm-tests/run containers"]
async fn engines_of_debian_12_and_13_answer_through_ssh_and_a_worker_rejoins_with_the_token_in_a_body() {
    let _cleanup = Cleanup;
    lab(&["up", "ze1@bookworm", "ze2@trixie"]);
    let inventory = write_inventory();
    let out = clusterup(&["init", "-i", inventory.to_str().unwrap(), "--yes"]);
    assert!(out.status.success(), "clusterup init failed");

    let inventory = Inventory::load(&inventory).unwrap_or_else(|e| panic!("{e}"));
    let log = Arc::new(RunLog::open(&lab_dir().join("engine-test.log"), "lab_engine"));
    let mut sessions: Vec<Session> = Vec::new();
    for host in &inventory.hosts {
        let started = Instant::now();
        sessions.push(connection::connect(host, log.clone()).await.unwrap());
        eprintln!("[measure] {}: SSH connect + auth {}", host.name, ms(started.elapsed()));
    }
    let (s1, s2) = (&sessions[0], &sessions[1]);
    assert_eq!((s1.host.as_str(), s2.host.as_str()), ("ze1", "ze2"));
    assert!(s1.sudo && s2.sudo, "the lab's user is admin: dial-stdio runs through sudo -n");

    // 1. Both engines, their versions negotiated; timings of the transport.
    let mut clients = Vec::new();
    for (session, release, version, api) in
        [(s1, "bookworm", "20.10.", "1.41"), (s2, "trixie", "26.", "1.45")]
    {
        let started = Instant::now();
        let docker = engine::connect(session).await.unwrap();
        let connect_time = started.elapsed();
        let (pooled, info) = info_round_trip(&docker, 5).await;
        let fresh_client = engine::connect_with(session, 0).await.unwrap();
        let (fresh, _) = info_round_trip(&fresh_client, 5).await;
        let v = docker.version().await.unwrap();
        let server = v.version.clone().unwrap_or_default();
        eprintln!(
            "[measure] {} ({release}): Docker {server}, API {}; engine::connect (first socket channel \
             + negotiation) {}; /info round trip (median of 5) {} on the pooled channel, {} with a \
             fresh channel per request",
            session.host,
            docker.client_version(),
            ms(connect_time),
            ms(pooled),
            ms(fresh)
        );
        assert!(server.starts_with(version), "{}: Docker {server}", session.host);
        assert_eq!(v.api_version.as_deref(), Some(api));
        assert_eq!(docker.client_version().to_string(), api, "negotiated down to the engine's API");
        assert_eq!(info.server_version.as_deref(), Some(server.as_str()));
        assert_eq!(info.name.as_deref(), Some(session.host.as_str()));
        clients.push(docker);
    }
    let (d1, d2) = (&clients[0], &clients[1]);

    // 2. The swarm clusterup formed, seen through the API.
    let manager_id = engine::swarm::node_id(d1).await.unwrap();
    let old_worker_id = engine::swarm::node_id(d2).await.unwrap();
    let swarm = d1.inspect_swarm().await.unwrap();
    let token = swarm.join_tokens.and_then(|t| t.worker).expect("a worker join token on the manager");
    assert!(token.starts_with("SWMTKN-"), "{token}");
    let nodes = d1.list_nodes(None).await.unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().any(|n| n.id.as_deref() == Some(manager_id.as_str())));

    // Both clients went over the engine's socket (init put admin in the docker group): sshd
    // connected the channels, nothing was started on the hosts.
    let whole_log = std::fs::read_to_string(lab_dir().join("engine-test.log")).unwrap();
    let engine_log = whole_log.rsplit("=== clusterup lab_engine").next().unwrap_or_default();
    for host in ["ze1", "ze2"] {
        assert!(
            engine_log.contains(&format!("[{host}] socket /var/run/docker.sock -> channel open")),
            "{engine_log}"
        );
    }
    assert!(!engine_log.contains("dial-stdio"), "{engine_log}");

    // 3. ze2 leaves (outside clusterup), then joins again through its engine's API, over
    //    dial-stdio this time: its sshd now refuses socket channels, so a new connection's
    //    client falls back to `sudo -n docker system dial-stdio`, a process on the host whose
    //    command line is where a token would show.
    on(
        "ze2",
        "echo 'AllowStreamLocalForwarding no' > /etc/ssh/sshd_config.d/no-forwarding.conf && systemctl restart ssh",
    );
    let s2_stdio = connection::connect(&inventory.hosts[1], log.clone()).await.unwrap();
    let d2 = &engine::connect(&s2_stdio).await.unwrap();
    on("ze2", "docker swarm leave");
    let error = engine::swarm::node_id(d2).await.unwrap_err().to_string();
    assert!(error.contains("in no swarm"), "{error}");
    let manager_addr = format!("{}:2377", lab(&["addr", "ze1"]).trim());
    let worker_addr = lab(&["addr", "ze2"]).trim().to_string();

    let sampler = Sampler::start("ze2");
    let (join_started, started) = (now_ns(), Instant::now());
    engine::swarm::join(d2, &token, &manager_addr, &worker_addr).await.unwrap();
    let (join_ended, took) = (now_ns(), started.elapsed());
    let samples = sampler.stop();
    let during: Vec<&String> =
        samples.iter().filter(|(at, _)| (join_started..join_ended).contains(at)).map(|(_, ps)| ps).collect();
    eprintln!(
        "[measure] ze2: POST /swarm/join took {}; {} of {} `ps -ww -eo args` samples on ze2 were taken during it",
        ms(took),
        during.len(),
        samples.len()
    );
    assert!(!during.is_empty(), "no ps sample while the join ran");
    // The samples see the transport's own process with its whole command line...
    assert!(during.iter().any(|ps| ps.contains("docker system dial-stdio")), "{during:?}");
    // ...and never the token, nor any part of it that a command line could show.
    let secret = token.rsplit('-').next().unwrap();
    for (_, ps) in &samples {
        assert!(
            !ps.contains(&token) && !ps.contains(secret),
            "the join token is visible in ps on ze2:\n{ps}"
        );
    }

    // 4. ze2 is a worker again, with a new node ID, Ready in the manager's node list.
    let new_worker_id = engine::swarm::node_id(d2).await.unwrap();
    assert_ne!(new_worker_id, old_worker_id, "a node that left joins as a new node");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = d1.list_nodes(None).await.unwrap();
        let node = nodes.iter().find(|n| n.id.as_deref() == Some(new_worker_id.as_str()));
        let state = node.and_then(|n| n.status.as_ref()).and_then(|s| s.state);
        if state == Some(NodeState::READY) {
            let hostname = node.and_then(|n| n.description.as_ref()).and_then(|d| d.hostname.as_deref());
            assert_eq!(hostname, Some("ze2"));
            break;
        }
        assert!(Instant::now() < deadline, "ze2 not Ready in ze1's node list: {state:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The same, independently of clusterup.
    let state = on("ze1", &format!("docker node inspect --format '{{{{.Status.State}}}}' {new_worker_id}"));
    assert_eq!(state.trim(), "ready");

    drop(clients);
    for session in sessions.into_iter().chain([s2_stdio]) {
        session.close().await;
    }
}
