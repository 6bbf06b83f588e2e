//! OpenStack as an inventory source: the servers of a project become hosts of `kind:
//! openstack`. `discover` asks the cloud (Keystone, Nova, Glance, Neutron); the functions it
//! decides with (selection, roles, addresses, login users, security group rules) are pure.

pub mod clouds_yaml;
pub mod compute;
pub mod keystone;
pub mod managed_group;
pub mod network;
pub mod security;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use compute::Server;

use crate::cloud::CloudError;
use crate::cloud::http::Http;
use crate::inventory::{
    Bastion, Host, HostKind, HostState, Inventory, OpenstackSelection, OpenstackSource, Role, is_host_name,
};

/// The hosts a cloud gave, and what is worth telling about them.
#[derive(Debug)]
pub struct Found {
    pub cloud: String,
    pub hosts: Vec<Host>,
    pub warnings: Vec<String>,
    /// With `manage_security_group`: what the managed group lacks.
    pub security_group: Option<managed_group::GroupChange>,
}

/// Servers matching every criterion of the selection.
pub fn select<'a>(servers: &'a [Server], selection: &OpenstackSelection) -> Vec<&'a Server> {
    servers
        .iter()
        .filter(|s| selection.metadata.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
        .filter(|s| selection.name_prefix.as_ref().is_none_or(|p| s.name.starts_with(p.as_str())))
        .filter(|s| selection.tags.iter().all(|t| s.tags.contains(t)))
        .collect()
}

/// How the selection reads in a message.
pub fn describe(selection: &OpenstackSelection) -> String {
    let mut parts: Vec<String> =
        selection.metadata.iter().map(|(k, v)| format!("metadata {k}={v}")).collect();
    if let Some(p) = &selection.name_prefix {
        parts.push(format!("name starting with `{p}`"));
    }
    parts.extend(selection.tags.iter().map(|t| format!("tag {t}")));
    parts.join(", ")
}

/// The roles in a server's metadata (`manager`, `worker`, `nfs-server`, comma-separated).
pub fn roles(server: &Server, key: &str) -> Result<Vec<Role>, String> {
    let Some(value) = server.metadata.get(key) else {
        return Err(format!(
            "server `{}` ({}) has no `{key}` metadata, so its role is unknown: \
             openstack server set --property {key}=worker {}",
            server.name, server.id, server.name
        ));
    };
    let mut roles = Vec::new();
    for word in value.split(',').map(str::trim) {
        roles.push(match word {
            "manager" => Role::Manager,
            "worker" => Role::Worker,
            "nfs-server" => Role::NfsServer,
            other => {
                return Err(format!(
                    "server `{}` ({}): metadata {key}=`{other}` is not manager, worker or nfs-server",
                    server.name, server.id
                ));
            }
        });
    }
    roles.sort();
    roles.dedup();
    if roles.contains(&Role::Manager) && roles.contains(&Role::Worker) {
        return Err(format!(
            "server `{}` ({}): metadata {key}=`{value}` makes it manager and worker: a manager runs tasks already",
            server.name, server.id
        ));
    }
    Ok(roles)
}

/// The server's fixed address on `network` (IPv4 first) and a floating address (on that
/// network first, else on any).
pub fn addresses(server: &Server, network: &str) -> Result<(IpAddr, Option<IpAddr>), String> {
    let parse = |a: &compute::Address| a.addr.parse::<IpAddr>().ok();
    let kind = |a: &compute::Address, k: &str| a.kind.as_deref().unwrap_or("fixed") == k;
    let Some(on) = server.addresses.get(network) else {
        let names: Vec<&str> = server.addresses.keys().map(String::as_str).collect();
        return Err(format!(
            "server `{}` ({}) has no address on network `{network}`; its networks: {}",
            server.name,
            server.id,
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ));
    };
    let mut fixed: Vec<IpAddr> = on.iter().filter(|a| kind(a, "fixed")).filter_map(parse).collect();
    fixed.sort_by_key(|ip| ip.is_ipv6());
    let Some(fixed) = fixed.first().copied() else {
        return Err(format!(
            "server `{}` ({}) has no fixed address on network `{network}`",
            server.name, server.id
        ));
    };
    let floating =
        on.iter().chain(server.addresses.values().flatten()).filter(|a| kind(a, "floating")).find_map(parse);
    Ok((fixed, floating))
}

/// The login user of a cloud image of `distro` (`debian-12`, `Ubuntu`), when it is one
/// clusterup supports.
pub fn login_user(distro: &str) -> Option<&'static str> {
    let distro = distro.to_ascii_lowercase();
    if distro.starts_with("debian") {
        Some("debian")
    } else if distro.starts_with("ubuntu") {
        Some("ubuntu")
    } else {
        None
    }
}

/// The user clusterup logs in as when the inventory names none and the image does not tell.
const FALLBACK_USER: &str = "debian";

