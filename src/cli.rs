//! The command line: argument definitions and dispatch. Each command is a function returning
//! an [`output::Output`]; printing and exit codes are decided in one place.

mod demo;
mod history;
mod master_cmd;
pub mod output;
pub mod rev;
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
    /// Role, directories, current revision, and the store's size.
    Status,
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
}

#[derive(Debug, Subcommand)]
pub enum MasterCommand {
    /// Make this machine the master: create its key, the store and the first revision.
    Init,
    /// Snapshot ~/.codex again (a new revision only if something changed).
    Rebuild,
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
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
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
        Command::Log { limit } => history::log(&paths, limit),
        Command::Show { rev, path } => history::show(&paths, &rev, path.as_deref()),
        Command::Status => state::status(&paths),
        Command::Fsck => state::fsck(&paths),
        Command::Gc { keep } => state::gc(&paths, keep),
        Command::Bench(BenchCommand::GenLibrary { dir, files, seed }) => {
            master_cmd::gen_library(&dir, files, seed)
        }
        Command::Demo { keep } => demo::run(keep),
    }
}
