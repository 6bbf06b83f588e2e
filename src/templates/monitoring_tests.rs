//! The built-in `monitoring` template's files beside its compose file: the two Telegraf
//! configurations, Grafana's provisioning and the cluster dashboard. Each is rendered through
//! `render_stack` as a deploy would, then parsed as what reads it (TOML, YAML, JSON); and every
//! dashboard query is checked against what the configured agents (or ShinyProxy) write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::*;
use crate::inventory::Inventory;

/// Three nodes (one on IPv6), the network, the three secrets and the stack; `vars` are the
/// stack's vars as YAML flow mapping content.
fn inventory(vars: &str) -> Inventory {
    let text = format!(
        "cluster: {{name: lab}}\n\
         hosts:\n  - {{name: m1, address: 10.0.0.1, roles: [manager]}}\n  \
         - {{name: w1, address: 10.0.0.2, roles: [worker]}}\n  \
         - {{name: w2, address: \"fd00::5\", roles: [worker]}}\n\
         networks:\n  - {{name: monitoring}}\n\
         secrets:\n  - {{name: influxdb_admin_password, env: CLUSTERUP_TEST_UNSET}}\n  \
         - {{name: influxdb_password, env: CLUSTERUP_TEST_UNSET}}\n  \
         - {{name: grafana_admin_password, env: CLUSTERUP_TEST_UNSET}}\n\
         stacks:\n  - {{name: monitoring, template: monitoring, vars: {{{vars}}}}}\n"
    );
    Inventory::from_text(Path::new("/inv/lab.yml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn secrets() -> BTreeMap<String, String> {
    ["influxdb_admin_password", "influxdb_password", "grafana_admin_password"]
        .iter()
        .map(|n| (n.to_string(), format!("{n}_0123abcd")))
        .collect()
}

/// The stack rendered with `vars`: its files by name.
fn render(vars: &str) -> BTreeMap<String, String> {
    let inv = inventory(vars);
    let rendered = render_stack(&inv, &inv.stacks[0], &secrets()).unwrap_or_else(|e| panic!("{e:#}"));
    rendered.files.into_iter().collect()
}

/// The vars most tests render with: every one the files read differs from its default, so a
/// file still printing a default fails.
const VARS: &str = "database: metrics, influxdb_user: writer, interval: 15, proxy_stack: edge";

fn toml_file(files: &BTreeMap<String, String>, name: &str) -> toml::Table {
    let text = files.get(name).unwrap_or_else(|| panic!("no {name} among {:?}", files.keys()));
    toml::from_str(text).unwrap_or_else(|e| panic!("{name} is not TOML: {e}\n{text}"))
}

fn yaml_file(files: &BTreeMap<String, String>, name: &str) -> Value {
    let text = files.get(name).unwrap_or_else(|| panic!("no {name} among {:?}", files.keys()));
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}\n{text}"))
}

fn dashboard(files: &BTreeMap<String, String>) -> Value {
    let text = &files["dashboard.json"];
    serde_json::from_str(text).unwrap_or_else(|e| panic!("dashboard.json is not JSON: {e}\n{text}"))
}

/// `[[inputs.NAME]]` or `[[outputs.NAME]]`: the single table of that plugin.
fn plugin<'a>(conf: &'a toml::Table, kind: &str, name: &str) -> &'a toml::Table {
    let list =
        conf[kind][name].as_array().unwrap_or_else(|| panic!("{kind}.{name} is not [[{kind}.{name}]]"));
    assert_eq!(list.len(), 1, "one [[{kind}.{name}]]");
    list[0].as_table().unwrap()
}

