//! `codexport bench sync`: the whole sync path, measured as users see it, against rsync and
//! against a previous release, with the peak memory of every process.
//!
//! On temporary homes it runs this very binary as separate processes (`master init`,
//! `master serve` on loopback in the background, `master link`, `follower join`, `sync`,
//! `apply`, `master rebuild`) and measures whole processes: wall time from start to exit,
//! and, under GNU time, CPU time and peak memory (max RSS). Baselines come from the same run:
//!
//! - the generated skill library (`--files`, or the selected content of `--codex-dir`):
//!   cold `follower join --apply` against an rsync daemon copy followed by `sync -f` (as
//!   durable as our apply), rsync with and without `-z`, alternating run by run; the
//!   store-only cold join, a cold `apply`, no-change and one-file-change syncs beside the
//!   lstat and read+hash baselines (`library.rs`);
//! - with `--large-content` (or `--large`): one big incompressible file (1 GiB; 4 GiB with
//!   `--large`) and a library of 1 MiB files of the same total, with the same cold
//!   comparison, the peak memory of every process, and a one-byte edit in the middle of the
//!   big file (bytes on the wire) (`large.rs`);
//! - with `--baseline-bin PATH` (a previous release's binary): `--followers` cold followers
//!   joining the library at once, the master's CPU time against that release's master, each
//!   release with its own followers (their protocols differ), and the small-library
//!   figures (no-change sync, one-file sync, apply) of both, alternating run by run
//!   (`followers.rs`). Without it, the report says this comparison was skipped.
//!
//! Before every timed run the filesystem is synced (untimed), so no run pays for the dirty
//! pages of the one before. Ratios, not absolute times, are what to compare across machines;
//! the report states each comparison's conditions next to its figure and checks the targets
//! of issue 13 (`targets.rs`).
//!
//! A given `--codex-dir` is only read: its selected content is copied into the temporary
//! master home first, because the one-file-change runs append to files.

mod cold;
mod followers;
mod large;
mod library;
mod render;
mod runner;
mod targets;

use super::Global;
use super::output::{Output, bytes};
use crate::store::StoreError;
use codexport_dev::measure::Meter;
use runner::Runner;
use std::io;
use std::path::{Path, PathBuf};

/// `codexport bench sync`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Files in the generated library (ignored with --codex-dir).
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
    /// Timed runs of each kind, after one warm-up (the large-content cases run at most 3,
    /// without a warm-up).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also measure large content: one big incompressible file and a library of 1 MiB files
    /// of the same total (1 GiB each; see --content-mib).
    #[arg(long)]
    pub large_content: bool,
    /// Large-content mode with a 4 GiB file (implies --large-content; needs about 25 GB of
    /// free space in the temporary directory).
    #[arg(long)]
    pub large: bool,
    /// Size of the large-content cases in MiB (default 1024; the big file is 4096 with
    /// --large).
    #[arg(long, value_name = "MIB")]
    pub content_mib: Option<u64>,
    /// Cold followers joining at once for the master-CPU comparison (with --baseline-bin).
    #[arg(long, default_value_t = 50)]
    pub followers: usize,
    /// A previous release's codexport binary: its master's CPU time for the cold followers
    /// and its small-library figures are measured in the same run, as the baseline.
    #[arg(long, value_name = "PATH", env = "CODEXPORT_BENCH_BASELINE_BIN")]
    pub baseline_bin: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BenchError {
    #[error("bench sync needs at least one file (got --files 0)")]
    #[diagnostic(
        code(codexport::usage::bench_files),
        help("pass --files 1 or more, or point --codex-dir at an existing codex dir")
    )]
    NoFiles,
    #[error("{} is not a directory", path.display())]
    #[diagnostic(
        code(codexport::usage::bench_codex_dir),
        help(
            "point --codex-dir at an existing Codex dir (such as ~/.codex), or leave it out to benchmark a generated library"
        )
    )]
    NotADir { path: PathBuf },
    #[error("--content-mib must be at least 1 (got 0)")]
    #[diagnostic(
        code(codexport::usage::bench_content_mib),
        help("pass --content-mib 1 or more, or leave it out for 1 GiB")
    )]
    NoContent,
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::bench::io),
        help(
            "check free space and permissions of the temporary directory (set TMPDIR to use another)"
        )
    )]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot run {}: {source}", exe.display())]
    #[diagnostic(
        code(codexport::bench::spawn),
        help(
            "the benchmark runs its own executable (and --baseline-bin, rsync, sync) as child processes; check that each is in place"
        )
    )]
    Spawn { exe: PathBuf, source: io::Error },
    #[error("`{args}` failed ({status}): {stderr}")]
    #[diagnostic(
        code(codexport::bench::step),
        help(
            "a step of the benchmark failed; run it by hand with the same arguments to see more, and report it if it is a bug"
        )
    )]
    Step {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("unexpected output from `{args}`: {what}")]
    #[diagnostic(
        code(codexport::bench::output),
        help(
            "the benchmark and the binary it runs disagree; rebuild codexport (and check that --baseline-bin is a codexport binary) and try again"
        )
    )]
    BadOutput { args: String, what: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BenchError + '_ {
    move |source| BenchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Everything `bench sync` measured: the library case's fields at the top level (as
/// before), the other cases beside them.
#[derive(Debug, serde::Serialize)]
struct Report {
    #[serde(flatten)]
    library: library::LibraryReport,
    large_file: Option<large::LargeFileReport>,
    large_library: Option<large::LargeLibraryReport>,
    followers: followers::FollowersReport,
    measured_with: &'static str,
    targets: Vec<targets::Target>,
}

/// What every case runs with.
struct Ctx<'a> {
    bench: &'a Runner<'a>,
    global: &'a Global,
    args: &'a SyncArgs,
    /// Timed runs (at least 1).
    runs: usize,
    /// The benchmark's temporary directory.
    tmp: &'a Path,
}

