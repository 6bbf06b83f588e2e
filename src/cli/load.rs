//! Loading the inventory for a command: every problem, and what the command needs of it.

use std::path::Path;

use clusterup::inventory::{Inventory, InventoryErrors};
use clusterup::templates;

/// What a command needs of the inventory beyond a valid file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Shows only (`inventory`, `render`): a missing key file or secret value is a warning,
    /// and secret names are shown as placeholders.
    Nothing,
    /// Connects to the hosts (`status`, `unlock`): the key files must exist.
    Hosts,
    /// Changes or plans the cluster (`plan`, `init`, `remove`): the secret values too.
    Secrets,
}

/// Loads and validates the inventory for a command that changes or plans the cluster.
pub fn load(path: &Path) -> Option<Inventory> {
    load_for(path, Needs::Secrets)
}

/// Loads and validates the inventory; every problem (and warning) goes to stderr.
pub fn load_for(path: &Path, needs: Needs) -> Option<Inventory> {
    let inv = match Inventory::load(path) {
        Ok(inv) => inv,
        Err(InventoryErrors(errors)) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return None;
        }
    };
    let values = if needs == Needs::Secrets {
        templates::SecretValues::Required
    } else {
        templates::SecretValues::Placeholders
    };
    let findings = templates::check(&inv, values);
    let mut errors = findings.errors;
    let mut warnings = inv.warnings.clone();
    warnings.extend(findings.warnings);
    if needs != Needs::Nothing {
        errors.extend(inv.missing_identity_files.iter().cloned());
    } else {
        warnings.extend(
            inv.missing_identity_files
                .iter()
                .map(|e| format!("{e} (needed to connect, not for this command)")),
        );
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    errors.is_empty().then_some(inv)
}