fn plugin_names(conf: &toml::Table, kind: &str) -> BTreeSet<String> {
    conf.get(kind).and_then(|k| k.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

fn strings(value: &toml::Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

/// Both agents write to the stack's InfluxDB, as `vars.influxdb_user`, with the password from
/// the environment (set from the swarm secret), never one written in the file.
fn assert_writes_to_influxdb(conf: &toml::Table, name: &str) {
    assert_eq!(plugin_names(conf, "outputs"), BTreeSet::from(["influxdb".to_string()]), "{name}");
    let output = plugin(conf, "outputs", "influxdb");
    assert_eq!(strings(&output["urls"]), ["http://influxdb:8086"], "{name}");
    assert_eq!(output["database"].as_str(), Some("metrics"), "{name}: the database from vars");
    assert_eq!(output["username"].as_str(), Some("writer"), "{name}: the user from vars");
    assert_eq!(
        output["password"].as_str(),
        Some("${INFLUX_PASSWORD}"),
        "{name}: the password from the environment"
    );
    assert_eq!(output["skip_database_creation"].as_bool(), Some(true), "{name}: the init creates it");
    assert_eq!(conf["agent"]["interval"].as_str(), Some("15s"), "{name}: the interval from vars");
    assert_eq!(conf["agent"]["omit_hostname"].as_bool(), Some(false), "{name}");
}

#[test]
fn every_node_sends_its_own_metrics_and_containers() {
    let files = render(VARS);
    let conf = toml_file(&files, "telegraf.conf");
    let inputs: Vec<String> = plugin_names(&conf, "inputs").into_iter().collect();
    assert_eq!(inputs, ["cpu", "disk", "diskio", "docker", "mem", "net", "system"]);
    assert!(conf["agent"].get("hostname").is_none(), "the node's hostname, as the service sets it");

    let cpu = plugin(&conf, "inputs", "cpu");
    assert_eq!((cpu["totalcpu"].as_bool(), cpu["percpu"].as_bool()), (Some(true), Some(false)));
    let ignored = strings(&plugin(&conf, "inputs", "disk")["ignore_fs"]);
    for fs in ["tmpfs", "devtmpfs", "overlay", "squashfs"] {
        assert!(ignored.contains(&fs), "disk should ignore {fs}: {ignored:?}");
    }
    let docker = plugin(&conf, "inputs", "docker");
    assert_eq!(docker["endpoint"].as_str(), Some("unix:///var/run/docker.sock"));
    assert_eq!(docker["gather_services"].as_bool(), Some(false), "services come from the swarm agent");
    assert_eq!(strings(&docker["total_include"]), ["cpu", "blkio", "network"]);
    assert!(strings(&docker["perdevice_include"]).is_empty());
    // Telegraf 1.32 keeps only the CPU total unless the deprecated `total` is true.
    assert_eq!((docker["total"].as_bool(), docker["perdevice"].as_bool()), (Some(true), Some(false)));
    let labels = strings(&docker["docker_label_include"]);
    for label in ["com.docker.swarm.service.name", "com.docker.stack.namespace"] {
        assert!(labels.contains(&label), "{label} should be a tag: {labels:?}");
    }
    assert_writes_to_influxdb(&conf, "telegraf.conf");
}

#[test]
fn one_agent_gathers_the_services_and_scrapes_every_engine() {
    let files = render(VARS);
    let conf = toml_file(&files, "telegraf-swarm.conf");
    let inputs: Vec<String> = plugin_names(&conf, "inputs").into_iter().collect();
    assert_eq!(inputs, ["docker", "prometheus"]);
    assert_eq!(conf["agent"]["hostname"].as_str(), Some("swarm"), "never counted as a node");

    let docker = plugin(&conf, "inputs", "docker");
    assert_eq!(docker["gather_services"].as_bool(), Some(true));
    // No container metrics here: every pattern starts with a character no container name
    // starts with ([a-zA-Z0-9]), and none is a glob that could match anything.
    let names = strings(&docker["container_name_include"]);
    assert!(!names.is_empty(), "an empty list would include every container");
    for pattern in &names {
        let first = pattern.chars().next().unwrap();
        assert!(
            !first.is_ascii_alphanumeric() && !"*?[".contains(first),
            "{pattern} could match a container"
        );
    }
    assert_eq!(strings(&docker["namepass"]), ["docker_swarm"]);
    // The swarm's services are gathered here only: from every node they would count n times.
    assert!(files["telegraf-swarm.conf"].contains("gather_services = true"));
    assert!(!files["telegraf.conf"].contains("gather_services = true"));

    let prometheus = plugin(&conf, "inputs", "prometheus");
    assert_eq!(
        strings(&prometheus["urls"]),
        ["http://10.0.0.1:9323/metrics", "http://10.0.0.2:9323/metrics", "http://[fd00::5]:9323/metrics"],
        "one engine endpoint per node"
    );
    assert_writes_to_influxdb(&conf, "telegraf-swarm.conf");
}

#[test]
fn grafana_reads_both_databases_with_the_secret_password() {
    let files = render(VARS);
    let provisioned = yaml_file(&files, "grafana-datasources.yml");
    assert_eq!(provisioned["apiVersion"], 1);
    let sources = provisioned["datasources"].as_array().unwrap();
    let by_name = |name: &str| {
        sources.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no data source {name}"))
    };
    for (name, database) in [("InfluxDB", "metrics"), ("ShinyProxy", "shinyproxy_usagestats")] {
        let source = by_name(name);
        assert_eq!(source["type"], "influxdb", "{name}");
        assert_eq!(source["url"], "http://influxdb:8086", "{name}");
        assert_eq!(source["jsonData"]["version"], "InfluxQL", "{name}");
        assert_eq!(source["jsonData"]["dbName"], database, "{name}");
        assert_eq!(source["user"], "writer", "{name}");
        assert_eq!(source["secureJsonData"]["password"], "$__file{/run/secrets/influxdb_password}", "{name}");
        assert!(source["uid"].as_str().is_some_and(|u| !u.is_empty()), "{name}: a fixed uid");
    }
    assert_eq!(sources.len(), 2);
    assert_ne!(by_name("InfluxDB")["uid"], by_name("ShinyProxy")["uid"]);
    let defaults: Vec<&Value> = sources.iter().filter(|s| s["isDefault"] == true).collect();
    assert_eq!(defaults.len(), 1, "one default");
    assert_eq!(defaults[0]["name"], "InfluxDB");

    let providers = yaml_file(&files, "grafana-dashboards.yml");
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"], "file");
    assert_eq!(provider["options"]["path"], "/etc/grafana/dashboards");
}

/// Where the compose file mounts these files and the password must agree with the paths the
/// files name: Grafana's provider path, the secret file, Telegraf's config path.
#[test]
fn the_stack_mounts_each_file_where_the_others_look_for_it() {
    let inv = inventory(VARS);
    let rendered = render_stack(&inv, &inv.stacks[0], &secrets()).unwrap_or_else(|e| panic!("{e:#}"));
    let compose: Value = serde_saphyr::from_str(&rendered.compose).unwrap();
    let services = &compose["services"];
    let mounted = |service: &str, file: &str| -> String {
        let config_key = compose["configs"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, c)| c["file"] == format!("./{file}"))
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("no config for {file}"));
        let mounts = services[service]["configs"].as_array().unwrap();
        let mount = mounts.iter().find(|m| m["source"] == config_key.as_str());
        let mount = mount.unwrap_or_else(|| panic!("{service} does not mount {file}"));
        mount["target"].as_str().unwrap().to_string()
    };
    assert_eq!(mounted("telegraf", "telegraf.conf"), "/etc/telegraf/telegraf.conf");
    assert_eq!(mounted("telegraf-swarm", "telegraf-swarm.conf"), "/etc/telegraf/telegraf.conf");
    let dashboard = mounted("grafana", "dashboard.json");
    let files: BTreeMap<String, String> = rendered.files.iter().cloned().collect();
    let provider = yaml_file(&files, "grafana-dashboards.yml");
    let folder = provider["providers"][0]["options"]["path"].as_str().unwrap().to_string();
    assert_eq!(
        Path::new(&dashboard).parent(),
        Some(Path::new(&folder)),
        "the dashboard is where Grafana looks"
    );
    assert!(
        mounted("grafana", "grafana-datasources.yml").starts_with("/etc/grafana/provisioning/datasources/")
    );
    assert!(
        mounted("grafana", "grafana-dashboards.yml").starts_with("/etc/grafana/provisioning/dashboards/")
    );
    // $__file{/run/secrets/influxdb_password}: the secret mounted under that name in grafana.
    let secrets = services["grafana"]["secrets"].as_array().unwrap();
    assert!(
        secrets.iter().any(|s| s == "influxdb_password" || s["target"] == "influxdb_password"),
        "{secrets:?}"
    );
}

/// Every panel of the dashboard, rows' collapsed children included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        all.push(panel);
        if let Some(children) = panel["panels"].as_array() {
            all.extend(children);
        }
    }
    all
}

