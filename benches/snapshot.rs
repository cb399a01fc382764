//! Snapshot benchmark against its physical baselines, from the same run.
//!
//! Generates the default skill library (10,000 files, ≈ 40 MB; `CODEXPORT_BENCH_FILES`
//! overrides the count) as a codex dir in a temporary directory, then prints the medians of
//! `CODEXPORT_BENCH_RUNS` runs (default 5, after one warm-up each) of:
//!
//! - the lstat baseline (walk + `symlink_metadata` of every file),
//! - the read+hash baseline (walk + read + blake3 of every file, one thread, nothing stored),
//! - a cold snapshot (fresh state dir each run),
//! - a no-change snapshot (same store again: every file comes from the stat cache),
//! - a one-file-change snapshot (one file appended to, then a snapshot),
//!
//! with the ratios we hold ourselves to: no-change ≤ 3× lstat, and read+hash / cold ≥ 0.5
//! (a cold snapshot at most twice the cost of merely reading and hashing). Also reports the
//! store's size on disk against the content size. `CODEXPORT_BENCH_JSON=1` adds the table as
//! one JSON line. Run with `cargo bench --bench snapshot`.
//!
//! All runs read from a warm page cache (the library was just written); the baselines do too,
//! so the ratios compare like with like.

use codexport::snapshot::{SnapshotOptions, SnapshotReport, snapshot};
use codexport::store::Store;
use codexport_dev::bench::{
    Table, env_usize, lstat_all, median_of, median_with_setup, read_and_hash_all,
};
use codexport_dev::library::{self, LibrarySpec};
use std::path::Path;
use std::time::{Duration, Instant};

