//! What can be known about the stacks with no host at hand: every stack renders, every secret
//! a stack names is declared, no var is unknown to its template, and every service's placement
//! constraints fit some host of the inventory. `inventory`, `render`, `plan` and `init` run it
//! before anything else, so a stack error stops a run before its first change.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{builtin, render_stack, secret_value};
use crate::inventory::{Host, Inventory, InventoryError, Role, SecretSource, Stack, TemplateRef, closest};

/// Whether secret values must be at hand (commands that deploy) or may be shown as
/// placeholders (commands that only show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretValues {
    Required,
    Placeholders,
}

#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<InventoryError>,
    pub warnings: Vec<String>,
}

/// Every problem of every stack, at once.
pub fn check(inv: &Inventory, values: SecretValues) -> Findings {
    let mut findings = Findings::default();
    let (secrets, problems) = secret_names_or_placeholders(inv);
    for (line, problem) in problems {
        match values {
            SecretValues::Required => findings.errors.push(at(inv, line, problem)),
            SecretValues::Placeholders => {
                findings.warnings.push(format!("{problem}; its name is shown as a placeholder"))
            }
        }
    }
    // Per stack, the NFS-backed volumes its render gave (for the sharing check).
    let mut backed: Vec<(&str, Vec<String>)> = Vec::new();
    for stack in &inv.stacks {
        let before = findings.errors.len();
        check_vars(inv, stack, &mut findings.errors);
        if findings.errors.len() > before {
            continue; // a stack with a wrong var would render misleadingly
        }
        match render_stack(inv, stack, &secrets) {
            Ok(rendered) => {
                check_placement(inv, stack, &rendered.compose, &mut findings.errors);
                check_local_state(inv, stack, &rendered, &mut findings.errors);
                backed.push((&stack.name, rendered.nfs_volumes.iter().map(|(n, _)| n.clone()).collect()));
            }
            Err(e) => findings.errors.push(at(inv, stack.line, format!("{e:#}"))),
        }
    }
    shared_volumes(inv, &backed, &mut findings.warnings);
    findings
}

/// A built-in template's state on a volume that stays on its node (no NFS storage) must not
/// move with its service: without a placement rule the swarm may start the service on another
/// node, on an empty volume, and the data seems gone.
fn check_local_state(
    inv: &Inventory,
    stack: &Stack,
    rendered: &super::Rendered,
    errors: &mut Vec<InventoryError>,
) {
    let Ok(parsed) = serde_saphyr::from_str::<Value>(&rendered.compose) else { return };
    for (volume, service) in &rendered.local_state {
        let pinned = parsed
            .pointer(&format!("/services/{service}/deploy/placement/constraints"))
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        if pinned {
            continue;
        }
        errors.push(at(
            inv,
            stack.line,
            format!(
                "stack `{}`: service `{service}` keeps its state in volume `{volume}`, which stays on the node it runs \
                 on, and nothing keeps the service on that node: moved by the swarm, it would start on an empty \
                 volume. Give the inventory `storage.nfs` (the volume then lives on the NAS, in PATH/{}/{volume}), \
                 or pin it with `vars: {{placement_label: LABEL}}` and `labels: {{LABEL: true}}` on one host",
                stack.name, stack.name
            ),
        ));
    }
}

/// Stacks that name the same declared volume share one directory on the NAS: on purpose only
/// (two databases on one data directory corrupt it), so it is said.
fn shared_volumes(inv: &Inventory, backed: &[(&str, Vec<String>)], warnings: &mut Vec<String>) {
    let Some(nfs) = &inv.nfs else { return };
    for volume in &inv.volumes {
        let users: Vec<&str> = backed
            .iter()
            .filter(|(stack, names)| names.contains(&format!("{stack}_{}", volume.name)))
            .map(|(stack, _)| *stack)
            .collect();
        if users.len() > 1 {
            warnings.push(format!(
                "stacks {} share the NFS directory {}/{} (volumes: {}): meant for data both read and write; a \
                 database's data directory must have one writer",
                users.join(", "),
                nfs.path.trim_end_matches('/'),
                volume.name,
                volume.name
            ));
        }
    }
}