/// The provisioned data sources: uid -> database.
fn provisioned_databases(files: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let provisioned = yaml_file(files, "grafana-datasources.yml");
    provisioned["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["uid"].as_str().unwrap().to_string(), s["jsonData"]["dbName"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn the_dashboard_is_grafana_json_on_the_provisioned_data_sources() {
    let files = render(VARS);
    let dashboard = dashboard(&files);
    assert_eq!(dashboard["title"], "Cluster lab");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40), "a fixed uid");
    let schema = dashboard["schemaVersion"].as_u64().unwrap();
    assert!((39..=41).contains(&schema), "Grafana 10/11's schema: {schema}");

    let rows: Vec<&str> = panels(&dashboard)
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["Nodes", "Services", "Proxy", "ShinyProxy"]);

    let databases = provisioned_databases(&files);
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "{title}: duplicate panel id");
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().unwrap());
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: {grid}");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(cells.insert(cell), "{title} overlaps another panel at {cell:?}");
        }
        if panel["type"] == "row" {
            continue;
        }
        let uid = panel["datasource"]["uid"].as_str().unwrap_or_else(|| panic!("{title}: no data source"));
        assert!(databases.contains_key(uid), "{title}: data source {uid} is not provisioned");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: no query"));
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], uid, "{title}: a query on another data source");
            assert_eq!(target["rawQuery"], true, "{title}: InfluxQL as written");
            assert!(target["query"].as_str().is_some_and(|q| !q.is_empty()), "{title}");
        }
    }

    // Values from the inventory: the nodes expected up, the proxy stack shown.
    let nodes_up = panels(&dashboard).into_iter().find(|p| p["title"] == "Nodes up").unwrap();
    let steps = nodes_up["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["value"], 3, "green from the number of nodes");
    let proxy_queries: Vec<&str> = queries(&dashboard)
        .into_iter()
        .filter(|(_, q)| q.contains("com.docker.stack.namespace"))
        .map(|(_, q)| q)
        .collect();
    assert_eq!(proxy_queries.len(), 3, "CPU, memory and network");
    assert!(
        proxy_queries.iter().all(|q| q.contains("\"com.docker.stack.namespace\" = 'edge'")),
        "{proxy_queries:?}"
    );
}

