//! End-to-end tests of networks and stacks on the container lab: images preloaded by
//! clusterup, the caddy proxy in front of an app over the proxy network, postgres on its own
//! network, isolation between them, and re-runs that deploy only what changed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{clusterup_with_env, json, lab, lab_dir, on, three_machines_with_proxy};
use serde_json::Value;

const PASSWORD: &str = "s3cret-lab-password";

/// Whether this machine's kernel, which the lab machines share, has what an encrypted overlay
/// needs (IPsec ESP and AES-GCM), read from its configuration.
fn kernel_has_ipsec() -> bool {
    let out = Command::new("sh")
        .args(["-c", "gzip -dc /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)"])
        .output()
        .expect("sh");
    let config = String::from_utf8_lossy(&out.stdout);
    assert!(config.contains("CONFIG_XFRM"), "the kernel's configuration is unreadable here");
    ["CONFIG_INET_ESP", "CONFIG_CRYPTO_GCM"]
        .iter()
        .all(|o| config.lines().any(|l| l == format!("{o}=y") || l == format!("{o}=m")))
}

fn inventory(app_replicas: u32, encrypted: bool) -> PathBuf {
    let sections = format!(
        "networks:\n  - name: reverse-proxy\n  - {{name: database, encrypted: {encrypted}}}\n\
         secrets:\n  - {{name: postgres_password, env: LAB_PG_PASSWORD}}\n"
    );
    let text = three_machines_with_proxy(&sections, &["caddy.tar", "app.tar", "postgres.tar"])
        + &format!(
            r#"  - name: whoami
    template: whoami
    vars: {{image: "clusterup-lab/app:lab", replicas: {app_replicas}, endpoint_mode: dnsrr}}
    expose: [{{service: web, host: whoami.lab.test, port: 8080}}]
  - name: db
    template: postgres
    vars: {{image: "clusterup-lab/postgres:lab", endpoint_mode: dnsrr, user: app, db: app, placement_label: db}}
    networks: [database]
"#
        );
    let path = lab_dir().join("stacks.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn init(inv: &Path) -> Value {
    let out = clusterup_with_env(
        &["init", "-i", inv.to_str().unwrap(), "--json", "--converge-timeout", "240"],
        &[("LAB_PG_PASSWORD", PASSWORD)],
    );
    let report = json(&out);
    assert!(out.status.success(), "init failed: {report}");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!shown.contains(PASSWORD), "the secret appeared in init's output");
    report
}

