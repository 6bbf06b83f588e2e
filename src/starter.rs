//! `clusterup new`: a commented starter inventory written from a few flags (the hosts, a NAS,
//! a domain for the proxy). Pure: the text is returned, the command writes it.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use crate::inventory::{PROXY_NETWORK, is_address, is_cluster_name, is_host_name};

/// Where a managed NAS exports the cluster's volumes.
pub const NFS_PATH: &str = "/srv/clusterup";

/// The node label the proxy is placed by (`--domain`): its node is where 80/443 must reach.
const EDGE_LABEL: &str = "edge";

/// A host given on the command line as `NAME=ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostArg {
    pub name: String,
    pub address: String,
}

impl FromStr for HostArg {
    type Err = String;

    /// `m1=192.0.2.21` or `m1=m1.example.com`; the message says what is wrong and shows the form.
    fn from_str(text: &str) -> Result<Self, String> {
        let Some((name, address)) = text.split_once('=') else {
            return Err(format!("`{text}` is not NAME=ADDR (for example m1=192.0.2.21)"));
        };
        let (name, address) = (name.trim(), address.trim());
        if name.is_empty() {
            return Err(format!("`{text}` has no host name before `=` (for example m1=192.0.2.21)"));
        }
        if !is_host_name(name) {
            return Err(format!(
                "host name `{name}` must be letters, digits, dots, dashes or underscores (at most 63), \
                 starting with a letter or digit"
            ));
        }
        if address.is_empty() {
            return Err(format!("`{text}` has no address after `=` (for example {name}=192.0.2.21)"));
        }
        if !is_address(address) {
            return Err(format!(
                "address `{address}` of host `{name}` is neither an IP address nor a DNS name"
            ));
        }
        Ok(HostArg { name: name.to_string(), address: address.to_string() })
    }
}

/// What `clusterup new` was asked for.
#[derive(Debug, Clone)]
pub struct Starter {
    pub cluster: String,
    /// The SSH user on every host.
    pub user: String,
    pub managers: Vec<HostArg>,
    pub workers: Vec<HostArg>,
    /// A NAS serving the cluster's volumes over NFS (`kind: nas`, managed by clusterup).
    pub nas: Option<HostArg>,
    /// With a domain: a Caddy proxy and a whoami app at `whoami.DOMAIN`.
    pub domain: Option<String>,
    /// How the header's example commands name the file (`inventory.yml`, or `--out`'s name).
    pub file_name: String,
}

