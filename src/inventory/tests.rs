use std::path::Path;

use super::*;
use crate::inventory::{SecretSource, TemplateRef};

const GOOD: &str = "\
cluster: {name: homelab}
ssh:
  user: admin
  host_key_policy: accept-new
hosts:
  - {name: m1, address: 192.0.2.21, roles: [manager], labels: {zone: a, ssd: true}}
  - {name: w1, address: 192.0.2.31, roles: [worker]}
  - {name: nas, address: 192.0.2.10, kind: nas}
";

fn load(text: &str) -> Result<Inventory, InventoryErrors> {
    Inventory::from_text(Path::new("/inv/lab.yml"), text)
}

fn first_error(text: &str) -> InventoryError {
    load(text).expect_err("inventory should be rejected").0.remove(0)
}

#[test]
fn resolves_defaults_and_overrides() {
    let inv = load(GOOD).unwrap();
    assert_eq!(inv.cluster, "homelab");
    assert_eq!(inv.hosts.len(), 3);
    let m1 = inv.host("m1").unwrap();
    assert!(m1.is_manager());
    assert_eq!(m1.ssh.user, "admin");
    assert_eq!(m1.ssh.port, 22);
    assert_eq!(m1.labels.get("ssd").map(String::as_str), Some("true"));
    let nas = inv.host("nas").unwrap();
    assert_eq!(nas.roles, vec![Role::NfsServer]);
    assert!(!nas.is_swarm_node());
    assert_eq!(inv.hosts.iter().filter(|h| h.is_swarm_node()).count(), 2);
    assert!(inv.warnings.is_empty());
    assert!(inv.docker.drain_workers_on_restart, "workers are drained before a restart by default");
    let in_place = load(&format!("{GOOD}docker: {{drain_workers_on_restart: false}}\n")).unwrap();
    assert!(!in_place.docker.drain_workers_on_restart);
}

#[test]
fn unknown_key_names_line_and_column() {
    let e = first_error(
        "cluster: {name: x}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager], colour: red}\n",
    );
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("colour"), "{e}");
    assert!(e.to_string().starts_with("/inv/lab.yml:3:"), "{e}");
}

#[test]
fn unknown_role_is_rejected() {
    let e = first_error("cluster: {name: x}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [boss]}\n");
    assert_eq!(e.line, Some(3), "{e}");
    assert!(e.message.contains("boss"), "{e}");
}

#[test]
fn duplicate_names_and_addresses_point_at_both_lines() {
    let text = "cluster: {name: x}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n  - {name: m1, address: 10.0.0.1}\n";
    let errors = load(text).unwrap_err().0;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.line == Some(4)));
    assert!(errors[0].message.contains("used twice (first at line 3)"), "{}", errors[0]);
    assert!(errors[1].message.contains("already the address of host `m1` (line 3)"), "{}", errors[1]);
}

#[test]
fn no_manager_is_an_error() {
    let e = first_error("cluster: {name: x}\nhosts:\n  - {name: w1, address: 10.0.0.1}\n");
    assert!(e.message.contains("no host has the `manager` role"), "{e}");
}

#[test]
fn even_managers_warn_about_quorum() {
    let inv = load("cluster: {name: x}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [manager]}\n  - {name: b, address: 10.0.0.2, roles: [manager]}\n").unwrap();
    assert_eq!(inv.warnings.len(), 1);
    assert!(inv.warnings[0].contains("majority"), "{}", inv.warnings[0]);
}

#[test]
fn host_ssh_overrides_defaults_and_bastion_parses() {
    let inv = load("cluster: {name: x}\nssh: {user: admin, port: 2222, bastion: jump@203.0.113.5:2200}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [manager], ssh: {user: root}}\n").unwrap();
    let a = inv.host("a").unwrap();
    assert_eq!(a.ssh.user, "root");
    assert_eq!(a.ssh.port, 2222);
    assert_eq!(a.ssh.bastion, Some(Bastion { user: "jump".into(), host: "203.0.113.5".into(), port: 2200 }));
}

#[test]
fn missing_identity_file_is_reported_once_for_the_commands_that_connect() {
    let inv = load(
        "cluster: {name: x}\nssh: {identity_file: ./nope/id}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [manager]}\n  - {name: b, address: 10.0.0.2}\n",
    )
    .expect("the file itself is valid: offline commands work without the key");
    assert_eq!(inv.missing_identity_files.len(), 1, "one message for both hosts");
    let e = &inv.missing_identity_files[0];
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("/inv/./nope/id") || e.message.contains("/inv/nope/id"), "{e}");
}

#[test]
fn bad_address_and_wrong_type() {
    let e = first_error("cluster: {name: x}\nhosts:\n  - {name: a, address: 10.0.0.300, roles: [manager]}\n");
    assert!(e.message.contains("neither an IP address nor a DNS name"), "{e}");
    let e = first_error(
        "cluster: {name: x}\nssh: {port: twenty}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [manager]}\n",
    );
    assert_eq!(e.line, Some(2), "{e}");
}

