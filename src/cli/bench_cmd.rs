//! `codexport bench sync`: the whole sync path, measured as users see it.
//!
//! On temporary homes it writes the generated skill library (or copies the selected content
//! of `--codex-dir`), then runs this very binary as separate processes: `master init`,
//! `master serve` on loopback in the background, and for a follower a cold `follower join`,
//! no-change `sync` runs and one-file-change `sync` runs (one file appended to on the master,
//! `master rebuild`, then the timed `sync`). Each figure is the median wall time of whole
//! processes (start, store open, head, fetch, verify, commit, exit) after one warm-up, shown
//! beside the lstat and read+hash baselines of the same library measured in the same run.
//!
//! A given `--codex-dir` is only read: its selected content is copied into the temporary
//! master home first, because the one-file-change runs append to files.

use super::Global;
use super::output::{Output, bytes};
use crate::object::ObjectId;
use crate::store::{ObjectSource, Store, StoreError};
use codexport_dev::bench::{lstat_all, median_of, read_and_hash_all};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::serve::{ServeError, ServeOptions, ServingMaster, spawn_master};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
            "the benchmark runs its own executable as child processes; make sure it is still in place"
        )
    )]
    Spawn { exe: PathBuf, source: io::Error },
    #[error("`codexport {args}` failed ({status}): {stderr}")]
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
    #[error("unexpected output from `codexport {args}`: {what}")]
    #[diagnostic(
        code(codexport::bench::output),
        help("the benchmark and the binary it runs disagree; rebuild codexport and try again")
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

/// What one timed process reported (from its `--json` sync report).
#[derive(Debug, Clone, Copy, Default)]
struct Fetch {
    elapsed: Duration,
    objects: u64,
    object_bytes: u64,
    wire_bytes: u64,
}

impl Fetch {
    fn from_report(elapsed: Duration, v: &serde_json::Value) -> Self {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Self {
            elapsed,
            objects: n("objects"),
            object_bytes: n("object_bytes"),
            wire_bytes: n("wire_bytes"),
        }
    }
}

/// Medians over the timed runs (the warm-up left out), each field on its own.
#[derive(Debug, Clone, serde::Serialize)]
struct Phase {
    median_ms: f64,
    objects: u64,
    object_bytes: u64,
    wire_bytes: u64,
    runs_ms: Vec<f64>,
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Phase {
    fn of(runs: &[Fetch]) -> Self {
        Self {
            median_ms: ms(median(runs.iter().map(|f| f.elapsed).collect())),
            objects: median(runs.iter().map(|f| f.objects).collect()),
            object_bytes: median(runs.iter().map(|f| f.object_bytes).collect()),
            wire_bytes: median(runs.iter().map(|f| f.wire_bytes).collect()),
            runs_ms: runs.iter().map(|f| ms(f.elapsed)).collect(),
        }
    }
}

/// Runs the real binary on temporary homes.
struct Runner {
    exe: PathBuf,
    verbose: bool,
}

impl Runner {
    fn say(&self, what: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("bench sync: {what}");
        }
    }

    /// Runs `codexport --json --home HOME ARGS…` to completion; returns its wall time (whole
    /// process) and parsed stdout.
    fn json(
        &self,
        home: &Path,
        args: &[&str],
    ) -> Result<(Duration, serde_json::Value), BenchError> {
        let shown = args.join(" ");
        let started = Instant::now();
        let out = Command::new(&self.exe)
            .arg("--json")
            .arg("--home")
            .arg(home)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BenchError::Spawn {
                exe: self.exe.clone(),
                source,
            })?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(BenchError::Step {
                args: shown,
                status: out.status.to_string(),
                stderr: format!("{}{}", stdout.trim(), stderr.trim()),
            });
        }
        let value = serde_json::from_slice(&out.stdout).map_err(|e| BenchError::BadOutput {
            args: shown,
            what: e.to_string(),
        })?;
        Ok((elapsed, value))
    }

    /// `sync --json`, which must report `expected` (`current` or `fetched`).
    fn sync(&self, home: &Path, expected: &str) -> Result<Fetch, BenchError> {
        let (elapsed, v) = self.json(home, &["sync"])?;
        if v["result"] != expected {
            return Err(BenchError::BadOutput {
                args: "sync".into(),
                what: format!("expected result {expected:?}, got {}", v["result"]),
            });
        }
        Ok(Fetch::from_report(elapsed, &v))
    }
}

