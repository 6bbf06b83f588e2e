//! The `clusterup` command: argument parsing, output and exit statuses around the library.

mod cli;

use clusterup::{apply, inventory, report, status, templates};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use inventory::{Inventory, InventoryErrors};
use report::RunLog;

/// Exit statuses, as the README documents them.
const EXIT_FAILED: u8 = 1;
const EXIT_PENDING: u8 = 2;
const EXIT_INVALID: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(run(cli));
    // A prompt interrupted by Ctrl-C leaves its reader blocked on stdin: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Inventory(args) => {
            let Some(inv) = load_for(&args.inventory, Needs::Nothing) else {
                return ExitCode::from(EXIT_INVALID);
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&inv).unwrap_or_default());
            } else {
                print_inventory(&inv);
            }
            ExitCode::SUCCESS
        }
        Command::Render(args) => {
            let Some(inv) = load_for(&args.inventory, Needs::Nothing) else {
                return ExitCode::from(EXIT_INVALID);
            };
            let stacks = match render(&inv, args.stack.as_deref()) {
                Ok(stacks) => stacks,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let Some(dir) = args.out else {
                print!("{}", stacks.iter().map(templates::describe).collect::<String>());
                return ExitCode::SUCCESS;
            };
            for rendered in &stacks {
                if let Err(e) = write_rendered(&dir, rendered) {
                    eprintln!("error: stack {}: {e:#}", rendered.stack);
                    return ExitCode::from(EXIT_FAILED);
                }
            }
            ExitCode::SUCCESS
        }
        Command::New(args) => new_inventory(args),
        Command::Completions(args) => {
            let mut command = Cli::command();
            let name = command.get_name().to_string();
            clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Status(args) => {
            let Some(inv) = load_for(&args.inventory, Needs::Hosts) else {
                return ExitCode::from(EXIT_INVALID);
            };
            let log = Arc::new(RunLog::open(&log_path(cli.log.as_deref(), &inv), "status"));
            match status::status(&inv, log).await {
                Ok(s) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok(s) => {
                    status::print_human(&s);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Plan(args) => {
            let options = apply::Options {
                dry_run: true,
                yes: true,
                concurrency: args.concurrency.into(),
                force: args.force,
                converge_timeout: 0,
                lock_wait: std::time::Duration::ZERO,
                recreate_volumes: false,
                diff: args.diff,
                recreate_networks: args.cleanup.recreate_networks,
                prune_stacks: args.cleanup.prune_stacks,
            };
            let exit_code = args.exit_code;
            let Some(inv) = load(&args.target.inventory) else { return ExitCode::from(EXIT_INVALID) };
            let code =
                converge_inventory(inv, args.target.json, cli.log.as_deref(), options, "plan", false).await;
            match code {
                Some(changes) if exit_code && changes > 0 => ExitCode::from(EXIT_PENDING),
                Some(_) => ExitCode::SUCCESS,
                None => ExitCode::from(EXIT_FAILED),
            }
        }
        Command::Init(args) => init(args, cli.log.as_deref(), None).await,
        Command::Remove(args) => init(args.init, cli.log.as_deref(), Some(args.host)).await,
        Command::Unlock(args) => {
            let Some(inv) = load_for(&args.inventory, Needs::Hosts) else {
                return ExitCode::from(EXIT_INVALID);
            };
            let log = Arc::new(RunLog::open(&log_path(cli.log.as_deref(), &inv), "unlock"));
            match status::unlock(&inv, log).await {
                Ok(message) => {
                    println!("{message}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
    }
}

/// `init`, or `remove HOST` (init with that host marked absent).
async fn init(args: cli::InitArgs, log: Option<&Path>, remove: Option<String>) -> ExitCode {
    let options = apply::Options {
        dry_run: args.dry_run,
        yes: args.yes,
        concurrency: args.concurrency.into(),
        force: args.force,
        converge_timeout: args.converge_timeout,
        lock_wait: std::time::Duration::from_secs(args.lock_wait),
        recreate_volumes: args.recreate_volumes,
        diff: false,
        recreate_networks: args.cleanup.recreate_networks,
        prune_stacks: args.cleanup.prune_stacks,
    };
    let Some(mut inv) = load(&args.target.inventory) else { return ExitCode::from(EXIT_INVALID) };
    if let Some(name) = remove {
        let Some(host) = inv.hosts.iter_mut().find(|h| h.name == name) else {
            eprintln!("error: no host `{name}` in {}", inv.path.display());
            return ExitCode::from(EXIT_INVALID);
        };
        host.state = inventory::HostState::Absent;
        if !inv.hosts.iter().any(|h| h.is_manager()) {
            eprintln!("error: removing {name} would leave the inventory without a manager");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    match converge_inventory(inv, args.target.json, log, options, "init", true).await {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    }
}

/// Runs plan or init; `Some(changes)` when no host failed.
async fn converge_inventory(
    inv: Inventory,
    json: bool,
    log: Option<&Path>,
    options: apply::Options,
    command: &str,
    apply_changes: bool,
) -> Option<usize> {
    let log = Arc::new(RunLog::open(&log_path(log, &inv), &format!("{command} -i {}", inv.path.display())));
    let run = apply::Run::new(inv, options, log.clone(), command);
    let report = apply::converge(run, apply_changes).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        report.print_human();
        if let Some(path) = log.path() {
            eprintln!("log: {}", path.display());
        }
    }
    report.succeeded().then_some(report.changed)
}

/// `clusterup render`: every stack rendered (its compose file and the files beside it), or one.
fn render(inv: &Inventory, only: Option<&str>) -> anyhow::Result<Vec<templates::Rendered>> {
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
fn write_rendered(dir: &Path, rendered: &templates::Rendered) -> anyhow::Result<()> {
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

/// `clusterup new`: the starter inventory on stdout, or in `--out FILE` (kept unless `--force`).
fn new_inventory(args: cli::NewArgs) -> ExitCode {
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

/// What a command needs of the inventory beyond a valid file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Shows only (`inventory`, `render`): a missing key file or secret value is a warning,
    /// and secret names are shown as placeholders.
    Nothing,
    /// Connects to the hosts (`status`, `unlock`): the key files must exist.
    Hosts,
    /// Changes or plans the cluster (`plan`, `init`, `remove`): the secret values too.
    Secrets,
}

/// Loads and validates the inventory for a command that changes or plans the cluster.
fn load(path: &Path) -> Option<Inventory> {
    load_for(path, Needs::Secrets)
}

/// Loads and validates the inventory; every problem (and warning) goes to stderr.
fn load_for(path: &Path, needs: Needs) -> Option<Inventory> {
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

fn log_path(explicit: Option<&Path>, inv: &Inventory) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("clusterup").join(format!("{}.log", inv.cluster))
}

fn print_inventory(inv: &Inventory) {
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
            "  {:<12} {:<16} {:<10} {:<18} {}@:{}{via}  {}",
            h.name,
            h.address,
            format!("{:?}", h.kind).to_lowercase(),
            roles.join(","),
            h.ssh.user,
            h.ssh.port,
            labels.join(",")
        );
    }
}
