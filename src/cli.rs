//! The command line: argument definitions, dispatch, and rendering. Each command calls one
//! library function and renders the typed report it returns (text and JSON from the same
//! value, see [`output`]); printing and exit codes are decided in one place.

mod bench_cmd;
mod demo;
mod hook_cmd;
pub mod output;
mod plugins_cmd;
mod render;

use crate::paths::Paths;
use clap::{Args, Parser, Subcommand};
use output::Output;
use plugins_cmd::{plugins, with_plugins};
use std::path::PathBuf;
use std::time::Duration;

/// `--version`: the crate version with the store format and protocol it speaks.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (store format {}, protocol {})",
            env!("CARGO_PKG_VERSION"),
            crate::object::FORMAT_VERSION,
            crate::transport::PROTOCOL_VERSION
        )
    })
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
    /// The Codex directory to export or apply to (default: $CODEX_HOME, else <home>/.codex).
    #[arg(long, global = true, value_name = "DIR", env = "CODEX_HOME")]
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
    /// Check that ~/.codex holds exactly what `apply` would write (exit 0), or list every
    /// path that differs (exit 1). Changes nothing.
    Verify,
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
    /// Codex plugins the applied config.toml enables, installed on this follower.
    #[command(subcommand)]
    Plugins(PluginsCommand),
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

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum PluginsCommand {
    /// Each plugin the applied config.toml enables, and whether Codex has it here.
    List,
    /// Install the enabled plugins Codex lacks here (`codex plugin add`); what failed
    /// before for the same config.toml is not tried again.
    Install,
    /// Install the enabled plugins Codex lacks here, trying failed ones again.
    Repair,
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
        /// Open connections allowed per source address; raise it when many followers share
        /// one address (behind a NAT).
        #[arg(long, default_value_t = crate::master::serve::MAX_PER_ADDRESS)]
        max_per_address: usize,
    },
    /// Take extra top-level entries of ~/.codex (a setup folder codexport does not know),
    /// then snapshot; recorded in ~/.codexport/master.toml.
    Include {
        /// Top-level names of ~/.codex (`*` matches any run of characters).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Leave top-level entries of ~/.codex that codexport would take, then snapshot;
    /// recorded in ~/.codexport/master.toml.
    Exclude {
        /// Top-level names of ~/.codex (`*` matches any run of characters).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print a join link with a new single-use token for one follower.
    Link {
        /// Name or IP followers reach this machine by (default: its Tailscale DNS name).
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value_t = crate::transport::DEFAULT_PORT)]
        port: u16,
        /// Hours until the token expires (at least 1).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=24 * 365))]
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
    /// Static mirrors (a folder behind a web server, an S3 bucket) followers sync from while
    /// this machine sleeps.
    #[command(subcommand)]
    Mirror(MirrorCommand),
    /// Write the newest revision to every mirror (`master serve` does it by itself).
    Publish {
        /// Only re-sign the mirrors' heads (run it from cron when the master is often
        /// offline: a mirror's head expires after its --head-ttl-days).
        #[arg(long)]
        refresh: bool,
        /// Only this mirror.
        #[arg(long)]
        mirror: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Add a mirror: DEST is an absolute folder or s3://bucket/prefix (credentials from the
    /// AWS environment); --url is where followers read it over HTTP(S).
    Add {
        dest: String,
        #[arg(long)]
        url: String,
        /// A name for it (default: from DEST).
        #[arg(long)]
        name: Option<String>,
        /// Days a head published there stays valid.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
        head_ttl_days: u64,
    },
    /// List the mirrors.
    List,
    /// Stop publishing to a mirror (its files stay where they are).
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum FollowerMirrorCommand {
    /// Read this mirror too (besides those the master names).
    Add { url: String },
    /// Forget a mirror added by hand.
    Remove { url: String },
    /// List the mirrors this follower reads.
    List,
}

#[derive(Debug, Subcommand)]
pub enum FollowersAction {
    /// Refuse this follower's credential from now on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum FollowerCommand {
    /// The static mirrors this follower syncs from.
    #[command(subcommand)]
    Mirror(FollowerMirrorCommand),
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
    /// Measure syncs between a master and followers on loopback (cold against rsync,
    /// no-change, one-file-change; large content; many followers against a previous
    /// release), with the peak memory of every process.
    Sync(bench_cmd::SyncArgs),
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
            out.code
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

/// The running codexport executable (hooks, services and MCP servers run it again).
fn current_exe() -> miette::Result<PathBuf> {
    std::env::current_exe().map_err(|e| {
        miette::miette!(
            code = "codexport::io::current_exe",
            help = "run codexport from a path that still exists",
            "cannot tell where the running codexport executable is: {e}"
        )
    })
}

#[allow(clippy::too_many_lines)]
fn dispatch(cli: Cli) -> miette::Result<Output> {
    let paths = cli.global.paths();
    // Installations made before the state dir was owner-only are tightened on first use.
    crate::fsutil::secure_state_dir(&paths.state_dir).map_err(|e| {
        miette::miette!(
            code = "codexport::io::state_dir",
            help = "check that you own ~/.codexport, or pass --home",
            "cannot make {} owner-only: {e}",
            paths.state_dir.display()
        )
    })?;
    let progress = !cli.global.quiet
        && !cli.global.json
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(match cli.command {
        Command::Master(cmd) => master(&paths, cmd)?,
        Command::Follower(FollowerCommand::Mirror(cmd)) => Output::of(&match cmd {
            FollowerMirrorCommand::Add { url } => {
                crate::follower::mirrors::edit_manual(&paths, &url, false)?;
                crate::follower::mirrors::report(&paths)?
            }
            FollowerMirrorCommand::Remove { url } => {
                crate::follower::mirrors::edit_manual(&paths, &url, true)?;
                crate::follower::mirrors::report(&paths)?
            }
            FollowerMirrorCommand::List => crate::follower::mirrors::report(&paths)?,
        }),
        Command::Follower(FollowerCommand::Join {
            link,
            master,
            fingerprint,
            token,
            reset_trust,
            apply,
            timeout_ms,
        }) => with_plugins(
            &paths,
            &cli.global,
            Output::of(&crate::follower::join::join(
                &paths,
                &crate::follower::join::JoinOptions {
                    link,
                    master,
                    fingerprint,
                    token,
                    reset_trust,
                    timeout: Duration::from_millis(timeout_ms),
                    progress,
                    apply,
                },
            )?),
            apply,
        )?,
        Command::Sync { apply, timeout_ms } => {
            let report = crate::follower::sync(
                &paths,
                &crate::follower::SyncOptions {
                    timeout: Duration::from_millis(timeout_ms),
                    progress,
                    apply,
                    drift_check: true,
                },
            )?;
            let applied = report.apply.is_some();
            with_plugins(&paths, &cli.global, Output::of(&report), applied)?
        }
        Command::Apply { dry_run } => with_plugins(
            &paths,
            &cli.global,
            Output::of(&crate::follower::apply::apply(&paths, dry_run)?),
            !dry_run,
        )?,
        Command::Verify => verify(&paths)?,
        Command::Diff { rev, patch } => {
            Output::of(&crate::follower::diff::diff(&paths, rev.as_deref(), patch)?)
        }
        Command::Rollback { rev } => with_plugins(
            &paths,
            &cli.global,
            Output::of(&crate::follower::rollback::rollback(&paths, &rev)?),
            true,
        )?,
        Command::Mcp(cmd) => mcp(&paths, cmd)?,
        Command::Plugins(cmd) => plugins(&paths, &cli.global, cmd)?,
        Command::Log { limit } => Output::of(&crate::store::history::log(&open(&paths)?, limit)?),
        Command::Show { rev, path } => Output::of(&crate::store::history::show(
            &open(&paths)?,
            &rev,
            path.as_deref(),
        )?),
        Command::Status { timeout_ms } => Output::of(&crate::status::status(
            &paths,
            Duration::from_millis(timeout_ms),
        )?),
        Command::Fsck => {
            let (report, set_aside) = crate::status::fsck(&paths)?;
            if !report.is_clean() {
                return Err(FsckFailed::new(&report, set_aside).into());
            }
            Output::of(&report)
        }
        Command::Gc { keep } => gc(&paths, keep)?,
        Command::Bench(BenchCommand::GenLibrary { dir, files, seed }) => {
            bench_cmd::gen_library(&dir, files, seed)?
        }
        Command::Bench(BenchCommand::Sync(args)) => bench_cmd::sync(&cli.global, &args)?,
        Command::Demo { keep } => demo::run(keep)?,
        Command::Hook(HookCommand::Install { timeout_ms }) => {
            hook_cmd::install(&paths, &current_exe()?, timeout_ms)?
        }
        Command::Hook(HookCommand::Uninstall) => Output::of(&crate::hook::uninstall(&paths)?),
        Command::Hook(HookCommand::Run { timeout_ms, .. }) => {
            hook_cmd::run(&cli.global, timeout_ms);
            Output::new(&serde_json::json!({}), "")
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "codexport", &mut script);
            let script = String::from_utf8_lossy(&script).into_owned();
            Output::new(
                &serde_json::json!({"shell": shell.to_string(), "script": script}),
                script,
            )
        }
    })
}

/// `gc`: the store, then (on a master) the packs no mirror index names any more.
fn gc(paths: &Paths, keep: usize) -> miette::Result<Output> {
    let report = crate::store::fsck::gc(&mut open(paths)?, keep, &[])?;
    let mut out = Output::of(&report);
    let pruned = crate::master::mirror::prune_all(paths);
    if !pruned.is_empty() {
        let mut json = Vec::new();
        for (name, r) in pruned {
            let line = match &r {
                Ok(p) => format!(
                    "mirror {name}: {} packs and {} keyrings removed\n",
                    p.packs_removed, p.keyrings_removed
                ),
                Err(e) => format!("mirror {name}: not pruned: {e}\n"),
            };
            out.human.push_str(&line);
            json.push(serde_json::json!({
                "mirror": name,
                "packs_removed": r.as_ref().ok().map(|p| p.packs_removed),
                "keyrings_removed": r.as_ref().ok().map(|p| p.keyrings_removed),
                "error": r.as_ref().err().map(ToString::to_string),
            }));
        }
        out.json["mirrors"] = serde_json::Value::Array(json);
    }
    Ok(out)
}

/// `master mirror …`: each answers with the mirrors as they now are.
fn mirror(paths: &Paths, cmd: MirrorCommand) -> miette::Result<Output> {
    use crate::master::mirror;
    match cmd {
        MirrorCommand::Add {
            dest,
            url,
            name,
            head_ttl_days,
        } => {
            mirror::add(
                paths,
                &dest,
                &url,
                name.as_deref(),
                Duration::from_secs(head_ttl_days * 86_400),
            )?;
        }
        MirrorCommand::List => {}
        MirrorCommand::Remove { name } => {
            mirror::remove(paths, &name)?;
        }
    }
    Ok(Output::of(&mirror::MirrorsReport {
        mirrors: mirror::list(paths)?,
    }))
}

/// The `master …` commands.
fn master(paths: &Paths, cmd: MasterCommand) -> miette::Result<Output> {
    Ok(match cmd {
        MasterCommand::Init => Output::of(&crate::master::init(
            paths,
            Some(&crate::mcp::infer::export_for),
        )?),
        MasterCommand::Rebuild => Output::of(&crate::master::rebuild(
            paths,
            Some(&crate::mcp::infer::export_for),
        )?),
        MasterCommand::Serve {
            host,
            port,
            no_watch,
            max_per_address,
        } => {
            crate::master::serve::run(crate::master::serve::ServeOptions {
                paths: paths.clone(),
                host,
                port,
                watch: !no_watch,
                max_per_address,
                mcp: Some(std::sync::Arc::new(crate::mcp::infer::export_for)),
            })?;
            Output::new(&serde_json::json!({"stopped": true}), "")
        }
        MasterCommand::Include { names } => Output::of(&crate::master::change_settings(
            paths,
            crate::master::settings::List::Include,
            &names,
            Some(&crate::mcp::infer::export_for),
        )?),
        MasterCommand::Exclude { names } => Output::of(&crate::master::change_settings(
            paths,
            crate::master::settings::List::Exclude,
            &names,
            Some(&crate::mcp::infer::export_for),
        )?),
        MasterCommand::Link {
            host,
            port,
            expires_hours,
        } => Output::of(&crate::master::link::link(
            paths,
            host,
            port,
            expires_hours,
        )?),
        MasterCommand::Followers { action: None } => {
            Output::of(&crate::master::link::followers(paths)?)
        }
        MasterCommand::Followers {
            action: Some(FollowersAction::Revoke { name }),
        } => Output::of(&crate::master::link::revoke(paths, &name)?),
        MasterCommand::Mirror(cmd) => mirror(paths, cmd)?,
        MasterCommand::Publish { refresh, mirror } => {
            let report = crate::master::mirror::publish_command(
                paths,
                mirror.as_deref(),
                crate::master::mirror::PublishOptions { refresh },
            )?;
            let mut out = Output::of(&report);
            if report.failed() > 0 {
                out.code = 1;
            }
            out
        }
        MasterCommand::Service(cmd) => match cmd {
            ServiceCommand::Install { port, dry_run } => Output::of(&crate::service::install(
                paths,
                current_exe()?,
                port,
                dry_run,
            )?),
            ServiceCommand::Uninstall { dry_run } => {
                Output::of(&crate::service::uninstall(paths, dry_run)?)
            }
            ServiceCommand::Status => Output::of(&crate::service::status(
                crate::service::Platform::current()?,
                &paths.home,
            )),
        },
    })
}

/// `verify`: the report, with exit code 1 when the codex dir differs from the merged tree.
fn verify(paths: &Paths) -> miette::Result<Output> {
    let report = crate::follower::verify::verify(paths)?;
    let mut out = Output::of(&report);
    out.code = i32::from(!report.equal);
    Ok(out)
}

/// The store of this machine, waiting a little for another codexport process holding it.
fn open(paths: &Paths) -> miette::Result<crate::store::Store> {
    Ok(crate::store::Store::open_waiting(
        &paths.state_dir,
        crate::store::WAIT,
    )?)
}

/// The `mcp …` commands.
fn mcp(paths: &Paths, cmd: McpCommand) -> miette::Result<Output> {
    Ok(match cmd {
        McpCommand::Run { name } => match crate::mcp::run::run(paths, &name)? {},
        McpCommand::List => Output::of(&crate::mcp::repair::list(paths)?),
        McpCommand::Repair { name } => {
            let report = crate::mcp::repair::repair(paths, name.as_deref())?;
            if !report.failed.is_empty() {
                eprint!("{}", output::Render::render(&report));
                return Err(miette::miette!(
                    code = "codexport::mcp::repair",
                    help = "see ~/.codexport/logs/mcp/<name>.log for each failure",
                    "{} MCP server(s) could not be prepared",
                    report.failed.len()
                ));
            }
            Output::of(&report)
        }
    })
}

/// `fsck` found damage: the list, and how to repair it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(
    "fsck found {count} damaged or missing object(s) and set {set_aside} damaged one(s) aside:\n{list}"
)]
#[diagnostic(
    code(codexport::fsck::damaged),
    help(
        "on a follower, `codexport sync` fetches them again; on a master, `codexport master rebuild` stores the files again (a damaged object whose file is gone stays missing from older revisions)"
    )
)]
struct FsckFailed {
    count: usize,
    set_aside: u64,
    list: String,
}

impl FsckFailed {
    fn new(report: &crate::store::fsck::FsckReport, set_aside: u64) -> Self {
        let list: Vec<String> = report
            .bad
            .iter()
            .map(|b| format!("  {}  {}", b.id, b.problem))
            .collect();
        Self {
            count: report.bad.len(),
            set_aside,
            list: list.join("\n"),
        }
    }
}
