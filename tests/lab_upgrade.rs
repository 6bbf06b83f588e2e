//! An engine upgrade rolled across a live cluster on the container lab: three managers and
//! three workers, an app answering on the workers, and a newer engine package from a local apt
//! repository (`vm-tests/lab apt-repo`: this release's docker.io under a higher version, whose
//! installation restarts the engine as a real upgrade does). Sampled from outside through the
//! roll: the managers' engines (quorum) and the app (a client trying the workers in turn, as a
//! load balancer in front of them would).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{lab, lab_dir, lab_inventory, on, run_json, sampling_engines};
use serde_json::Value;

const HOSTS: &[(&str, &str, &str)] = &[
    ("m1", "manager", ""),
    ("m2", "manager", ""),
    ("m3", "manager", ""),
    ("w1", "worker", ""),
    ("w2", "worker", ""),
    ("w3", "worker", ""),
];
const WORKERS: [&str; 3] = ["w1", "w2", "w3"];

/// The app: two tasks on two of the three workers, each answering on its node's port 8080.
const APP: &str = r#"version: "3.9"
services:
  web:
    image: clusterup-lab/app:lab
    ports:
      - {target: 8080, published: 8080, mode: host}
    deploy:
      endpoint_mode: dnsrr
      replicas: 2
      placement:
        constraints: [node.role == worker]
        max_replicas_per_node: 1
"#;

fn inventory(version: Option<&str>) -> PathBuf {
    std::fs::write(lab_dir().join("upgrade-app.yml"), APP).unwrap();
    let images = lab_dir().join("images/app.tar");
    let docker = version.map(|v| format!("docker: {{version: \"{v}\"}}\n")).unwrap_or_default();
    let extra = format!(
        "{docker}images: {{resolve: never, preload: [{}]}}\nstacks:\n  - {{name: app, template: ./upgrade-app.yml}}\n",
        images.display()
    );
    lab_inventory("upgrade.yml", "lab", HOSTS, &extra)
}

fn package_version(machine: &str) -> String {
    on(machine, "dpkg-query -W -f '${Version}' docker.io").trim().to_string()
}

/// One GET of the app on `addr`, answered within a second.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"GET / HTTP/1.0\r\nHost: app\r\n\r\n").is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.starts_with("HTTP/1.") && body.contains("200") && body.contains("clusterup-lab-app")
}

/// Runs `work` while probing the app every 0.2 s: a probe succeeds when any worker answers.
/// Returns the number of probes, the failed ones, and what `work` returned.
fn probing<T>(work: impl FnOnce() -> T) -> (usize, usize, T) {
    let addrs: Vec<SocketAddr> =
        WORKERS.iter().map(|w| format!("{}:8080", lab(&["addr", w]).trim()).parse().unwrap()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let prober = std::thread::spawn(move || {
        let (mut probes, mut failed) = (0, 0);
        while !flag.load(Ordering::Relaxed) {
            probes += 1;
            if !addrs.iter().any(|a| answers(*a)) {
                failed += 1;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (probes, failed)
    });
    let result = work();
    done.store(true, Ordering::Relaxed);
    let (probes, failed) = prober.join().unwrap();
    (probes, failed, result)
}

fn changes(report: &Value, host: &str) -> Vec<String> {
    report["hosts"][host]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn an_engine_upgrade_rolls_with_quorum_kept_and_the_app_answering() {
    lab(&["images"]);
    let names: Vec<&str> = HOSTS.iter().map(|h| h.0).collect();
    common::lab_up_with_engine(&names);

    // A cluster with its app, on the release's engine.
    let (code, report) = run_json(&["init", "--converge-timeout", "240"], &inventory(None));
    assert_eq!(code, Some(0), "{report}");
    let old = package_version("m1");
    assert!(!old.is_empty() && !old.ends_with("+lab1"), "{old}");

    // A newer engine is published; the machines' package lists learn of it, as apt's daily
    // update would.
    let source = lab(&["apt-repo"]);
    for machine in &names {
        on(
            machine,
            &format!(
                "printf '%s\\n' '{}' >/etc/apt/sources.list.d/lab-upgrade.list && apt-get update -qq >/dev/null",
                source.trim()
            ),
        );
    }
    let new = format!("{old}+lab1");

    // `latest` plans the upgrade on every host, with the version now and after.
    let latest = inventory(Some("latest"));
    let (code, plan) = run_json(&["plan"], &latest);
    assert_eq!(code, Some(0), "{plan}");
    for host in &names {
        assert_eq!(
            changes(&plan, host),
            [
                format!("docker: upgrade docker.io from {old} to {new}"),
                "docker: restart docker for the new engine version".to_string()
            ],
            "{host}: {plan}"
        );
    }
    let started =
        |m: &str| on(m, "systemctl show docker -p ActiveEnterTimestampMonotonic --value").trim().to_string();
    let before: Vec<String> = names.iter().map(|m| started(m)).collect();

    // Applied rolling: a manager at a time, then the workers one at a time (--disruption 1).
    let rolling = std::time::Instant::now();
    let (probes, failed, (samples, (code, report))) = probing(|| {
        sampling_engines(&["m1", "m2", "m3"], || {
            run_json(&["init", "--disruption", "1", "--converge-timeout", "120"], &latest)
        })
    });
    assert_eq!(code, Some(0), "{report}");
    for (host, before) in names.iter().zip(&before) {
        assert_eq!(changes(&report, host), changes(&plan, host), "{host}: as planned");
        assert_eq!(package_version(host), new, "{host}");
        // The new engine runs: Debian's docker.io leaves the old one running when upgraded.
        assert_ne!(&started(host), before, "{host}: its engine was not restarted");
    }
    assert!(samples.len() >= 20, "too few samples to judge: {samples:?}");
    let fewest = samples.iter().min().copied().unwrap_or(0);
    assert!(fewest >= 2, "at some moment only {fewest} of 3 managers' engines were up: {samples:?}");
    // Each worker batch may cost the probe that was in flight when a task moved; no more.
    assert!(failed <= WORKERS.len(), "{failed} of {probes} probes failed during the roll");
    eprintln!(
        "upgrade roll of 6 hosts: {:.1} s; {failed} of {probes} probes failed; managers' engines up: min {fewest} of 3",
        rolling.elapsed().as_secs_f64()
    );
    let nodes = on("m1", "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'");
    assert_eq!(nodes.lines().filter(|l| l.ends_with(" Ready Active")).count(), 6, "{nodes}");
    let replicas = on("m1", "docker service ls --filter name=app_web --format '{{.Replicas}}'");
    assert!(replicas.starts_with("2/2"), "{replicas}");

    // Nothing left to do.
    let (code, report) = run_json(&["init"], &latest);
    assert_eq!((code, report["changed"].as_u64()), (Some(0), Some(0)), "{report}");

    // Going back is refused on every host before anything changes, unless forced.
    let (code, report) = run_json(&["plan"], &inventory(Some(&old)));
    assert_eq!(code, Some(1), "{report}");
    for host in &names {
        let error = report["hosts"][host]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("downgrade is refused") && error.contains("--allow-downgrade"),
            "{host}: {error}"
        );
    }
    let (code, plan) = run_json(&["plan", "--allow-downgrade"], &inventory(Some(&old)));
    assert_eq!(code, Some(0), "{plan}");
    assert_eq!(changes(&plan, "w1")[0], format!("docker: downgrade docker.io from {new} to {old}"));
}