/// Every query of the dashboard: (data source uid, InfluxQL).
fn queries(dashboard: &Value) -> Vec<(&str, &str)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| (t["datasource"]["uid"].as_str().unwrap(), t["query"].as_str().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the agents write: measurement, fields and tags, per Telegraf input plugin.
//
// Written from each plugin's README in influxdata/telegraf (plugins/inputs/NAME/README.md, its
// "Metrics" section) and, for docker, from plugins/inputs/docker/docker.go (gatherInfo,
// gatherSwarmInfo, gatherContainerInspect, parseContainerStats), since its README lags the
// code. Only what our settings produce: cpu without `collect_cpu_time`/`report_active` (no
// time_* nor usage_active), docker without `source_tag`/`tag_env`. Every measurement gets the
// tag `host` (omit_hostname = false); the docker_container_* ones also get each label of
// `docker_label_include` as a tag, read from the rendered configuration.
// inputs.prometheus (metric_version 2) writes the measurement `prometheus` with one field per
// scraped metric: unknown here, so the catalogue leaves it out and no panel may rely on it.

struct Emitted {
    input: &'static str,
    measurement: &'static str,
    fields: &'static [&'static str],
    tags: &'static [&'static str],
}

const CONTAINER_TAGS: &[&str] = &[
    "engine_host",
    "server_version",
    "container_name",
    "container_image",
    "container_version",
    "container_status",
];

const TELEGRAF: &[Emitted] = &[
    Emitted {
        input: "cpu",
        measurement: "cpu",
        fields: &[
            "usage_user",
            "usage_system",
            "usage_idle",
            "usage_nice",
            "usage_iowait",
            "usage_irq",
            "usage_softirq",
            "usage_steal",
            "usage_guest",
            "usage_guest_nice",
        ],
        tags: &["cpu"],
    },
    Emitted {
        input: "mem",
        measurement: "mem",
        fields: &[
            "active",
            "available",
            "available_percent",
            "buffered",
            "cached",
            "commit_limit",
            "committed_as",
            "dirty",
            "free",
            "high_free",
            "high_total",
            "huge_pages_free",
            "huge_page_size",
            "huge_pages_total",
            "inactive",
            "low_free",
            "low_total",
            "mapped",
            "page_tables",
            "shared",
            "slab",
            "sreclaimable",
            "sunreclaim",
            "swap_cached",
            "swap_free",
            "swap_total",
            "total",
            "used",
            "used_percent",
            "vmalloc_chunk",
            "vmalloc_total",
            "vmalloc_used",
            "write_back",
            "write_back_tmp",
        ],
        tags: &[],
    },
    Emitted {
        input: "disk",
        measurement: "disk",
        fields: &["free", "total", "used", "used_percent", "inodes_free", "inodes_total", "inodes_used"],
        tags: &["fstype", "device", "path", "mode"],
    },
    Emitted {
        input: "diskio",
        measurement: "diskio",
        fields: &[
            "reads",
            "writes",
            "read_bytes",
            "write_bytes",
            "read_time",
            "write_time",
            "io_time",
            "weighted_io_time",
            "iops_in_progress",
            "merged_reads",
            "merged_writes",
        ],
        tags: &["name", "serial"],
    },
    Emitted {
        input: "net",
        measurement: "net",
        fields: &[
            "bytes_sent",
            "bytes_recv",
            "packets_sent",
            "packets_recv",
            "err_in",
            "err_out",
            "drop_in",
            "drop_out",
        ],
        tags: &["interface"],
    },
    Emitted {
        input: "system",
        measurement: "system",
        fields: &[
            "load1",
            "load5",
            "load15",
            "n_users",
            "n_unique_users",
            "n_cpus",
            "uptime",
            "uptime_format",
        ],
        tags: &[],
    },
    Emitted {
        input: "docker",
        measurement: "docker",
        fields: &[
            "n_cpus",
            "n_used_file_descriptors",
            "n_containers",
            "n_containers_running",
            "n_containers_stopped",
            "n_containers_paused",
            "n_images",
            "n_goroutines",
            "n_listener_events",
            "memory_total",
            "pool_blocksize",
        ],
        tags: &["engine_host", "server_version", "unit"],
    },
    Emitted {
        input: "docker",
        measurement: "docker_swarm",
        fields: &["tasks_running", "tasks_desired", "max_concurrent", "total_completions"],
        tags: &["service_id", "service_name", "service_mode"],
    },
    Emitted {
        input: "docker",
        measurement: "docker_container_mem",
        fields: &[
            "container_id",
            "active_anon",
            "active_file",
            "cache",
            "hierarchical_memory_limit",
            "inactive_anon",
            "inactive_file",
            "mapped_file",
            "pgfault",
            "pgmajfault",
            "pgpgin",
            "pgpgout",
            "rss",
            "rss_huge",
            "total_active_anon",
            "total_active_file",
            "total_cache",
            "total_inactive_anon",
            "total_inactive_file",
            "total_mapped_file",
            "total_pgfault",
            "total_pgmajfault",
            "total_pgpgin",
            "total_pgpgout",
            "total_rss",
            "total_rss_huge",
            "total_unevictable",
            "total_writeback",
            "unevictable",
            "writeback",
            "fail_count",
            "limit",
            "max_usage",
            "usage",
            "usage_percent",
        ],
        tags: CONTAINER_TAGS,
    },
    Emitted {
        input: "docker",
        measurement: "docker_container_cpu",
        fields: &[
            "container_id",
            "usage_total",
            "usage_in_usermode",
            "usage_in_kernelmode",
            "usage_system",
            "throttling_periods",
            "throttling_throttled_periods",
            "throttling_throttled_time",
            "usage_percent",
        ],
        // ... and `cpu` (cpu-total; cpu0, cpu1... only with perdevice_include "cpu").
        tags: CONTAINER_TAGS,
    },
    Emitted {
        input: "docker",
        measurement: "docker_container_net",
        fields: &[
            "container_id",
            "rx_dropped",
            "rx_bytes",
            "rx_errors",
            "tx_packets",
            "tx_dropped",
            "rx_packets",
            "tx_errors",
            "tx_bytes",
        ],
        // ... and `network` (total with total_include "network").
        tags: CONTAINER_TAGS,
    },
    Emitted {
        input: "docker",
        measurement: "docker_container_blkio",
        fields: &[
            "container_id",
            "io_service_bytes_recursive_read",
            "io_service_bytes_recursive_write",
            "io_service_bytes_recursive_sync",
            "io_service_bytes_recursive_async",
            "io_service_bytes_recursive_total",
            "io_serviced_recursive_read",
            "io_serviced_recursive_write",
            "io_serviced_recursive_sync",
            "io_serviced_recursive_async",
            "io_serviced_recursive_total",
        ],
        // ... and `device` (total with total_include "blkio").
        tags: CONTAINER_TAGS,
    },
    Emitted {
        input: "docker",
        measurement: "docker_container_status",
        fields: &[
            "container_id",
            "oomkilled",
            "pid",
            "exitcode",
            "restart_count",
            "started_at",
            "finished_at",
            "uptime_ns",
        ],
        tags: CONTAINER_TAGS,
    },
];