fn options(codex_dir: &Path, state_dir: &Path) -> SnapshotOptions<'static> {
    SnapshotOptions {
        // The generated library is a codex dir; no other root takes part.
        roots: codexport::roots::RootDirs::from_dirs([(
            codexport::roots::CODEX,
            codex_dir.to_owned(),
        )]),
        extra: codexport::snapshot::select::Extra::default(),
        stamp_dir: state_dir.to_owned(),
        host: "bench".into(),
        home: codex_dir.parent().unwrap_or(codex_dir).to_owned(),
        signer: None,
        head_ttl: Duration::from_secs(3600),
        mcp: None,
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Snapshot medians and what the runs reported.
struct Snapshots {
    cold: Duration,
    no_change: Duration,
    one_file: Duration,
    /// The first snapshot into the store the no-change and one-file runs reuse.
    first: SnapshotReport,
    /// That store's size on disk right after the first snapshot.
    disk_bytes: u64,
    cold_hashed: Vec<u64>,
    no_change_hashed: Vec<u64>,
    one_file_hashed: Vec<u64>,
}

fn measure_snapshots(tmp: &Path, codex: &Path, runs: usize) -> Snapshots {
    let mut cold_hashed = Vec::new();
    let cold = median_with_setup(
        runs,
        || {
            let dir = tempfile::tempdir_in(tmp).expect("state dir");
            let store = Store::open_or_create(dir.path()).expect("create store");
            (dir, store)
        },
        |(dir, store)| {
            let r = snapshot(&store, &options(codex, dir.path())).expect("snapshot");
            cold_hashed.push(r.hashed);
            // Dropped (store closed, state dir removed) after the clock stops.
            (store, dir)
        },
    );

    let state = tmp.join("state");
    let store = Store::open_or_create(&state).expect("create store");
    let first = snapshot(&store, &options(codex, &state)).expect("first snapshot");
    let disk_bytes = store.disk_bytes().expect("store size");

    let mut no_change_hashed = Vec::new();
    let no_change = median_of(runs, || {
        let r = snapshot(&store, &options(codex, &state)).expect("snapshot");
        assert!(
            !r.created,
            "a snapshot of an unchanged tree recorded a revision"
        );
        no_change_hashed.push(r.hashed);
    });

    // Appending changes the file's size, mtime and ctime; the touch is untimed. The touched
    // file shares the snapshot's timestamp tick, so it is recorded as racily clean and would
    // be hashed again next time anyway: it is the file touched again.
    let mut one_file_hashed = Vec::new();
    let one_file = median_with_setup(
        runs,
        || library::touch_one(codex, 1).expect("touch one file"),
        |_| {
            let r = snapshot(&store, &options(codex, &state)).expect("snapshot");
            assert!(r.created, "a changed file recorded no revision");
            one_file_hashed.push(r.hashed);
        },
    );
    Snapshots {
        cold,
        no_change,
        one_file,
        first,
        disk_bytes,
        cold_hashed,
        no_change_hashed,
        one_file_hashed,
    }
}

fn main() {
    let files = env_usize("CODEXPORT_BENCH_FILES", LibrarySpec::default().files);
    let runs = env_usize("CODEXPORT_BENCH_RUNS", 5);
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-")
        .tempdir()
        .expect("temp dir");
    let codex = tmp.path().join("codex");

    let started = Instant::now();
    let spec = LibrarySpec {
        files,
        ..LibrarySpec::default()
    };
    let lib = library::generate(&codex, &spec).expect("generate the library");
    let generated = started.elapsed();
    // The snapshot stamps its start with the filesystem's own clock and records any file
    // whose mtime is not older than that stamp as "racily clean" (git's rule), to be hashed
    // again next time. Timestamps are coarse (one kernel tick, up to 10 ms), so files written
    // just before the first snapshot would share its tick, and the no-change runs would
    // re-hash them instead of measuring the stat-cache path. Waiting a few ticks avoids that.
    std::thread::sleep(Duration::from_millis(50));

    let lstat = median_of(runs, || {
        std::hint::black_box(lstat_all(&codex).expect("lstat walk"));
    });
    let read_hash = median_of(runs, || {
        std::hint::black_box(read_and_hash_all(&codex).expect("read+hash walk"));
    });
    let s = measure_snapshots(tmp.path(), &codex, runs);

    let mut table = Table::new();
    table
        .row("lstat baseline", lstat, None)
        .row("read+hash baseline", read_hash, Some("cold snapshot"))
        .row("cold snapshot", s.cold, Some("read+hash baseline"))
        .row("no-change snapshot", s.no_change, Some("lstat baseline"))
        .row(
            "one-file-change snapshot",
            s.one_file,
            Some("lstat baseline"),
        );
    let check = |value: f64, ok: bool, target: &str| {
        format!(
            "{value:.2} (target {target}): {}",
            if ok { "ok" } else { "MISSED" }
        )
    };
    let nc = table
        .ratio("no-change snapshot", "lstat baseline")
        .unwrap_or(f64::NAN);
    let speed = table
        .ratio("read+hash baseline", "cold snapshot")
        .unwrap_or(f64::NAN);
    let ms = generated.as_secs_f64() * 1e3;
    let (disk, content) = (s.disk_bytes, s.first.bytes);
    table
        .note(
            "library",
            format!(
                "{} files, {} skills, {} ({}) written in {ms:.0} ms",
                lib.files,
                lib.skills,
                mb(lib.bytes),
                lib.bytes
            ),
        )
        .note("runs", format!("median of {runs} after one warm-up"))
        .note("no-change / lstat", check(nc, nc <= 3.0, "≤ 3×"))
        .note(
            "read+hash / cold (speed ratio)",
            check(speed, speed >= 0.5, "≥ 0.5"),
        )
        .note(
            "store on disk after the first snapshot",
            format!(
                "{} ({disk}) for {} of content: {:.2}×",
                mb(disk),
                mb(content),
                disk as f64 / content.max(1) as f64
            ),
        )
        .note("files snapshotted", s.first.files)
        .note("files hashed per cold run", format!("{:?}", s.cold_hashed))
        .note(
            "files hashed per no-change run",
            format!("{:?}", s.no_change_hashed),
        )
        .note(
            "files hashed per one-file-change run",
            format!("{:?}", s.one_file_hashed),
        );
    table.print();
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!("{}", table.to_json());
    }
}
