//! Facts: what a host is and what state it is in, gathered in one round trip by
//! `roles/facts/gather.sh` and parsed here. Planning works from these alone.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use bollard::Docker;
use serde::{Deserialize, Serialize};

use crate::commands;
use crate::connection::Session;
use crate::roles;

/// Systems clusterup supports (`os-release` ID and VERSION_ID); anything else is refused
/// before a change is made. Debian 11 is past its long-term support and is not among them.
pub const SUPPORTED: &[(&str, &str)] =
    &[("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04"), ("ubuntu", "26.04")];

#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
    pub os_name: String,
    pub arch: String,
    pub hostname: String,
    pub machine_id: String,
    pub route_iface: Option<String>,
    pub route_addr: Option<String>,
    pub route_mtu: Option<u32>,
    pub apparmor_enabled: bool,
    /// Engine packages the host's apt sources offer, with their candidate versions; empty
    /// when its package lists were never downloaded.
    pub apt_candidates: BTreeMap<String, String>,
    /// The installed version of each engine package that is installed.
    pub apt_installed: BTreeMap<String, String>,
    /// Every version of each engine package the apt sources offer (and the installed one).
    pub apt_versions: BTreeMap<String, Vec<String>>,
    /// The `docker` command is there (the engine can be installed without it).
    pub docker_cli: bool,
    pub docker_installed: bool,
    pub docker_version: Option<String>,
    pub swarm: Option<SwarmInfo>,
    /// Whether the kernel can carry an encrypted overlay network (IPsec ESP with AES-GCM).
    pub ipsec: Ipsec,
}

/// The kernel's support for IPsec, as its configuration tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipsec {
    Yes,
    /// The kernel options it lacks, e.g. `CONFIG_INET_ESP`.
    Missing(Vec<String>),
    /// Neither /proc/config.gz nor /boot/config-<release> could be read.
    #[default]
    Unknown,
}

/// `docker info --format '{{json .Swarm}}'`, the parts planning needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SwarmInfo {
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    #[serde(default)]
    pub node_addr: String,
    #[serde(default)]
    pub local_node_state: String,
    #[serde(default)]
    pub control_available: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub cluster: Option<ClusterInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterInfo {
    #[serde(rename = "ID", default)]
    pub id: String,
}

impl SwarmInfo {
    pub fn is_active(&self) -> bool {
        self.local_node_state == "active"
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.id.as_str()).filter(|id| !id.is_empty())
    }
}

/// `name=value name=value`, as the facts script prints package lists.
fn pairs(value: &str) -> impl Iterator<Item = (String, String)> + '_ {
    value.split_whitespace().filter_map(|p| p.split_once('=')).map(|(n, v)| (n.to_string(), v.to_string()))
}