/// The tag a docker_container_* measurement adds to the container's tags.
fn container_tag(measurement: &str) -> Option<&'static str> {
    match measurement {
        "docker_container_cpu" => Some("cpu"),
        "docker_container_net" => Some("network"),
        "docker_container_blkio" => Some("device"),
        _ => None,
    }
}

/// ShinyProxy's usage statistics, as ContainerProxy (the engine ShinyProxy is built on) writes
/// them: openanalytics/containerproxy, src/main/java/eu/openanalytics/containerproxy/stat/impl/
/// InfluxDBCollector.java POSTs one line of line protocol per event to `usage-stats-url`:
/// `event,username=USER,type=TYPE data="DATA"` (spaces in the user and type escaped). So the
/// measurement is `event`, the tags `username` and `type`, and the only field `data` (always
/// written, "" when empty). AbstractDbCollector.java in the same folder gives the types: Login,
/// Logout, ProxyStart and ProxyStop, with the spec (app) id as `data` for the last two.
/// StatCollectorFactory.java there hands the InfluxDB collector the URL alone: the
/// usage-stats-username and -password settings reach only the JDBC collector, so against an
/// InfluxDB with authentication the credentials have to be in the URL (`&u=...&p=...`).
const SHINYPROXY: &[Emitted] =
    &[Emitted { input: "shinyproxy", measurement: "event", fields: &["data"], tags: &["username", "type"] }];

/// Measurement -> (fields, tags) that one source writes.
#[derive(Debug, Default)]
struct Catalogue(BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>);

impl Catalogue {
    fn add(&mut self, emitted: &Emitted, extra_tags: &[String]) {
        let (fields, tags) = self.0.entry(emitted.measurement.to_string()).or_default();
        fields.extend(emitted.fields.iter().map(|f| f.to_string()));
        tags.extend(emitted.tags.iter().map(|t| t.to_string()));
        tags.extend(extra_tags.iter().cloned());
    }

