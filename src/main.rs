//! The `clusterup` command: argument parsing, output and exit statuses around the library.

mod cli;

use clusterup::{apply, inventory, report, status, templates};

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};

use cli::load::{Needs, load, load_for};
use cli::{Cli, Command};
use inventory::Inventory;
use report::RunLog;

use cli::{EXIT_FAILED, EXIT_INVALID, EXIT_PENDING};

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
            let inv = match load_for(&args.inventory, Needs::Nothing).await {
                Ok(inv) => inv,
                Err(code) => return code,
            };
            if args.json {
                let mut value = serde_json::to_value(&inv).unwrap_or_default();
                if let Some(changes) = cli::show::cloud_changes(&inv) {
                    value["openstack_changes"] = serde_json::json!(changes);
                }
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                cli::show::print_inventory(&inv);
            }
            ExitCode::SUCCESS
        }
        Command::Render(args) => {
            let inv = match load_for(&args.inventory, Needs::Stacks).await {
                Ok(inv) => inv,
                Err(code) => return code,
            };
            let stacks = match cli::show::render(&inv, args.stack.as_deref()) {
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
                if let Err(e) = cli::show::write_rendered(&dir, rendered) {
                    eprintln!("error: stack {}: {e:#}", rendered.stack);
                    return ExitCode::from(EXIT_FAILED);
                }
            }
            ExitCode::SUCCESS
        }
        Command::New(args) => cli::new::new_inventory(args),
        Command::Completions(args) => {
            let mut command = Cli::command();
            let name = command.get_name().to_string();
            clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Status(args) => {
            let inv = match load_for(&args.inventory, Needs::Hosts).await {
                Ok(inv) => inv,
                Err(code) => return code,
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
                limit: args.cleanup.limit.clone(),
                disruption: Default::default(),
                allow_downgrade: args.cleanup.allow_downgrade,
                lock_reachable: false,
            };
            let exit_code = args.exit_code;
            let inv = match load(&args.target.inventory).await {
                Ok(inv) => inv,
                Err(code) => return code,
            };
            if !limit_names_hosts(&inv, options.limit.as_deref()) {
                return ExitCode::from(EXIT_INVALID);
            }
            let code =
                converge_inventory(inv, args.target.json, cli.log.as_deref(), options, "plan", false).await;
            match code {
                Some(changes) if exit_code && changes > 0 => ExitCode::from(EXIT_PENDING),
                Some(_) => ExitCode::SUCCESS,
                None => ExitCode::from(EXIT_FAILED),
            }
        }
        Command::Init(args) => init(args, cli.log.as_deref(), None).await,
        Command::Backup(args) => cli::backup::backup(args, cli.log.as_deref()).await,
        Command::Restore(args) => cli::backup::restore(args, cli.log.as_deref()).await,
        Command::Remove(args) => init(args.init, cli.log.as_deref(), Some(args.host)).await,
        Command::Unlock(args) => {
            let inv = match load_for(&args.inventory, Needs::Hosts).await {
                Ok(inv) => inv,
                Err(code) => return code,
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
    let options = init_options(&args);
    let mut inv = match load(&args.target.inventory).await {
        Ok(inv) => inv,
        Err(code) => return code,
    };
    if !limit_names_hosts(&inv, options.limit.as_deref()) {
        return ExitCode::from(EXIT_INVALID);
    }
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

/// What `init`'s flags ask of a run.
fn init_options(args: &cli::InitArgs) -> apply::Options {
    apply::Options {
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
        limit: args.cleanup.limit.clone(),
        disruption: args.disruption,
        allow_downgrade: args.cleanup.allow_downgrade,
        lock_reachable: false,
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

/// Every name given to `--limit` must be a host of the inventory; says which are not.
fn limit_names_hosts(inv: &Inventory, limit: Option<&[String]>) -> bool {
    let unknown: Vec<&String> =
        limit.unwrap_or_default().iter().filter(|name| inv.host(name).is_none()).collect();
    if unknown.is_empty() {
        return true;
    }
    let hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    let unknown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
    eprintln!(
        "error: --limit names {}, not a host of {}; its hosts: {}",
        unknown.join(", "),
        inv.path.display(),
        hosts.join(", ")
    );
    false
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
