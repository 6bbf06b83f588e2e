//! Helpers of the lab suites: the lab script, commands on lab machines, the clusterup binary.
#![allow(dead_code)] // each suite uses its own share of these

pub mod openstack;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn lab_dir() -> PathBuf {
    std::env::var_os("CLUSTERUP_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/clusterup-lab".into())
}

pub fn lab(args: &[&str]) -> String {
    let out = Command::new(repo().join("vm-tests/lab")).args(args).output().expect("run vm-tests/lab");
    assert!(out.status.success(), "vm-tests/lab {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The start of an inventory of lab machines m1 (manager), w1 (worker, label `proxy`) and w2
/// (worker), followed by `images: {resolve: never, preload: [...]}` with the given archives of
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
  - {{name: w2, address: {w2}, roles: [worker]}}
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
