//! The large-content cases: one big incompressible file (a model, a dataset, an archive a
//! skill carries) and a library of 1 MiB incompressible files of the same total.
//!
//! Big file: `master init` (peak memory), the cold comparison of [`super::cold`], a
//! store-only cold `follower join` and a cold `apply` after it (peak memory of each), then a
//! one-byte edit in the middle of the file: `master rebuild`, `sync` (bytes on the wire) and
//! `apply` on a follower that has the previous revision; `master serve`'s peak over it all.
//! Library of 1 MiB files: `master init` and the cold comparison. These processes each take
//! seconds, so every one runs under GNU time, without a warm-up, at most three times.

use super::cold::{self, ColdReport, Rounds, Served};
use super::library::Peaks;
use super::runner::{self, Fetch, Phase, Runner, remove};
use super::{BenchError, Ctx, Dirs, SyncArgs, io_err};
use codexport_dev::library::{BlobSpec, flip_middle_byte, generate_blobs, write_model_skill};
use codexport_dev::serve::ServeOptions;
use std::fs;

use std::time::Duration;

/// Timed runs of each large-content comparison, at most.
const MAX_RUNS: usize = 3;
/// Bytes of each file of the large library.
const LIBRARY_FILE: u64 = 1 << 20;

/// At most [`MAX_RUNS`] rounds, no warm-up, each copy removed before the next.
fn few(runs: usize) -> Rounds {
    Rounds {
        runs: runs.min(MAX_RUNS),
        warm_up: false,
        keep: false,
    }
}

/// How big the large-content cases are.
pub(super) struct Sizes {
    pub file: u64,
    pub library: u64,
}

impl Sizes {
    pub fn of(args: &SyncArgs) -> Self {
        let file_mib = args
            .content_mib
            .unwrap_or(if args.large { 4096 } else { 1024 });
        Self {
            file: file_mib << 20,
            library: args.content_mib.unwrap_or(1024) << 20,
        }
    }
}

