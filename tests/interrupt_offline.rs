//! Ctrl-C while `init` and `plan` are still connecting: the run stops there and says it
//! changed nothing, rather than dying silently with the signal. The "host" is a listener on
//! loopback that accepts the connection and never speaks SSH, so the run is held in the
//! handshake until interrupted; no other machine is contacted.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `clusterup ARGS -i INV` against the silent listener, sends SIGINT once it has
/// connected, and returns its exit code, standard output and standard error.
fn interrupted_while_connecting(args: &[&str], name: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("clusterup-interrupt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inventory = dir.join("inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            "cluster: {{name: silent}}\nssh: {{port: {port}, known_hosts: ./known_hosts, connect_timeout: 300}}\n\
             hosts:\n  - {{name: m1, address: 127.0.0.1, roles: [manager]}}\n"
        ),
    )
    .unwrap();
    let (connected, arrived) = mpsc::channel();
    std::thread::spawn(move || {
        // The connection is held open, silent, until the test ends.
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = connected.send(());
            let _ = stream.read_to_end(&mut Vec::new());
        }
    });
    let child = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(args)
        .arg("-i")
        .arg(&inventory)
        .arg("--log")
        .arg(dir.join("run.log"))
        .env("HOME", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against a run that never connects, not a time the test asserts.
    arrived.recv_timeout(Duration::from_secs(60)).expect("clusterup connected to the host");
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn init_interrupted_while_connecting_says_it_changed_nothing() {
    let (code, stdout, stderr) = interrupted_while_connecting(&["init", "--json"], "init");
    assert_eq!(code, Some(1), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    assert_eq!(report["stopped"], "interrupted (Ctrl-C)", "{report}");
    assert_eq!(report["changes_began"], false, "{report}");
    assert_eq!(report["changed"], 0, "{report}");
}

#[test]
fn plan_interrupted_while_connecting_says_it_changed_nothing() {
    let (code, said, stderr) = interrupted_while_connecting(&["plan"], "plan");
    assert_eq!(code, Some(1), "{said}{stderr}");
    assert!(said.contains("stopped before changing anything: interrupted (Ctrl-C)"), "{said}");
    assert!(said.contains("planned: 0, failed: 0"), "{said}");
}