impl Facts {
    pub fn parse(text: &str) -> Result<Facts> {
        let mut facts = Facts::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let some = || (!value.is_empty()).then(|| value.to_string());
            match key {
                "os_id" => facts.os_id = value.into(),
                "os_version" => facts.os_version = value.into(),
                "os_name" => facts.os_name = value.into(),
                "arch" => facts.arch = value.into(),
                "hostname" => facts.hostname = value.into(),
                "machine_id" => facts.machine_id = value.into(),
                "route_iface" => facts.route_iface = some(),
                // Goes into exports and firewall rules: only a real address is kept.
                "route_addr" => {
                    facts.route_addr = value.parse::<std::net::IpAddr>().ok().map(|ip| ip.to_string())
                }
                "route_mtu" => facts.route_mtu = value.parse().ok(),
                "apparmor_enabled" => facts.apparmor_enabled = value == "Y",
                "apt_candidates" => facts.apt_candidates = pairs(value).collect(),
                "apt_installed" => facts.apt_installed = pairs(value).collect(),
                "apt_versions" => {
                    facts.apt_versions =
                        pairs(value).map(|(n, v)| (n, v.split(',').map(str::to_string).collect())).collect()
                }
                "docker_cli" => facts.docker_cli = value == "yes",
                "ipsec" => {
                    facts.ipsec = match value.strip_prefix("no:") {
                        _ if value == "yes" => Ipsec::Yes,
                        Some(missing) => Ipsec::Missing(missing.split(',').map(str::to_string).collect()),
                        None => Ipsec::Unknown,
                    }
                }
                "docker_installed" => facts.docker_installed = value == "yes",
                "docker_version" => facts.docker_version = some(),
                "swarm" if !value.is_empty() => {
                    facts.swarm = Some(
                        serde_json::from_str(value)
                            .map_err(|e| anyhow!("cannot read the swarm state: {e}"))?,
                    )
                }
                _ => {}
            }
        }
        if facts.os_id.is_empty() {
            return Err(anyhow!("the facts script printed nothing usable"));
        }
        Ok(facts)
    }

    /// Refuses systems outside [`SUPPORTED`], naming the ones that are.
    pub fn check_supported(&self) -> Result<(), String> {
        if SUPPORTED.iter().any(|(id, v)| *id == self.os_id && *v == self.os_version) {
            return Ok(());
        }
        let list: Vec<String> = SUPPORTED.iter().map(|(id, v)| format!("{id} {v}")).collect();
        Err(format!(
            "{} ({} {}) is not supported; supported systems: {}",
            self.os_name,
            self.os_id,
            self.os_version,
            list.join(", ")
        ))
    }

    /// The engine's version and swarm state as its API's `/info` gives them: the same as
    /// the script's `docker info --format '{{.ServerVersion}}|{{json .Swarm}}'` line.
    pub fn set_engine(
        &mut self,
        version: Option<String>,
        swarm: Option<&bollard::models::SwarmInfo>,
    ) -> Result<()> {
        self.docker_version = version.filter(|v| !v.is_empty());
        self.swarm = match swarm {
            Some(swarm) => Some(
                serde_json::to_value(swarm)
                    .and_then(serde_json::from_value)
                    .map_err(|e| anyhow!("cannot read the swarm state: {e}"))?,
            ),
            None => None,
        };
        Ok(())
    }

    /// The node's swarm state, `inactive` when Docker is absent or stopped.
    pub fn swarm_state(&self) -> &str {
        self.swarm.as_ref().map(|s| s.local_node_state.as_str()).unwrap_or("inactive")
    }
}