/// The one-byte edit in the middle of the big file.
#[derive(Debug, serde::Serialize)]
pub(super) struct EditReport {
    pub offset: u64,
    pub master_rebuild: Phase,
    /// `sync` of a follower holding the previous revision: its `wire_bytes` is the figure.
    pub sync: Phase,
    pub apply: Phase,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct LargeFileReport {
    pub file_bytes: u64,
    pub master_init: Phase,
    pub cold_apply: ColdReport,
    /// Store-only cold `follower join`.
    pub join: Phase,
    /// Cold `apply` after it.
    pub apply: Phase,
    pub edit: EditReport,
    pub peak_rss_kib: Peaks,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct LargeLibraryReport {
    pub files: u64,
    pub file_bytes: u64,
    pub total_bytes: u64,
    pub master_init: Phase,
    pub cold_apply: ColdReport,
    pub peak_rss_kib: Peaks,
}

fn one(step: &super::runner::Step) -> Phase {
    Phase::of(&[Fetch::of(&step.measured, &step.value)])
}

/// What [`init_serve_compare`] leaves: `master init`'s figures, the running server, the cold
/// comparison and its last follower (joined and applied).
struct Started {
    init: Phase,
    server: codexport_dev::serve::ServingMaster,
    cold: ColdReport,
    applied: std::path::PathBuf,
}

/// `master init` of the case's master (its codex dir just written), its server, then the
/// cold comparison.
fn init_serve_compare(bench: &Runner<'_>, d: &Dirs, runs: usize) -> Result<Started, BenchError> {
    // Past the filesystem clock's tick, so the snapshot does not see racily clean files.
    std::thread::sleep(Duration::from_millis(50));
    bench.settle(&d.master)?;
    let init = one(&bench.json(&d.master, &["master", "init"], true)?);
    let server = runner::serve(&bench.exe, &d.master, &ServeOptions::new())?;
    let at = Served {
        home: &d.master,
        codex: &d.codex,
        port: server.port(),
    };
    let (cold, applied) = cold::compare(bench, at, &d.dir, few(runs))?;
    Ok(Started {
        init,
        server,
        cold,
        applied,
    })
}

/// The big-file case in `tmp/large-file`.
pub(super) fn big_file(ctx: &Ctx<'_>, sizes: &Sizes) -> Result<LargeFileReport, BenchError> {
    let (bench, runs) = (ctx.bench, ctx.runs);
    let d = ctx.dirs("large-file");
    let Dirs { dir, master, codex } = &d;
    bench.say(format_args!(
        "large content: writing a {} file",
        super::bytes(sizes.file)
    ));
    let big = write_model_skill(codex, sizes.file, 13).map_err(io_err(codex))?;

    let Started {
        init,
        server,
        cold,
        applied,
    } = init_serve_compare(bench, &d, runs)?;

    bench.say("large content: store-only join, then apply");
    let joined = dir.join("joined");
    fs::create_dir_all(&joined).map_err(io_err(&joined))?;
    let link = bench.link(&bench.exe, master, server.port())?;
    bench.settle(dir)?;
    let step = bench.json(&joined, &["follower", "join", &link], true)?;
    let join = Phase::of(&[Fetch::of(&step.measured, &step.value["sync"])]);
    bench.settle(dir)?;
    let apply = one(&bench.json(&joined, &["apply"], true)?);
    remove(&joined)?;

    bench.say("large content: one-byte edit in the middle");
    let offset = flip_middle_byte(&big).map_err(io_err(&big))?;
    std::thread::sleep(Duration::from_millis(50));
    bench.settle(dir)?;
    let master_rebuild = one(&bench.json(master, &["master", "rebuild"], true)?);
    bench.settle(dir)?;
    let sync = Phase::of(&[bench.sync(&bench.exe, &applied, "fetched", true)?]);
    bench.settle(dir)?;
    let edit_apply = one(&bench.json(&applied, &["apply"], true)?);

    let master_serve = codexport_dev::measure::peak_rss_kib(server.pid());
    drop(server);
    let max = |phases: &[&Phase]| phases.iter().filter_map(|p| p.peak_rss_kib).max();
    let peak_rss_kib = Peaks {
        master_init: init.peak_rss_kib,
        master_rebuild: master_rebuild.peak_rss_kib,
        master_serve,
        join_apply: cold.join_apply.peak_rss_kib,
        apply: max(&[&apply, &edit_apply]),
        sync: max(&[&join, &sync]),
    };
    remove(dir)?;
    Ok(LargeFileReport {
        file_bytes: sizes.file,
        master_init: init,
        cold_apply: cold,
        join,
        apply,
        edit: EditReport {
            offset,
            master_rebuild,
            sync,
            apply: edit_apply,
        },
        peak_rss_kib,
    })
}

/// The library of 1 MiB files in `tmp/large-library`.
pub(super) fn big_library(ctx: &Ctx<'_>, sizes: &Sizes) -> Result<LargeLibraryReport, BenchError> {
    let (bench, runs) = (ctx.bench, ctx.runs);
    let d = ctx.dirs("large-library");
    let Dirs { dir, codex, .. } = &d;
    let spec = BlobSpec::of_mib(sizes.library >> 20);
    bench.say(format_args!(
        "large content: writing {} files of 1 MiB",
        spec.files
    ));
    let stats = generate_blobs(codex, &spec).map_err(io_err(codex))?;
    let started = init_serve_compare(bench, &d, runs)?;
    let peak_rss_kib = Peaks {
        master_init: started.init.peak_rss_kib,
        master_serve: codexport_dev::measure::peak_rss_kib(started.server.pid()),
        join_apply: started.cold.join_apply.peak_rss_kib,
        ..Peaks::default()
    };
    drop(started.server);
    remove(dir)?;
    Ok(LargeLibraryReport {
        files: stats.files,
        file_bytes: LIBRARY_FILE,
        total_bytes: stats.bytes,
        master_init: started.init,
        cold_apply: started.cold,
        peak_rss_kib,
    })
}