/// `master serve --no-watch` on an ephemeral loopback port; killed when dropped.
fn start_server(exe: &Path, home: &Path) -> Result<ServingMaster, BenchError> {
    spawn_master(exe, home, &ServeOptions::new()).map_err(|e| match e {
        ServeError::Spawn { exe, source } => BenchError::Spawn { exe, source },
        other => BenchError::BadOutput {
            args: "master serve".into(),
            what: other.to_string(),
        },
    })
}

/// `VmHWM` of a running process, in KiB, from /proc.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Copies what a snapshot would take from `from` into `to` (symlinks as symlinks, modes kept).
fn copy_selected(from: &Path, to: &Path, rel: &str) -> Result<(), BenchError> {
    fs::create_dir_all(to).map_err(io_err(to))?;
    let mut entries = fs::read_dir(from)
        .map_err(io_err(from))?
        .collect::<io::Result<Vec<_>>>()
        .map_err(io_err(from))?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let child_rel = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        if !crate::snapshot::select::Selection::of(crate::roots::CODEX).is_selected(&child_rel) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(name));
        let meta = fs::symlink_metadata(&src).map_err(io_err(&src))?;
        if meta.is_dir() {
            copy_selected(&src, &dst, &child_rel)?;
        } else if meta.is_symlink() {
            let target = fs::read_link(&src).map_err(io_err(&src))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io_err(&dst))?;
        } else if meta.is_file() {
            fs::copy(&src, &dst).map_err(io_err(&src))?;
        }
    }
    Ok(())
}

/// Changes one file of the master's codex dir: a generated skill file if there is one, else
/// AGENTS.md (appended to, created if missing).
fn change_one(codex: &Path, seed: u64) -> Result<PathBuf, BenchError> {
    match library::touch_one(codex, seed) {
        Ok(p) => Ok(p),
        Err(_) => {
            use std::io::Write;
            let p = codex.join("AGENTS.md");
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .and_then(|mut f| f.write_all(b"\n<!-- touched by codexport bench -->\n"))
                .map_err(io_err(&p))?;
            Ok(p)
        }
    }
}

/// The least a one-file change can move: the file's new content plus every tree on its path,
/// as stored in the follower's newest fetched revision.
fn ideal_bytes(follower_home: &Path, codex: &Path, changed: &Path) -> Result<u64, BenchError> {
    let store = Store::open_waiting(&follower_home.join(".codexport"), crate::store::WAIT)?;
    let r = store.read()?;
    let Some(id) = r.get_ref(crate::follower::FETCHED)? else {
        return Ok(0);
    };
    let rel = changed.strip_prefix(codex).unwrap_or(changed);
    let revision = r.revision(&id)?;
    let mut tree: ObjectId = revision.root;
    let mut total = 0;
    // A tree of roots holds the codex dir under the Codex root's name.
    let root = (revision.layout == crate::object::revision::Layout::Roots)
        .then_some(std::ffi::OsStr::new(crate::roots::CODEX.name));
    for part in root.into_iter().chain(rel.iter()) {
        total += r.get_required(&tree)?.1.len() as u64;
        let t = r.tree(&tree)?;
        let Some(e) = part.to_str().and_then(|p| t.get(p)) else {
            break;
        };
        if e.kind == crate::object::EntryKind::Tree {
            tree = e.id;
        } else {
            total += e.size;
            break;
        }
    }
    Ok(total)
}

