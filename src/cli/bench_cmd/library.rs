//! The skill-library case: the generated library (or a copy of `--codex-dir`'s selected
//! content) synced master → follower, cold, with no change and with one file changed.
//!
//! Rows: cold `join --apply` against rsync + sync (see [`super::cold`]); the store-only
//! cold `follower join` and the cold `apply` after it; no-change `sync`; one-file-change
//! `sync` (one file appended to on the master and `master rebuild`, untimed, before each);
//! `master init` and `master rebuild`; beside the lstat and read+hash baselines of the same
//! library. Short processes (no-change and one-file syncs) are timed bare and their peak
//! memory is taken on the warm-up run, under GNU time.

use super::cold::{self, ColdReport, Rounds, Served};
use super::runner::{self, Fetch, Phase, Runner, median, ms, remove};
use super::{BenchError, Ctx, Dirs, io_err};
use crate::cli::Global;
use crate::object::ObjectId;
use crate::store::{ObjectSource, Store};
use codexport_dev::bench::{lstat_all, median_of, read_and_hash_all};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::serve::ServeOptions;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Peak memory (max RSS, KiB) of each kind of process: the largest of its measured runs.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct Peaks {
    pub master_init: Option<u64>,
    pub master_rebuild: Option<u64>,
    /// `master serve` over the whole case (VmHWM before it is stopped).
    pub master_serve: Option<u64>,
    pub join_apply: Option<u64>,
    pub apply: Option<u64>,
    pub sync: Option<u64>,
}

/// What the library case measured. The first fields keep the names of earlier versions.
#[derive(Debug, serde::Serialize)]
pub(super) struct LibraryReport {
    pub library: serde_json::Value,
    pub runs: usize,
    /// Store-only cold `follower join` (no files written).
    pub cold: Phase,
    pub no_change: Phase,
    pub one_file_change: Phase,
    /// File content plus the trees on its path: the least a one-file change can move.
    pub one_file_ideal_bytes: u64,
    /// One-file-change wire bytes / the ideal.
    pub one_file_wire_over_ideal: f64,
    /// Untimed in the sync rows: the master's `master rebuild` after each change.
    pub master_rebuild_ms: f64,
    pub master_init_ms: f64,
    pub lstat_baseline_ms: f64,
    pub read_hash_baseline_ms: f64,
    pub server_peak_rss_kib: Option<u64>,
    /// Cold `join --apply` against rsync + sync.
    pub cold_apply: ColdReport,
    /// `apply` right after each store-only cold join (every file written).
    pub apply: Phase,
    pub peak_rss_kib: Peaks,
}

/// Runs the library case in `tmp/library`.
pub(super) fn run(ctx: &Ctx<'_>) -> Result<LibraryReport, BenchError> {
    let (bench, runs) = (ctx.bench, ctx.runs);
    let Dirs { dir, master, codex } = ctx.dirs("library");
    let mut library = prepare(bench, ctx.global, ctx.args.files, &codex)?;
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
    bench.settle(&dir)?;
    let init = bench.json(&master, &["master", "init"], true)?.measured;
    let server = runner::serve(&bench.exe, &master, &ServeOptions::new())?;
    let at = Served {
        home: &master,
        codex: &codex,
        port: server.port(),
    };

    let rounds = Rounds {
        runs,
        warm_up: true,
        keep: true,
    };
    let (cold_apply, applied) = cold::compare(bench, at, &dir, rounds)?;
    remove(&applied)?;
    let (cold, apply, follower) = cold_joins(bench, at, &dir, runs)?;

    bench.say(format_args!("no-change: {} syncs", runs + 1));
    let mut no_change = Vec::new();
    let mut sync_peak = None;
    for i in 0..=runs {
        let f = bench.sync(&bench.exe, &follower, "current", i == 0)?;
        if i == 0 {
            sync_peak = f.peak_rss_kib;
        } else {
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
        let rebuild = bench.json(&master, &["master", "rebuild"], true)?.measured;
        let f = bench.sync(&bench.exe, &follower, "fetched", i == 0)?;
        if i == 0 {
            sync_peak = sync_peak.max(f.peak_rss_kib);
        } else {
            one_file.push(f);
            rebuilds.push(Fetch::of(&rebuild, &serde_json::Value::Null));
            ideals.push(ideal_bytes(&follower, &codex, &changed)?);
        }
    }
    let server_peak_rss_kib = codexport_dev::measure::peak_rss_kib(server.pid());
    drop(server);
    remove(&follower)?;

    let one_file_change = Phase::of(&one_file);
    let ideal = median(ideals);
    let rebuild = Phase::of(&rebuilds);
    let peak_rss_kib = Peaks {
        master_init: init.peak_rss_kib,
        master_rebuild: rebuild.peak_rss_kib,
        master_serve: server_peak_rss_kib,
        join_apply: cold_apply.join_apply.peak_rss_kib,
        apply: apply.peak_rss_kib,
        sync: sync_peak,
    };
    Ok(LibraryReport {
        library,
        runs,
        cold,
        no_change: Phase::of(&no_change),
        one_file_wire_over_ideal: one_file_change.wire_bytes as f64 / ideal.max(1) as f64,
        one_file_change,
        one_file_ideal_bytes: ideal,
        master_rebuild_ms: rebuild.median_ms,
        master_init_ms: ms(init.wall),
        lstat_baseline_ms: ms(lstat),
        read_hash_baseline_ms: ms(read_hash),
        server_peak_rss_kib,
        cold_apply,
        apply,
        peak_rss_kib,
    })
}

/// Store-only cold joins, `runs` + 1 fresh followers (the first is the warm-up), each
/// followed by a timed cold `apply`; returns both phases and the newest follower's home,
/// kept for the later runs. The others are removed at the end, not in between (see
/// [`super::cold`] on creating files right after removing others).
fn cold_joins(
    bench: &Runner<'_>,
    master: Served<'_>,
    dir: &Path,
    runs: usize,
) -> Result<(Phase, Phase, PathBuf), BenchError> {
    bench.say(format_args!("cold: {} joins, each then applied", runs + 1));
    let (mut joins, mut applies) = (Vec::new(), Vec::new());
    let mut follower = PathBuf::new();
    let mut homes = Vec::new();
    for i in 0..=runs {
        follower = dir.join(format!("joined-{i}"));
        homes.push(follower.clone());
        fs::create_dir_all(&follower).map_err(io_err(&follower))?;
        let link = bench.link(&bench.exe, master.home, master.port)?;
        bench.settle(dir)?;
        let joined = bench.json(&follower, &["follower", "join", &link], true)?;
        bench.settle(dir)?;
        let written = bench.json(&follower, &["apply"], true)?;
        if i > 0 {
            joins.push(Fetch::of(&joined.measured, &joined.value["sync"]));
            applies.push(Fetch::of(&written.measured, &serde_json::Value::Null));
        }
    }
    for home in homes.iter().filter(|h| **h != follower) {
        remove(home)?;
    }
    Ok((Phase::of(&joins), Phase::of(&applies), follower))
}

/// Writes the generated library into `codex`, or copies the selected content of
/// `--codex-dir` there; returns what it is, for the report.
fn prepare(
    bench: &Runner<'_>,
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
pub(super) fn change_one(codex: &Path, seed: u64) -> Result<PathBuf, BenchError> {
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
    let mut tree: ObjectId = r.revision(&id)?.root;
    let mut total = 0;
    for part in rel {
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