/// Asks the cloud for the servers `source` selects, as hosts.
pub async fn discover(source: &OpenstackSource, env: &clouds_yaml::Env) -> Result<Found, CloudError> {
    let cloud = clouds_yaml::load(source.cloud.as_deref(), env)?;
    let http = Http::new(source.timeout, cloud.cacert.as_deref())
        .map_err(|e| CloudError::invalid(format!("openstack: cloud `{}`: {e}", cloud.name)))?;
    let session = keystone::authenticate(&http, &cloud).await?;
    let compute_url = keystone::endpoint(&session.catalog, "compute", &cloud)?;
    let network_url = keystone::endpoint(&session.catalog, "network", &cloud)?;
    let image_url = keystone::endpoint(&session.catalog, "image", &cloud)
        .ok()
        .map(|u| if u.ends_with("/v2") { u } else { format!("{u}/v2") });
    let servers = compute::list_servers(&http, &session, &compute_url).await?;

    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let matched = select(&servers, &source.select);
    if matched.is_empty() {
        let mut names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).take(20).collect();
        if servers.len() > names.len() {
            names.push("...");
        }
        return Err(CloudError::invalid(format!(
            "openstack: no server of cloud `{}` matches openstack.select ({}); the project has {} server(s){}{}",
            cloud.name,
            describe(&source.select),
            servers.len(),
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        )));
    }
    let mut active = Vec::new();
    for server in matched {
        if server.status == "ACTIVE" {
            active.push(server);
        } else {
            warnings.push(format!(
                "openstack: server `{}` ({}) is {}, not ACTIVE: skipped",
                server.name, server.id, server.status
            ));
        }
    }

    let bastion_server = match &source.bastion {
        None => None,
        Some(b) => {
            let named: Vec<&Server> = servers.iter().filter(|s| s.name == b.server).collect();
            match named.as_slice() {
                [one] => match addresses(one, &source.network).ok().and_then(|(_, f)| f).or_else(|| {
                    one.addresses
                        .values()
                        .flatten()
                        .filter(|a| a.kind.as_deref() == Some("floating"))
                        .find_map(|a| a.addr.parse().ok())
                }) {
                    Some(ip) => Some((*one, ip)),
                    None => {
                        errors.push(format!(
                            "openstack.bastion: server `{}` ({}) has no floating IP to reach it by",
                            one.name, one.id
                        ));
                        None
                    }
                },
                [] => {
                    errors.push(format!(
                        "openstack.bastion: no server named `{}` in cloud `{}`",
                        b.server, cloud.name
                    ));
                    None
                }
                _ => {
                    errors.push(format!(
                        "openstack.bastion: {} servers are named `{}`: rename all but one",
                        named.len(),
                        b.server
                    ));
                    None
                }
            }
        }
    };

    // Login users from the images' distributions, each image asked once.
    let mut distros: BTreeMap<String, Option<String>> = BTreeMap::new();
    if !source.ssh_user_given {
        let images: BTreeSet<&str> =
            active.iter().chain(bastion_server.iter().map(|(s, _)| s)).filter_map(|s| s.image_id()).collect();
        for image in images {
            let distro = match &image_url {
                Some(url) => compute::image_distro(&http, &session, url, image).await,
                None => None,
            };
            distros.insert(image.to_string(), distro);
        }
    }
    let user_of = |server: &Server, warnings: &mut Vec<String>| -> String {
        if source.ssh_user_given {
            return source.ssh.user.clone();
        }
        let distro = server.image_id().and_then(|i| distros.get(i).cloned().flatten());
        match distro.as_deref().and_then(login_user) {
            Some(user) => user.to_string(),
            None => {
                warnings.push(format!(
                    "openstack: server `{}`: its image does not say which user logs in ({}); using `{FALLBACK_USER}`: \
                     set openstack.ssh.user",
                    server.name,
                    distro.map_or("no os_distro".to_string(), |d| format!("`{d}`"))
                ));
                FALLBACK_USER.to_string()
            }
        }
    };

    let bastion = match (&source.bastion, &bastion_server) {
        (Some(b), Some((server, ip))) => {
            let user = b.user.clone().unwrap_or_else(|| user_of(server, &mut warnings));
            Some(Bastion { user, host: ip.to_string(), port: b.port })
        }
        _ => None,
    };

    let mut hosts = Vec::new();
    let mut members = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for server in &active {
        if let Some(other) = seen.insert(&server.name, &server.id) {
            errors.push(format!(
                "openstack: two servers are named `{}` ({other} and {}): host names must be unique",
                server.name, server.id
            ));
            continue;
        }
        if !is_host_name(&server.name) {
            errors.push(format!(
                "openstack: server `{}` ({}): its name is not a host name (letters, digits, dots, dashes, at most 63)",
                server.name, server.id
            ));
            continue;
        }
        let roles = match roles(server, &source.role_key) {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("openstack: {e}"));
                continue;
            }
        };
        let (fixed, floating) = match addresses(server, &source.network) {
            Ok(a) => a,
            Err(e) => {
                errors.push(format!("openstack: {e}"));
                continue;
            }
        };
        let address = match (&bastion, floating) {
            (None, Some(floating)) => floating,
            _ => fixed,
        };
        let mut ssh = source.ssh.clone();
        ssh.user = user_of(server, &mut warnings);
        if bastion.is_some() {
            ssh.bastion = bastion.clone();
        }
        members.push(security::Member {
            name: server.name.clone(),
            address: fixed,
            groups: Vec::new(),
            filtered: true,
            manager: roles.contains(&Role::Manager),
            port: None,
        });
        hosts.push(Host {
            name: server.name.clone(),
            address: address.to_string(),
            kind: HostKind::Openstack,
            roles,
            labels: BTreeMap::new(),
            advertise_address: Some(fixed.to_string()),
            ssh,
            state: HostState::Present,
            source: format!("openstack:{}", server.id),
        });
    }
    if !errors.is_empty() {
        return Err(CloudError { messages: errors, invalid_inventory: true });
    }
    if hosts.is_empty() {
        return Err(CloudError::invalid(format!(
            "openstack: no ACTIVE server of cloud `{}` matches openstack.select ({})",
            cloud.name,
            describe(&source.select)
        )));
    }

    // Security groups: the ports on the cluster's network, and the rules of their groups.
    let mut bastion_member = None;
    if let Some((server, _)) = &bastion_server
        && let Ok((fixed, _)) = addresses(server, &source.network)
    {
        bastion_member = Some((
            server.id.clone(),
            security::Member {
                name: server.name.clone(),
                address: fixed,
                groups: Vec::new(),
                filtered: true,
                manager: false,
                port: None,
            },
        ));
    }
    let ids: Vec<String> = active.iter().map(|s| s.id.clone()).collect();
    for (member, id) in members.iter_mut().zip(&ids).chain(bastion_member.iter_mut().map(|(id, m)| (m, &*id)))
    {
        let ports = network::server_ports(&http, &session, &network_url, id).await?;
        let address = member.address.to_string();
        match ports.iter().find(|p| p.fixed_ips.iter().any(|f| f.ip_address == address)) {
            Some(port) => {
                member.groups = port.security_groups.clone();
                member.filtered = port.port_security_enabled != Some(false);
                member.port = Some((port.id.clone(), port.revision_number));
            }
            None => warnings.push(format!(
                "openstack: server `{}`: no port with address {address} found: its security groups were not checked",
                member.name
            )),
        }
    }
    let mut groups = network::security_groups(&http, &session, &network_url).await?;
    let bastion_member = bastion_member.map(|(_, m)| m);
    let mut security_group = None;
    if source.manage_security_group {
        // The check then looks at the groups as they will be once `init` has made the change.
        let change =
            managed_group::plan(&members, bastion_member.as_ref(), &groups).map_err(CloudError::invalid)?;
        change.simulate(&mut members, &mut groups, bastion_member.as_ref());
        security_group = Some(change);
    }
    let findings = security::missing_rules(&members, bastion_member.as_ref(), &groups);
    warnings.extend(findings.into_iter().map(|f| format!("openstack: security groups: {f}")));
    Ok(Found { cloud: cloud.name, hosts, warnings, security_group })
}

