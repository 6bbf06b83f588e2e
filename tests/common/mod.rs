//! Helpers of the lab suites: the lab script, commands on lab machines, the clusterup binary.
#![allow(dead_code)] // each suite uses its own share of these

pub mod openstack;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn lab_dir() -> PathBuf {
    std::env::var_os("CLUSTERUP_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/clusterup-lab".into())
}

/// `vm-tests/lab ARGS`, run to its end.
fn lab_output(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(repo().join("vm-tests/lab"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run vm-tests/lab")
}

pub fn lab(args: &[&str]) -> String {
    let out = lab_output(args, &[]);
    assert!(out.status.success(), "vm-tests/lab {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts lab machines with the Docker engine already installed (not started), for the suites
/// that test what comes after the installation (lab_containers, lab_releases and
/// lab_operations install it themselves).
pub fn lab_up_with_engine(names: &[&str]) {
    let args: Vec<&str> = std::iter::once("up").chain(names.iter().copied()).collect();
    let out = lab_output(&args, &[("CLUSTERUP_LAB_ENGINE", "1")]);
    assert!(
        out.status.success(),
        "vm-tests/lab up {names:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The start of an inventory of lab machines m1 (manager), w1 (worker, label `proxy`) and w2
/// (worker, label `db`: where stateful services stay, the container lab having no NFS), followed by `images: {resolve: never, preload: [...]}` with the given archives of
/// the lab's images, and a Caddy `proxy` stack pinned to w1; the caller adds networks, secrets
/// and its own stacks after `stacks:`.
pub fn three_machines_with_proxy(sections: &str, archives: &[&str]) -> String {
    let addr = |m: &str| lab(&["addr", m]).trim().to_string();
    let images = lab_dir().join("images");
    let preload: Vec<String> = archives.iter().map(|a| format!("{}/{a}", images.display())).collect();
    format!(
        r#"cluster: {{name: lab}}
ssh: {{user: admin, identity_file: id_ed25519, known_hosts: known_hosts, host_key_policy: accept-new}}
hosts:
  - {{name: m1, address: {m1}, roles: [manager]}}
  - {{name: w1, address: {w1}, roles: [worker], labels: {{proxy: true}}}}
  - {{name: w2, address: {w2}, roles: [worker], labels: {{db: true}}}}
{sections}images:
  resolve: never
  preload: [{preload}]
stacks:
  - name: proxy
    template: caddy
    vars: {{image: "clusterup-lab/caddy:lab", endpoint_mode: dnsrr, placement_label: proxy}}
"#,
        m1 = addr("m1"),
        w1 = addr("w1"),
        w2 = addr("w2"),
        preload = preload.join(", "),
    )
}

/// Runs a command on a lab machine through docker, independently of clusterup.
pub fn on(machine: &str, script: &str) -> String {
    lab(&["exec", machine, "sh", "-c", script])
}

/// Runs a swarm query on a manager, waiting out a leader election: while the managers elect a
/// new leader (one of them was just stopped or started) the engine answers "context deadline
/// exceeded" or "does not have a leader" for a few seconds; any other failure panics at once.
pub fn on_manager(machine: &str, script: &str) -> String {
    let start = Instant::now();
    loop {
        let out = lab_output(&["exec", machine, "sh", "-c", script], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        // "code = DeadlineExceeded", or "code = Unknown desc = context deadline exceeded".
        let electing = stderr.contains("DeadlineExceeded")
            || stderr.contains("context deadline exceeded")
            || stderr.contains("does not have a leader");
        assert!(
            electing && start.elapsed() < Duration::from_secs(60),
            "on {machine}: {script:?} failed: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn clusterup(args: &[&str]) -> Output {
    clusterup_with_env(args, &[])
}

/// Runs clusterup with extra environment variables (secrets come from the environment).
pub fn clusterup_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .envs(env.iter().copied())
        .args(args)
        .arg("--log")
        .arg(lab_dir().join("clusterup-test.log"))
        .output()
        .expect("run clusterup");
    eprintln!("$ clusterup {}\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs clusterup with only an ssh-agent holding the lab key (and a HOME without keys).
pub fn with_agent(args: &[&str]) -> Output {
    let dir = lab_dir().join("agent");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("sock");
    let mut agent =
        Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().expect("start ssh-agent");
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let added = Command::new("ssh-add")
        .arg(lab_dir().join("id_ed25519"))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .arg("--log")
        .arg(lab_dir().join("clusterup-test.log"))
        .env("SSH_AUTH_SOCK", &sock)
        .env("HOME", &dir)
        .output()
        .expect("run clusterup");
    let _ = agent.kill();
    let _ = agent.wait();
    eprintln!("$ clusterup {} (ssh-agent)\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Writes an inventory of lab machines `hosts` (name, role, extra keys of the host) with the
/// top-level `extra` sections, and returns its path.
pub fn lab_inventory(file: &str, cluster: &str, hosts: &[(&str, &str, &str)], extra: &str) -> PathBuf {
    let mut text = format!(
        "cluster: {{name: {cluster}}}\nssh: {{user: admin, identity_file: id_ed25519, known_hosts: known_hosts}}\n{extra}hosts:\n"
    );
    for (name, role, more) in hosts {
        let addr = lab(&["addr", name]);
        text.push_str(&format!("  - {{name: {name}, address: {}, roles: [{role}]{more}}}\n", addr.trim()));
    }
    let path = lab_dir().join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs clusterup with `args`, `-i inv` and `--json`: its exit status and report.
pub fn run_json(args: &[&str], inv: &Path) -> (Option<i32>, Value) {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-i", inv.to_str().unwrap(), "--json"]);
    let out = clusterup(&full);
    (out.status.code(), json(&out))
}

/// Runs `work` while sampling, every ~0.1 s from outside the machines, how many of `managers`
/// have their engine active. Returns the samples and what `work` returned.
pub fn sampling_engines<T>(managers: &[&str], work: impl FnOnce() -> T) -> (Vec<usize>, T) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let machines: Vec<String> = managers.iter().map(|m| format!("clusterup-lab-{m}")).collect();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            let up = machines
                .iter()
                .filter(|m| {
                    Command::new("docker")
                        .args(["exec", m, "systemctl", "is-active", "--quiet", "docker"])
                        .status()
                        .is_ok_and(|s| s.success())
                })
                .count();
            samples.push(up);
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    let result = work();
    done.store(true, Ordering::Relaxed);
    (sampler.join().unwrap(), result)
}

pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