impl Starter {
    /// Every problem with the request, or none.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !is_cluster_name(&self.cluster) {
            problems.push(format!(
                "cluster name `{}` must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit",
                self.cluster
            ));
        }
        if self.user.is_empty() || self.user.contains(|c: char| c.is_whitespace() || matches!(c, '@' | ':')) {
            problems.push(format!("user `{}` is not a valid user name", self.user));
        }
        if self.managers.is_empty() {
            problems.push("a swarm needs at least one manager: give --manager NAME=ADDR".into());
        }
        let mut seen: Vec<(&HostArg, &str)> = Vec::new();
        for (host, flag) in self.hosts() {
            if let Some((first, first_flag)) = seen.iter().find(|(h, _)| h.name == host.name) {
                problems.push(format!(
                    "host name `{}` is given twice ({first_flag} {}={}, {flag} {}={})",
                    host.name, first.name, first.address, host.name, host.address
                ));
            } else if let Some((first, first_flag)) =
                seen.iter().find(|(h, _)| h.address.eq_ignore_ascii_case(&host.address))
            {
                problems.push(format!(
                    "address `{}` is given to two hosts ({first_flag} {}={}, {flag} {}={})",
                    host.address, first.name, first.address, host.name, host.address
                ));
            }
            seen.push((host, flag));
        }
        if let Some(domain) = &self.domain
            && (domain.parse::<IpAddr>().is_ok() || !is_address(&format!("whoami.{domain}")))
        {
            problems
                .push(format!("domain `{domain}` is not a DNS name (for example example.com or home.arpa)"));
        }
        problems
    }

    /// Every host with the flag that gave it, in the order they are written.
    fn hosts(&self) -> impl Iterator<Item = (&HostArg, &'static str)> {
        let managers = self.managers.iter().map(|h| (h, "--manager"));
        let workers = self.workers.iter().map(|h| (h, "--worker"));
        managers.chain(workers).chain(self.nas.iter().map(|h| (h, "--nas")))
    }

    /// The host the proxy runs on: the first worker, else the first manager.
    fn edge(&self) -> Option<&HostArg> {
        self.workers.first().or(self.managers.first())
    }

    /// The commented inventory, or every problem with the request.
    pub fn inventory(&self) -> Result<String, Vec<String>> {
        let problems = self.check();
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut out = String::new();
        self.write_header(&mut out);
        self.write_ssh(&mut out);
        write_docker(&mut out);
        self.write_hosts(&mut out);
        self.write_storage(&mut out);
        self.write_services(&mut out);
        Ok(out)
    }

    fn write_header(&self, out: &mut String) {
        let file = &self.file_name;
        let _ = write!(
            out,
            "\
# The inventory of cluster `{cluster}`, written by `clusterup new`: the hosts, how to reach
# them, and what runs on the swarm. Check it, then:
#
#   clusterup plan -i {file}     # what would change, touching nothing
#   clusterup init -i {file}     # make it so (safe to re-run)
#
# Every key is described in the README's \"Inventory reference\".
cluster:
  name: {cluster}{pad}# lowercase letters, digits, dashes; names the log file too

",
            cluster = self.cluster,
            pad = pad(self.cluster.len() + 8, 27),
        );
    }

    fn write_ssh(&self, out: &mut String) {
        let user_comment = if self.user == "root" {
            "# root, or a user with passwordless sudo (a NOPASSWD rule)"
        } else {
            "# not root: needs passwordless sudo (a NOPASSWD rule)"
        };
        let user = scalar(&self.user);
        let _ = write!(
            out,
            "\
ssh:                       # defaults for every host; a host may override any key under `ssh:`
  user: {user}{pad}{user_comment}
  port: 22
  # Without identity_file, ssh-agent's keys are tried, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
  # identity_file: ~/.ssh/id_ed25519   # relative paths resolve from this file's folder
  known_hosts: ~/.ssh/known_hosts
  host_key_policy: accept-new        # strict | accept-new (trust on first use) | off (labs only)
  # bastion: admin@203.0.113.5:22    # a jump host, when the hosts are not reachable directly

",
            pad = pad(user.len() + 8, 27),
        );
    }

    fn write_hosts(&self, out: &mut String) {
        let managers = self.managers.len();
        out.push_str("hosts:\n");
        out.push_str(match managers {
            1 => "  # One manager: the swarm is managed while it is up. Three survive the loss of one.\n",
            n if n % 2 == 0 => {
                "  # An even number of managers survives no more failures than one fewer: a swarm needs a\n  \
                 # majority of its managers up. Use 1, 3 or 5.\n"
            }
            _ => "  # A swarm keeps working while a majority of its managers is up.\n",
        });
        let edge = self.domain.as_ref().and(self.edge()).map(|h| h.name.as_str());
        for host in &self.managers {
            write_host(out, host, "manager", edge == Some(&host.name));
        }
        if !self.workers.is_empty() {
            out.push_str("  # Workers run the stacks' tasks (managers do too).\n");
        }
        for host in &self.workers {
            write_host(out, host, "worker", edge == Some(&host.name));
        }
        if let Some(nas) = &self.nas {
            let _ = write!(
                out,
                "  # The NAS serves NFS to the nodes; it runs no Docker and is not in the swarm.
  - name: {name}
    address: {address}
    kind: nas              # bare-metal (default) | nas | openstack
    roles: [nfs-server]
    # ssh: {{user: root}}    # a host's own SSH settings, over the defaults above
",
                name = scalar(&nas.name),
                address = scalar(&nas.address),
            );
        }
        out.push('\n');
    }

    fn write_storage(&self, out: &mut String) {
        let Some(nas) = &self.nas else { return };
        let _ = write!(
            out,
            "\
storage:                   # with it, every node gets the NFS client
  nfs:
    server: {server}{pad}# a host above, or the address of an appliance
    path: {NFS_PATH}
    managed: true          # false: an appliance (Synology, TrueNAS) clusterup only checks

# Named volumes on the share: a stack's volume of the same name lives on the NAS, so a
# stateful service finds its data on whichever node it runs.
# volumes:
#   - {{name: pgdata, uid: 999, gid: 999}}   # uid/gid: the owner of its directory on the NAS

",
            server = scalar(&nas.name),
            pad = pad(nas.name.len() + 12, 27),
        );
    }

    fn write_services(&self, out: &mut String) {
        out.push_str("# One overlay network per central service: only what must talk can talk.\n");
        match &self.domain {
            Some(_) => {
                let _ = writeln!(
                    out,
                    "networks:\n  - name: {PROXY_NETWORK}      # the proxy and every service it exposes"
                );
                out.push_str("  # - {name: database, encrypted: true}\n");
            }
            None => {
                let _ = writeln!(
                    out,
                    "# networks:\n#   - name: {PROXY_NETWORK}    # needed by stacks that `expose` services"
                );
                out.push_str("#   - {name: database, encrypted: true}\n");
            }
        }
        out.push_str(
            "
# Secret values come from the environment (or files), never from this file.
# secrets:
#   - {name: postgres_password, env: POSTGRES_PASSWORD}

",
        );
        let Some(domain) = &self.domain else {
            out.push_str(
                "\
# Stacks: rendered from templates (built-in: caddy, traefik, postgres, redis, minio, whoami,
# shinyproxy; or a file of your own) and deployed with `docker stack deploy`.
# `clusterup new --domain example.com` writes a proxy and a first app.
# A stateful one (postgres, redis, minio) keeps its data on the NAS with storage.nfs; without
# it, pin it to one host: vars.placement_label, and that label on the host.
# stacks:
#   - {name: db, template: postgres, networks: [database], vars: {user: app, db: app}}
",
            );
            return;
        };
        let edge = self.edge().map(|h| h.name.as_str()).unwrap_or_default();
        let host = scalar(&format!("whoami.{domain}"));
        let _ = write!(
            out,
            "\
# Stacks: rendered from templates and deployed with `docker stack deploy`; `clusterup render
# -i {file}` shows them. Each `expose` entry is a route the proxy serves over HTTPS.
stacks:
  - name: proxy
    template: caddy          # built-in: automatic HTTPS for every `expose` below
    vars:
      placement_label: {EDGE_LABEL}  # the host labelled `{EDGE_LABEL}: true` ({edge}): forward 80 and 443 to it
      # email: ops@example.com    # the ACME account's contact (certificate expiry mail)
  - name: whoami
    template: whoami         # a tiny app answering with the request it got
    # A name under .test, .lan, .home.arpa, .internal or .local gets a certificate from Caddy's
    # internal CA; any other name a public one (ACME), once its DNS points to {edge}.
    expose:
      - {{service: web, host: {host}, port: 80}}
",
            file = self.file_name,
        );
    }
}

