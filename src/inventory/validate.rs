//! Checks that need the whole file (duplicates, quorum) or more than a type can say
//! (name syntax, addresses). Types already rejected unknown keys, roles and kinds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::error::{InventoryError, InventoryErrors};
use super::model::{
    DockerSection, HostEntry, HostKeyPolicy, HostState, InventoryFile, OpenstackSection, SshSection,
    SwarmSection,
};
use super::resolve::{effective_roles, is_template_path, parse_bastion};
use super::{PROXY_NETWORK, Role};
use serde_saphyr::Spanned;

/// Returns the warnings, or every error found.
pub fn check(path: &Path, file: &InventoryFile) -> Result<Vec<String>, InventoryErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let err = |loc, msg: String| InventoryError::at(path, loc, msg);

    let name = &file.cluster.name;
    if !is_cluster_name(&name.value) {
        errors.push(err(
            &name.referenced,
            format!(
                "cluster name `{}` must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit",
                name.value
            ),
        ));
    }

    let hosts = &file.hosts.value;
    if hosts.is_empty() && file.openstack.is_none() {
        errors.push(err(&file.hosts.referenced, "`hosts` is empty: list at least one host".into()));
    }

    check_ssh(path, &file.ssh, "ssh", &mut errors, &mut warnings);
    let mut names: HashMap<&str, u64> = HashMap::new();
    let mut addresses: HashMap<(String, u16), (&str, u64)> = HashMap::new();
    let default_port = file.ssh.port.as_ref().map_or(22, |p| p.value);
    let mut managers = 0;

    for entry in hosts {
        let host: &HostEntry = &entry.value;
        let name = &host.name;
        let line = name.referenced.line();
        if !is_host_name(&name.value) {
            errors.push(err(
                &name.referenced,
                format!("host name `{}` must be letters, digits, dots or dashes (at most 63)", name.value),
            ));
        }
        if let Some(first) = names.insert(&name.value, line) {
            errors.push(err(
                &name.referenced,
                format!("host name `{}` is used twice (first at line {first})", name.value),
            ));
            names.insert(&name.value, first);
        }

        let address = &host.address;
        if !is_address(&address.value) {
            errors.push(err(
                &address.referenced,
                format!(
                    "address `{}` of host `{}` is neither an IP address nor a DNS name",
                    address.value, name.value
                ),
            ));
        }
        let port = host.ssh.as_ref().and_then(|s| s.port.as_ref()).map_or(default_port, |p| p.value);
        let key = (address.value.to_ascii_lowercase(), port);
        if let Some((other, other_line)) = addresses.get(&key) {
            errors.push(err(
                &address.referenced,
                format!(
                    "address `{}` of host `{}` is already the address of host `{other}` (line {other_line})",
                    address.value, name.value
                ),
            ));
        } else {
            addresses.insert(key, (&name.value, line));
        }

        if let Some(adv) = &host.advertise_address
            && adv.value.parse::<IpAddr>().is_err()
        {
            errors.push(err(
                &adv.referenced,
                format!("advertise_address `{}` of host `{}` must be an IP address", adv.value, name.value),
            ));
        }

        let roles = effective_roles(host);
        let roles_at = host.roles.as_ref().map(|r| &r.referenced).unwrap_or(&name.referenced);
        if roles.is_empty() {
            errors.push(err(roles_at, format!("host `{}` has an empty `roles` list", name.value)));
        }
        if roles.contains(&Role::Manager) && roles.contains(&Role::Worker) {
            errors.push(err(
                roles_at,
                format!(
                    "host `{}` is both manager and worker: a manager runs tasks already, keep only `manager`",
                    name.value
                ),
            ));
        }
        if roles.contains(&Role::Manager) && host.state == HostState::Present {
            managers += 1;
        }

        for (key, value) in &host.labels.0 {
            if !is_label_key(&key.value) {
                errors.push(err(
                    &key.referenced,
                    format!("label `{}` of host `{}` must be letters, digits, dots, dashes, underscores or slashes", key.value, name.value),
                ));
            }
            if value.0.contains(['\n', '\r', '\0']) {
                errors.push(err(
                    &key.referenced,
                    format!("label `{}` of host `{}` has a line break in its value", key.value, name.value),
                ));
            }
        }

        if let Some(ssh) = &host.ssh {
            check_ssh(path, ssh, &format!("ssh of host `{}`", name.value), &mut errors, &mut warnings);
        }
    }

    // With an `openstack:` source the managers may come from the cloud: checked once resolved.
    if !hosts.is_empty() && managers == 0 && file.openstack.is_none() {
        errors.push(err(
            &file.hosts.referenced,
            "no host has the `manager` role: a swarm needs at least one (add `roles: [manager]` to a host)"
                .into(),
        ));
    }
    if managers > 0 && managers % 2 == 0 {
        warnings.push(format!(
            "{}: {managers} managers give no more fault tolerance than {}: a swarm keeps working while a majority \
             ({} of {managers}) is up, so it survives the loss of {} manager(s) either way. Use an odd number.",
            path.display(),
            managers - 1,
            managers / 2 + 1,
            (managers - 1) / 2
        ));
    }

    if let Some(docker) = &file.docker {
        check_docker(path, docker, &mut errors);
    }
    if let Some(swarm) = &file.swarm {
        check_swarm(path, swarm, &mut errors, &mut warnings);
    }
    if let Some(openstack) = &file.openstack {
        check_openstack(path, openstack, &mut errors, &mut warnings);
    }
    check_services(path, file, &mut errors);

    if errors.is_empty() { Ok(warnings) } else { Err(InventoryErrors(errors)) }
}

