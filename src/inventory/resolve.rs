//! From the file as written to the hosts clusterup works on: defaults applied, host SSH
//! settings merged over the top-level ones, paths made absolute.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{InventoryError, InventoryErrors};
use super::model::{
    HostEntry, HostKeyPolicy, HostKind, HostState, InventoryFile, OpenstackSection, ResolveImage, SshSection,
};
use super::validate::is_address;
use super::{Bastion, DockerSettings, Host, Inventory, Role, SshTarget, SwarmSettings};
use super::{Images, Network, PROXY_NETWORK, Secret, SecretSource, Stack, TemplateRef};
use super::{OpenstackBastionRef, OpenstackSelection, OpenstackSource};

const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
const DEFAULT_COMMAND_TIMEOUT: u64 = 900;
/// Seconds one OpenStack API request may take.
const DEFAULT_CLOUD_TIMEOUT: u64 = 30;
/// The server metadata key that holds its roles unless `openstack.role_from` names another.
pub(super) const DEFAULT_ROLE_KEY: &str = "role";

pub fn resolve(path: &Path, file: InventoryFile) -> Result<Inventory, InventoryErrors> {
    let path = absolute(path);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut errors = Vec::new();
    let mut hosts = Vec::new();
    let mut missing_identity_files: Vec<InventoryError> = Vec::new();
    for entry in file.hosts.value {
        let host = entry.value;
        let ssh = merge(&file.ssh, host.ssh.as_ref());
        // A missing key file matters only to commands that connect; hosts sharing the
        // top-level setting share one message.
        if let Some(Err(e)) =
            ssh.identity_file.as_ref().map(|f| existing_file(&path, &dir, f, "identity_file"))
            && !missing_identity_files.contains(&e)
        {
            missing_identity_files.push(e);
        }
        match ssh_target(&path, &dir, &ssh) {
            Ok(target) => hosts.push(Host {
                roles: effective_roles(&host),
                name: host.name.value,
                address: host.address.value,
                kind: host.kind,
                labels: host.labels.0.into_iter().map(|(k, v)| (k.value, v.0)).collect(),
                advertise_address: host.advertise_address.map(|a| a.value),
                ssh: target,
                state: host.state,
                source: "static".into(),
            }),
            Err(e) => errors.push(e),
        }
    }
    let mut openstack = None;
    if let Some(section) = file.openstack {
        let section = section.value;
        let ssh = merge(&file.ssh, section.ssh.as_ref());
        if let Some(Err(e)) =
            ssh.identity_file.as_ref().map(|f| existing_file(&path, &dir, f, "identity_file"))
            && !missing_identity_files.contains(&e)
        {
            missing_identity_files.push(e);
        }
        match ssh_target(&path, &dir, &ssh) {
            Ok(target) => openstack = Some(openstack_source(section, target, ssh.user.is_some())),
            Err(e) => errors.push(e),
        }
    }
    let networks = file
        .networks
        .into_iter()
        .map(|n| Network {
            line: n.referenced.line(),
            name: n.value.name.value,
            encrypted: n.value.encrypted,
            mtu: n.value.mtu,
        })
        .collect();
    let mut stacks = Vec::new();
    let mut absent_stacks = Vec::new();
    for entry in file.stacks {
        let line = entry.referenced.line();
        let stack = entry.value;
        let Some(template) = stack.template.filter(|_| stack.state == HostState::Present) else {
            absent_stacks.push(stack.name.value);
            continue;
        };
        let template = if is_template_path(&template.value) {
            match existing_file(&path, &dir, &template, "template") {
                Ok(p) => TemplateRef::File(p),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else {
            TemplateRef::Builtin(template.value)
        };
        let mut networks: Vec<String> = stack.networks.into_iter().map(|n| n.value).collect();
        if !stack.expose.is_empty() && !networks.iter().any(|n| n == PROXY_NETWORK) {
            networks.push(PROXY_NETWORK.to_string());
        }
        stacks.push(Stack {
            name: stack.name.value,
            template,
            vars: stack.vars,
            networks,
            expose_lines: stack.expose.iter().map(|e| e.referenced.line()).collect(),
            expose: stack.expose.into_iter().map(|e| e.value).collect(),
            line,
        });
    }
    let mut secrets = Vec::new();
    for entry in file.secrets {
        let secret = entry.value;
        let source = match (secret.env, secret.file) {
            (Some(var), None) => SecretSource::Env(var),
            (None, Some(f)) => match existing_file(&path, &dir, &f, "secret file") {
                Ok(p) => SecretSource::File(p),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            // Validation already reported both-or-neither.
            _ => continue,
        };
        secrets.push(Secret { name: secret.name.value, source });
    }
    let mut preload = Vec::new();
    for p in &file.images.preload {
        match existing_file(&path, &dir, p, "image archive") {
            Ok(p) => preload.push(p),
            Err(e) => errors.push(e),
        }
    }
    let resolve = match file.images.resolve.unwrap_or(ResolveImage::Always) {
        ResolveImage::Always => "always",
        ResolveImage::Changed => "changed",
        ResolveImage::Never => "never",
    };
    if !errors.is_empty() {
        return Err(InventoryErrors(errors));
    }
    let docker = file.docker.map(|d| d.value).unwrap_or_default();
    Ok(Inventory {
        networks,
        stacks,
        secrets,
        images: Images { preload, resolve: resolve.to_string() },
        apt_lock_timeout: file.apt.lock_timeout,
        volumes: file.volumes.into_iter().map(|v| v.value).collect(),
        path,
        cluster: file.cluster.name.value,
        swarm: SwarmSettings {
            dispatcher_heartbeat: file
                .swarm
                .as_ref()
                .and_then(|s| s.value.dispatcher_heartbeat.as_deref())
                .and_then(super::parse_duration),
        },
        docker: DockerSettings {
            source: docker.source,
            log_max_size: docker.log_max_size,
            log_max_file: docker.log_max_file,
            metrics_address: docker.metrics_address,
            drain_workers_on_restart: docker.drain_workers_on_restart,
            version: docker.version,
        },
        hosts,
        nfs: file.storage.and_then(|s| s.nfs),
        warnings: Vec::new(),
        missing_identity_files,
        absent_stacks,
        openstack,
    })
}

fn openstack_source(section: OpenstackSection, ssh: SshTarget, ssh_user_given: bool) -> OpenstackSource {
    let select = section.select.value;
    OpenstackSource {
        cloud: section.cloud.map(|c| c.value),
        select: OpenstackSelection {
            metadata: select
                .metadata
                .map(|m| m.0.into_iter().map(|(k, v)| (k.value, v.0)).collect())
                .unwrap_or_default(),
            name_prefix: select.name_prefix.map(|p| p.value),
            tags: select.tags.unwrap_or_default().into_iter().map(|t| t.value).collect(),
        },
        role_key: section.role_from.map_or_else(|| DEFAULT_ROLE_KEY.to_string(), |r| r.value.metadata.value),
        network: section.network.value,
        bastion: section.bastion.map(|b| OpenstackBastionRef {
            server: b.value.server.value,
            user: b.value.user.map(|u| u.value),
            port: b.value.port.map_or(22, |p| p.value),
        }),
        ssh,
        ssh_user_given,
        timeout: Duration::from_secs(section.timeout.map_or(DEFAULT_CLOUD_TIMEOUT, |t| t.value)),
        resolved: false,
        manage_security_group: section.manage_security_group.is_some_and(|m| m.value),
        security_group_change: None,
    }
}

/// Roles default by kind: a NAS serves NFS, any other machine is a worker.
pub(super) fn effective_roles(host: &HostEntry) -> Vec<Role> {
    match &host.roles {
        Some(roles) => {
            let mut roles = roles.value.clone();
            roles.sort();
            roles.dedup();
            roles
        }
        None if host.kind == HostKind::Nas => vec![Role::NfsServer],
        None => vec![Role::Worker],
    }
}

fn merge(defaults: &SshSection, host: Option<&SshSection>) -> SshSection {
    let Some(host) = host else { return defaults.clone() };
    SshSection {
        user: host.user.clone().or_else(|| defaults.user.clone()),
        port: host.port.clone().or_else(|| defaults.port.clone()),
        identity_file: host.identity_file.clone().or_else(|| defaults.identity_file.clone()),
        known_hosts: host.known_hosts.clone().or_else(|| defaults.known_hosts.clone()),
        host_key_policy: host.host_key_policy.or(defaults.host_key_policy),
        bastion: host.bastion.clone().or_else(|| defaults.bastion.clone()),
        connect_timeout: host.connect_timeout.clone().or_else(|| defaults.connect_timeout.clone()),
        command_timeout: host.command_timeout.clone().or_else(|| defaults.command_timeout.clone()),
    }
}

fn ssh_target(file: &Path, dir: &Path, ssh: &SshSection) -> Result<SshTarget, InventoryError> {
    let user = ssh.user.as_ref().map(|u| u.value.clone()).unwrap_or_else(|| "root".into());
    let identity_file = ssh.identity_file.as_ref().map(|spanned| expand(dir, &spanned.value));
    let known_hosts = match &ssh.known_hosts {
        Some(p) => expand(dir, &p.value),
        None => expand(dir, "~/.ssh/known_hosts"),
    };
    let bastion = match &ssh.bastion {
        Some(b) => {
            Some(parse_bastion(&b.value, &user).map_err(|m| InventoryError::at(file, &b.referenced, m))?)
        }
        None => None,
    };
    Ok(SshTarget {
        user,
        port: ssh.port.as_ref().map_or(22, |p| p.value),
        identity_file,
        known_hosts,
        host_key_policy: ssh.host_key_policy.unwrap_or(HostKeyPolicy::AcceptNew),
        bastion,
        connect_timeout: Duration::from_secs(
            ssh.connect_timeout.as_ref().map_or(DEFAULT_CONNECT_TIMEOUT, |t| t.value),
        ),
        command_timeout: Duration::from_secs(
            ssh.command_timeout.as_ref().map_or(DEFAULT_COMMAND_TIMEOUT, |t| t.value),
        ),
    })
}

fn existing_file(
    file: &Path,
    dir: &Path,
    spanned: &Spanned<String>,
    key: &str,
) -> Result<PathBuf, InventoryError> {
    let path = expand(dir, &spanned.value);
    if path.is_file() {
        Ok(path)
    } else {
        Err(InventoryError::at(
            file,
            &spanned.referenced,
            format!("{key} `{}` does not exist (looked for {})", spanned.value, path.display()),
        ))
    }
}

/// A stack's `template:` is a file when it looks like a path, a built-in's name otherwise.
pub(super) fn is_template_path(text: &str) -> bool {
    text.contains('/') || text.ends_with(".tera") || text.ends_with(".yml") || text.ends_with(".yaml")
}

/// `[user@]host[:port]`; the user defaults to the hosts' own SSH user.
pub(super) fn parse_bastion(text: &str, default_user: &str) -> Result<Bastion, String> {
    let (user, rest) = match text.split_once('@') {
        Some((u, r)) if !u.is_empty() => (u.to_string(), r),
        Some(_) => return Err(format!("bastion `{text}` has an empty user before `@`")),
        None => (default_user.to_string(), text),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("bastion `{text}` has an invalid port `{p}`"))?;
            (h.to_string(), port)
        }
        _ => (rest.to_string(), 22),
    };
    if !is_address(&host) {
        return Err(format!("bastion `{text}`: `{host}` is neither an IP address nor a DNS name"));
    }
    Ok(Bastion { user, host, port })
}

/// `~/x` from $HOME, relative paths from the inventory's folder.
pub(crate) fn expand(dir: &Path, text: &str) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = Path::new(text);
    // `components` drops the `.` of `./x`, so messages show the path a person would write.
    if path.is_absolute() { path.components().collect() } else { dir.join(path).components().collect() }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    }
}
