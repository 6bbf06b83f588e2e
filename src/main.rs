//! The `clusterup` command: argument parsing, output and exit statuses around the library.

mod cli;

use clusterup::{apply, inventory, report, status, templates};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

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
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Inventory(args) => {
            let Some(inv) = load(&args.inventory) else {
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
            let Some(inv) = load(&args.inventory) else {
                return ExitCode::from(EXIT_INVALID);
            };
            match render(&inv, args.stack.as_deref()) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_INVALID)
                }
            }
        }
        Command::Status(args) => {
            let Some(inv) = load(&args.inventory) else {
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
            };
            let exit_code = args.exit_code;
            let code = converge(&args.target, cli.log.as_deref(), options, "plan", false).await;
            match code {
                Some(changes) if exit_code && changes > 0 => ExitCode::from(EXIT_PENDING),
                Some(_) => ExitCode::SUCCESS,
                None => ExitCode::from(EXIT_FAILED),
            }
            .pipe_invalid(&args.target.inventory)
        }
        Command::Init(args) => init(args, cli.log.as_deref(), None).await,
        Command::Remove(args) => init(args.init, cli.log.as_deref(), Some(args.host)).await,
        Command::Unlock(args) => {
            let Some(inv) = load(&args.inventory) else { return ExitCode::from(EXIT_INVALID) };
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
async fn converge(
    target: &cli::InventoryArg,
    log: Option<&Path>,
    options: apply::Options,
    command: &str,
    apply_changes: bool,
) -> Option<usize> {
    let inv = load(&target.inventory)?;
    converge_inventory(inv, target.json, log, options, command, apply_changes).await
}

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

/// `clusterup render`: every stack's compose file (and files beside it), or one stack's.
fn render(inv: &Inventory, only: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = only
        && !inv.stacks.iter().any(|s| s.name == name)
    {
        let names: Vec<&str> = inv.stacks.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!("no stack `{name}` in {}; its stacks: {}", inv.path.display(), names.join(", "));
    }
    let secrets = templates::secret_names(&inv.secrets)?;
    let mut out = String::new();
    for stack in inv.stacks.iter().filter(|s| only.is_none_or(|n| n == s.name)) {
        let rendered = templates::render_stack(inv, stack, &secrets)?;
        out.push_str(&templates::describe(&rendered));
    }
    Ok(out)
}

/// Loads the inventory, printing every problem (and warnings) on stderr.
fn load(path: &Path) -> Option<Inventory> {
    match Inventory::load(path) {
        Ok(inv) => {
            for w in &inv.warnings {
                eprintln!("warning: {w}");
            }
            Some(inv)
        }
        Err(InventoryErrors(errors)) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

trait PipeInvalid {
    fn pipe_invalid(self, inventory: &Path) -> ExitCode;
}

impl PipeInvalid for ExitCode {
    /// An inventory that does not load is "invalid input", whatever the command.
    fn pipe_invalid(self, inventory: &Path) -> ExitCode {
        if self == ExitCode::from(EXIT_FAILED) && Inventory::load(inventory).is_err() {
            ExitCode::from(EXIT_INVALID)
        } else {
            self
        }
    }
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
