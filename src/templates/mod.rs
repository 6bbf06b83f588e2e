//! Stack templates: the built-in ones under `templates/` (embedded) or a user's own file,
//! rendered strictly into a compose file plus the files deployed beside it as swarm configs.
//! Pure: no host is touched, so `clusterup render` and the unit tests use it as is.

mod check;
pub mod context;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Map, Value};

use crate::inventory::{Inventory, Secret, SecretSource, Stack, TemplateRef};
use crate::roles::sha256_hex;

pub use check::{Findings, SecretValues, check, secret_names_or_placeholders};
pub use context::routes;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// A template: the compose source, its default vars, and extra files (name, source).
pub struct Template {
    pub name: String,
    /// How messages name the compose template: `caddy/stack.yml.tera`, or the user's file.
    pub stack_source: String,
    pub stack: String,
    pub defaults: Map<String, Value>,
    pub extras: Vec<(String, String)>,
    /// The volumes holding the template's state (`stateful.yml`); none for a user's file.
    pub stateful: BTreeMap<String, StatefulVolume>,
}

/// A volume that holds a built-in template's state, as its `stateful.yml` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatefulVolume {
    /// The service that writes it.
    pub service: String,
    /// Who it writes as: the owner of its directory on the NAS.
    pub uid: u32,
    pub gid: u32,
}

/// A stack rendered for deployment.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub stack: String,
    pub compose: String,
    /// Files deployed beside the compose file (as swarm configs): (name, content).
    pub files: Vec<(String, String)>,
    /// Digest of everything deployed: a stack is redeployed only when it changes.
    pub sha256: String,
    /// Volumes put on the NFS share: (Docker's name for it, its driver options).
    pub nfs_volumes: Vec<(String, Value)>,
    /// The template's stateful volumes that stay on their node (no NFS for them), each with
    /// the service that writes it.
    pub local_state: Vec<(String, String)>,
}

pub fn builtin_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = embedded::FILES
        .iter()
        .filter(|(p, _)| p.ends_with("/stack.yml.tera"))
        .filter_map(|(p, _)| p.split('/').next())
        .collect();
    names.dedup();
    names
}

pub fn builtin(name: &str) -> Option<Template> {
    let prefix = format!("{name}/");
    let files: Vec<(&str, &str)> =
        embedded::FILES.iter().filter_map(|(p, body)| p.strip_prefix(&prefix).map(|f| (f, *body))).collect();
    let stack = files.iter().find(|(f, _)| *f == "stack.yml.tera")?.1.to_string();
    let defaults = match files.iter().find(|(f, _)| *f == "defaults.yml") {
        Some((_, text)) => {
            serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("templates/{name}/defaults.yml: {e}"))
        }
        None => Map::new(),
    };
    let extras = files
        .iter()
        .filter(|(f, _)| *f != "stack.yml.tera" && f.ends_with(".tera"))
        .map(|(f, body)| (f.trim_end_matches(".tera").to_string(), body.to_string()))
        .collect();
    let stateful = match files.iter().find(|(f, _)| *f == "stateful.yml") {
        Some((_, text)) => serde_saphyr::from_str::<Option<BTreeMap<String, StatefulVolume>>>(text)
            .unwrap_or_else(|e| panic!("templates/{name}/stateful.yml: {e}"))
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    Some(Template {
        name: name.to_string(),
        stack_source: format!("{name}/stack.yml.tera"),
        stack,
        defaults,
        extras,
        stateful,
    })
}

#[cfg(test)]
/// An example's vars for a built-in template (`example.yml`), for tests and documentation.
pub fn builtin_example(name: &str) -> Option<Map<String, Value>> {
    let path = format!("{name}/example.yml");
    let text = embedded::FILES.iter().find(|(p, _)| *p == path)?.1;
    serde_saphyr::from_str::<Option<Map<String, Value>>>(text).ok().map(Option::unwrap_or_default)
}

fn load(stack: &Stack) -> Result<Template> {
    match &stack.template {
        TemplateRef::Builtin(name) => {
            builtin(name).ok_or_else(|| anyhow!("unknown built-in template `{name}`"))
        }
        TemplateRef::File(path) => {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?;
            let shown = path.display().to_string();
            Ok(Template {
                name: shown.clone(),
                stack_source: shown,
                stack: source,
                defaults: Map::new(),
                extras: Vec::new(),
                stateful: BTreeMap::new(),
            })
        }
    }
}