    /// What the given Telegraf configurations write: each configured input's measurements,
    /// less those a `namepass` drops and the swarm's without `gather_services`.
    fn telegraf(confs: &[&toml::Table]) -> Catalogue {
        let mut catalogue = Catalogue::default();
        for conf in confs {
            let host = conf["agent"].get("omit_hostname").and_then(|v| v.as_bool()) != Some(true);
            for input in plugin_names(conf, "inputs") {
                let settings = plugin(conf, "inputs", &input);
                let listed = |key: &str| -> Option<Vec<String>> {
                    settings.get(key).map(|v| strings(v).into_iter().map(str::to_string).collect())
                };
                let namepass = listed("namepass");
                let labels = listed("docker_label_include").unwrap_or_default();
                for emitted in TELEGRAF.iter().filter(|e| e.input == input) {
                    if namepass.as_ref().is_some_and(|names| !names.iter().any(|n| n == emitted.measurement))
                    {
                        continue;
                    }
                    let gather_services = settings.get("gather_services").and_then(|v| v.as_bool());
                    if emitted.measurement == "docker_swarm" && gather_services != Some(true) {
                        continue;
                    }
                    let mut extra: Vec<String> = host.then(|| "host".to_string()).into_iter().collect();
                    if emitted.measurement.starts_with("docker_container_") {
                        extra.extend(labels.iter().cloned());
                        extra.extend(container_tag(emitted.measurement).map(str::to_string));
                    }
                    catalogue.add(emitted, &extra);
                }
            }
        }
        catalogue
    }

    fn shinyproxy() -> Catalogue {
        let mut catalogue = Catalogue::default();
        for emitted in SHINYPROXY {
            catalogue.add(emitted, &[]);
        }
        catalogue
    }
}

// ---------------------------------------------------------------------------------------------
// A small reading of InfluxQL: enough to find, in each SELECT, the measurement (or subquery)
// it reads, the fields it selects, the fields and tags its WHERE compares, and the tags it
// groups by. Tags are what WHERE compares to a 'string'; fields what it compares to a number.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A "quoted" identifier.
    Quoted(String),
    /// A bare word: a keyword, a function or an identifier.
    Word(String),
    /// A 'string'.
    Str(String),
    /// A number or duration: 100, 1s, 0.5.
    Num(String),
    /// A Grafana variable: $timeFilter, $__interval.
    Var(String),
    Sym(String),
}

fn tokenize(query: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '_' || chars[*i] == '.')
        {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated {c} in {query}")),
                    Some('\\') => {
                        text.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some(&d) if d == c => {
                        i += 1;
                        break;
                    }
                    Some(&d) => {
                        text.push(d);
                        i += 1;
                    }
                }
            }
            tokens.push(if c == '"' { Tok::Quoted(text) } else { Tok::Str(text) });
        } else if c == '$' {
            i += 1;
            tokens.push(Tok::Var(word(&mut i)));
        } else if c.is_ascii_digit() {
            tokens.push(Tok::Num(word(&mut i)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            tokens.push(Tok::Word(word(&mut i)));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = if ["!=", "<>", "<=", ">=", "=~", "!~"].contains(&two.as_str()) {
                two
            } else {
                c.to_string()
            };
            i += symbol.chars().count();
            tokens.push(Tok::Sym(symbol));
        }
    }
    Ok(tokens)
}

const KEYWORDS: &[&str] = &[
    "select", "from", "where", "group", "by", "as", "and", "or", "fill", "order", "limit", "desc", "asc",
    "null",
];

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

/// The identifier a token names, if it names one (a quoted name or a bare non-keyword word).
fn identifier(tok: Option<&Tok>) -> Option<&str> {
    match tok {
        Some(Tok::Quoted(name)) => Some(name),
        Some(Tok::Word(word)) if !KEYWORDS.iter().any(|k| is_keyword(word, k)) => Some(word),
        _ => None,
    }
}

fn is_word(tok: Option<&Tok>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if is_keyword(w, keyword))
}

fn is_sym(tok: Option<&Tok>, symbol: &str) -> bool {
    matches!(tok, Some(Tok::Sym(s)) if s == symbol)
}

#[derive(Debug)]
enum Source {
    Measurement(String),
    Subquery(Box<Select>),
}

#[derive(Debug)]
struct Select {
    source: Source,
    /// Fields read by the SELECT list and by WHERE comparisons to numbers.
    fields: BTreeSet<String>,
    /// Names given with AS: the columns a subquery offers its outer query.
    aliases: BTreeSet<String>,
    /// Tags compared in WHERE or grouped by.
    tags: BTreeSet<String>,
}

/// Tokens from `*i` up to (not including) the first at depth 0 that `stop` accepts, or the
/// `)` closing an enclosing subquery, or the end.
fn clause<'a>(t: &'a [Tok], i: &mut usize, stop: &dyn Fn(&Tok) -> bool) -> &'a [Tok] {
    let start = *i;
    let mut depth = 0usize;
    while let Some(tok) = t.get(*i) {
        if depth == 0 && (stop(tok) || is_sym(Some(tok), ")")) {
            break;
        }
        if is_sym(Some(tok), "(") {
            depth += 1;
        } else if is_sym(Some(tok), ")") {
            depth -= 1;
        }
        *i += 1;
    }
    &t[start..*i]
}