/// Runs the facts script on a host and parses its output. With `engine` (a client over the
/// engine's socket, see [`crate::engine::connect_socket`]) the engine's version and swarm
/// state come from its API and the script runs as the SSH user; without one the script asks
/// `docker info` itself, through `sudo -n`. The socket saves starting sudo and the docker
/// command on every host of every run (about 40 ms of the host's CPU each, measured).
pub async fn gather(session: &Session, ssh_user: &str, engine: Option<&Docker>) -> Result<Facts> {
    let (via, sudo) = if engine.is_some() { ("api", false) } else { ("script", session.sudo) };
    let inputs = [commands::Input::new("ENGINE_VIA", via)];
    let output = session.run(&commands::script(&roles::facts(), &inputs, sudo)).await?;
    if !output.success() {
        if commands::sudo_refused(&output.stderr) {
            return Err(anyhow!("{}: {}", session.host, commands::sudo_needed(ssh_user)));
        }
        return Err(anyhow!(
            "{}: gathering facts failed (exit {}): {}",
            session.host,
            output.status,
            output.tail()
        ));
    }
    let mut facts = Facts::parse(&output.stdout).map_err(|e| anyhow!("{}: {e}", session.host))?;
    if let Some(docker) = engine {
        let info = docker
            .info()
            .await
            .map_err(|e| anyhow!("{}: cannot read the engine's info: {e}", session.host))?;
        facts.set_engine(info.server_version, info.swarm.as_ref())?;
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"os_id=debian
os_version=12
os_name=Debian GNU/Linux 12 (bookworm)
arch=x86_64
hostname=m1
machine_id=0123
route_iface=eth0
route_addr=10.213.7.11
route_mtu=1450
apparmor_enabled=N
apt_candidates=docker.io=20.10.24+dfsg1-1+deb12u1 docker-ce=5:28.0.1-1~debian.12~bookworm
docker_cli=yes
docker_installed=yes
docker_version=20.10.24+dfsg1
swarm={"NodeID":"abc","NodeAddr":"10.213.7.11","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"abc","Addr":"10.213.7.11:2377"}],"Nodes":3,"Managers":1,"Cluster":{"ID":"clu1","Version":{"Index":10}}}
"#;

    #[test]
    fn parses_every_fact() {
        let f = Facts::parse(SAMPLE).unwrap();
        assert_eq!(f.os_id, "debian");
        assert_eq!(f.route_mtu, Some(1450));
        assert_eq!(f.route_addr.as_deref(), Some("10.213.7.11"));
        assert!(f.docker_installed && f.docker_cli && !f.apparmor_enabled);
        assert_eq!(f.apt_candidates["docker.io"], "20.10.24+dfsg1-1+deb12u1");
        assert_eq!(f.apt_candidates.len(), 2);
        let swarm = f.swarm.unwrap();
        assert!(swarm.is_active() && swarm.control_available);
        assert_eq!(swarm.cluster_id(), Some("clu1"));
        assert_eq!(swarm.node_id, "abc");
    }

    #[test]
    fn the_engine_api_gives_the_same_swarm_facts_as_the_script() {
        use bollard::models::{ClusterInfo as ApiCluster, LocalNodeState, SwarmInfo as ApiSwarm};
        let from_script = Facts::parse(SAMPLE).unwrap();
        let api = ApiSwarm {
            node_id: Some("abc".into()),
            node_addr: Some("10.213.7.11".into()),
            local_node_state: Some(LocalNodeState::ACTIVE),
            control_available: Some(true),
            error: Some(String::new()),
            nodes: Some(3),
            managers: Some(1),
            cluster: Some(ApiCluster { id: Some("clu1".into()), ..Default::default() }),
            ..Default::default()
        };
        let mut from_api = Facts { os_id: "debian".into(), ..Facts::default() };
        from_api.set_engine(Some("20.10.24+dfsg1".into()), Some(&api)).unwrap();
        assert_eq!(from_api.swarm, from_script.swarm);
        assert_eq!(from_api.docker_version, from_script.docker_version);
        // An engine outside any swarm answers a state and nothing else.
        let idle = ApiSwarm { local_node_state: Some(LocalNodeState::INACTIVE), ..Default::default() };
        from_api.set_engine(Some(String::new()), Some(&idle)).unwrap();
        assert_eq!(from_api.swarm_state(), "inactive");
        assert_eq!(from_api.docker_version, None, "an empty version is no version");
        assert!(from_api.swarm.as_ref().unwrap().cluster_id().is_none());
    }

    #[test]
    fn a_host_without_docker_is_inactive() {
        let f = Facts::parse("os_id=ubuntu\nos_version=24.04\ndocker_installed=no\n").unwrap();
        assert!(f.swarm.is_none());
        assert_eq!(f.swarm_state(), "inactive");
        assert!(f.check_supported().is_ok());
    }

    #[test]
    fn unsupported_systems_are_refused_with_the_list() {
        let f = Facts::parse("os_id=centos\nos_version=7\nos_name=CentOS Linux 7\n").unwrap();
        let err = f.check_supported().unwrap_err();
        assert!(
            err.contains("CentOS Linux 7") && err.contains("debian 12, debian 13, ubuntu 22.04"),
            "{err}"
        );
        let old = Facts::parse("os_id=debian\nos_version=11\nos_name=Debian GNU/Linux 11\n").unwrap();
        assert!(old.check_supported().is_err());
        let trixie = Facts::parse("os_id=debian\nos_version=13\n").unwrap();
        assert!(trixie.check_supported().is_ok());
    }

    #[test]
    fn a_route_address_that_is_not_an_ip_is_dropped() {
        let f = Facts::parse("os_id=debian\nroute_addr=10.0.0.1 *\n").unwrap();
        assert_eq!(f.route_addr, None);
        let f = Facts::parse("os_id=debian\nroute_addr=fd00::5\n").unwrap();
        assert_eq!(f.route_addr.as_deref(), Some("fd00::5"));
    }

    #[test]
    fn ipsec_support_is_read_with_what_the_kernel_lacks() {
        let parse = |line: &str| Facts::parse(&format!("os_id=debian\n{line}\n")).unwrap().ipsec;
        assert_eq!(parse("ipsec=yes"), Ipsec::Yes);
        assert_eq!(
            parse("ipsec=no:CONFIG_INET_ESP,CONFIG_CRYPTO_GCM"),
            Ipsec::Missing(vec!["CONFIG_INET_ESP".into(), "CONFIG_CRYPTO_GCM".into()])
        );
        assert_eq!(parse("ipsec=unknown"), Ipsec::Unknown);
        assert_eq!(parse(""), Ipsec::Unknown);
    }

    #[test]
    fn empty_output_is_an_error() {
        assert!(Facts::parse("").is_err());
    }
}
