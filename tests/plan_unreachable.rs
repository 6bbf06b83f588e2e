//! `plan` when no host answers: it must not guess. Loopback addresses on a port nothing
//! listens on, so every connection is refused at once and no other machine is contacted.

use std::process::Command;

#[test]
fn plan_with_every_host_unreachable_says_the_cluster_changes_are_unknown() {
    let dir = std::env::temp_dir().join(format!("clusterup-plan-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inventory = dir.join("inventory.yml");
    std::fs::write(
        &inventory,
        "cluster: {name: gone}\nssh: {port: 1, known_hosts: ./known_hosts, connect_timeout: 2}\nhosts:\n\
         \x20 - {name: m1, address: 127.0.0.2, roles: [manager]}\n\
         \x20 - {name: w1, address: 127.0.0.3}\n\
         networks: [{name: reverse-proxy}, {name: database, encrypted: true}]\n\
         stacks: [{name: hello, template: whoami, networks: [reverse-proxy]}]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
        .args(["plan", "--json", "-i"])
        .arg(&inventory)
        .arg("--log")
        .arg(dir.join("run.log"))
        .env("HOME", &dir)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "unreachable hosts fail the run");
    assert_eq!(report["failed"], serde_json::json!(["m1", "w1"]));
    assert_eq!(report["changed"], 0, "nothing is planned from no facts: {report}");
    assert_eq!(report["cluster"]["changes"], serde_json::json!([]), "{report}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("changes to networks, secrets and stacks are unknown"), "{warnings}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_limit_naming_no_host_is_refused_before_any_connection() {
    let dir = std::env::temp_dir().join(format!("clusterup-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inventory = dir.join("inventory.yml");
    std::fs::write(
        &inventory,
        "cluster: {name: lim}\nssh: {port: 1}\nhosts:\n  - {name: m1, address: 127.0.0.2, roles: [manager]}\n  - {name: w1, address: 127.0.0.3}\n",
    )
    .unwrap();
    for command in ["plan", "init"] {
        let out = Command::new(env!("CARGO_BIN_EXE_clusterup"))
            .args([command, "--limit", "w1,w9", "-i"])
            .arg(&inventory)
            .env("HOME", &dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{command}: {stderr}");
        assert!(
            stderr.contains("--limit names w9, not a host of") && stderr.contains("its hosts: m1, w1"),
            "{stderr}"
        );
        assert!(!stderr.contains("connecting"), "{command} connected: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
