//! `render` and `inventory`: what would be deployed, and the resolved inventory, with no host.

use std::path::Path;

use clusterup::inventory::Inventory;
use clusterup::templates;

/// `clusterup render`: every stack rendered (its compose file and the files beside it), or one.
pub fn render(inv: &Inventory, only: Option<&str>) -> anyhow::Result<Vec<templates::Rendered>> {
    if let Some(name) = only
        && !inv.stacks.iter().any(|s| s.name == name)
    {
        let names: Vec<&str> = inv.stacks.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!("no stack `{name}` in {}; its stacks: {}", inv.path.display(), names.join(", "));
    }
    let (secrets, _) = templates::secret_names_or_placeholders(inv);
    inv.stacks
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name))
        .map(|stack| templates::render_stack(inv, stack, &secrets))
        .collect()
}

/// `render --out DIR`: the stack's files laid out as `roles/stacks/deploy.sh` lays them out
/// on the manager (`stack.yml`, and beside it the files its `file: ./NAME` entries name), in
/// `DIR/STACK/`. Existing files are overwritten; each path written is printed on stderr.
pub fn write_rendered(dir: &Path, rendered: &templates::Rendered) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let folder = dir.join(&rendered.stack);
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let files = std::iter::once(("stack.yml", &rendered.compose))
        .chain(rendered.files.iter().map(|(name, content)| (name.as_str(), content)));
    for (name, content) in files {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            anyhow::bail!("refusing to write `{name}` in {}: not a plain file name", folder.display());
        }
        let path = folder.join(name);
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

pub fn print_inventory(inv: &Inventory) {
    println!("cluster: {}  ({})", inv.cluster, inv.path.display());
    println!(
        "docker:  source {:?}, logs {} x {}",
        inv.docker.source, inv.docker.log_max_file, inv.docker.log_max_size
    );
    for h in &inv.hosts {
        let roles: Vec<String> = h.roles.iter().map(ToString::to_string).collect();
        let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let via = h
            .ssh
            .bastion
            .as_ref()
            .map(|b| format!(" via {}@{}:{}", b.user, b.host, b.port))
            .unwrap_or_default();
        println!(
            "  {:<12} {:<16} {:<10} {:<18} {}@:{}{via}  {}  [{}]",
            h.name,
            h.address,
            format!("{:?}", h.kind).to_lowercase(),
            roles.join(","),
            h.ssh.user,
            h.ssh.port,
            labels.join(","),
            h.source
        );
    }
    for change in cloud_changes(inv).unwrap_or_default() {
        println!("openstack: init would {change}");
    }
}

/// With `openstack.manage_security_group`: what `init` would change in the cloud.
pub fn cloud_changes(inv: &Inventory) -> Option<Vec<String>> {
    inv.openstack
        .as_ref()
        .filter(|s| s.manage_security_group)?
        .security_group_change
        .as_ref()
        .map(|c| c.describe())
}
