//! End-to-end test of the monitoring stack on the container lab: InfluxDB from an image built
//! from Debian's package, a stand-in for Telegraf on every node (Telegraf's and Grafana's
//! images cannot be had here) writing over the `monitoring` network with the credentials and
//! the docker-socket group the template gives it, and the engines' metrics endpoints.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{clusterup_with_env, json, lab, lab_dir, on, three_machines_with_proxy};
use serde_json::Value;

const SECRETS: [(&str, &str); 3] = [
    ("LAB_INFLUX_ADMIN", "adm1n-lab-secret"),
    ("LAB_INFLUX_USER", "wr1ter-lab-secret"),
    ("LAB_GRAFANA_ADMIN", "graf-lab-secret"),
];

fn inventory() -> PathBuf {
    let sections = "networks:\n  - name: reverse-proxy\n  - name: monitoring\n\
                    secrets:\n  - {name: influxdb_admin_password, env: LAB_INFLUX_ADMIN}\n\
                    \x20 - {name: influxdb_password, env: LAB_INFLUX_USER}\n\
                    \x20 - {name: grafana_admin_password, env: LAB_GRAFANA_ADMIN}\n";
    let text = three_machines_with_proxy(sections, &["caddy.tar", "app.tar", "influxdb.tar", "telegraf.tar"])
        + r#"  - name: monitoring
    template: monitoring
    vars:
      influxdb_image: "clusterup-lab/influxdb:lab"
      telegraf_image: "clusterup-lab/telegraf:lab"
      # Grafana's image cannot be built here: the lab's web app stands in (it serves on 8080).
      grafana_image: "clusterup-lab/app:lab"
      grafana_health_check: false
      placement_label: db
      endpoint_mode: dnsrr
      retention: 7d
      interval: 5
    expose: [{service: grafana, host: grafana.lab.test, port: 8080}]
"#;
    let path = lab_dir().join("monitoring.yml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> (bool, Value, String) {
    let out = clusterup_with_env(args, &SECRETS);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for (_, secret) in SECRETS {
        assert!(!shown.contains(secret), "a secret appeared in the output of {args:?}");
    }
    (out.status.success(), json(&out), shown)
}

/// An InfluxQL query, run as `user` from a container on the `monitoring` network.
fn influx(user: &str, password: &str, db: &str, query: &str) -> Value {
    let script = format!(
        "docker run --rm --network monitoring --entrypoint curl clusterup-lab/telegraf:lab -sS -G \
         -u '{user}:{password}' http://monitoring_influxdb:8086/query --data-urlencode 'db={db}' \
         --data-urlencode \"q={query}\""
    );
    let out = on("m1", &script);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("InfluxDB answered {out:?}: {e}"))
}

/// The values of column `column` of the first series of every statement.
fn column(answer: &Value, series: usize, column: usize) -> Vec<String> {
    answer["results"][0]["series"][series]["values"]
        .as_array()
        .map(|rows| rows.iter().map(|r| r[column].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs the container lab: vm-tests/run containers"]
fn monitoring_stack_collects_from_every_node_into_influxdb() {
    lab(&["images"]);
    common::lab_up_with_engine(&["m1", "w1", "w2"]);
    let inv = inventory();
    let inv = inv.to_str().unwrap();

    // 1. Everything from nothing, the monitoring stack included.
    let (ok, report, shown) = run(&["init", "-i", inv, "--json", "--converge-timeout", "240"]);
    assert!(ok, "init failed: {report}\n{shown}");
    let changes = report["cluster"]["changes"].to_string();
    assert!(changes.contains("stack: deployed stack monitoring"), "{changes}");

    // 2. Each engine serves its metrics on its own swarm address only (not 0.0.0.0).
    for node in ["m1", "w1", "w2"] {
        let addr = lab(&["addr", node]).trim().to_string();
        let daemon = on(node, "cat /etc/docker/daemon.json");
        assert!(daemon.contains(&format!("\"metrics-addr\": \"{addr}:9323\"")), "{node}: {daemon}");
        let metrics = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .arg(format!("http://{addr}:9323/metrics"))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&metrics.stdout);
        assert!(body.contains("engine_daemon_engine_info"), "{node}: no engine metrics at {addr}:9323");
    }

    // 3. InfluxDB was set up from the secrets: the admin sees both databases, the retention
    //    asked for, and the user Telegraf writes with.
    let (admin, user) = (SECRETS[0].1, SECRETS[1].1);
    let databases = column(&influx("admin", admin, "telegraf", "SHOW DATABASES"), 0, 0);
    assert!(
        databases.contains(&"telegraf".to_string())
            && databases.contains(&"shinyproxy_usagestats".to_string()),
        "{databases:?}"
    );
    let policies = influx("admin", admin, "telegraf", "SHOW RETENTION POLICIES ON telegraf");
    assert_eq!(policies["results"][0]["series"][0]["values"][0][1], "168h0m0s", "{policies}");
    let refused = influx("telegraf", "wrong", "telegraf", "SHOW MEASUREMENTS");
    assert!(refused.to_string().contains("authorization failed"), "{refused}");

    // 4. Every node's agent writes, as a non-root user holding the docker socket's group: one
    //    series per node; the cluster-wide agent writes the services, as host `swarm`.
    let tag_values = |measurement: &str| {
        let query = format!("SHOW TAG VALUES FROM {measurement} WITH KEY = host");
        let mut hosts = column(&influx("telegraf", user, "telegraf", &query), 0, 1);
        hosts.sort();
        hosts
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while (tag_values("docker").len() < 3 || tag_values("docker_swarm").is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_secs(3));
    }
    assert_eq!(tag_values("docker"), ["m1", "w1", "w2"], "one series per node");
    assert_eq!(tag_values("docker_swarm"), ["swarm"], "the services, from one agent only");
    for node in ["m1", "w1", "w2"] {
        let uid = on(
            node,
            "c=$(docker ps -q -f label=com.docker.swarm.service.name=monitoring_telegraf); \
             docker exec \"$c\" cat /proc/1/status | awk '/^Uid:/ {print $2}'",
        );
        assert_eq!(uid.trim(), "999", "{node}: the agent must not run as root");
    }
    let answer = influx(
        "telegraf",
        user,
        "telegraf",
        "SELECT last(n_containers_running) FROM docker WHERE host = 'm1'",
    );
    assert!(answer["results"][0]["series"][0]["values"][0][1].as_i64().unwrap_or(0) >= 1, "{answer}");

    // 5. Grafana is exposed through the proxy, and `status` says where.
    let w1 = lab(&["addr", "w1"]).trim().to_string();
    let resolve = format!("grafana.lab.test:443:{w1}");
    let page = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "10", "--resolve", &resolve, "https://grafana.lab.test/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains("clusterup-lab-app"), "grafana's route");
    let (ok, status, _) = run(&["status", "-i", inv, "--json"]);
    assert!(ok, "{status}");
    assert_eq!(
        status["monitoring"],
        "Grafana: https://grafana.lab.test/ (user admin, the password of secret `grafana_admin_password`)"
    );

    // 6. A re-run changes nothing: no engine restarted, no stack redeployed.
    let (ok, report, _) = run(&["init", "-i", inv, "--json"]);
    assert!(ok, "{report}");
    assert_eq!(report["changed"], 0, "{report}");
}