/// The examples in `inventories/` must load; their key files are swapped for a real file.
#[test]
fn shipped_examples_load() {
    let dir = std::env::temp_dir().join(format!("clusterup-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, "not a key; only its existence is checked here").unwrap();
    for name in ["homelab.yml", "openstack.yml"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories").join(name))
                .unwrap()
                .replace("~/.ssh/id_ed25519", key.to_str().unwrap())
                .replace("~/.ssh/openstack_ed25519", key.to_str().unwrap());
        let inv = Inventory::from_text(&dir.join(name), &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(inv.hosts.iter().any(|h| h.is_manager()), "{name}");
        assert!(inv.warnings.is_empty(), "{name}: {:?}", inv.warnings);
    }
    let homelab = Inventory::from_text(
        &dir.join("h.yml"),
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/homelab.yml"))
            .unwrap()
            .replace("~/.ssh/id_ed25519", key.to_str().unwrap()),
    )
    .unwrap();
    assert_eq!(homelab.host("nas").unwrap().ssh.user, "root");
    assert!(homelab.nfs.is_some());
    // The qemu lab's VM image carries this file so that its engines start as the example
    // configures them, and the suite's first `init` restarts none (vm-tests/qemu/build-image.sh).
    let baked =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("vm-tests/qemu/daemon.json"))
            .unwrap();
    assert_eq!(baked, format!("{}\n", crate::plan::files::daemon_json(&homelab.docker, None)));
}

const SERVICES: &str = "cluster: {name: x}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n";

#[test]
fn networks_stacks_and_secrets_resolve() {
    let text = format!(
        "{SERVICES}networks:\n  - {{name: reverse-proxy}}\n  - {{name: database, encrypted: true, mtu: 1400}}\n\
         secrets:\n  - {{name: pg, env: PG_PASSWORD}}\n\
         stacks:\n  - {{name: proxy, template: caddy, vars: {{email: a@example.com}}}}\n  \
         - {{name: app, template: whoami, networks: [database], expose: [{{service: web, host: app.example.com, port: 80}}]}}\n"
    );
    let inv = load(&text).unwrap();
    assert_eq!(
        inv.networks[1],
        Network { name: "database".into(), encrypted: true, mtu: Some(1400), line: inv.networks[1].line }
    );
    assert!(inv.networks[1].line > inv.networks[0].line);
    assert_eq!(inv.stacks[0].template, TemplateRef::Builtin("caddy".into()));
    // Exposing services joins the proxy's network without saying so.
    assert_eq!(inv.stacks[1].networks, ["database", "reverse-proxy"]);
    assert_eq!(inv.secrets[0].source, SecretSource::Env("PG_PASSWORD".into()));
    assert_eq!(inv.images.resolve, "always");
}

#[test]
fn service_mistakes_name_their_line() {
    let cases = [
        ("stacks:\n  - {name: a, template: nginx}\n", 5, "unknown template `nginx`"),
        ("stacks:\n  - {name: a, template: ./missing.yml.tera}\n", 5, "does not exist"),
        (
            "networks: [{name: db}]\nstacks:\n  - {name: a, template: whoami, networks: [dbx]}\n",
            6,
            "not declared under `networks:`",
        ),
        (
            "stacks:\n  - {name: a, template: whoami, expose: [{service: web, host: a.example.com, port: 80}]}\n",
            5,
            "`reverse-proxy` must be declared",
        ),
        ("networks: [{name: db}, {name: db}]\n", 4, "declared twice"),
        ("networks: [{name: db, mtu: 100000}]\n", 4, "outside 576-9216"),
        ("secrets:\n  - {name: s}\n", 5, "exactly one of `env:`"),
        ("secrets:\n  - {name: s, env: A, file: ./b}\n", 5, "exactly one of `env:`"),
        ("stacks:\n  - {name: Bad_Name, template: whoami}\n", 5, "stack name `Bad_Name`"),
        ("images: {preload: [./nope.tar]}\n", 4, "image archive"),
        ("images: {resolve: sometimes}\n", 4, "sometimes"),
    ];
    for (extra, line, message) in cases {
        let errors = load(&format!("{SERVICES}{extra}")).expect_err(extra).0;
        assert!(
            errors.iter().any(|e| e.line == Some(line) && e.message.contains(message)),
            "{extra}: want line {line} `{message}`, got {errors:?}"
        );
    }
}

#[test]
fn durations_read_and_print_as_the_inventory_writes_them() {
    use super::{format_duration, parse_duration};
    use std::time::Duration;
    assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    for bad in ["", "2", "s", "2x", "-1s", "1.5s"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    assert_eq!(format_duration(Duration::from_secs(5)), "5s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    let inv = load(&format!("swarm: {{dispatcher_heartbeat: 2s}}\n{GOOD}")).unwrap();
    assert_eq!(inv.swarm.dispatcher_heartbeat, Some(Duration::from_secs(2)));
    let short = load(&format!("swarm: {{dispatcher_heartbeat: 500ms}}\n{GOOD}")).unwrap();
    assert!(short.warnings.iter().any(|w| w.contains("may then run twice")), "{:?}", short.warnings);
}