/// Placeholders for the secrets' swarm names, which only the cluster can give (they are keyed
/// by its own key), and a problem for each secret whose value is not at hand.
pub fn secret_names_or_placeholders(inv: &Inventory) -> (BTreeMap<String, String>, Vec<(u64, String)>) {
    let mut names = BTreeMap::new();
    let mut problems = Vec::new();
    for secret in &inv.secrets {
        let placeholder = match (secret_value(secret), &secret.source) {
            (Ok(_), _) => format!("{}_<named by the cluster>", secret.name),
            (Err(e), SecretSource::Env(var)) => {
                problems.push((0, format!("{e:#}")));
                format!("{}_<value of ${var}>", secret.name)
            }
            (Err(e), SecretSource::File(_)) => {
                problems.push((0, format!("{e:#}")));
                format!("{}_<value of its file>", secret.name)
            }
        };
        names.insert(secret.name.clone(), placeholder);
    }
    (names, problems)
}

/// Vars a built-in template does not know (its `defaults.yml` lists them all), and vars that
/// name an undeclared secret (`*_secret`, by the templates' convention).
fn check_vars(inv: &Inventory, stack: &Stack, errors: &mut Vec<InventoryError>) {
    let mut vars = stack.vars.clone();
    if let TemplateRef::Builtin(name) = &stack.template
        && let Some(template) = builtin(name)
    {
        let known: Vec<&str> = template.defaults.keys().map(String::as_str).collect();
        for key in stack.vars.keys().filter(|k| !known.contains(&k.as_str())) {
            let hint = match closest(key, &known) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("its vars are: {}", known.join(", ")),
            };
            errors.push(at(
                inv,
                stack.line,
                format!("stack `{}`: template `{name}` has no var `{key}`: {hint}", stack.name),
            ));
        }
        for (k, v) in template.defaults {
            vars.entry(k).or_insert(v);
        }
    }
    let declared: Vec<&str> = inv.secrets.iter().map(|s| s.name.as_str()).collect();
    for (key, value) in vars.iter().filter(|(k, _)| k.ends_with("_secret")) {
        if let Some(secret) = value.as_str()
            && !secret.is_empty()
            && !declared.contains(&secret)
        {
            errors.push(at(
                inv,
                stack.line,
                format!(
                    "stack `{}`: var `{key}` names secret `{secret}`, which is not declared under `secrets:` \
                     (add `- {{name: {secret}, env: VARIABLE}}` there)",
                    stack.name
                ),
            ));
        }
    }
}

/// Every service must fit at least one swarm node: `node.role` and `node.labels.*`
/// constraints are checked against the inventory; others (`node.hostname`, platform) need
/// facts and are left to the swarm.
fn check_placement(inv: &Inventory, stack: &Stack, compose: &str, errors: &mut Vec<InventoryError>) {
    let Ok(parsed) = serde_saphyr::from_str::<Value>(compose) else { return };
    let Some(services) = parsed.get("services").and_then(Value::as_object) else { return };
    let nodes: Vec<&Host> = inv.hosts.iter().filter(|h| h.is_swarm_node()).collect();
    for (service, spec) in services {
        let constraints: Vec<&str> = spec
            .pointer("/deploy/placement/constraints")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if constraints.is_empty() || nodes.iter().any(|h| constraints.iter().all(|c| fits(h, c))) {
            continue;
        }
        let per_constraint: Vec<String> = constraints
            .iter()
            .map(|c| {
                let fitting: Vec<&str> =
                    nodes.iter().filter(|h| fits(h, c)).map(|h| h.name.as_str()).collect();
                let hosts = if fitting.is_empty() { "no host".to_string() } else { fitting.join(", ") };
                format!("`{c}` (fits {hosts})")
            })
            .collect();
        errors.push(at(
            inv,
            stack.line,
            format!(
                "stack `{}`: service `{service}` fits no host of the inventory: it needs {}; \
                 change the host labels or roles, or the stack's vars",
                stack.name,
                per_constraint.join(" and ")
            ),
        ));
    }
}

/// Whether a host satisfies one constraint; true where the inventory cannot tell.
fn fits(host: &Host, constraint: &str) -> bool {
    let (field, wanted, equal) = match (constraint.split_once("!="), constraint.split_once("==")) {
        (Some((f, v)), _) => (f.trim(), v.trim(), false),
        (None, Some((f, v))) => (f.trim(), v.trim(), true),
        (None, None) => return true,
    };
    let actual = if field == "node.role" {
        Some(if host.roles.contains(&Role::Manager) { "manager" } else { "worker" }.to_string())
    } else if let Some(label) = field.strip_prefix("node.labels.") {
        host.labels.get(label).cloned()
    } else {
        return true;
    };
    (actual.as_deref() == Some(wanted)) == equal
}

fn at(inv: &Inventory, line: u64, message: String) -> InventoryError {
    InventoryError { file: inv.path.clone(), line: (line > 0).then_some(line), column: None, message }
}
