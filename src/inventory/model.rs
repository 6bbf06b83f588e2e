//! The inventory file as the user writes it. These types are the schema: every key a user may
//! write is a field here, and anything else is rejected with its line and column.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    pub cluster: ClusterSection,
    #[serde(default)]
    pub ssh: SshSection,
    #[serde(default)]
    pub docker: Option<Spanned<DockerSection>>,
    /// Settings of the swarm itself (`docker swarm update`).
    #[serde(default)]
    pub swarm: Option<Spanned<SwarmSection>>,
    /// Optional when `openstack:` gives the hosts.
    #[serde(default = "no_hosts")]
    pub hosts: Spanned<Vec<Spanned<HostEntry>>>,
    /// Hosts read from an OpenStack cloud, beside (and merged with) `hosts:`.
    #[serde(default)]
    pub openstack: Option<Spanned<OpenstackSection>>,
    #[serde(default)]
    pub storage: Option<StorageSection>,
    #[serde(default)]
    pub networks: Vec<Spanned<NetworkEntry>>,
    #[serde(default)]
    pub stacks: Vec<Spanned<StackEntry>>,
    #[serde(default)]
    pub secrets: Vec<Spanned<SecretEntry>>,
    #[serde(default)]
    pub images: ImagesSection,
    #[serde(default)]
    pub apt: AptSection,
    /// Named volumes on the NFS share: a stack volume of the same name is backed by it.
    #[serde(default)]
    pub volumes: Vec<Spanned<VolumeEntry>>,
}

