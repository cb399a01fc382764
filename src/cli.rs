//! The command line: argument definitions and dispatch. Each command is a function returning
//! an [`output::Output`]; printing and exit codes are decided in one place.

mod bench_cmd;
mod checkout_cmd;
mod demo;
mod history;
mod hook_cmd;
mod master_cmd;
mod mcp_cmd;
mod net;
pub mod output;
pub mod rev;
mod service_cmd;
mod state;

use crate::paths::Paths;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Protocol version spoken on the wire (see store-format.md).
pub const PROTOCOL_VERSION: u32 = 1;

fn long_version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (store format 1, protocol 1)")
}

/// Keep one trusted Codex setup (~/.codex) identical across your machines.
#[derive(Debug, Parser)]
#[command(name = "codexport", version = long_version(), about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Home directory holding .codex and .codexport (default: your home).
    #[arg(long, global = true, value_name = "DIR", env = "CODEXPORT_HOME")]
    pub home: Option<PathBuf>,
    /// The Codex directory to export or apply to (default: <home>/.codex).
    #[arg(long, global = true, value_name = "DIR")]
    pub codex_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on success.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Global {
    pub fn paths(&self) -> Paths {
        Paths::new(
            self.home.clone().unwrap_or_else(Paths::default_home),
            self.codex_dir.clone(),
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Commands run on the master machine.
    #[command(subcommand)]
    Master(MasterCommand),
    /// Commands run on a follower machine.
    #[command(subcommand)]
    Follower(FollowerCommand),
    /// Fetch the master's newest revision (verifying its signature and every object).
    Sync {
        /// Also apply the fetched revision into ~/.codex.
        #[arg(long)]
        apply: bool,
        /// One deadline for the whole sync, in milliseconds.
        #[arg(long, default_value_t = 120_000)]
        timeout_ms: u64,
    },
    /// Merge the fetched revision with this follower's overlay and write it into ~/.codex
    /// (atomically; local edits are backed up first). Also releases a rollback hold.
    Apply {
        /// Print the plan and change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Show what `apply` (or a rollback to REV) would change in ~/.codex.
    Diff {
        /// A revision number, an id prefix, or HEAD (default: the newest fetched).
        rev: Option<String>,
        /// Also print a unified diff of text files.
        #[arg(long)]
        patch: bool,
    },
    /// Check out an earlier revision's merged tree; the follower stays there until the
    /// master publishes a newer revision (or `codexport apply`).
    Rollback {
        /// A revision number, an id prefix, or HEAD.
        rev: String,
    },
    /// MCP servers exported by the master, run on this follower.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// List revisions: number, id, time, files, bytes, and what changed.
    Log {
        /// Show only the newest N revisions.
        #[arg(long, short = 'n')]
        limit: Option<usize>,
    },
    /// List a tree or print a file from any revision.
    Show {
        /// A revision number, an id prefix, or HEAD.
        rev: String,
        /// A path inside the revision (default: the top level).
        path: Option<String>,
    },
    /// Role, directories, current revision, the master's reachability, and the store's size.
    Status {
        /// How long to wait for the master, in milliseconds.
        #[arg(long, default_value_t = 1500)]
        timeout_ms: u64,
    },
    /// Re-hash every stored object and check that every revision is complete.
    Fsck,
    /// Remove objects no longer needed, keeping the newest N revisions.
    Gc {
        /// Revisions to keep.
        #[arg(long, default_value_t = 20)]
        keep: usize,
    },
    /// Benchmark helpers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a demonstration on a temporary home: a sample ~/.codex, master init, a change,
    /// rebuild, log and show.
    Demo {
        /// Keep the temporary home and print its path.
        #[arg(long)]
        keep: bool,
    },
    /// The Codex session-start hook that syncs this follower (install, uninstall, run).
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print a shell completion script (e.g. `codexport completions bash > /etc/bash_completion.d/codexport`).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Make Codex run `codexport hook run` when a session starts (hooks.json, the feature
    /// flag, and Codex's trust in the hook).
    Install {
        /// The hook's deadline for one sync, in milliseconds.
        #[arg(long, default_value_t = crate::hook::DEFAULT_TIMEOUT_MS)]
        timeout_ms: u64,
    },
    /// Remove codexport's hook (other hooks stay).
    Uninstall,
    /// What Codex runs: a best-effort `sync --apply`; prints nothing, always exits 0, logs to
    /// ~/.codexport/logs/hook.log.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Run {
        /// One deadline for the whole run, in milliseconds.
        #[arg(long, default_value = "3000", value_parser = hook_cmd::lenient_ms)]
        timeout_ms: u64,
        /// Anything else is ignored: the hook never fails on its arguments.
        #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
        ignored: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Install and start `master serve` as a user service (systemd, launchd or a Scheduled Task).
    Install {
        #[arg(long, default_value_t = crate::transport::DEFAULT_PORT)]
        port: u16,
        /// Print the files and commands and change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Stop and remove the service.
    Uninstall {
        /// Print the commands and change nothing.
        #[arg(long, short = 'n')]
        dry_run: bool,
    },
    /// Whether the service is installed and running.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Start a managed MCP server (Codex runs this; stdio is the server's own).
    Run { name: String },
    /// Each managed server, its kind, artifact, and whether it is ready to start.
    List,
    /// Prepare servers ahead of time, so the first Codex session does not wait for installs.
    Repair { name: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum MasterCommand {
    /// Make this machine the master: create its key, the store and the first revision.
    Init,
    /// Snapshot ~/.codex again (a new revision only if something changed).
    Rebuild,
    /// Serve revisions to followers (publishes a new revision whenever ~/.codex settles).
    Serve {
        #[arg(long, default_value = "0.0.0.0")]
        host: String,
        #[arg(long, default_value_t = crate::transport::DEFAULT_PORT)]
        port: u16,
        /// Do not watch ~/.codex; publish only on `master rebuild`.
        #[arg(long)]
        no_watch: bool,
    },
    /// Print a join link with a new single-use token for one follower.
    Link {
        /// Name or IP followers reach this machine by (default: its Tailscale DNS name).
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value_t = crate::transport::DEFAULT_PORT)]
        port: u16,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        expires_hours: u64,
    },
    /// List enrolled followers, or revoke one.
    Followers {
        #[command(subcommand)]
        action: Option<FollowersAction>,
    },
    /// Run `master serve` as a per-user service that starts at login.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum FollowersAction {
    /// Refuse this follower's credential from now on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum FollowerCommand {
    /// Enroll with a master using the link from `codexport master link`, then sync.
    Join {
        /// The codexport://join?... link.
        link: Option<String>,
        /// The master's URL (overrides the link's host and port).
        #[arg(long)]
        master: Option<String>,
        /// The master's fingerprint (overrides the link's).
        #[arg(long)]
        fingerprint: Option<String>,
        /// The join token (overrides the link's).
        #[arg(long)]
        token: Option<String>,
        /// Trust a master whose key differs from the one pinned before.
        #[arg(long)]
        reset_trust: bool,
        /// Apply the first revision into ~/.codex right away.
        #[arg(long)]
        apply: bool,
        /// One deadline for enrollment and the first sync, in milliseconds.
        #[arg(long, default_value_t = 120_000)]
        timeout_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a deterministic generated skill library into DIR (as a codex dir).
    GenLibrary {
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure cold, no-change and one-file-change syncs of a generated library (or of
    /// --codex-dir's content) between a master and a follower on loopback.
    Sync {
        /// Files in the generated library (ignored with --codex-dir).
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Timed runs of each kind, after one warm-up.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    if let Command::Hook(HookCommand::Run { timeout_ms, .. }) = cli.command {
        // Codex hands a SessionStart hook's stdout to the model: print nothing, ever.
        return hook_cmd::run(&cli.global, timeout_ms);
    }
    let global = cli.global.clone();
    match dispatch(cli) {
        Ok(out) => {
            out.print(global.json, global.quiet);
            0
        }
        Err(err) => {
            if global.json {
                println!("{}", output::error_json(&err));
            } else {
                eprintln!("{err:?}");
            }
            output::exit_code(&err)
        }
    }
}

fn dispatch(cli: Cli) -> miette::Result<output::Output> {
    let paths = cli.global.paths();
    match cli.command {
        Command::Master(MasterCommand::Init) => master_cmd::init(&paths),
        Command::Master(MasterCommand::Rebuild) => master_cmd::rebuild(&paths),
        Command::Master(MasterCommand::Serve {
            host,
            port,
            no_watch,
        }) => net::serve(&paths, host, port, !no_watch),
        Command::Master(MasterCommand::Link {
            host,
            port,
            expires_hours,
        }) => net::link(&paths, host, port, expires_hours),
        Command::Master(MasterCommand::Followers { action: None }) => net::followers(&paths),
        Command::Master(MasterCommand::Followers {
            action: Some(FollowersAction::Revoke { name }),
        }) => net::revoke(&paths, &name),
        Command::Follower(FollowerCommand::Join {
            link,
            master,
            fingerprint,
            token,
            reset_trust,
            apply,
            timeout_ms,
        }) => net::join(
            &paths,
            crate::follower::join::JoinOptions {
                link,
                master,
                fingerprint,
                token,
                reset_trust,
                timeout: std::time::Duration::from_millis(timeout_ms),
                progress: false,
                apply,
            },
            cli.global.quiet,
            cli.global.json,
        ),
        Command::Sync { apply, timeout_ms } => {
            net::sync(&paths, apply, timeout_ms, cli.global.quiet, cli.global.json)
        }
        Command::Apply { dry_run } => checkout_cmd::apply(&paths, dry_run),
        Command::Diff { rev, patch } => checkout_cmd::diff(&paths, rev.as_deref(), patch),
        Command::Rollback { rev } => checkout_cmd::rollback(&paths, &rev),
        Command::Mcp(McpCommand::Run { name }) => mcp_cmd::run_server(&paths, &name),
        Command::Mcp(McpCommand::List) => mcp_cmd::list(&paths),
        Command::Mcp(McpCommand::Repair { name }) => mcp_cmd::repair(&paths, name.as_deref()),
        Command::Log { limit } => history::log(&paths, limit),
        Command::Show { rev, path } => history::show(&paths, &rev, path.as_deref()),
        Command::Status { timeout_ms } => state::status(&paths, timeout_ms),
        Command::Fsck => state::fsck(&paths),
        Command::Gc { keep } => state::gc(&paths, keep),
        Command::Bench(BenchCommand::GenLibrary { dir, files, seed }) => {
            master_cmd::gen_library(&dir, files, seed)
        }
        Command::Bench(BenchCommand::Sync { files, runs }) => {
            bench_cmd::sync(&cli.global, files, runs)
        }
        Command::Demo { keep } => demo::run(keep),
        Command::Hook(HookCommand::Install { timeout_ms }) => hook_cmd::install(&paths, timeout_ms),
        Command::Hook(HookCommand::Uninstall) => hook_cmd::uninstall(&paths),
        Command::Hook(HookCommand::Run { timeout_ms, .. }) => {
            Ok(hook_cmd::run_output(&cli.global, timeout_ms))
        }
        Command::Master(MasterCommand::Service(cmd)) => service_cmd::service(&paths, &cmd),
        Command::Completions { shell } => Ok(service_cmd::completions(shell)),
    }
}