fn parse_select(t: &[Tok], i: &mut usize) -> Result<Select, String> {
    if !is_word(t.get(*i), "select") {
        return Err(format!("expected SELECT at {:?}", t.get(*i)));
    }
    *i += 1;
    let list = clause(t, i, &|tok| is_word(Some(tok), "from"));
    if !is_word(t.get(*i), "from") {
        return Err("no FROM".into());
    }
    *i += 1;
    let source = if is_sym(t.get(*i), "(") {
        *i += 1;
        let inner = parse_select(t, i)?;
        if !is_sym(t.get(*i), ")") {
            return Err("unclosed subquery".into());
        }
        *i += 1;
        Source::Subquery(Box::new(inner))
    } else {
        let name =
            identifier(t.get(*i)).ok_or_else(|| format!("expected a measurement at {:?}", t.get(*i)))?;
        *i += 1;
        Source::Measurement(name.to_string())
    };
    let mut select =
        Select { source, fields: BTreeSet::new(), aliases: BTreeSet::new(), tags: BTreeSet::new() };

    // SELECT list: names not followed by `(` are fields, names after AS are aliases.
    for (k, tok) in list.iter().enumerate() {
        if is_sym(Some(tok), "*") {
            return Err("SELECT * names no field: list them".into());
        }
        let Some(name) = identifier(Some(tok)) else { continue };
        if is_sym(list.get(k + 1), "(") {
            continue; // a function
        }
        if k > 0 && is_word(list.get(k - 1), "as") {
            select.aliases.insert(name.to_string());
        } else {
            select.fields.insert(name.to_string());
        }
    }

    if is_word(t.get(*i), "where") {
        *i += 1;
        let condition =
            clause(t, i, &|tok| ["group", "order", "limit"].iter().any(|k| is_word(Some(tok), k)));
        for (k, tok) in condition.iter().enumerate() {
            let Some(name) = identifier(Some(tok)) else { continue };
            if is_sym(condition.get(k + 1), "(") || name.eq_ignore_ascii_case("time") {
                continue; // now(), time > ...
            }
            let compared = condition.get(k + 1).is_some_and(|op| {
                ["=", "!=", "<>", "<", ">", "<=", ">=", "=~", "!~"].iter().any(|s| is_sym(Some(op), s))
            });
            match (compared, condition.get(k + 2)) {
                (true, Some(Tok::Str(_))) => select.tags.insert(name.to_string()),
                (true, Some(Tok::Num(_))) => select.fields.insert(name.to_string()),
                _ => return Err(format!("cannot tell whether `{name}` is a tag or a field")),
            };
        }
    }

    if is_word(t.get(*i), "group") {
        *i += 1;
        if !is_word(t.get(*i), "by") {
            return Err("GROUP without BY".into());
        }
        *i += 1;
        let group = clause(t, i, &|tok| ["order", "limit"].iter().any(|k| is_word(Some(tok), k)));
        let mut k = 0;
        while k < group.len() {
            let tok = &group[k];
            if is_sym(group.get(k + 1), "(") {
                // time(...) or fill(...): skip its arguments.
                let mut depth = 0;
                k += 1;
                while k < group.len() {
                    if is_sym(group.get(k), "(") {
                        depth += 1;
                    } else if is_sym(group.get(k), ")") {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    k += 1;
                }
            } else if let Some(name) = identifier(Some(tok)) {
                select.tags.insert(name.to_string());
            }
            k += 1;
        }
    }
    Ok(select)
}

fn parse_query(query: &str) -> Result<Select, String> {
    let tokens = tokenize(query)?;
    let mut i = 0;
    let select = parse_select(&tokens, &mut i)?;
    match tokens.get(i) {
        None => Ok(select),
        Some(tok) => Err(format!("unread after the query: {tok:?}")),
    }
}

/// Checks a SELECT against what is written; returns the columns it offers an outer query.
fn check_select(select: &Select, catalogue: &Catalogue) -> Result<BTreeSet<String>, String> {
    match &select.source {
        Source::Measurement(measurement) => {
            let (fields, tags) = catalogue
                .0
                .get(measurement)
                .ok_or_else(|| format!("no configured input writes the measurement `{measurement}`"))?;
            if let Some(field) = select.fields.iter().find(|f| !fields.contains(*f)) {
                return Err(format!("`{measurement}` has no field `{field}`"));
            }
            if let Some(tag) = select.tags.iter().find(|t| !tags.contains(*t)) {
                return Err(format!("`{measurement}` has no tag `{tag}`"));
            }
        }
        Source::Subquery(inner) => {
            let offered = check_select(inner, catalogue)?;
            if let Some(name) = select.fields.iter().chain(&select.tags).find(|n| !offered.contains(*n)) {
                return Err(format!("the subquery offers no `{name}` (only {offered:?})"));
            }
        }
    }
    Ok(select.aliases.iter().chain(&select.tags).cloned().collect())
}

fn check_query(query: &str, catalogue: &Catalogue) -> Result<(), String> {
    check_select(&parse_query(query)?, catalogue).map(|_| ())
}

/// The catalogues of what is written to each database, by data source uid.
fn catalogues(files: &BTreeMap<String, String>) -> BTreeMap<String, Catalogue> {
    let node = toml_file(files, "telegraf.conf");
    let swarm = toml_file(files, "telegraf-swarm.conf");
    provisioned_databases(files)
        .into_iter()
        .map(|(uid, database)| {
            let catalogue = match database.as_str() {
                "metrics" => Catalogue::telegraf(&[&node, &swarm]),
                "shinyproxy_usagestats" => Catalogue::shinyproxy(),
                other => panic!("data source {uid} reads {other}, which nothing writes"),
            };
            (uid, catalogue)
        })
        .collect()
}

#[test]
fn every_dashboard_query_reads_what_the_agents_or_shinyproxy_write() {
    let files = render(VARS);
    let catalogues = catalogues(&files);
    let dashboard = dashboard(&files);
    let queries = queries(&dashboard);
    assert!(queries.len() >= 12, "{} queries", queries.len());
    let mut measurements = BTreeSet::new();
    for (uid, query) in queries {
        check_query(query, &catalogues[uid]).unwrap_or_else(|e| panic!("{e}\nin: {query}"));
        let mut select = parse_query(query).unwrap();
        while let Source::Subquery(inner) = select.source {
            select = *inner;
        }
        if let Source::Measurement(m) = select.source {
            measurements.insert(m);
        }
    }
    let expected = [
        "cpu",
        "disk",
        "docker",
        "docker_container_cpu",
        "docker_container_mem",
        "docker_container_net",
        "docker_swarm",
        "event",
        "mem",
        "system",
    ];
    assert_eq!(measurements, expected.iter().map(|m| m.to_string()).collect(), "what the rows show");
}

#[test]
fn the_query_check_refuses_what_nothing_writes() {
    let files = render(VARS);
    let node = toml_file(&files, "telegraf.conf");
    let swarm = toml_file(&files, "telegraf-swarm.conf");
    let telegraf = Catalogue::telegraf(&[&node, &swarm]);
    let good = "SELECT 100 - mean(\"usage_idle\") FROM \"cpu\" WHERE \"cpu\" = 'cpu-total' AND $timeFilter \
                GROUP BY time($__interval), \"host\" fill(null)";
    assert_eq!(check_query(good, &telegraf), Ok(()));

    let refused = |query: &str, catalogue: &Catalogue, why: &str| {
        let err = check_query(query, catalogue).expect_err(query);
        assert!(err.contains(why), "{query}: {err}");
    };
    refused(&good.replace("usage_idle", "usage_idel"), &telegraf, "no field `usage_idel`");
    refused(&good.replace("FROM \"cpu\"", "FROM \"cpus\""), &telegraf, "measurement `cpus`");
    refused(&good.replace("\"host\" fill", "\"hostname\" fill"), &telegraf, "no tag `hostname`");
    refused(&good.replace("\"cpu\" = 'cpu-total'", "\"core\" = 'cpu-total'"), &telegraf, "no tag `core`");
    refused("SELECT * FROM \"cpu\"", &telegraf, "SELECT *");
    // A tag only as a label that is not in docker_label_include.
    refused(
        "SELECT mean(\"usage\") FROM \"docker_container_mem\" WHERE \"com.docker.compose.project\" = 'x'",
        &telegraf,
        "no tag `com.docker.compose.project`",
    );
    // Services come from the swarm agent: the node agent alone does not write them, nor does
    // the swarm agent write containers (namepass).
    let services = "SELECT last(\"tasks_running\") FROM \"docker_swarm\" GROUP BY \"service_name\"";
    assert_eq!(check_query(services, &telegraf), Ok(()));
    refused(services, &Catalogue::telegraf(&[&node]), "measurement `docker_swarm`");
    refused(
        "SELECT mean(\"usage\") FROM \"docker_container_mem\"",
        &Catalogue::telegraf(&[&swarm]),
        "measurement `docker_container_mem`",
    );
    // A subquery's outer query reads only what the subquery offers.
    let nodes =
        "SELECT count(\"up\") FROM (SELECT last(\"uptime\") AS \"up\" FROM \"system\" GROUP BY \"host\")";
    assert_eq!(check_query(nodes, &telegraf), Ok(()));
    refused(&nodes.replace("count(\"up\")", "count(\"uptime\")"), &telegraf, "offers no `uptime`");
    refused(&nodes.replace("last(\"uptime\")", "last(\"uptme\")"), &telegraf, "no field `uptme`");
    // ShinyProxy's events are in their own database.
    let starts = "SELECT count(\"data\") FROM \"event\" WHERE \"type\" = 'ProxyStart' AND $timeFilter";
    assert_eq!(check_query(starts, &Catalogue::shinyproxy()), Ok(()));
    refused(starts, &telegraf, "measurement `event`");
    refused(&starts.replace("\"type\"", "\"kind\""), &Catalogue::shinyproxy(), "no tag `kind`");
}
