use super::*;

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
    for name in ["docker", "nfs-client", "nfs-server", "firewall", "swarm", "stacks", "state"] {
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
    let lib_at = check.body.find("package_changes() {").unwrap();
    let use_at = check.body.find("changes=$(package_changes)").unwrap();
    assert!(lib_at < use_at);
}

#[test]
fn declared_inputs_must_be_supplied_and_nothing_else() {
    let docker = role("docker");
    let plain = [
        ("SOURCE", "distro".to_string()),
        ("PACKAGES", "docker.io".to_string()),
        ("SSH_USER", "root".to_string()),
        ("APT_LOCK_TIMEOUT", "300".to_string()),
        ("ALLOW_DOWNGRADE", "no".to_string()),
        ("DAEMON_JSON", "{}".to_string()),
        ("DAEMON_JSON_SHA256", sha256_hex(b"{}\n")),
    ];
    assert_eq!(docker.inputs(&plain).unwrap().len(), 7);
    let err = docker.inputs(&plain[..2]).unwrap_err();
    assert!(err.to_string().contains("SSH_USER"), "{err}");
    let mut extra = plain.to_vec();
    extra.push(("SURPRISE", String::new()));
    let err = docker.inputs(&extra).unwrap_err();
    assert!(err.to_string().contains("does not declare input SURPRISE"), "{err}");
}

#[test]
fn sha256_is_lowercase_hex() {
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn a_missing_command_is_named_before_the_step_runs() {
    let step = role("swarm").step("cert-stamp");
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

/// The docker role's package logic, run by a real shell against a stand-in `dpkg-query` (the
/// real `dpkg --compare-versions` orders the versions): a missing package is installed, one at
/// another version than pinned is upgraded or downgraded, one at its pin or unpinned is left.
#[test]
fn pinned_packages_are_installed_upgraded_or_downgraded_as_the_host_has_them() {
    if std::process::Command::new("dpkg").arg("--version").output().is_err() {
        return; // not a Debian machine: dpkg --compare-versions is what the hosts use
    }
    let dir = std::env::temp_dir().join(format!("clusterup-dpkg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stub = dir.join("dpkg-query");
    std::fs::write(
        &stub,
        "#!/bin/sh\ncase $4 in\n  docker.io) echo 'installed 20.10.24+dfsg1-1' ;;\n  apparmor) echo 'installed 3.0' ;;\n  runc) echo 'installed 1.1' ;;\n  *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lib = crate::roles::file("docker/lib.sh").unwrap();
    let run = |packages: &str| {
        // `set -eu` as apply.sh runs it: a missing package must not end the script.
        let script = format!(
            "set -eu\n{lib}\nchanges=$(package_changes)\nprintf '%s\\n' \"$changes\"\nversion_changes \"$changes\"\n"
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PACKAGES", packages)
            .env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run("docker.io apparmor"), "", "installed, unpinned: nothing");
    assert_eq!(run("docker.io=20.10.24+dfsg1-1 apparmor"), "", "at its pin: nothing");
    assert_eq!(
        run("docker.io=20.10.24+dfsg1-1+lab1 docker-cli=20.10.24+dfsg1-1+lab1 apparmor"),
        "change docker.io=20.10.24+dfsg1-1+lab1 20.10.24+dfsg1-1\ninstall docker-cli=20.10.24+dfsg1-1+lab1\n\
         upgrade docker.io from 20.10.24+dfsg1-1 to 20.10.24+dfsg1-1+lab1"
    );
    assert_eq!(
        run("docker.io=20.10.5-1"),
        "change docker.io=20.10.5-1 20.10.24+dfsg1-1\ndowngrade docker.io from 20.10.24+dfsg1-1 to 20.10.5-1"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