/// `init` with `manage_security_group`: makes the change `discover` found (asking the cloud
/// again for a token: none is kept); `done` gets what was done.
pub async fn manage_security_group(
    source: &OpenstackSource,
    env: &clouds_yaml::Env,
    change: &managed_group::GroupChange,
    done: &mut Vec<String>,
) -> Result<(), CloudError> {
    let cloud = clouds_yaml::load(source.cloud.as_deref(), env)?;
    let http = Http::new(source.timeout, cloud.cacert.as_deref())
        .map_err(|e| CloudError::invalid(format!("openstack: cloud `{}`: {e}", cloud.name)))?;
    let session = keystone::authenticate(&http, &cloud).await?;
    let network_url = keystone::endpoint(&session.catalog, "network", &cloud)?;
    managed_group::apply(&http, &session, &network_url, change, done).await
}

/// Adds the hosts found to the inventory: a name in both `hosts:` and the cloud is an error,
/// and the whole inventory needs a manager.
pub fn merge(inventory: &mut Inventory, found: Found) -> Result<Vec<String>, CloudError> {
    let mut errors = Vec::new();
    for host in &found.hosts {
        if inventory.host(&host.name).is_some() {
            errors.push(format!(
                "host `{}` is both in `hosts:` and a server of cloud `{}` ({}): rename one, or drop it from `hosts:`",
                host.name, found.cloud, host.source
            ));
        }
    }
    if !errors.is_empty() {
        return Err(CloudError { messages: errors, invalid_inventory: true });
    }
    inventory.hosts.extend(found.hosts);
    if !inventory.hosts.iter().any(Host::is_manager) {
        return Err(CloudError::invalid(format!(
            "no host has the `manager` role, in `hosts:` or among the servers of cloud `{}`: \
             a swarm needs at least one (openstack server set --property role=manager SERVER)",
            found.cloud
        )));
    }
    Ok(found.warnings)
}

#[cfg(test)]
mod tests;
