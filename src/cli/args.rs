//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clusterup::starter::HostArg;

#[derive(Debug, Parser)]
#[command(
    name = "clusterup",
    version,
    about = "Turn a handful of machines into a Docker Swarm cluster, over SSH"
)]
pub struct Cli {
    /// Append the run log of a command that connects to hosts here
    /// (default: ~/.local/state/clusterup/CLUSTER.log)
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Converge the cluster to the inventory: Docker on every node, the swarm, its labels
    Init(InitArgs),
    /// Show what `init` would change, touching nothing
    Plan(PlanArgs),
    /// Show the swarm's nodes, networks and stacks as a manager sees them
    Status(InventoryArg),
    /// Show every stack (or one) as deployed: compose file and files beside it, touching no host
    Render(RenderArgs),
    /// Print the resolved inventory: every host with its defaults applied
    Inventory(InventoryArg),
    /// Remove the cluster lock left by a run that died (it also goes stale by itself)
    Unlock(UnlockArgs),
    /// Take a host out of the swarm (as `state: absent` in the inventory would), then converge
    Remove(RemoveArgs),
    /// Copy the swarm's state (raft) from a manager into a checksummed backup folder
    Backup(BackupArgs),
    /// Put a backup's swarm state back on a manager after the swarm lost its managers, then
    /// converge (the other hosts rejoin)
    Restore(RestoreArgs),
    /// Write a commented starter inventory for the hosts given
    New(NewArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct InventoryArg {
    /// The inventory file
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Machine-readable output on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The inventory file
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub target: InventoryArg,
    /// Do not ask for confirmation on a terminal
    #[arg(short, long)]
    pub yes: bool,
    /// Report what would change, as `plan` does, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// How many hosts are worked on at once
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Redeploy every stack, even those whose rendered files did not change
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the deployed stacks' services to run their desired replicas (awaited together)
    #[arg(long, default_value_t = 180)]
    pub converge_timeout: u64,
    /// Seconds to wait for another run's cluster lock before giving up
    #[arg(long, default_value_t = 0)]
    pub lock_wait: u64,
    /// Remove volumes a node created with other options than the inventory's, where unused
    #[arg(long)]
    pub recreate_volumes: bool,
    /// How many workers may restart their engines at once (a new daemon.json, an engine
    /// upgrade): a share of the swarm's workers (10%) or a number (2); at least one
    #[arg(long, value_name = "N|N%", default_value = "10%")]
    pub disruption: clusterup::plan::roll::Disruption,
    #[command(flatten)]
    pub cleanup: CleanupArgs,
}

/// What `init` may remove beyond what the inventory marks absent, and which hosts it may
/// change; `plan` takes the same flags so that it plans what `init` would do.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Change only these hosts (comma-separated names); the managers are still reached for the
    /// lock and the quorum checks, and networks, secrets and stacks are left alone
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub limit: Option<Vec<String>>,
    /// Remove the stacks clusterup deployed that are no longer in the inventory (without it
    /// they are reported and keep running)
    #[arg(long)]
    pub prune_stacks: bool,
    /// Remove and create again the overlay networks whose options differ from the
    /// inventory's, where no service uses them
    #[arg(long)]
    pub recreate_networks: bool,
    /// Let `docker.version` take an engine to an older version than it has (refused without)
    #[arg(long)]
    pub allow_downgrade: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub init: InitArgs,
    /// The host to remove: drained, its tasks moved, demoted if a manager, out of the swarm
    pub host: String,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: InventoryArg,
    /// The folder to make the backup folder in (clusterup-backup-CLUSTER-TIME)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// Keep a copy on the NAS too (storage.nfs, a host of the inventory), in PATH/backups
    #[arg(long)]
    pub to_nas: bool,
    /// Copy from a swarm that cannot spare a manager (one manager: its engine stops for the copy)
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for another run's cluster lock before giving up
    #[arg(long, default_value_t = 0)]
    pub lock_wait: u64,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub init: InitArgs,
    /// The backup folder (made by `clusterup backup`)
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The manager to restore onto (default: the one the backup was taken from)
    #[arg(long, value_name = "HOST")]
    pub on: Option<String>,
    /// Restore even where a manager still answers for a swarm, or another cluster's backup
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The inventory file
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Only this stack
    pub stack: Option<String>,
    /// Write DIR/STACK/stack.yml and the files beside it, as deployed, instead of printing them
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: InventoryArg,
    /// Exit with status 2 when changes are pending
    #[arg(long)]
    pub exit_code: bool,
    /// Plan to redeploy every stack, as `init --force` would
    #[arg(long)]
    pub force: bool,
    /// Show, for each stack to deploy, a unified diff from what is deployed to what the
    /// inventory renders
    #[arg(long)]
    pub diff: bool,
    #[command(flatten)]
    pub cleanup: CleanupArgs,
    /// How many hosts are worked on at once
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Write the inventory to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite FILE when it exists
    #[arg(long, requires = "out")]
    pub force: bool,
    /// A manager (repeat the flag for more; 1 or 3, a swarm needs a majority of them up)
    #[arg(long = "manager", value_name = "NAME=ADDR", required = true)]
    pub managers: Vec<HostArg>,
    /// A worker (repeat the flag for more)
    #[arg(long = "worker", value_name = "NAME=ADDR")]
    pub workers: Vec<HostArg>,
    /// A NAS that serves the cluster's volumes over NFS (storage.nfs, at /srv/clusterup)
    #[arg(long, value_name = "NAME=ADDR")]
    pub nas: Option<HostArg>,
    /// Add a Caddy reverse proxy and a whoami app at whoami.DOMAIN
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// The SSH user on every host (not root: it needs passwordless sudo)
    #[arg(long, default_value = "root")]
    pub user: String,
    /// The cluster's name (lowercase letters, digits, dashes)
    #[arg(long, value_name = "NAME", default_value = "cluster")]
    pub cluster: String,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