/// Networks, stacks, routes and secrets.
fn check_services(path: &Path, file: &InventoryFile, errors: &mut Vec<InventoryError>) {
    let err = |loc, msg: String| InventoryError::at(path, loc, msg);
    let mut networks: HashMap<&str, u64> = HashMap::new();
    for entry in &file.networks {
        let n = &entry.value;
        if !is_object_name(&n.name.value) {
            errors.push(err(
                &n.name.referenced,
                format!(
                    "network name `{}` must be letters, digits, dots, dashes or underscores",
                    n.name.value
                ),
            ));
        }
        if let Some(first) = networks.insert(&n.name.value, n.name.referenced.line()) {
            errors.push(err(
                &n.name.referenced,
                format!("network `{}` is declared twice (first at line {first})", n.name.value),
            ));
        }
        if let Some(mtu) = n.mtu
            && !(576..=9216).contains(&mtu)
        {
            errors.push(err(
                &entry.referenced,
                format!("network `{}`: mtu {mtu} is outside 576-9216", n.name.value),
            ));
        }
    }

    let builtins = crate::templates::builtin_names();
    let mut stacks: HashMap<&str, u64> = HashMap::new();
    let mut hosts: HashMap<String, String> = HashMap::new();
    for entry in &file.stacks {
        let stack = &entry.value;
        let name = &stack.name;
        if !is_stack_name(&name.value) {
            errors.push(err(
                &name.referenced,
                format!(
                    "stack name `{}` must be 1-40 lowercase letters, digits, dashes or underscores",
                    name.value
                ),
            ));
        }
        if let Some(first) = stacks.insert(&name.value, name.referenced.line()) {
            errors.push(err(
                &name.referenced,
                format!("stack `{}` is declared twice (first at line {first})", name.value),
            ));
        }
        let Some(template_entry) = &stack.template else {
            if stack.state == HostState::Present {
                errors.push(err(
                    &name.referenced,
                    format!(
                        "stack `{}` has no `template:` (a built-in name such as caddy, or a path); \
                         to remove a deployed stack, write `state: absent` instead",
                        name.value
                    ),
                ));
            }
            continue;
        };
        let template = &template_entry.value;
        if !is_template_path(template) && !builtins.contains(&template.as_str()) {
            errors.push(err(
                &template_entry.referenced,
                format!(
                    "stack `{}`: unknown template `{template}`; built-in templates are {}, or give a path such as ./stacks/app.yml.tera",
                    name.value,
                    builtins.join(", ")
                ),
            ));
        }
        for network in &stack.networks {
            if !networks.contains_key(network.value.as_str()) {
                errors.push(err(
                    &network.referenced,
                    format!(
                        "stack `{}` joins network `{}`, which is not declared under `networks:`",
                        name.value, network.value
                    ),
                ));
            }
        }
        if !stack.expose.is_empty() && !networks.contains_key(PROXY_NETWORK) {
            errors.push(err(
                &stack.expose[0].referenced,
                format!(
                    "stack `{}` exposes services, so the proxy's network `{PROXY_NETWORK}` must be declared under `networks:`",
                    name.value
                ),
            ));
        }
        for route in &stack.expose {
            let r = &route.value;
            if !is_address(&r.host) {
                errors.push(err(
                    &route.referenced,
                    format!(
                        "stack `{}`: route host `{}` is not a DNS name or IP address",
                        name.value, r.host
                    ),
                ));
            }
            if r.port == 0 {
                errors.push(err(
                    &route.referenced,
                    format!("stack `{}`: route port must be 1-65535", name.value),
                ));
            }
            if let Some(other) = hosts.insert(r.host.to_ascii_lowercase(), name.value.clone()) {
                errors.push(err(
                    &route.referenced,
                    format!("route host `{}` is exposed twice (also by stack `{other}`)", r.host),
                ));
            }
        }
    }

    let mut volumes: HashMap<&str, u64> = HashMap::new();
    for entry in &file.volumes {
        let v = &entry.value;
        if !is_object_name(&v.name) {
            errors.push(err(
                &entry.referenced,
                format!("volume name `{}` must be letters, digits, dots, dashes or underscores", v.name),
            ));
        }
        if let Some(first) = volumes.insert(&v.name, entry.referenced.line()) {
            errors.push(err(
                &entry.referenced,
                format!("volume `{}` is declared twice (first at line {first})", v.name),
            ));
        }
    }
    if !file.volumes.is_empty() && file.storage.as_ref().and_then(|s| s.nfs.as_ref()).is_none() {
        errors.push(err(
            &file.volumes[0].referenced,
            "`volumes:` live on NFS: declare the share under `storage: {nfs: {server, path}}`".into(),
        ));
    }
    if let Some(nfs) = file.storage.as_ref().and_then(|s| s.nfs.as_ref()) {
        // It goes into the NAS's exports file: a space or a wildcard there would add clients.
        let plain = nfs.path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
        if !nfs.path.starts_with('/') || !plain || nfs.path.split('/').any(|part| part == "..") {
            errors.push(InventoryError::file(
                path,
                format!(
                    "storage.nfs.path `{}` must be an absolute path of letters, digits, `/`, `.`, `_` and `-` (no `..`)",
                    nfs.path
                ),
            ));
        }
        let host = file.hosts.value.iter().find(|h| h.value.name.value == nfs.server);
        match host {
            Some(h) if !effective_roles(&h.value).contains(&Role::NfsServer) => errors.push(err(
                &h.value.name.referenced,
                format!("storage.nfs.server is `{}`, so that host needs the `nfs-server` role", nfs.server),
            )),
            None if !is_address(&nfs.server) => errors.push(InventoryError::file(
                path,
                format!(
                    "storage.nfs.server `{}` is neither a host of the inventory nor an address",
                    nfs.server
                ),
            )),
            _ => {}
        }
    }

    let mut secrets: HashMap<&str, u64> = HashMap::new();
    for entry in &file.secrets {
        let secret = &entry.value;
        let name = &secret.name;
        if !is_object_name(&name.value) {
            errors.push(err(
                &name.referenced,
                format!("secret name `{}` must be letters, digits, dots, dashes or underscores", name.value),
            ));
        }
        if let Some(first) = secrets.insert(&name.value, name.referenced.line()) {
            errors.push(err(
                &name.referenced,
                format!("secret `{}` is declared twice (first at line {first})", name.value),
            ));
        }
        if secret.env.is_some() == secret.file.is_some() {
            errors.push(err(
                &entry.referenced,
                format!(
                    "secret `{}` needs exactly one of `env:` (a variable's name) or `file:` (a path)",
                    name.value
                ),
            ));
        }
    }
}

