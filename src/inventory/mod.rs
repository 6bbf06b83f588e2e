//! Inventory: the YAML file a user writes, parsed, validated and resolved into the hosts the
//! rest of clusterup works on (every default applied, every path made absolute).

mod error;
mod keys;
mod model;
mod resolve;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use error::{InventoryError, InventoryErrors};
pub use keys::closest;
pub use model::{
    DockerSource, ExposeEntry, HostKeyPolicy, HostKind, HostState, NfsSection, Role, VolumeEntry,
};
pub(crate) use resolve::expand as expand_path;
pub use validate::{is_address, is_cluster_name, is_host_name};

/// The network the proxy shares with every exposed service.
pub const PROXY_NETWORK: &str = "reverse-proxy";

/// An inventory larger than this is certainly not one: refuse it before parsing.
const MAX_INVENTORY_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub path: PathBuf,
    pub cluster: String,
    pub docker: DockerSettings,
    pub swarm: SwarmSettings,
    pub hosts: Vec<Host>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsSection>,
    pub networks: Vec<Network>,
    pub stacks: Vec<Stack>,
    /// Stacks marked `state: absent`: removed from the swarm.
    pub absent_stacks: Vec<String>,
    pub secrets: Vec<Secret>,
    pub images: Images,
    /// Seconds to wait for another package manager run to release its lock.
    pub apt_lock_timeout: u32,
    pub volumes: Vec<VolumeEntry>,
    /// Things worth telling the user that do not stop the run.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// `identity_file`s that do not exist: an error for commands that connect to the hosts,
    /// nothing for those that work offline (`inventory`, `render`).
    #[serde(skip)]
    pub missing_identity_files: Vec<InventoryError>,
    /// The `openstack:` source, validated; its servers join `hosts` only when
    /// `clusterup::cloud::resolve` has asked the cloud (never offline).
    #[serde(skip)]
    pub openstack: Option<OpenstackSource>,
}

/// `openstack:` as validated: what to ask the cloud, and how to reach the servers it gives.
#[derive(Debug, Clone)]
pub struct OpenstackSource {
    /// The clouds.yaml entry; None: `OS_CLOUD`, else the `OS_*` variables.
    pub cloud: Option<String>,
    pub select: OpenstackSelection,
    /// The metadata key holding each server's roles.
    pub role_key: String,
    /// The network whose fixed address each host gets.
    pub network: String,
    pub bastion: Option<OpenstackBastionRef>,
    /// The top-level `ssh:` with `openstack.ssh:` over it.
    pub ssh: SshTarget,
    /// Whether `ssh.user` was written (else each server's image tells its login user).
    pub ssh_user_given: bool,
    /// For each API request.
    pub timeout: Duration,
    /// Whether the servers have been added to `hosts`.
    pub resolved: bool,
    /// `manage_security_group: true`: `init` gives the nodes the `clusterup` security group.
    pub manage_security_group: bool,
    /// What that group lacks, found when the servers were read.
    pub security_group_change: Option<crate::cloud::openstack::managed_group::GroupChange>,
}

/// Which servers become hosts: all criteria given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenstackSelection {
    pub metadata: Vec<(String, String)>,
    pub name_prefix: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenstackBastionRef {
    pub server: String,
    pub user: Option<String>,
    pub port: u16,
}

/// `swarm:` as validated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SwarmSettings {
    /// The dispatcher heartbeat period; None: as the swarm has it (Docker's default: 5 s).
    #[serde(serialize_with = "as_text")]
    pub dispatcher_heartbeat: Option<std::time::Duration>,
}

fn as_text<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// `2s`, `500ms`, `1m30s`: as the inventory writes durations.
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms > 60_000 => format!(
            "{}m{}",
            ms / 60_000,
            format_duration(std::time::Duration::from_millis((ms % 60_000) as u64))
        ),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// `500ms`, `2s`, `1m`, `1m30s` as a duration; `None` for anything else.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = 0u128;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, ms) = if rest.starts_with("ms") {
            ("ms", 1)
        } else if rest.starts_with('s') {
            ("s", 1000)
        } else if rest.starts_with('m') {
            ("m", 60_000)
        } else if rest.starts_with('h') {
            ("h", 3_600_000)
        } else {
            return None;
        };
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(ms)?)?;
    }
    Some(std::time::Duration::from_millis(u64::try_from(total).ok()?))
}

#[derive(Debug, Clone, Serialize)]
pub struct DockerSettings {
    pub source: DockerSource,
    pub log_max_size: String,
    pub log_max_file: u32,
    pub metrics_address: Option<String>,
    pub drain_workers_on_restart: bool,
    /// `docker.version`: `latest`, an exact package version or a pattern with `*`/`?`.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub kind: HostKind,
    pub roles: Vec<Role>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    pub ssh: SshTarget,
    pub state: HostState,
    /// Where the host comes from: `static` (`hosts:`) or `openstack:SERVER_ID`.
    pub source: String,
}

