use super::{HostArg, Starter};
use crate::inventory::{HostKind, Inventory, Role};

fn host(text: &str) -> HostArg {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn starter(managers: &[&str]) -> Starter {
    Starter {
        cluster: "lab".into(),
        user: "root".into(),
        managers: managers.iter().map(|m| host(m)).collect(),
        workers: Vec::new(),
        nas: None,
        domain: None,
        file_name: "lab.yml".into(),
    }
}

/// Loads the generated text as `clusterup` would load the file.
fn load(text: &str) -> Inventory {
    let path = std::env::temp_dir().join("clusterup-starter-test.yml");
    Inventory::from_text(&path, text).unwrap_or_else(|e| {
        let errors: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        panic!("the starter inventory does not load:\n{}\n---\n{text}", errors.join("\n"))
    })
}

#[test]
fn name_addr_arguments() {
    assert_eq!(host("m1=192.0.2.21"), HostArg { name: "m1".into(), address: "192.0.2.21".into() });
    assert_eq!(host(" nas = nas.lan ").address, "nas.lan");
    assert_eq!(host("m1=2001:db8::1").address, "2001:db8::1");
    for (text, expected) in [
        ("m1", "is not NAME=ADDR"),
        ("=192.0.2.1", "no host name"),
        ("m1=", "no address"),
        ("-m1=192.0.2.1", "host name `-m1`"),
        ("m 1=192.0.2.1", "host name `m 1`"),
        ("m1=10.0.0.300", "address `10.0.0.300` of host `m1` is neither"),
        ("m1=bad_name.example", "neither an IP address nor a DNS name"),
    ] {
        let err = text.parse::<HostArg>().expect_err(text);
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn one_manager_is_a_valid_inventory_without_services() {
    let text = starter(&["m1=192.0.2.21"]).inventory().unwrap();
    let inv = load(&text);
    assert_eq!(inv.cluster, "lab");
    assert_eq!(inv.hosts.len(), 1);
    assert_eq!(inv.hosts[0].roles, vec![Role::Manager]);
    assert_eq!(inv.hosts[0].ssh.user, "root");
    assert_eq!(inv.hosts[0].ssh.identity_file, None, "identity_file must stay commented out");
    assert!(inv.nfs.is_none() && inv.stacks.is_empty() && inv.networks.is_empty());
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert!(text.contains("# identity_file: ~/.ssh/id_ed25519"), "{text}");
    assert!(text.contains("clusterup plan -i lab.yml"), "{text}");
}

#[test]
fn hosts_nas_and_domain() {
    let mut s = starter(&["m1=192.0.2.21", "m2=192.0.2.22", "m3=192.0.2.23"]);
    s.workers = vec![host("w1=192.0.2.31"), host("w2=w2.example.com")];
    s.nas = Some(host("nas=192.0.2.10"));
    s.domain = Some("example.com".into());
    s.user = "admin".into();
    let text = s.inventory().unwrap();
    let inv = load(&text);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);

    let summary: Vec<(String, String, HostKind, Vec<Role>)> =
        inv.hosts.iter().map(|h| (h.name.clone(), h.address.clone(), h.kind, h.roles.clone())).collect();
    let expected = [
        ("m1", "192.0.2.21", HostKind::BareMetal, Role::Manager),
        ("m2", "192.0.2.22", HostKind::BareMetal, Role::Manager),
        ("m3", "192.0.2.23", HostKind::BareMetal, Role::Manager),
        ("w1", "192.0.2.31", HostKind::BareMetal, Role::Worker),
        ("w2", "w2.example.com", HostKind::BareMetal, Role::Worker),
        ("nas", "192.0.2.10", HostKind::Nas, Role::NfsServer),
    ]
    .map(|(n, a, k, r)| (n.to_string(), a.to_string(), k, vec![r]));
    assert_eq!(summary, expected);
    assert!(inv.hosts.iter().all(|h| h.ssh.user == "admin" && h.ssh.identity_file.is_none()));

    let nfs = inv.nfs.as_ref().expect("storage.nfs");
    assert_eq!((nfs.server.as_str(), nfs.path.as_str()), ("nas", super::NFS_PATH));

    // The proxy is placed on the first worker, which carries the label.
    assert_eq!(inv.host("w1").unwrap().labels.get("edge").map(String::as_str), Some("true"));
    assert!(inv.host("m1").unwrap().labels.is_empty());
    let names: Vec<&str> = inv.stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["proxy", "whoami"]);
    assert_eq!(inv.stacks[0].vars.get("placement_label"), Some(&serde_json::json!("edge")));
    let route = &inv.stacks[1].expose[0];
    assert_eq!((route.service.as_str(), route.host.as_str(), route.port), ("web", "whoami.example.com", 80));
    assert_eq!(inv.networks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["reverse-proxy"]);

    // What it deploys renders, and passes the checks `init` runs before its first change.
    let secrets = crate::templates::secret_names(&inv.secrets, b"a cluster's key").unwrap();
    for stack in &inv.stacks {
        crate::templates::render_stack(&inv, stack, &secrets)
            .unwrap_or_else(|e| panic!("{}: {e:#}", stack.name));
    }
    let findings = crate::templates::check(&inv, crate::templates::SecretValues::Required);
    let errors: Vec<String> = findings.errors.iter().map(ToString::to_string).collect();
    assert!(errors.is_empty() && findings.warnings.is_empty(), "{errors:#?} {:#?}", findings.warnings);
}

#[test]
fn without_workers_the_proxy_runs_on_the_first_manager() {
    let mut s = starter(&["m1=192.0.2.21"]);
    s.domain = Some("home.arpa".into());
    let inv = load(&s.inventory().unwrap());
    assert_eq!(inv.host("m1").unwrap().labels.get("edge").map(String::as_str), Some("true"));
    assert_eq!(inv.stacks[1].expose[0].host, "whoami.home.arpa");
}

#[test]
fn an_even_number_of_managers_loads_with_the_quorum_warning() {
    let text = starter(&["m1=192.0.2.21", "m2=192.0.2.22"]).inventory().unwrap();
    assert!(text.contains("Use 1, 3 or 5"), "{text}");
    let inv = load(&text);
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
}

#[test]
fn names_yaml_would_read_as_other_types_are_quoted() {
    let mut s = starter(&["true=2001:db8::1"]);
    s.workers = vec![host("123=192.0.2.5"), host("1.5=192.0.2.6"), host("null=192.0.2.7")];
    let inv = load(&s.inventory().unwrap());
    let hosts: Vec<(&str, &str)> = inv.hosts.iter().map(|h| (h.name.as_str(), h.address.as_str())).collect();
    assert_eq!(
        hosts,
        [("true", "2001:db8::1"), ("123", "192.0.2.5"), ("1.5", "192.0.2.6"), ("null", "192.0.2.7")]
    );
}

#[test]
fn every_problem_is_reported() {
    let mut s = starter(&["m1=192.0.2.21", "m1=192.0.2.22"]);
    s.workers = vec![host("w1=192.0.2.21")];
    s.cluster = "Home Lab".into();
    s.user = "ad min".into();
    s.domain = Some("192.0.2.1".into());
    let problems = s.inventory().unwrap_err();
    let expected = [
        "cluster name `Home Lab`",
        "user `ad min`",
        "host name `m1` is given twice (--manager m1=192.0.2.21, --manager m1=192.0.2.22)",
        "address `192.0.2.21` is given to two hosts (--manager m1=192.0.2.21, --worker w1=192.0.2.21)",
        "domain `192.0.2.1` is not a DNS name",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(problem.starts_with(expected), "{problem}");
    }
    assert!(starter(&[]).inventory().unwrap_err()[0].contains("at least one manager"));
}

#[test]
fn the_text_is_commented_like_the_examples() {
    let mut s = starter(&["m1=192.0.2.21"]);
    s.nas = Some(host("nas=192.0.2.10"));
    s.domain = Some("example.com".into());
    let text = s.inventory().unwrap();
    for key in ["ssh:", "  user:", "  host_key_policy:", "  source:", "    kind: nas", "storage:"] {
        let line =
            text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no `{key}` in\n{text}"));
        assert!(line.contains(" # "), "`{key}` has no comment: {line}");
    }
    assert!(text.lines().all(|l| l.len() <= 110), "a line longer than 110 characters:\n{text}");
}