/// The swarm name of each inventory secret: `NAME_` and 8 hex digits of an HMAC of its value
/// under the cluster's own key (a random key kept in the swarm). A new value is a new secret,
/// so the services using it roll; and since the key is the cluster's, the name shown by
/// `docker secret ls` or a log cannot be used to confirm a guessed password offline.
pub fn secret_names(secrets: &[Secret], key: &[u8]) -> Result<BTreeMap<String, String>> {
    secrets
        .iter()
        .map(|s| {
            let mac = hmac_sha256(key, secret_value(s)?.as_bytes());
            let hex: String = mac.iter().take(4).map(|b| format!("{b:02x}")).collect();
            Ok((s.name.clone(), format!("{}_{hex}", s.name)))
        })
        .collect()
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

pub fn secret_value(secret: &Secret) -> Result<String> {
    match &secret.source {
        SecretSource::Env(var) => std::env::var(var).map_err(|_| {
            anyhow!("secret `{}`: environment variable {var} is not set (or not UTF-8)", secret.name)
        }),
        SecretSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("secret `{}`: reading {}", secret.name, path.display()))?;
            Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
        }
    }
}

fn versioned(name: &str, content: &[u8]) -> String {
    format!("{name}_{}", &sha256_hex(content)[..8])
}

/// Renders one stack of the inventory with no host at hand (nodes at their inventory addresses).
pub fn render_stack(inv: &Inventory, stack: &Stack, secrets: &BTreeMap<String, String>) -> Result<Rendered> {
    render_stack_on(inv, stack, secrets, &context::nodes(inv, &BTreeMap::new()))
}