fn write_host(out: &mut String, host: &HostArg, role: &str, edge: bool) {
    let _ = write!(
        out,
        "  - name: {name}\n    address: {address}\n    roles: [{role}]\n",
        name = scalar(&host.name),
        address = scalar(&host.address),
    );
    if edge {
        let _ = writeln!(
            out,
            "    labels: {{{EDGE_LABEL}: true}}   # the proxy runs here: point DNS and ports 80/443 to it"
        );
    } else {
        out.push_str("    # labels: {zone: a}    # node labels, for placement constraints\n");
    }
}

fn write_docker(out: &mut String) {
    out.push_str(
        "\
docker:
  source: distro           # distro: Debian/Ubuntu's docker.io | docker: Docker's apt repository
  log_max_size: 10m        # json-file log rotation, written to /etc/docker/daemon.json
  log_max_file: 3
  # metrics_address: 0.0.0.0:9323   # the engine's Prometheus endpoint
  # drain_workers_on_restart: false  # restart workers' engines with their tasks in place

",
    );
}

/// Spaces that bring a line of `used` characters to column `column` (at least one).
fn pad(used: usize, column: usize) -> String {
    " ".repeat(column.saturating_sub(used).max(1))
}

/// A YAML scalar for a name or address: plain when YAML reads it back as that same string,
/// quoted otherwise (an IPv6 address, `true`, `1.5`).
fn scalar(text: &str) -> String {
    let plain_chars = text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let starts_ok = text.starts_with(|c: char| c.is_ascii_alphanumeric());
    let keyword = ["true", "false", "yes", "no", "on", "off", "null", "y", "n", "inf", "nan"]
        .contains(&text.to_ascii_lowercase().as_str());
    let number = text.parse::<f64>().is_ok()
        || text.starts_with("0x")
        || text.starts_with("0o")
        || text.chars().all(|c| c.is_ascii_digit() || c == '_');
    if plain_chars && starts_ok && !keyword && !number {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
    }
}

#[cfg(test)]
#[path = "starter_tests.rs"]
mod tests;