/// A case's directories: `<tmp>/<name>`, its master's home and that master's codex dir.
struct Dirs {
    dir: PathBuf,
    master: PathBuf,
    codex: PathBuf,
}

impl Ctx<'_> {
    fn dirs(&self, name: &str) -> Dirs {
        let dir = self.tmp.join(name);
        let master = dir.join("master");
        let codex = master.join(".codex");
        Dirs { dir, master, codex }
    }
}

pub fn sync(global: &Global, args: &SyncArgs) -> miette::Result<Output> {
    let report = run(global, args)?;
    let human = render::render(&report);
    Ok(Output::new(&report, human))
}

fn run(global: &Global, args: &SyncArgs) -> Result<Report, BenchError> {
    if args.content_mib == Some(0) {
        return Err(BenchError::NoContent);
    }
    let exe = std::env::current_exe().map_err(|source| BenchError::Spawn {
        exe: PathBuf::from("codexport"),
        source,
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-sync-")
        .tempdir()
        .map_err(io_err(&std::env::temp_dir()))?;
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).map_err(io_err(&scratch))?;
    let meter = Meter::new(&scratch);
    let bench = Runner::new(exe, &meter, !global.json && !global.quiet);

    let ctx = Ctx {
        bench: &bench,
        global,
        args,
        runs: args.runs.max(1),
        tmp: tmp.path(),
    };
    let library = library::run(&ctx)?;
    let (large_file, large_library) = if args.large_content || args.large {
        let sizes = large::Sizes::of(args);
        (
            Some(large::big_file(&ctx, &sizes)?),
            Some(large::big_library(&ctx, &sizes)?),
        )
    } else {
        (None, None)
    };
    let followers = followers::run(&ctx)?;
    let mut report = Report {
        library,
        large_file,
        large_library,
        followers,
        measured_with: meter.describe(),
        targets: Vec::new(),
    };
    report.targets = targets::check(&report);
    Ok(report)
}

/// `bench gen-library`: a deterministic generated skill library in `dir`.
pub fn gen_library(dir: &Path, files: usize, seed: u64) -> miette::Result<Output> {
    let stats =
        codexport_dev::library::generate(dir, &codexport_dev::library::LibrarySpec { files, seed })
            .map_err(|e| {
                miette::miette!(
                    code = "codexport::bench::io",
                    help = "choose a writable directory",
                    "cannot write the library into {}: {e}",
                    dir.display()
                )
            })?;
    let human = format!(
        "generated {} files in {} skills ({}) in {}\n",
        stats.files,
        stats.skills,
        bytes(stats.bytes),
        dir.display()
    );
    Ok(Output::new(&stats, human))
}