/// Renders one stack of the inventory for the nodes facts found.
pub fn render_stack_on(
    inv: &Inventory,
    stack: &Stack,
    secrets: &BTreeMap<String, String>,
    nodes: &[context::Node],
) -> Result<Rendered> {
    let template = load(stack).with_context(|| format!("stack `{}`", stack.name))?;
    let builtin_template = matches!(stack.template, TemplateRef::Builtin(_));
    let mut vars = template.defaults.clone();
    for (k, v) in &stack.vars {
        vars.insert(k.clone(), v.clone());
    }
    let mut ctx = context::build(inv, stack, vars, secrets, nodes);

    let mut files = Vec::new();
    let mut configs = Map::new();
    for (file, source) in &template.extras {
        let content = render(&format!("{}/{file}.tera", template.name), source, &ctx)
            .with_context(|| format!("stack `{}`", stack.name))?;
        if content.trim().is_empty() {
            continue; // a file that renders to nothing (an option not used) is not deployed
        }
        let slug = file.to_ascii_lowercase().replace('.', "-");
        configs.insert(
            file.clone(),
            Value::String(versioned(&format!("{}_{slug}", stack.name), content.as_bytes())),
        );
        files.push((file.clone(), content));
    }
    ctx.insert("configs".into(), Value::Object(configs));

    let compose = render(&template.stack_source, &template.stack, &ctx)
        .with_context(|| format!("stack `{}`", stack.name))?;
    let mut parsed: Value = serde_saphyr::from_str(&compose)
        .map_err(|e| anyhow!("stack `{}`: the rendered compose file is not valid YAML: {e}", stack.name))?;
    let (nfs_volumes, local_state) = back_volumes_with_nfs(inv, &stack.name, &template.stateful, &mut parsed);
    let limited = builtin_template && apply_resources(ctx.get("vars"), &mut parsed);
    // After the resources: a standby reserves nothing.
    let standbys = builtin_template && add_standbys(ctx.get("vars"), &template.stateful, &mut parsed);
    let compose = if nfs_volumes.is_empty() && !limited && !standbys {
        compose
    } else {
        serde_saphyr::to_string(&parsed).map_err(|e| anyhow!("stack `{}`: {e}", stack.name))?
    };
    let services = parsed.get("services").and_then(Value::as_object);
    let Some(services) = services else {
        bail!("stack `{}`: the rendered compose file has no `services:`", stack.name);
    };
    for (i, route) in stack.expose.iter().enumerate() {
        if !services.contains_key(&route.service) {
            let at = stack
                .expose_lines
                .get(i)
                .map(|l| format!("{}:{l}: ", inv.path.display()))
                .unwrap_or_default();
            bail!(
                "{at}stack `{}` exposes service `{}`, but its template defines only: {}",
                stack.name,
                route.service,
                services.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }

    let sha256 = sha256_hex(deployed_text(&compose, &files).as_bytes());
    Ok(Rendered { stack: stack.name.clone(), sha256, compose, files, nfs_volumes, local_state })
}

/// Everything deployed for a stack as one text: the compose file, then each file beside it
/// under a `--- NAME` line. Its digest decides redeploys; the cluster keeps it for `--diff`.
fn deployed_text(compose: &str, files: &[(String, String)]) -> String {
    let mut text = compose.to_string();
    for (name, content) in files {
        text.push_str(&format!("\n--- {name}\n{content}"));
    }
    text
}

impl Rendered {
    /// What the cluster records once this stack has converged (see [`deployed_text`]).
    pub fn deployed_text(&self) -> String {
        deployed_text(&self.compose, &self.files)
    }
}

/// Volumes as [`back_volumes_with_nfs`] leaves them: those backed by NFS (Docker's name, driver
/// options), and the stateful ones left on their node (volume, the service writing it).
type Backing = (Vec<(String, Value)>, Vec<(String, String)>);

/// With NFS storage, a stateful service finds its data on any node: every top-level volume
/// the inventory declares under `volumes:` is backed by `PATH/NAME` (shared, on purpose, by
/// every stack that names it), and every volume a built-in template lists as its state by
/// `PATH/STACK/VOLUME` (its own), whatever the template said. Returns the volumes backed, and
/// the stateful ones left on their node (no NFS storage) with the service writing each.
fn back_volumes_with_nfs(
    inv: &Inventory,
    stack: &str,
    stateful: &BTreeMap<String, StatefulVolume>,
    compose: &mut Value,
) -> Backing {
    let mut backed = Vec::new();
    let mut local = Vec::new();
    let Some(volumes) = compose.get_mut("volumes").and_then(Value::as_object_mut) else {
        return (backed, local);
    };
    for (name, definition) in volumes.iter_mut() {
        let options = inv.nfs_volume(name).or_else(|| {
            stateful.contains_key(name).then(|| inv.nfs_volume_at(&format!("{stack}/{name}"))).flatten()
        });
        match options {
            Some(options) => {
                *definition = options.clone();
                backed.push((format!("{stack}_{name}"), options));
            }
            None => {
                if let Some(v) = stateful.get(name) {
                    local.push((name.clone(), v.service.clone()));
                }
            }
        }
    }
    (backed, local)
}

/// With `vars.standby`, each stateful service of a built-in template gets `SERVICE-standby`: its
/// image running `sleep`, global on the nodes its placement allows, on its networks, and
/// nothing else (no volume, secret, health check, virtual IP or resources; killed at once, it
/// holds nothing). It keeps those nodes on the service's overlays: a node joining an overlay
/// first syncs with a peer, which can be the node that has just died, and then waits out a
/// 10 s connection timeout before the moved service's container is even created (measured by
/// vm-tests/bench-failover: a move 15 s without it, 6 s with it). Returns whether it added one.
fn add_standbys(
    vars: Option<&Value>,
    stateful: &BTreeMap<String, StatefulVolume>,
    compose: &mut Value,
) -> bool {
    if !vars.and_then(|v| v.get("standby")).and_then(Value::as_bool).unwrap_or(false) {
        return false;
    }
    let Some(services) = compose.get_mut("services").and_then(Value::as_object_mut) else { return false };
    let mut names: Vec<&String> = stateful.values().map(|v| &v.service).collect();
    names.sort();
    names.dedup();
    let mut added = false;
    for name in names {
        let Some(main) = services.get(name.as_str()) else { continue };
        let mut deploy = serde_json::json!({
            "mode": "global",
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "any", "delay": "5s"},
        });
        if let Some(placement) = main["deploy"].get("placement") {
            deploy["placement"] = placement.clone();
        }
        let standby = serde_json::json!({
            "image": main["image"],
            "entrypoint": ["sleep", "2147483647"],
            "stop_signal": "SIGKILL",
            "stop_grace_period": "1s",
            "networks": main["networks"],
            "deploy": deploy,
        });
        services.insert(format!("{name}-standby"), standby);
        added = true;
    }
    added
}

/// A built-in template's `limit_cpus`, `limit_memory`, `reserve_cpus` and `reserve_memory`
/// vars, when set, go to every service of the stack (`deploy.resources`): one place for them
/// rather than the same block in every template. Returns whether it changed the compose file.
fn apply_resources(vars: Option<&Value>, compose: &mut Value) -> bool {
    let var = |name: &str| vars.and_then(|v| v.get(name)).and_then(Value::as_str).filter(|v| !v.is_empty());
    let mut resources = Map::new();
    for (kind, cpus, memory) in
        [("limits", "limit_cpus", "limit_memory"), ("reservations", "reserve_cpus", "reserve_memory")]
    {
        let mut of_kind = Map::new();
        if let Some(cpus) = var(cpus) {
            of_kind.insert("cpus".into(), Value::String(cpus.into()));
        }
        if let Some(memory) = var(memory) {
            of_kind.insert("memory".into(), Value::String(memory.into()));
        }
        if !of_kind.is_empty() {
            resources.insert(kind.into(), Value::Object(of_kind));
        }
    }
    if resources.is_empty() {
        return false;
    }
    let Some(services) = compose.get_mut("services").and_then(Value::as_object_mut) else { return false };
    for service in services.values_mut() {
        if let Some(service) = service.as_object_mut() {
            let deploy = service.entry("deploy").or_insert_with(|| Value::Object(Map::new()));
            if let Some(deploy) = deploy.as_object_mut() {
                deploy.insert("resources".into(), Value::Object(resources.clone()));
            }
        }
    }
    true
}

/// The directories the NAS keeps for the stacks' state: each inventory volume (`NAME`) and
/// each built-in template's stateful volume (`STACK/VOLUME`), with the owner it is written as.
/// Empty without NFS storage.
pub fn nas_directories(inv: &Inventory) -> Vec<(String, u32, u32)> {
    if inv.nfs.is_none() {
        return Vec::new();
    }
    let mut dirs: Vec<(String, u32, u32)> =
        inv.volumes.iter().map(|v| (v.name.clone(), v.uid, v.gid)).collect();
    for stack in &inv.stacks {
        let TemplateRef::Builtin(name) = &stack.template else { continue };
        let Some(template) = builtin(name) else { continue };
        for (volume, v) in &template.stateful {
            // A volume the inventory declares is the shared one, already listed.
            if !inv.volumes.iter().any(|d| &d.name == volume) {
                dirs.push((format!("{}/{volume}", stack.name), v.uid, v.gid));
            }
        }
    }
    dirs
}

fn render(name: &str, source: &str, ctx: &Map<String, Value>) -> Result<String> {
    let mut tera = tera::Tera::default();
    // `json` writes a value as JSON, a valid quoted YAML scalar. Strict like printing: an
    // undefined value is an error, not `null`.
    tera.register_filter(
        "json",
        |v: tera::Value, _: tera::Kwargs, _: &tera::State| -> tera::TeraResult<String> {
            if v.is_undefined() {
                return Err(tera::Error::message("the value given to `json` is undefined"));
            }
            serde_json::to_string(&v).map_err(|e| tera::Error::message(e.to_string()))
        },
    );
    tera.add_raw_template(name, source).map_err(|e| anyhow!("template {name}: {e}"))?;
    let context = tera::Context::from_serialize(ctx).map_err(|e| anyhow!("template {name}: {e}"))?;
    let mut text =
        tera.render(name, &context).map_err(|e| anyhow!("rendering {name}: {}", error_chain(&e)))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A rendered stack as `clusterup render` prints it: a YAML stream with the compose file as
/// one document, then each YAML file deployed beside it (`*.yml`, `*.yaml`) as one more, each
/// opened by `---` and a comment naming it. Other files (a Caddyfile) are named in a comment
/// only: `render --out DIR` writes them.
pub fn describe(rendered: &Rendered) -> String {
    /// The text as the body of a document this function opens: without a `---` of its own
    /// before its first content line, which would open a second (empty) document.
    fn body(text: &str) -> String {
        let mut lines: Vec<&str> = text.lines().collect();
        let first = lines.iter().position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if let Some(i) = first
            && lines[i].trim_end() == "---"
        {
            lines.remove(i);
        }
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
    let stack = &rendered.stack;
    let is_yaml = |name: &str| name.ends_with(".yml") || name.ends_with(".yaml");
    let mut out = format!("---\n# stack {stack}: stack.yml (sha256 {})\n", &rendered.sha256[..12]);
    out.push_str(&body(&rendered.compose));
    for (name, _) in rendered.files.iter().filter(|(name, _)| !is_yaml(name)) {
        out.push_str(&format!("# stack {stack}: {name} (not YAML): shown with --out DIR\n"));
    }
    for (name, content) in rendered.files.iter().filter(|(name, _)| is_yaml(name)) {
        out.push_str(&format!(
            "---\n# stack {stack}: {name}, deployed beside stack.yml as a swarm config\n{}",
            body(content)
        ));
    }
    out
}

#[cfg(test)]
mod monitoring_tests;
#[cfg(test)]
mod tests;