fn cluster_changes(report: &Value) -> Vec<String> {
    report["cluster"]["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()
}

/// The creation time of the swarm config holding a stack's deployed digest.
fn deployed_at(stack: &str) -> String {
    on("m1", &format!("docker config inspect --format '{{{{.CreatedAt}}}}' clusterup-stack-{stack}"))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn stacks_deploy_route_isolate_and_redeploy_only_what_changed() {
    lab(&["images"]);
    common::lab_up_with_engine(&["m1", "w1", "w2"]);
    let encrypted = kernel_has_ipsec();

    // 0. On a kernel without IPsec an encrypted overlay would drop traffic between nodes without
    //    an error: init refuses every node before changing anything, naming network and line.
    if !encrypted {
        let inv = inventory(2, true);
        let out = clusterup_with_env(
            &["init", "-i", inv.to_str().unwrap(), "--json"],
            &[("LAB_PG_PASSWORD", PASSWORD)],
        );
        let report = json(&out);
        assert_eq!(out.status.code(), Some(1), "{report}");
        assert_eq!(report["changed"], 0, "{report}");
        for host in ["m1", "w1", "w2"] {
            let error = report["hosts"][host]["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("`database` (")
                    && error.contains("stacks.yml line 9")
                    && error.contains("CONFIG_INET_ESP"),
                "{host}: {error}"
            );
        }
        let config = on("m1", "test -e /etc/docker/daemon.json && echo written || echo none");
        assert_eq!(config.trim(), "none", "the refused run changed the engine's configuration");
    }
    let inv = inventory(2, encrypted);

    // 1. Everything from nothing: engine, swarm, images, networks, secret, three stacks.
    let report = init(&inv);
    let changes = cluster_changes(&report);
    for expected in [
        "network: created network reverse-proxy",
        "network: created network database",
        "stack: deployed stack proxy",
        "stack: deployed stack whoami",
        "stack: deployed stack db",
    ] {
        assert!(changes.iter().any(|c| c == expected), "missing `{expected}` in {changes:?}");
    }
    assert!(
        changes.iter().any(|c| c.starts_with("secret: created secret postgres_password_")),
        "{changes:?}"
    );
    let w2 = report["hosts"]["w2"]["changes"].to_string();
    assert!(w2.contains("images: loaded postgres.tar"), "{w2}");
    let networks =
        on("m1", "docker network inspect --format '{{.Name}} {{.Options}}' database reverse-proxy");
    let database = networks.lines().find(|l| l.starts_with("database ")).unwrap_or_default();
    assert!(database.contains("mtu:1450") && database.contains("encrypted:") == encrypted, "{networks}");
    let proxy_net = networks.lines().find(|l| l.starts_with("reverse-proxy ")).unwrap_or_default();
    assert!(proxy_net.contains("mtu:1450") && !proxy_net.contains("encrypted"), "{networks}");

    // 2. The proxy on w1 answers for the route, from the app, over the proxy network.
    let w1 = lab(&["addr", "w1"]).trim().to_string();
    let resolve = format!("whoami.lab.test:443:{w1}");
    let (ok, body) = curl(&["-k", "--resolve", &resolve, "https://whoami.lab.test/"]);
    assert!(ok && body.contains("clusterup-lab-app"), "HTTPS through the proxy: {body}");
    let (ok, headers) = curl(&["-I", "-H", "Host: whoami.lab.test", &format!("http://{w1}/")]);
    assert!(ok && headers.contains("308"), "HTTP should redirect to HTTPS: {headers}");

    // 3. Isolation: the database network reaches postgres from every node (so across nodes
    //    too, wherever its task runs); the proxy's network does not.
    let reach = |node: &str, network: &str| {
        on(
            node,
            &format!(
                "docker run --rm --network {network} clusterup-lab/postgres:lab pg_isready -h db_postgres -t 5 >/dev/null 2>&1 && echo yes || echo no"
            ),
        )
    };
    for node in ["m1", "w1", "w2"] {
        assert_eq!(
            reach(node, "database").trim(),
            "yes",
            "a container on `database` on {node} should reach postgres"
        );
    }
    assert_eq!(
        reach("m1", "reverse-proxy").trim(),
        "no",
        "a container on the proxy's network must not reach postgres"
    );
    let from_proxy = on(
        "w1",
        "c=$(docker ps -q -f name=proxy_caddy); docker exec $c busybox nc -w 3 db_postgres 5432 </dev/null >/dev/null 2>&1 && echo yes || echo no",
    );
    assert_eq!(from_proxy.trim(), "no", "the proxy itself must not reach postgres");

    // 4. A re-run changes nothing and redeploys nothing.
    let before: Vec<String> = ["proxy", "whoami", "db"].iter().map(|s| deployed_at(s)).collect();
    let report = init(&inv);
    assert_eq!(report["changed"], 0, "{report}");
    let after: Vec<String> = ["proxy", "whoami", "db"].iter().map(|s| deployed_at(s)).collect();
    assert_eq!(before, after, "a no-op run redeployed a stack");

    // 5. One stack's var changes: `plan --diff` shows how, and only that stack is redeployed.
    let inv = inventory(3, encrypted);
    let out = clusterup_with_env(
        &["plan", "-i", inv.to_str().unwrap(), "--diff", "--json"],
        &[("LAB_PG_PASSWORD", PASSWORD)],
    );
    let diffs = json(&out)["diffs"].clone();
    assert_eq!(diffs.as_object().map(|d| d.len()), Some(1), "only whoami changes: {diffs}");
    let diff = diffs["whoami"].as_str().unwrap_or_default();
    assert!(diff.contains("-      replicas: 2\n+      replicas: 3\n"), "{diff}");
    assert!(!diff.contains(PASSWORD));
    let report = init(&inv);
    assert_eq!(cluster_changes(&report), ["stack: deployed stack whoami"], "{report}");
    assert_eq!(deployed_at("proxy"), before[0]);
    assert_eq!(deployed_at("db"), before[2]);
    let replicas = on("m1", "docker service ls --filter name=whoami_web --format '{{.Replicas}}'");
    assert_eq!(replicas.trim(), "3/3");

    // 6. Status lists the stacks and the route; no secret anywhere in output or log.
    let out = clusterup_with_env(&["status", "-i", inv.to_str().unwrap(), "--json"], &[]);
    let status = json(&out);
    let services = status["services"].to_string();
    assert!(services.contains("whoami_web") && services.contains("db_postgres"), "{services}");
    assert!(status["routes"].to_string().contains("whoami.lab.test"), "{status}");
    let log = std::fs::read_to_string(lab_dir().join("clusterup-test.log")).unwrap();
    assert!(!log.contains(PASSWORD), "the secret leaked into the log");
    let audit = on("m1", "cat /var/lib/clusterup/audit.log");
    assert!(audit.contains("init changed="), "no audit line: {audit}");
    assert!(!audit.contains(PASSWORD), "the secret leaked into the audit log");
    let rendered = on("m1", "ls /tmp | grep clusterup-stack || true");
    assert!(rendered.trim().is_empty(), "rendered stack files left on the manager: {rendered}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD));

    // 7. A stack that cannot start fails the run, naming the task's error.
    let broken = lab_dir().join("broken.yml");
    let text = std::fs::read_to_string(&inv).unwrap()
        + "  - {name: broken, template: whoami, vars: {image: \"clusterup-lab/missing:1\", endpoint_mode: dnsrr, replicas: 1}}\n";
    std::fs::write(&broken, text).unwrap();
    let out = clusterup_with_env(
        &["init", "-i", broken.to_str().unwrap(), "--json", "--converge-timeout", "20"],
        &[("LAB_PG_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(1), "a stack that never runs must fail the run");
    let error = json(&out)["cluster"]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("stack broken") && error.contains("No such image"), "{error}");

    // 7b. The next run, with nothing changed, does not take the broken stack for deployed:
    //     plan lists it again, and init deploys it again and fails again.
    let env = [("LAB_PG_PASSWORD", PASSWORD)];
    let out = clusterup_with_env(&["plan", "-i", broken.to_str().unwrap(), "--json"], &env);
    let planned = json(&out)["cluster"]["changes"].to_string();
    assert!(planned.contains("deploy stack broken"), "{planned}");
    assert!(!planned.contains("deploy stack proxy"), "converged stacks stay recorded: {planned}");
    let out = clusterup_with_env(
        &["init", "-i", broken.to_str().unwrap(), "--json", "--converge-timeout", "20"],
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "a re-run must not report success while the stack is broken");

    // 8. The broken stack marked absent is removed, and nothing else changes.
    let text = std::fs::read_to_string(&inv).unwrap();
    let absent = lab_dir().join("absent.yml");
    std::fs::write(&absent, text.clone() + "  - {name: broken, state: absent}\n").unwrap();
    let report = init(&absent);
    assert_eq!(cluster_changes(&report), ["stack: removed stack broken"], "{report}");
    assert!(!on("m1", "docker stack ls --format '{{.Name}}'").lines().any(|l| l == "broken"));

    // 9. A stack dropped from the inventory keeps running, with a warning; `--prune-stacks`
    //    removes it (the proxy, whose routes change, is redeployed in the same run).
    let whoami = "  - name: whoami\n    template: whoami\n";
    let start = text.find(whoami).expect("the whoami stack in the inventory");
    let end = text[start + whoami.len()..].find("  - name:").map(|i| start + whoami.len() + i).unwrap();
    let dropped = lab_dir().join("dropped.yml");
    std::fs::write(&dropped, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let report = init(&dropped);
    assert!(report["warnings"].to_string().contains("stack whoami was deployed by clusterup"), "{report}");
    assert!(on("m1", "docker stack ls --format '{{.Name}}'").lines().any(|l| l == "whoami"));
    let out = clusterup_with_env(
        &["init", "-i", dropped.to_str().unwrap(), "--json", "--prune-stacks"],
        &[("LAB_PG_PASSWORD", PASSWORD)],
    );
    let report = json(&out);
    assert!(out.status.success(), "{report}");
    assert!(cluster_changes(&report).contains(&"stack: removed stack whoami".to_string()), "{report}");
    assert!(!on("m1", "docker stack ls --format '{{.Name}}'").lines().any(|l| l == "whoami"));

    // 10. A new secret value is a new secret (postgres rolls onto it); the next run removes the
    //     old version, which no service uses any more.
    let new_password = "a-new-lab-password";
    let run = |file: &Path| {
        let out = clusterup_with_env(
            &["init", "-i", file.to_str().unwrap(), "--json", "--converge-timeout", "240"],
            &[("LAB_PG_PASSWORD", new_password)],
        );
        let report = json(&out);
        assert!(out.status.success(), "{report}");
        report
    };
    let before: Vec<String> =
        on("m1", "docker secret ls --format '{{.Name}}'").lines().map(str::to_string).collect();
    let report = run(&dropped);
    let changes = cluster_changes(&report);
    assert!(
        changes.iter().any(|c| c.starts_with("secret: created secret postgres_password_")),
        "{changes:?}"
    );
    assert!(changes.contains(&"stack: deployed stack db".to_string()), "{changes:?}");
    let report = run(&dropped);
    let changes = cluster_changes(&report);
    let old = before.iter().find(|s| s.starts_with("postgres_password_")).expect("the first secret");
    assert_eq!(changes, [format!("secret: removed unused secret {old}")], "{report}");
    let after = on("m1", "docker secret ls --format '{{.Name}}'");
    assert!(!after.contains(old.as_str()) && after.contains("postgres_password_"), "{after}");
}