/// Everything `bench sync` measured.
#[derive(Debug, serde::Serialize)]
struct Report {
    library: serde_json::Value,
    runs: usize,
    cold: Phase,
    no_change: Phase,
    one_file_change: Phase,
    /// File content plus the trees on its path: the least a one-file change can move.
    one_file_ideal_bytes: u64,
    /// One-file-change wire bytes / the ideal.
    one_file_wire_over_ideal: f64,
    /// Untimed in the sync rows: the master's `master rebuild` after each change.
    master_rebuild_ms: f64,
    master_init_ms: f64,
    lstat_baseline_ms: f64,
    read_hash_baseline_ms: f64,
    server_peak_rss_kib: Option<u64>,
}

/// Writes the generated library into `codex`, or copies the selected content of
/// `--codex-dir` there; returns what it is, for the report.
fn prepare_library(
    bench: &Runner,
    global: &Global,
    files: usize,
    codex: &Path,
) -> Result<serde_json::Value, BenchError> {
    Ok(match &global.codex_dir {
        Some(src) => {
            if !src.is_dir() {
                return Err(BenchError::NotADir { path: src.clone() });
            }
            bench.say(format_args!(
                "copying the selected content of {}",
                src.display()
            ));
            copy_selected(src, codex, "")?;
            serde_json::json!({"source": src.display().to_string()})
        }
        None => {
            if files == 0 {
                return Err(BenchError::NoFiles);
            }
            bench.say(format_args!("generating {files} files"));
            let stats =
                library::generate(codex, &LibrarySpec { files, seed: 1 }).map_err(io_err(codex))?;
            serde_json::json!({"source": "generated", "skills": stats.skills})
        }
    })
}

/// Cold syncs: `runs` + 1 fresh followers joining (the first is the warm-up); returns the
/// timed ones and the newest follower's home, kept for the later runs.
fn cold_joins(
    bench: &Runner,
    tmp: &Path,
    master: &Path,
    port: &str,
    runs: usize,
) -> Result<(Vec<Fetch>, PathBuf), BenchError> {
    bench.say(format_args!("cold: {} joins", runs + 1));
    let mut cold = Vec::new();
    let mut follower = PathBuf::new();
    for i in 0..=runs {
        if i > 0 {
            // Only the newest follower is kept; earlier ones only cost disk.
            fs::remove_dir_all(&follower).map_err(io_err(&follower))?;
        }
        follower = tmp.join(format!("follower-{i}"));
        fs::create_dir_all(&follower).map_err(io_err(&follower))?;
        let (_, link) = bench.json(
            master,
            &["master", "link", "--host", "127.0.0.1", "--port", port],
        )?;
        let link = link["link"].as_str().ok_or_else(|| BenchError::BadOutput {
            args: "master link".into(),
            what: "no link".into(),
        })?;
        let (elapsed, joined) = bench.json(&follower, &["follower", "join", link])?;
        if i > 0 {
            cold.push(Fetch::from_report(elapsed, &joined["sync"]));
        }
    }
    Ok((cold, follower))
}

pub fn sync(global: &Global, files: usize, runs: usize) -> miette::Result<Output> {
    let report = run(global, files, runs.max(1))?;
    Ok(Output::new(&report, render(&report)))
}

