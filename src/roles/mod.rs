//! Roles: what runs on the hosts, as files under `roles/` embedded in the binary at build time,
//! so a user can read exactly what clusterup will run on their machines.
//!
//! A package role (`docker`, `nfs-client`) has a `role.yml` manifest naming a read-only
//! `check.sh` (exit 0: nothing to do; exit 10: apply needed, one reason per line) and an
//! `apply.sh` (one `changed: ...` line per change). The engine runs apply only after a check
//! said so. Other roles (`facts`, `swarm`) are steps the engine orders across hosts.

mod embedded;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::commands::Input;

/// A script ready to send: the role's shared `lib` (if any) followed by the step's own file.
#[derive(Debug, Clone)]
pub struct Script {
    pub path: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[allow(dead_code)] // documentation for the user; shown by tests, not used by the engine
    description: String,
    lib: Option<String>,
    check: Option<String>,
    apply: Option<String>,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    steps: BTreeMap<String, String>,
    /// Commands the scripts call that a host may lack (`docker` before the engine is
    /// installed, or on a system where the CLI is a package of its own).
    #[serde(default)]
    needs: Vec<String>,
}

pub struct Role {
    pub name: &'static str,
    manifest: Manifest,
}

/// Exit status of a check script that asks for its apply script.
pub const CHECK_NEEDS_APPLY: u32 = 10;

pub fn file(path: &str) -> Option<&'static str> {
    embedded::FILES.iter().find(|(p, _)| *p == path).map(|(_, body)| *body)
}

/// A role by name. Roles are embedded and tested, so a missing one is a bug, not input.
pub fn role(name: &'static str) -> Role {
    let text = file(&format!("{name}/role.yml")).unwrap_or_else(|| panic!("role {name} is not embedded"));
    let manifest = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("roles/{name}/role.yml: {e}"));
    Role { name, manifest }
}

/// The facts script: one round trip that tells everything planning needs about a host.
pub fn facts() -> Script {
    standalone("facts/gather.sh")
}

/// A script that belongs to no role's manifest (`facts/gather.sh`, `common/stop.sh`), as is.
pub fn standalone(path: &str) -> Script {
    Script { path: path.into(), body: file(path).unwrap_or_default().into() }
}

impl Role {
    fn compose(&self, file_name: &str) -> Script {
        let path = format!("{}/{file_name}", self.name);
        let own = file(&path).unwrap_or_else(|| panic!("roles/{path} is not embedded"));
        let mut body = String::new();
        if !self.manifest.needs.is_empty() {
            body.push_str(&format!("REQUIRED_COMMANDS='{}'\n", self.manifest.needs.join(" ")));
            body.push_str(file("common/require.sh").unwrap_or_default());
            body.push('\n');
        }
        if let Some(lib) = &self.manifest.lib {
            body.push_str(file(&format!("{}/{lib}", self.name)).unwrap_or_default());
            body.push('\n');
        }
        body.push_str(own);
        Script { path, body }
    }

    pub fn check(&self) -> Script {
        self.compose(self.manifest.check.as_deref().expect("role has a check script"))
    }

    pub fn apply(&self) -> Script {
        self.compose(self.manifest.apply.as_deref().expect("role has an apply script"))
    }

    /// A named step of a step role (`swarm`'s `join`, ...).
    pub fn step(&self, step: &str) -> Script {
        let file_name =
            self.manifest.steps.get(step).unwrap_or_else(|| panic!("{} has no step {step}", self.name));
        self.compose(file_name)
    }

    /// The scripts' environment. Every input the manifest declares must be supplied, and
    /// nothing else: a mismatch between the manifest and the code is caught in the tests.
    pub fn inputs(&self, values: &[(&str, String)]) -> Result<Vec<Input>> {
        let inputs: Vec<Input> = values.iter().map(|(k, v)| Input::new(k, v.clone())).collect();
        let given: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        for declared in &self.manifest.inputs {
            if !given.contains(&declared.as_str()) {
                bail!("role {} declares input {declared}, which clusterup did not supply", self.name);
            }
        }
        if let Some(extra) = given.iter().find(|g| !self.manifest.inputs.iter().any(|d| d == *g)) {
            bail!("role {} does not declare input {extra}", self.name);
        }
        Ok(inputs)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
