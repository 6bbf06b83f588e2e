//! `new`: a commented starter inventory, on stdout or in a file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clusterup::inventory::{Inventory, InventoryErrors};

use super::{Cli, EXIT_FAILED, NewArgs};

/// `clusterup new`: the starter inventory on stdout, or in `--out FILE` (kept unless `--force`).
pub fn new_inventory(args: NewArgs) -> ExitCode {
    let file_name = args
        .out
        .as_ref()
        .and_then(|p| p.file_name())
        .map_or_else(|| "inventory.yml".to_string(), |n| n.to_string_lossy().into_owned());
    let starter = clusterup::starter::Starter {
        cluster: args.cluster,
        user: args.user,
        managers: args.managers,
        workers: args.workers,
        nas: args.nas,
        domain: args.domain,
        file_name,
    };
    let text = match starter.inventory() {
        Ok(text) => text,
        Err(problems) => {
            let message = problems.iter().map(|p| format!("\n  {p}")).collect::<String>();
            Cli::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    format!("cannot write the inventory:{message}"),
                )
                .exit();
        }
    };
    // What `init` will read: the same checks, so a starter that would not load is never written.
    let shown = args.out.clone().unwrap_or_else(|| PathBuf::from(&starter.file_name));
    match Inventory::from_text(&shown, &text) {
        Ok(inv) => {
            for w in &inv.warnings {
                eprintln!("warning: {w}");
            }
        }
        Err(InventoryErrors(errors)) => {
            for e in &errors {
                eprintln!("error: the starter inventory does not load (a bug in clusterup): {e}");
            }
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let Some(path) = args.out else {
        print!("{text}");
        return ExitCode::SUCCESS;
    };
    let written = if args.force {
        std::fs::write(&path, &text)
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
    };
    match written {
        Ok(()) => {
            eprintln!("wrote {}; next: clusterup plan -i {}", path.display(), path.display());
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} exists; choose another --out FILE, or overwrite it with --force",
                path.display()
            );
            ExitCode::from(EXIT_FAILED)
        }
        Err(e) => {
            eprintln!("error: writing {}: {e}", path.display());
            ExitCode::from(EXIT_FAILED)
        }
    }
}