fn run(global: &Global, files: usize, runs: usize) -> Result<Report, BenchError> {
    let exe = std::env::current_exe().map_err(|source| BenchError::Spawn {
        exe: PathBuf::from("codexport"),
        source,
    })?;
    let bench = Runner {
        exe,
        verbose: !global.json && !global.quiet,
    };
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-sync-")
        .tempdir()
        .map_err(io_err(&std::env::temp_dir()))?;
    let master = tmp.path().join("master");
    let codex = master.join(".codex");

    let mut library = prepare_library(&bench, global, files, &codex)?;
    // Let the coarse filesystem clock move past the files just written, so the first snapshot
    // does not record them as racily clean (to be hashed again by every later rebuild).
    std::thread::sleep(Duration::from_millis(50));

    bench.say("baselines (lstat, read+hash)");
    let mut counted = (0, 0);
    let lstat = median_of(runs, || counted.0 = lstat_all(&codex).unwrap_or(0));
    let read_hash = median_of(runs, || counted.1 = read_and_hash_all(&codex).unwrap_or(0));
    library["files"] = counted.0.into();
    library["bytes"] = counted.1.into();

    bench.say("master init");
    let (init, _) = bench.json(&master, &["master", "init"])?;
    let server = start_server(&bench.exe, &master)?;
    let port = server.port().to_string();

    let (cold, follower) = cold_joins(&bench, tmp.path(), &master, &port, runs)?;

    bench.say(format_args!("no-change: {} syncs", runs + 1));
    let mut no_change = Vec::new();
    for i in 0..=runs {
        let f = bench.sync(&follower, "current")?;
        if i > 0 {
            no_change.push(f);
        }
    }

    bench.say(format_args!(
        "one-file-change: {} changes, rebuilds and syncs",
        runs + 1
    ));
    let (mut one_file, mut rebuilds, mut ideals) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=runs {
        let changed = change_one(&codex, i as u64 + 1)?;
        let (rebuild, _) = bench.json(&master, &["master", "rebuild"])?;
        let f = bench.sync(&follower, "fetched")?;
        if i > 0 {
            one_file.push(f);
            rebuilds.push(rebuild);
            ideals.push(ideal_bytes(&follower, &codex, &changed)?);
        }
    }
    let server_peak_rss_kib = peak_rss_kib(server.pid());
    drop(server);

    let one_file_change = Phase::of(&one_file);
    let ideal = median(ideals);
    Ok(Report {
        library,
        runs,
        cold: Phase::of(&cold),
        no_change: Phase::of(&no_change),
        one_file_wire_over_ideal: one_file_change.wire_bytes as f64 / ideal.max(1) as f64,
        one_file_change,
        one_file_ideal_bytes: ideal,
        master_rebuild_ms: ms(median(rebuilds)),
        master_init_ms: ms(init),
        lstat_baseline_ms: ms(lstat),
        read_hash_baseline_ms: ms(read_hash),
        server_peak_rss_kib,
    })
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    let source = r.library["source"].as_str().unwrap_or("?");
    let _ = writeln!(
        out,
        "{} files, {} ({source}); median of {} runs after one warm-up; whole processes\n",
        r.library["files"],
        bytes(r.library["bytes"].as_u64().unwrap_or(0)),
        r.runs
    );
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>8} {:>12} {:>12}",
        "", "median ms", "objects", "object bytes", "wire bytes"
    );
    for (name, p) in [
        ("cold (follower join)", &r.cold),
        ("no-change sync", &r.no_change),
        ("one-file-change sync", &r.one_file_change),
    ] {
        let _ = writeln!(
            out,
            "{name:<24} {:>10.1} {:>8} {:>12} {:>12}",
            p.median_ms,
            p.objects,
            bytes(p.object_bytes),
            bytes(p.wire_bytes)
        );
    }
    for (name, v) in [
        ("lstat baseline", r.lstat_baseline_ms),
        ("read+hash baseline", r.read_hash_baseline_ms),
        ("master rebuild (1 file)", r.master_rebuild_ms),
        ("master init", r.master_init_ms),
    ] {
        let _ = writeln!(out, "{name:<24} {v:>10.1}");
    }
    let _ = writeln!(
        out,
        "\none-file change: {} on the wire for {} of file + trees on its path ({:.2}×)",
        bytes(r.one_file_change.wire_bytes),
        bytes(r.one_file_ideal_bytes),
        r.one_file_wire_over_ideal
    );
    let _ = writeln!(
        out,
        "no-change sync: {:.1} ms (project target ≤ 15 ms); the lstat baseline is what noticing no change costs by walking the tree",
        r.no_change.median_ms
    );
    if let Some(kib) = r.server_peak_rss_kib {
        let _ = writeln!(out, "server peak RSS: {}", bytes(kib * 1024));
    }
    let _ = writeln!(
        out,
        "(the master rebuild after each change is not part of the one-file-change sync time)"
    );
    out
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