/// The `docker:` values go into every engine's daemon.json: one the engine refuses stops it
/// on every node, so they are checked here.
fn check_docker(path: &Path, docker: &Spanned<DockerSection>, errors: &mut Vec<InventoryError>) {
    let at = |message: String| InventoryError::at(path, &docker.referenced, message);
    let d = &docker.value;
    if !is_log_size(&d.log_max_size) {
        errors.push(at(format!(
            "docker.log_max_size `{}` is not a size: a whole number with an optional unit k, m or g (e.g. 10m)",
            d.log_max_size
        )));
    }
    if d.log_max_file == 0 {
        errors.push(at("docker.log_max_file must be at least 1".into()));
    }
    if let Some(version) = &d.version
        && !is_version_pattern(version)
    {
        errors.push(at(format!(
            "docker.version `{version}` is not a package version: `latest`, an exact version (20.10.24+dfsg1-1+deb12u1) or a pattern with * and ? (26.1.*)"
        )));
    }
    if let Some(addr) = &d.metrics_address
        && addr.parse::<std::net::SocketAddr>().is_err()
    {
        errors.push(at(format!(
            "docker.metrics_address `{addr}` is not ADDRESS:PORT (an IP address and a port; IPv6 in brackets: [::1]:9323)"
        )));
    }
}

