//! The configuration files clusterup writes on hosts, built from validated values with
//! serializers rather than text templates, so no inventory value or fact can break their
//! syntax or widen what they allow.

use std::net::IpAddr;

use serde::Serialize;

use crate::inventory::DockerSettings;

/// `/etc/docker/daemon.json`, built from the inventory's validated `docker:` values with
/// serde: no value can break the JSON, which would stop the engine on every node. Fields in
/// this order, pretty-printed, so the file is byte for byte what earlier versions wrote (a
/// different file would restart every engine).
pub fn daemon_json(docker: &DockerSettings, metrics_address: Option<&str>) -> String {
    #[derive(Serialize)]
    struct DaemonJson<'a> {
        #[serde(rename = "log-driver")]
        log_driver: &'a str,
        #[serde(rename = "log-opts")]
        log_opts: LogOpts<'a>,
        #[serde(rename = "metrics-addr", skip_serializing_if = "Option::is_none")]
        metrics_addr: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct LogOpts<'a> {
        #[serde(rename = "max-size")]
        max_size: &'a str,
        #[serde(rename = "max-file")]
        max_file: String,
    }
    let file = DaemonJson {
        log_driver: "json-file",
        log_opts: LogOpts { max_size: &docker.log_max_size, max_file: docker.log_max_file.to_string() },
        metrics_addr: metrics_address,
    };
    serde_json::to_string_pretty(&file).unwrap_or_default()
}

/// `/etc/exports.d/clusterup.exports` on a managed NAS: the volume root, read-write for the
/// swarm nodes' addresses only. `root` was validated as an absolute path of plain characters;
/// the clients are IP addresses, so no space or wildcard can open the export to others.
pub fn nfs_exports(root: &str, clients: &[IpAddr]) -> String {
    let mut text =
        String::from("# Written by clusterup: the volume root, for the cluster's nodes only. Do not edit.\n");
    text.push_str(root);
    for client in clients {
        text.push_str(&format!(" {client}(rw,sync,no_subtree_check,no_root_squash)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DockerSource;

    #[test]
    fn daemon_json_is_what_earlier_versions_wrote() {
        let mut docker = DockerSettings {
            source: DockerSource::Distro,
            log_max_size: "10m".into(),
            log_max_file: 3,
            metrics_address: None,
            drain_workers_on_restart: true,
            version: None,
        };
        assert_eq!(
            daemon_json(&docker, None),
            "{\n  \"log-driver\": \"json-file\",\n  \"log-opts\": {\n    \"max-size\": \"10m\",\n    \"max-file\": \"3\"\n  }\n}"
        );
        docker.log_max_size = "a\"b".into(); // validation refuses it; serde still keeps the JSON whole
        let parsed: serde_json::Value =
            serde_json::from_str(&daemon_json(&docker, Some("0.0.0.0:9323"))).unwrap();
        assert_eq!(parsed["metrics-addr"], "0.0.0.0:9323");
        assert_eq!(parsed["log-opts"]["max-size"], "a\"b");
    }

    #[test]
    fn exports_name_each_node_and_nothing_else() {
        let clients: Vec<IpAddr> = ["10.0.0.1", "fd00::2"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(
            nfs_exports("/srv/clusterup", &clients),
            "# Written by clusterup: the volume root, for the cluster's nodes only. Do not edit.\n\
             /srv/clusterup 10.0.0.1(rw,sync,no_subtree_check,no_root_squash) fd00::2(rw,sync,no_subtree_check,no_root_squash)"
        );
    }
}