fn no_hosts() -> Spanned<Vec<Spanned<HostEntry>>> {
    Spanned::new(Vec::new(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}

/// A dynamic inventory source: the servers of an OpenStack project, read through its APIs
/// (`src/cloud`) by the commands that need hosts, never by the offline parse.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackSection {
    /// An entry of clouds.yaml; without it `OS_CLOUD`, else the `OS_*` variables.
    pub cloud: Option<Spanned<String>>,
    /// Which servers become hosts (all criteria given must hold).
    pub select: Spanned<OpenstackSelect>,
    /// Where each server's roles are read from; default `{metadata: role}`.
    pub role_from: Option<Spanned<OpenstackRoleFrom>>,
    /// The network whose fixed address swarm uses (and SSH, through the bastion).
    pub network: Spanned<String>,
    /// A server whose floating IP is the jump host for these servers.
    pub bastion: Option<Spanned<OpenstackBastion>>,
    /// Create a `clusterup` security group with the swarm's rules (not supported yet).
    #[serde(default)]
    pub manage_security_group: Option<Spanned<bool>>,
    /// SSH settings for these servers over the top-level `ssh:`, key by key.
    pub ssh: Option<SshSection>,
    /// Seconds each API request may take.
    pub timeout: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackSelect {
    /// Servers whose metadata has all these key/value pairs.
    pub metadata: Option<Labels>,
    /// Servers whose name starts with this.
    pub name_prefix: Option<Spanned<String>>,
    /// Servers that carry all these tags.
    pub tags: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackRoleFrom {
    /// The metadata key holding `manager`, `worker` or `nfs-server` (comma-separated for more).
    pub metadata: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackBastion {
    /// The server's name.
    pub server: Spanned<String>,
    /// The login user on the bastion; default: the hosts' SSH user.
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
}

/// The swarm's own settings. Each is left as the swarm has it when not given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmSection {
    /// How often every node reports to the managers (`10s`, `2s`, `500ms`); a node that misses
    /// a few reports in a row is declared down and its tasks are started elsewhere.
    pub dispatcher_heartbeat: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeEntry {
    pub name: String,
    /// Owner of the volume's directory on the NAS (the service's user inside its container).
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptSection {
    /// Seconds to wait for another package manager run to release its lock.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: u32,
}

impl Default for AptSection {
    fn default() -> Self {
        AptSection { lock_timeout: default_lock_timeout() }
    }
}

fn default_lock_timeout() -> u32 {
    300
}

/// An overlay network for one central service (`database`, `reverse-proxy`, ...).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    pub name: Spanned<String>,
    #[serde(default)]
    pub encrypted: bool,
    pub mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackEntry {
    pub name: Spanned<String>,
    /// A built-in template's name, or a path (from the inventory's folder) to a template file.
    /// Required unless the stack is `absent`.
    pub template: Option<Spanned<String>>,
    /// `absent`: remove the stack from the swarm.
    #[serde(default)]
    pub state: HostState,
    #[serde(default)]
    pub vars: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub networks: Vec<Spanned<String>>,
    #[serde(default)]
    pub expose: Vec<Spanned<ExposeEntry>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExposeEntry {
    pub service: String,
    pub host: String,
    pub port: u16,
    /// Route a user's requests to the same task every time (Shiny apps need it).
    #[serde(default)]
    pub sticky: bool,
}

/// A swarm secret; its value comes from an environment variable or a file, never the inventory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretEntry {
    pub name: Spanned<String>,
    pub env: Option<String>,
    pub file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesSection {
    /// `docker save` archives loaded on every node that lacks their images.
    #[serde(default)]
    pub preload: Vec<Spanned<String>>,
    #[serde(default)]
    pub resolve: Option<ResolveImage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolveImage {
    Always,
    Changed,
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub name: Spanned<String>,
}

/// SSH settings: the top-level block gives defaults, a host's own block overrides them key by key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSection {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub host_key_policy: Option<HostKeyPolicy>,
    pub bastion: Option<Spanned<String>>,
    /// Seconds to wait for TCP connect plus SSH handshake and authentication.
    pub connect_timeout: Option<Spanned<u64>>,
    /// Seconds one remote command may run (package installs are the long ones).
    pub command_timeout: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Only keys already in known_hosts are accepted.
    Strict,
    /// Trust on first use: unknown hosts are learned, changed keys are refused.
    AcceptNew,
    /// No checking at all (labs only).
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    #[serde(default)]
    pub source: DockerSource,
    #[serde(default = "default_log_max_size")]
    pub log_max_size: String,
    #[serde(default = "default_log_max_file")]
    pub log_max_file: u32,
    /// Address for the engine's Prometheus metrics, e.g. `0.0.0.0:9323`; off when absent.
    pub metrics_address: Option<String>,
    /// Move a worker's tasks to other nodes before its engine restarts for a new daemon.json
    /// (default); false restarts it with its tasks on it (they stop and start again there).
    #[serde(default = "default_true")]
    pub drain_workers_on_restart: bool,
    /// The engine package's version: `latest` (what apt offers), an exact version, or a
    /// pattern (`26.1.*`, the highest match). Absent: installed once, never upgraded.
    pub version: Option<String>,
}

impl Default for DockerSection {
    fn default() -> Self {
        DockerSection {
            source: DockerSource::default(),
            log_max_size: default_log_max_size(),
            log_max_file: default_log_max_file(),
            metrics_address: None,
            drain_workers_on_restart: true,
            version: None,
        }
    }
}

fn default_log_max_size() -> String {
    "10m".into()
}

fn default_log_max_file() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerSource {
    /// The distribution's own `docker.io` package.
    #[default]
    Distro,
    /// Docker's apt repository (`docker-ce`).
    Docker,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    #[serde(default)]
    pub kind: HostKind,
    pub roles: Option<Spanned<Vec<Role>>>,
    #[serde(default)]
    pub labels: Labels,
    /// The address other nodes reach this one at; defaults to the address of the
    /// interface that holds the default route, as Docker itself would pick.
    pub advertise_address: Option<Spanned<String>>,
    pub ssh: Option<SshSection>,
    /// `absent`: drain the node, move its tasks, take it out of the swarm.
    #[serde(default)]
    pub state: HostState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKind {
    #[default]
    BareMetal,
    Nas,
    Openstack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Manager,
    Worker,
    NfsServer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
            Role::NfsServer => "nfs-server",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub nfs: Option<NfsSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NfsSection {
    pub server: String,
    pub path: String,
    #[serde(default = "default_true")]
    pub managed: bool,
}

fn default_true() -> bool {
    true
}

/// Node labels in file order, each key with its position (for messages about one label).
#[derive(Debug, Default)]
pub struct Labels(pub Vec<(Spanned<String>, ScalarString)>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of label names to values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut labels = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, ScalarString>()? {
                    labels.push(entry);
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A label value: YAML lets users write `ssd: true` or `rack: 3`; Docker labels are strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ScalarString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