/// `swarm:`: the heartbeat must be a duration the swarm takes (at least 500 ms: every node
/// reports that often), and a short one is a trade-off worth a warning.
fn check_swarm(
    path: &Path,
    swarm: &Spanned<SwarmSection>,
    errors: &mut Vec<InventoryError>,
    warnings: &mut Vec<String>,
) {
    let Some(text) = &swarm.value.dispatcher_heartbeat else { return };
    match super::parse_duration(text) {
        Some(d)
            if d >= std::time::Duration::from_millis(500) && d <= std::time::Duration::from_secs(3600) =>
        {
            if d < std::time::Duration::from_secs(2) {
                warnings.push(format!(
                    "{}: swarm.dispatcher_heartbeat {text}: a node that misses its reports for about 3 periods is \
                     declared down and its tasks start elsewhere, so a network hiccup that long restarts them; a \
                     single-instance service on a shared volume may then run twice for a while (see the README)",
                    path.display()
                ));
            }
        }
        _ => errors.push(InventoryError::at(
            path,
            &swarm.referenced,
            format!(
                "swarm.dispatcher_heartbeat `{text}` is not a duration from 500ms to 1h (e.g. 2s, 500ms, 1m)"
            ),
        )),
    }
}

/// `latest`, or what a Debian version may hold (`[EPOCH:]UPSTREAM[-REVISION]`) with the
/// glob characters `*` and `?`.
fn is_version_pattern(v: &str) -> bool {
    v == "latest"
        || (!v.is_empty()
            && v.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '*')
            && v.chars().all(|c| c.is_ascii_alphanumeric() || ".+~:-*?".contains(c)))
}

