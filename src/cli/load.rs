//! Loading the inventory for a command: every problem, and what the command needs of it.

use std::path::Path;
use std::process::ExitCode;

use clusterup::inventory::{Inventory, InventoryErrors};
use clusterup::templates;

use super::{EXIT_FAILED, EXIT_INVALID};

/// What a command needs of the inventory beyond a valid file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Renders stacks only (`render`): offline, so a cloud source's servers are not asked for;
    /// a missing key file or secret value is a warning, secret names are placeholders.
    Stacks,
    /// Shows the hosts (`inventory`): as `Stacks`, with a cloud source's servers read.
    Nothing,
    /// Connects to the hosts (`status`, `unlock`): the key files must exist.
    Hosts,
    /// Changes or plans the cluster (`plan`, `init`, `remove`): the secret values too.
    Secrets,
}

/// Loads and validates the inventory for a command that changes or plans the cluster.
pub async fn load(path: &Path) -> Result<Inventory, ExitCode> {
    load_for(path, Needs::Secrets).await
}

/// Loads and validates the inventory, reading the hosts of its cloud source unless `needs` is
/// `Stacks`; every problem (and warning) goes to stderr. The exit status on failure: 3 for an
/// inventory (or cloud configuration) to fix, 1 for a cloud that could not be asked.
pub async fn load_for(path: &Path, needs: Needs) -> Result<Inventory, ExitCode> {
    let mut inv = match Inventory::load(path) {
        Ok(inv) => inv,
        Err(InventoryErrors(errors)) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return Err(ExitCode::from(EXIT_INVALID));
        }
    };
    let mut warnings = inv.warnings.clone();
    if needs != Needs::Stacks {
        match clusterup::cloud::resolve(&mut inv).await {
            Ok(found) => warnings.extend(found),
            Err(e) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                for m in &e.messages {
                    eprintln!("error: {}: {m}", inv.path.display());
                }
                return Err(ExitCode::from(if e.invalid_inventory { EXIT_INVALID } else { EXIT_FAILED }));
            }
        }
    }
    let values = if needs == Needs::Secrets {
        templates::SecretValues::Required
    } else {
        templates::SecretValues::Placeholders
    };
    let findings = templates::check(&inv, values);
    let mut errors = findings.errors;
    warnings.extend(findings.warnings);
    if inv.openstack.as_ref().is_some_and(|s| !s.resolved) {
        // Offline, the cloud's servers are unknown: a placement only they may fit is not an error.
        let (placement, rest): (Vec<_>, Vec<_>) =
            errors.into_iter().partition(|e| e.message.contains("fits no host of the inventory"));
        errors = rest;
        warnings.extend(placement.into_iter().map(|e| {
            format!("{e} (checked against `hosts:` only: `render` does not ask the cloud for its servers)")
        }));
    }
    if needs == Needs::Hosts || needs == Needs::Secrets {
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
    if errors.is_empty() { Ok(inv) } else { Err(ExitCode::from(EXIT_INVALID)) }
}
