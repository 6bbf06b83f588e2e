use super::*;
use serde_json::json;

#[test]
fn every_file_under_roles_is_embedded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("roles");
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            on_disk.push(f.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
        }
    }
    on_disk.sort();
    let mut embedded: Vec<String> = embedded::FILES.iter().map(|(p, _)| p.to_string()).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
}

#[test]
fn every_manifest_parses_and_names_existing_scripts() {
    for name in ["docker", "nfs-client", "nfs-server", "firewall", "swarm", "stacks", "images", "state"] {
        let role = role(name);
        if role.manifest.check.is_some() {
            assert!(role.check().body.contains("#!/bin/sh"));
            assert!(role.apply().body.contains("#!/bin/sh"));
        }
        for step in role.manifest.steps.keys() {
            assert!(role.step(step).body.contains("set -eu"), "{name}/{step}");
        }
    }
}

#[test]
fn lib_is_prepended() {
    let check = role("docker").check();
    assert_eq!(check.path, "docker/check.sh");
    let lib_at = check.body.find("missing_packages() {").unwrap();
    let use_at = check.body.find("missing=$(missing_packages").unwrap();
    assert!(lib_at < use_at);
}

#[test]
fn daemon_json_renders_valid_json_with_and_without_metrics() {
    let docker = role("docker");
    let plain = [
        ("SOURCE", "distro".to_string()),
        ("PACKAGES", "docker.io".to_string()),
        ("SSH_USER", "admin".to_string()),
        ("APT_LOCK_TIMEOUT", "300".to_string()),
    ];
    let vars = json!({"log_max_size": "10m", "log_max_file": 3, "metrics_address": null});
    let inputs = docker.inputs(&vars, &plain).unwrap();
    let daemon = &inputs.iter().find(|i| i.name == "DAEMON_JSON").unwrap().value;
    let parsed: serde_json::Value = serde_json::from_str(daemon).unwrap();
    assert_eq!(parsed["log-opts"]["max-file"], "3");
    assert!(parsed.get("metrics-addr").is_none());
    let sha = &inputs.iter().find(|i| i.name == "DAEMON_JSON_SHA256").unwrap().value;
    assert_eq!(*sha, sha256_hex(format!("{daemon}\n").as_bytes()));

    let vars = json!({"log_max_size": "10m", "log_max_file": 3, "metrics_address": "0.0.0.0:9323"});
    let inputs = docker.inputs(&vars, &plain).unwrap();
    let daemon = &inputs.iter().find(|i| i.name == "DAEMON_JSON").unwrap().value;
    let parsed: serde_json::Value = serde_json::from_str(daemon).unwrap();
    assert_eq!(parsed["metrics-addr"], "0.0.0.0:9323");
}

#[test]
fn missing_variables_and_inputs_are_errors() {
    let docker = role("docker");
    let plain = [
        ("SOURCE", "distro".to_string()),
        ("PACKAGES", "docker.io".to_string()),
        ("SSH_USER", "root".to_string()),
        ("APT_LOCK_TIMEOUT", "300".to_string()),
    ];
    let err = docker.inputs(&json!({"log_max_file": 3, "metrics_address": null}), &plain).unwrap_err();
    assert!(format!("{err:#}").contains("log_max_size"), "{err:#}");
    let vars = json!({"log_max_size": "10m", "log_max_file": 3, "metrics_address": null});
    let err = docker.inputs(&vars, &plain[..2]).unwrap_err();
    assert!(err.to_string().contains("SSH_USER"), "{err}");
}

#[test]
fn sha256_is_lowercase_hex() {
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn a_missing_command_is_named_before_the_step_runs() {
    let step = role("swarm").step("init");
    assert!(step.body.starts_with("REQUIRED_COMMANDS='docker'\n"), "{}", &step.body[..80]);
    // The prelude itself, run by a real shell, with a command no host has.
    let prelude = step.body.replace("'docker'", "'clusterup-no-such-command'");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&prelude)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("command not found on this host: clusterup-no-such-command"), "{stderr}");
}
