use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::inventory::Inventory;

/// The Compose v3.9 schema `docker stack deploy` (Docker 20.10) checks stack files against,
/// kept in the repository as a test fixture (source and license beside it).
fn compose_schema() -> jsonschema::Validator {
    let path = std::env::var_os("CLUSTERUP_COMPOSE_SCHEMA").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose-schema/compose-v3.9.schema.json")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("the Compose schema is needed at {} ({e}); set CLUSTERUP_COMPOSE_SCHEMA", path.display())
    });
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn parsed(rendered: &Rendered) -> Value {
    serde_saphyr::from_str(&rendered.compose).unwrap()
}

fn assert_valid_compose(name: &str, compose: &Value) {
    let validator = compose_schema();
    let errors: Vec<String> =
        validator.iter_errors(compose).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{name}: not a valid Compose 3.9 file:\n{}", errors.join("\n"));
}

/// An inventory with every built-in template as a stack, routes to two of them, and the
/// secrets the templates use.
fn inventory(stacks: &str) -> Inventory {
    let text = format!(
        "cluster: {{name: t}}\nhosts:\n  - {{name: m1, address: 10.0.0.1, roles: [manager]}}\n\
         networks:\n  - {{name: reverse-proxy}}\n  - {{name: database, encrypted: true}}\n  - {{name: object-store}}\n  - {{name: memory-store}}\n  - {{name: monitoring}}\n\
         stacks:\n{stacks}"
    );
    Inventory::from_text(Path::new("/inv/t.yml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn secrets() -> BTreeMap<String, String> {
    [
        "postgres_password",
        "redis_password",
        "minio_root_password",
        "traefik_dashboard_users",
        "shinyproxy_client_secret",
        "openid_client_secret",
        "influxdb_admin_password",
        "influxdb_password",
        "grafana_admin_password",
    ]
    .iter()
    .map(|n| (n.to_string(), format!("{n}_0123abcd")))
    .collect()
}

fn stack_line(name: &str) -> String {
    let vars = builtin_example(name).unwrap_or_default();
    let vars = serde_json::to_string(&vars).unwrap();
    format!("  - {{name: {name}, template: {name}, vars: {vars}}}\n")
}

#[test]
fn every_builtin_renders_a_valid_compose_file_with_its_example() {
    let names = builtin_names();
    let mut on_disk: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(names, on_disk, "every folder of templates/ is a built-in template");
    let mut stacks: String = names.iter().map(|n| stack_line(n)).collect();
    stacks.push_str("  - {name: app, template: whoami, expose: [{service: web, host: app.example.com, port: 80}, {service: web, host: whoami.lab.test, port: 80, sticky: true}]}\n");
    let inv = inventory(&stacks);
    for stack in &inv.stacks {
        let rendered = render_stack(&inv, stack, &secrets()).unwrap_or_else(|e| panic!("{e:#}"));
        assert_valid_compose(&stack.name, &parsed(&rendered));
        assert!(rendered.compose.contains("version: \"3.8\""), "{}: pin the compose version", stack.name);
        for (file, content) in &rendered.files {
            assert!(!content.trim().is_empty(), "{}: {file} rendered empty", stack.name);
        }
    }
}

#[test]
fn caddy_routes_every_exposed_host_with_internal_tls_where_no_public_cert_exists() {
    let inv = inventory(
        "  - {name: proxy, template: caddy, vars: {email: ops@example.com, endpoint_mode: dnsrr}}\n  \
         - {name: app, template: whoami, networks: [database], expose: [{service: web, host: app.example.com, port: 8080}, {service: web, host: whoami.lab.test, port: 8080}]}\n",
    );
    let proxy = render_stack(&inv, &inv.stacks[0], &secrets()).unwrap();
    let (_, caddyfile) = proxy.files.iter().find(|(f, _)| f == "Caddyfile").expect("a Caddyfile");
    assert!(caddyfile.contains("email ops@example.com"), "{caddyfile}");
    assert!(caddyfile.contains("app.example.com {\n\treverse_proxy app_web:8080\n}"), "{caddyfile}");
    assert!(
        caddyfile.contains("whoami.lab.test {\n\ttls internal\n\treverse_proxy app_web:8080\n}"),
        "{caddyfile}"
    );
    let proxy_compose = parsed(&proxy);
    let caddy = &proxy_compose["services"]["caddy"];
    assert_eq!(caddy["deploy"]["endpoint_mode"], "dnsrr");
    assert_eq!(caddy["ports"][0]["mode"], "host");
    assert_eq!(caddy["ports"][1]["published"], 443);
    let config_name = proxy_compose["configs"]["caddyfile"]["name"].as_str().unwrap();
    assert!(config_name.starts_with("proxy_caddyfile_") && config_name.len() == "proxy_caddyfile_".len() + 8);

    // The app joins its own network and, because it is exposed, the proxy's.
    let app = render_stack(&inv, &inv.stacks[1], &secrets()).unwrap();
    let app_compose = parsed(&app);
    let networks: Vec<&str> = app_compose["services"]["web"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(networks, ["database", "reverse-proxy"]);
    assert_eq!(app_compose["networks"]["reverse-proxy"]["external"], true);
}

#[test]
fn a_changed_var_changes_the_digest_and_only_that_stacks() {
    let a = inventory(
        "  - {name: app, template: whoami, vars: {replicas: 2}}\n  - {name: other, template: whoami}\n",
    );
    let b = inventory(
        "  - {name: app, template: whoami, vars: {replicas: 3}}\n  - {name: other, template: whoami}\n",
    );
    let digest = |inv: &Inventory, i: usize| render_stack(inv, &inv.stacks[i], &secrets()).unwrap().sha256;
    assert_ne!(digest(&a, 0), digest(&b, 0));
    assert_eq!(digest(&a, 1), digest(&b, 1));
    assert_eq!(digest(&a, 0), digest(&a, 0), "rendering is deterministic");
}

#[test]
fn undefined_variables_and_missing_services_are_errors() {
    let dir = std::env::temp_dir().join(format!("clusterup-tpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yml.tera"),
        "version: \"3.8\"\nservices:\n  web:\n    image: {{ vars.image }}\n",
    )
    .unwrap();
    let text = "cluster: {name: t}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\n\
                networks: [{name: reverse-proxy}]\n\
                stacks:\n  - {name: bad, template: ./bad.yml.tera}\n  - {name: nosvc, template: whoami, expose: [{service: api, host: a.example.com, port: 80}]}\n";
    let inv = Inventory::from_text(&dir.join("inv.yml"), text).unwrap();
    let err = format!("{:#}", render_stack(&inv, &inv.stacks[0], &secrets()).unwrap_err());
    assert!(err.contains("stack `bad`") && err.contains("image"), "{err}");
    let err = format!("{:#}", render_stack(&inv, &inv.stacks[1], &secrets()).unwrap_err());
    assert!(err.contains("exposes service `api`") && err.contains("web"), "{err}");

    std::fs::write(
        dir.join("json.yml.tera"),
        "version: \"3.8\"\nservices:\n  web:\n    image: {{ vars.nope | json }}\n",
    )
    .unwrap();
    let text = "cluster: {name: t}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\nstacks:\n  - {name: j, template: ./json.yml.tera}\n";
    let inv = Inventory::from_text(&dir.join("inv2.yml"), text).unwrap();
    let err = format!("{:#}", render_stack(&inv, &inv.stacks[0], &secrets()).unwrap_err());
    assert!(err.contains("undefined"), "{err}");
}

#[test]
fn hmac_matches_rfc_4231() {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Test case 2: a short key.
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test case 6: a key longer than the block, hashed first.
    assert_eq!(
        hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn secrets_get_names_keyed_by_the_cluster() {
    let dir = std::env::temp_dir().join(format!("clusterup-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pw"), "hunter2\n").unwrap();
    let text = "cluster: {name: t}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager]}\nsecrets:\n  - {name: pg, file: ./pw}\n";
    let inv = Inventory::from_text(&dir.join("inv.yml"), text).unwrap();
    let names = secret_names(&inv.secrets, b"key of cluster a").unwrap();
    let expected: String =
        hmac_sha256(b"key of cluster a", b"hunter2").iter().take(4).map(|b| format!("{b:02x}")).collect();
    assert_eq!(names["pg"], format!("pg_{expected}"));
    // Another cluster's key names the same value differently; the plain digest is not used.
    let other = secret_names(&inv.secrets, b"key of cluster b").unwrap();
    assert_ne!(names["pg"], other["pg"]);
    assert_ne!(names["pg"], format!("pg_{}", &sha256_hex(b"hunter2")[..8]));
    assert_eq!(secret_value(&inv.secrets[0]).unwrap(), "hunter2");
}

#[test]
fn the_homelab_example_renders_every_stack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = std::env::temp_dir().join(format!("clusterup-homelab-key-{}", std::process::id()));
    std::fs::write(&key, "x").unwrap();
    let text = std::fs::read_to_string(root.join("inventories/homelab.yml"))
        .unwrap()
        .replace("~/.ssh/id_ed25519", key.to_str().unwrap());
    let inv = Inventory::from_text(&root.join("inventories/homelab.yml"), &text).unwrap();
    assert_eq!(inv.stacks.len(), 5);
    let mut backed = Vec::new();
    for stack in &inv.stacks {
        let rendered = render_stack(&inv, stack, &secrets()).unwrap_or_else(|e| panic!("{e:#}"));
        assert_valid_compose(&stack.name, &parsed(&rendered));
        assert!(
            rendered.local_state.is_empty(),
            "{}: {:?} left on its node",
            stack.name,
            rendered.local_state
        );
        for (name, options) in &rendered.nfs_volumes {
            backed.push((name.clone(), options["driver_opts"]["device"].as_str().unwrap().to_string()));
        }
    }
    // Every stateful volume is on the NAS without the inventory listing it, each stack's in a
    // directory of its own.
    let want = [
        ("db_pgdata", ":/srv/clusterup/db/pgdata"),
        ("monitoring_grafana-data", ":/srv/clusterup/monitoring/grafana-data"),
        ("monitoring_influxdb-data", ":/srv/clusterup/monitoring/influxdb-data"),
        ("proxy_caddy-data", ":/srv/clusterup/proxy/caddy-data"),
        ("s3_minio-data", ":/srv/clusterup/s3/minio-data"),
    ];
    backed.sort();
    assert_eq!(backed, want.map(|(n, d)| (n.to_string(), d.to_string())));
    let dirs = crate::templates::nas_directories(&inv);
    assert!(dirs.contains(&("db/pgdata".to_string(), 999, 999)), "{dirs:?}");
    assert!(dirs.contains(&("monitoring/grafana-data".to_string(), 472, 0)), "{dirs:?}");
    assert_eq!(dirs.len(), 5, "{dirs:?}");
}

/// Without NFS storage a stateful service must be pinned to the node its volume is on; with a
/// declared volume two stacks share its directory, and that is said.
#[test]
fn state_left_on_a_node_must_be_pinned_and_shared_directories_are_named() {
    let base = "cluster: {name: t}\nnetworks: [{name: database}]\n\
                secrets: [{name: postgres_password, env: CLUSTERUP_TEST_PG}]\n\
                hosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager], labels: {db: true}}\n";
    let loose = format!("{base}stacks:\n  - {{name: db, template: postgres, networks: [database]}}\n");
    let inv = Inventory::from_text(Path::new("/tmp/inv.yml"), &loose).unwrap();
    let findings = check(&inv, SecretValues::Placeholders);
    let errors: Vec<String> = findings.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("service `postgres` keeps its state in volume `pgdata`")
            && errors[0].contains("storage.nfs")
            && errors[0].contains("placement_label"),
        "{}",
        errors[0]
    );
    let pinned = format!(
        "{base}stacks:\n  - {{name: db, template: postgres, networks: [database], vars: {{placement_label: db}}}}\n"
    );
    let inv = Inventory::from_text(Path::new("/tmp/inv.yml"), &pinned).unwrap();
    assert!(check(&inv, SecretValues::Placeholders).errors.is_empty());
    let shared = format!(
        "{base}  - {{name: nas, address: 10.0.0.9, kind: nas}}\nstorage: {{nfs: {{server: nas, path: /srv/c}}}}\n\
         volumes: [{{name: pgdata, uid: 999, gid: 999}}]\nstacks:\n\
           - {{name: db, template: postgres, networks: [database]}}\n\
           - {{name: db2, template: postgres, networks: [database]}}\n"
    );
    let inv = Inventory::from_text(Path::new("/tmp/inv.yml"), &shared).unwrap();
    let findings = check(&inv, SecretValues::Placeholders);
    assert!(findings.errors.is_empty(), "{:?}", findings.errors);
    assert!(
        findings.warnings.iter().any(|w| w.contains("stacks db, db2 share the NFS directory /srv/c/pgdata")),
        "{:?}",
        findings.warnings
    );
}

/// `defaults.yml` lists every var its template reads: validation flags any other var as
/// unknown, so a var missing there would be refused in every inventory that sets it.
#[test]
fn every_var_a_builtin_reads_is_in_its_defaults() {
    for name in builtin_names() {
        let template = builtin(name).unwrap();
        let sources =
            std::iter::once(template.stack.as_str()).chain(template.extras.iter().map(|(_, s)| s.as_str()));
        for source in sources {
            for (i, _) in source.match_indices("vars.") {
                let var: String =
                    source[i + 5..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if var.is_empty() {
                    continue; // prose in a comment ("the stack's vars.")
                }
                assert!(
                    template.defaults.contains_key(&var),
                    "templates/{name}: `vars.{var}` is not in defaults.yml"
                );
            }
        }
    }
}

/// The shipped example inventories pass the offline checks (secret values absent).
#[test]
fn shipped_inventories_pass_the_offline_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let findings = check(&inv, SecretValues::Placeholders);
        let errors: Vec<String> = findings.errors.iter().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{}:\n{}", path.display(), errors.join("\n"));
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} inventories found in {}", dir.display());
}

#[test]
fn placement_is_checked_against_roles_and_labels() {
    let inv = Inventory::from_text(
        Path::new("/inv/p.yml"),
        "cluster: {name: p}\nhosts:\n  - {name: m1, address: 10.0.0.1, roles: [manager], labels: {edge: true}}\n  \
         - {name: w1, address: 10.0.0.2}\nnetworks: [{name: reverse-proxy}]\n\
         secrets: [{name: traefik_dashboard_users, env: CLUSTERUP_UNSET_FOR_TEST}]\n\
         stacks: [{name: proxy, template: traefik, vars: {placement_label: edge}}]\n",
    )
    .unwrap();
    let findings = check(&inv, SecretValues::Placeholders);
    assert!(findings.errors.is_empty(), "an edge manager fits: {:?}", findings.errors);
    assert_eq!(findings.warnings.len(), 1, "the unset secret value: {:?}", findings.warnings);
    let strict = check(&inv, SecretValues::Required);
    assert_eq!(strict.errors.len(), 1, "{:?}", strict.errors);
}

#[test]
fn shinyproxy_sends_its_usage_statistics_to_the_monitoring_stack_when_there_is_one() {
    let alone = inventory("  - {name: apps, template: shinyproxy}\n");
    let rendered = render_stack(&alone, &alone.stacks[0], &secrets()).unwrap();
    assert!(!rendered.deployed_text().contains("usage-stats"), "no InfluxDB, no statistics");

    let both = inventory("  - {name: apps, template: shinyproxy}\n  - {name: mon, template: monitoring}\n");
    let rendered = render_stack(&both, &both.stacks[0], &secrets()).unwrap();
    let compose = parsed(&rendered);
    assert_valid_compose("apps", &compose);
    let service = &compose["services"]["shinyproxy"];
    assert!(service["networks"].as_array().unwrap().contains(&Value::from("monitoring")), "{service}");
    assert_eq!(compose["networks"]["monitoring"]["external"], true);
    let secret =
        service["secrets"].as_array().unwrap().iter().find(|s| s["target"] == "proxy.usage-stats-password");
    assert_eq!(secret.map(|s| &s["source"]), Some(&Value::from("usage_stats_password")), "{service}");
    assert_eq!(compose["secrets"]["usage_stats_password"]["name"], "influxdb_password_0123abcd");
    let application = &rendered.files.iter().find(|(f, _)| f == "application.yml").unwrap().1;
    assert!(
        application.contains(
            "usage-stats-url: \"http://mon_influxdb:8086/write?db=shinyproxy_usagestats&u=telegraf&p=${proxy.usage-stats-password}\""
        ),
        "{application}"
    );
}

/// `limit_*`/`reserve_*` vars reach every service of a built-in stack, schema-valid; without
/// them nothing is added.
#[test]
fn resource_vars_go_to_every_service() {
    let inv = inventory(
        "  - {name: mon, template: monitoring, vars: {limit_memory: 512M, reserve_cpus: \"0.25\", placement_label: edge}}\n",
    );
    let rendered = render_stack(&inv, &inv.stacks[0], &secrets()).unwrap();
    let compose = parsed(&rendered);
    assert_valid_compose("mon", &compose);
    for (name, service) in compose["services"].as_object().unwrap() {
        let resources = &service["deploy"]["resources"];
        assert_eq!(resources["limits"]["memory"], "512M", "{name}");
        assert_eq!(resources["reservations"]["cpus"], "0.25", "{name}");
        assert!(resources["limits"].get("cpus").is_none(), "{name}");
    }
    let plain = inventory("  - {name: mon, template: monitoring, vars: {placement_label: edge}}\n");
    let rendered = render_stack(&plain, &plain.stacks[0], &secrets()).unwrap();
    let compose = parsed(&rendered);
    assert!(compose["services"]["influxdb"]["deploy"].get("resources").is_none());
}

/// templates/README.md's table of stateful volumes is what the templates' `stateful.yml` say.
#[test]
fn the_readme_lists_each_templates_state() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/README.md")).unwrap();
    for name in builtin_names() {
        let template = builtin(name).unwrap();
        let row = readme
            .lines()
            .find(|l| {
                l.starts_with('|')
                    && l.split('|').nth(1).is_some_and(|c| c.split(", ").any(|n| n.trim() == name))
            })
            .unwrap_or_else(|| panic!("templates/README.md has no row for {name}"));
        if template.stateful.is_empty() {
            assert!(row.contains("| none"), "{name}: {row}");
        }
        for (volume, v) in &template.stateful {
            let cell = format!("`{volume}` ({}, {}:{})", v.service, v.uid, v.gid);
            assert!(row.contains(&cell), "{name}: the README says `{row}`, stateful.yml has {cell}");
        }
    }
}

/// The single-instance templates keep an idle standby on every node their service may move to,
/// on the same networks, with the same placement, and nothing else (no volume, secret or
/// reservation); `standby: false` leaves it out.
#[test]
fn single_instance_services_keep_a_standby_on_their_networks() {
    for (template, service) in [("postgres", "postgres"), ("redis", "redis")] {
        let inv = inventory(&format!(
            "  - {{name: s, template: {template}, networks: [monitoring], vars: {{placement_label: db, reserve_memory: 1G}}}}\n"
        ));
        let compose = parsed(&render_stack(&inv, &inv.stacks[0], &secrets()).unwrap());
        assert_valid_compose(template, &compose);
        let (main, standby) =
            (&compose["services"][service], &compose["services"][format!("{service}-standby")]);
        assert_eq!(standby["image"], main["image"], "{template}");
        assert_eq!(standby["networks"], main["networks"], "{template}");
        assert_eq!(standby["deploy"]["mode"], "global", "{template}");
        assert_eq!(standby["deploy"]["placement"], main["deploy"]["placement"], "{template}");
        assert_eq!(standby["entrypoint"][0], "sleep", "{template}");
        for absent in ["volumes", "secrets", "healthcheck"] {
            assert!(standby.get(absent).is_none(), "{template}: the standby has {absent}");
        }
        assert!(standby["deploy"].get("resources").is_none(), "{template}: the standby reserves nothing");
        let without =
            inventory(&format!("  - {{name: s, template: {template}, vars: {{standby: false}}}}\n"));
        let compose = parsed(&render_stack(&without, &without.stacks[0], &secrets()).unwrap());
        assert_eq!(compose["services"].as_object().unwrap().len(), 1, "{template}: standby: false");
    }
}