impl Host {
    pub fn is_manager(&self) -> bool {
        self.roles.contains(&Role::Manager) && self.state == HostState::Present
    }

    /// Managers and workers run the Docker engine and belong to the swarm; a host marked
    /// `state: absent` is on its way out and is neither.
    pub fn is_swarm_node(&self) -> bool {
        self.state == HostState::Present
            && (self.roles.contains(&Role::Manager) || self.roles.contains(&Role::Worker))
    }

    pub fn is_absent(&self) -> bool {
        self.state == HostState::Absent
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SshTarget {
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bastion: Option<Bastion>,
    #[serde(serialize_with = "as_seconds")]
    pub connect_timeout: Duration,
    #[serde(serialize_with = "as_seconds")]
    pub command_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub encrypted: bool,
    /// None: the smallest interface MTU found on the nodes, minus the VXLAN overhead.
    pub mtu: Option<u32>,
    /// Line of the network's entry, for messages.
    #[serde(skip)]
    pub line: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    pub template: TemplateRef,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub networks: Vec<String>,
    pub expose: Vec<ExposeEntry>,
    /// Line of each `expose` entry, for messages.
    #[serde(skip)]
    pub expose_lines: Vec<u64>,
    /// Line of the stack's entry, for messages.
    #[serde(skip)]
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateRef {
    Builtin(String),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub name: String,
    pub source: SecretSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Images {
    pub preload: Vec<PathBuf>,
    /// `docker stack deploy --resolve-image`: `always` (the default) asks the registry;
    /// `never` uses what the nodes have (preloaded images, clusters without a registry).
    pub resolve: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bastion {
    pub user: String,
    pub host: String,
    pub port: u16,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Inventory {
    /// Reads, parses, validates and resolves an inventory file. Every problem found is
    /// reported at once, each with the file, line and column it comes from.
    pub fn load(path: &Path) -> Result<Inventory, InventoryErrors> {
        let text = read_text(path)?;
        Self::from_text(path, &text)
    }

    /// As [`Inventory::load`], for text already in memory; `path` names it in messages and
    /// anchors relative paths.
    pub fn from_text(path: &Path, text: &str) -> Result<Inventory, InventoryErrors> {
        let syntax = |e: serde_saphyr::Error| InventoryErrors::one(InventoryError::from_yaml(path, &e));
        let tree: keys::Node = serde_saphyr::from_str(text).map_err(syntax)?;
        let unknown = keys::check(path, &tree);
        if !unknown.is_empty() {
            return Err(InventoryErrors(unknown));
        }
        let file: model::InventoryFile = serde_saphyr::from_str(text).map_err(syntax)?;
        let warnings = validate::check(path, &file)?;
        let mut inventory = resolve::resolve(path, file)?;
        inventory.warnings.extend(warnings);
        Ok(inventory)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The address the nodes mount the NFS share from: the NAS host's advertise address (its
    /// address on the storage network), else its address; or the appliance's address.
    pub fn nfs_address(&self) -> Option<String> {
        let nfs = self.nfs.as_ref()?;
        Some(match self.host(&nfs.server) {
            Some(h) => h.advertise_address.clone().unwrap_or_else(|| h.address.clone()),
            None => nfs.server.clone(),
        })
    }

    /// Docker `local` driver options that put `volume` on the NFS share, or None when the
    /// inventory declares no such volume. NFS 4.2: Docker mounts with the mount system call,
    /// where `nfsvers=4` means 4.0, whose delegations hung the lab's NAS.
    pub fn nfs_volume(&self, volume: &str) -> Option<serde_json::Value> {
        self.volumes.iter().find(|v| v.name == volume)?;
        self.nfs_volume_at(volume)
    }

    /// The driver options of a volume kept in `PATH/DIR` on the NFS share; None without NFS
    /// storage.
    pub fn nfs_volume_at(&self, dir: &str) -> Option<serde_json::Value> {
        let nfs = self.nfs.as_ref()?;
        let addr = self.nfs_address()?;
        Some(serde_json::json!({
            "driver": "local",
            "driver_opts": {
                "type": "nfs",
                "o": format!("addr={addr},rw,nfsvers=4.2,hard,timeo=600,retrans=3"),
                "device": format!(":{}/{dir}", nfs.path.trim_end_matches('/')),
            }
        }))
    }
}

fn read_text(path: &Path) -> Result<String, InventoryErrors> {
    let fail = |message: String| InventoryErrors::one(InventoryError::file(path, message));
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_INVENTORY_BYTES {
        return Err(fail(format!(
            "is {} bytes; an inventory may be at most {} bytes",
            meta.len(),
            MAX_INVENTORY_BYTES
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "is not UTF-8 text (invalid byte at offset {}); is this the right file?",
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests;