/// The shape of `openstack:`, offline: what the cloud says is checked when it is asked.
fn check_openstack(
    path: &Path,
    section: &Spanned<OpenstackSection>,
    errors: &mut Vec<InventoryError>,
    warnings: &mut Vec<String>,
) {
    let err = |loc, msg: String| InventoryError::at(path, loc, msg);
    let os = &section.value;
    let plain = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control());
    if let Some(cloud) = &os.cloud
        && !plain(&cloud.value)
    {
        errors.push(err(&cloud.referenced, format!("openstack.cloud `{}` is not a cloud name", cloud.value)));
    }
    let select = &os.select.value;
    let metadata = select.metadata.as_ref().map_or(0, |m| m.0.len());
    let tags = select.tags.as_ref().map_or(0, Vec::len);
    if metadata == 0 && tags == 0 && select.name_prefix.is_none() {
        errors.push(err(
            &os.select.referenced,
            "openstack.select needs at least one of `metadata: {KEY: VALUE}`, `name_prefix: PREFIX` or \
             `tags: [TAG]`: clusterup does not take every server of a project"
                .into(),
        ));
    }
    if let Some(prefix) = &select.name_prefix
        && prefix.value.is_empty()
    {
        errors.push(err(&prefix.referenced, "openstack.select.name_prefix is empty".into()));
    }
    for tag in select.tags.iter().flatten() {
        if !plain(&tag.value) || tag.value.contains(',') {
            errors.push(err(&tag.referenced, format!("openstack.select.tags: `{}` is not a tag", tag.value)));
        }
    }
    if let Some(role_from) = &os.role_from
        && !plain(&role_from.value.metadata.value)
    {
        errors.push(err(
            &role_from.value.metadata.referenced,
            "openstack.role_from.metadata must name a metadata key".into(),
        ));
    }
    if !plain(&os.network.value) {
        errors.push(err(&os.network.referenced, "openstack.network must name a network".into()));
    }
    if let Some(bastion) = &os.bastion {
        let b = &bastion.value;
        if !plain(&b.server.value) {
            errors.push(err(&b.server.referenced, "openstack.bastion.server must name a server".into()));
        }
        if let Some(user) = &b.user
            && (!plain(&user.value) || user.value.contains(['@', ':']))
        {
            errors.push(err(
                &user.referenced,
                format!("openstack.bastion: `{}` is not a user name", user.value),
            ));
        }
        if let Some(port) = &b.port
            && port.value == 0
        {
            errors.push(err(&port.referenced, "openstack.bastion: port 0 is not a valid SSH port".into()));
        }
        if let Some(other) = os.ssh.as_ref().and_then(|s| s.bastion.as_ref()) {
            errors.push(err(
                &other.referenced,
                "openstack.ssh.bastion and openstack.bastion both name a jump host: keep one".into(),
            ));
        }
    }
    if let Some(timeout) = &os.timeout
        && timeout.value == 0
    {
        errors.push(err(&timeout.referenced, "openstack.timeout must be at least 1 second".into()));
    }
    if let Some(ssh) = &os.ssh {
        check_ssh(path, ssh, "openstack.ssh", errors, warnings);
    }
}

fn is_log_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G']);
    !digits.is_empty()
        && digits.len() + 1 >= s.len()
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits != "0"
}

fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_stack_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

fn check_ssh(
    path: &Path,
    ssh: &SshSection,
    what: &str,
    errors: &mut Vec<InventoryError>,
    warnings: &mut Vec<String>,
) {
    if let Some(port) = &ssh.port
        && port.value == 0
    {
        errors.push(InventoryError::at(
            path,
            &port.referenced,
            format!("{what}: port 0 is not a valid SSH port"),
        ));
    }
    if let Some(user) = &ssh.user
        && (user.value.is_empty() || user.value.contains(|c: char| c.is_whitespace() || c == '@' || c == ':'))
    {
        errors.push(InventoryError::at(
            path,
            &user.referenced,
            format!("{what}: user `{}` is not a valid user name", user.value),
        ));
    }
    if let Some(bastion) = &ssh.bastion
        && let Err(message) = parse_bastion(&bastion.value, "root")
    {
        errors.push(InventoryError::at(path, &bastion.referenced, format!("{what}: {message}")));
    }
    if ssh.host_key_policy == Some(HostKeyPolicy::Off) {
        warnings.push(format!(
            "{}: {what} sets host_key_policy: off: host keys are not checked, so anyone on the path \
             can impersonate these hosts. Use it for labs only.",
            path.display()
        ));
    }
    for (name, value) in
        [("connect_timeout", &ssh.connect_timeout), ("command_timeout", &ssh.command_timeout)]
    {
        if let Some(value) = value
            && value.value == 0
        {
            errors.push(InventoryError::at(
                path,
                &value.referenced,
                format!("{what}: {name} must be at least 1 second"),
            ));
        }
    }
}

pub fn is_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
}

pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
}

pub fn is_address(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    // A DNS name: dot-separated labels of letters, digits and inner dashes, not all-numeric
    // (so a mistyped IPv4 address such as 10.0.0.300 is not taken for a name).
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && !labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()))
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_label_key(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
}
