//! The text form of `bench sync`'s report: one table per case, each row with its
//! conditions, then the targets.

use super::Report;
use super::cold::ColdReport;
use super::followers::{FollowersReport, Release};
use super::large::{LargeFileReport, LargeLibraryReport};
use super::library::{LibraryReport, Peaks};
use super::runner::Phase;
use crate::cli::output::bytes;
use std::fmt::Write as _;

/// One row: name, median ms, comparison, peak memory, wire bytes, conditions.
#[derive(Default)]
struct Row {
    name: String,
    ms: Option<f64>,
    versus: String,
    rss_kib: Option<u64>,
    wire: Option<u64>,
    conditions: String,
}

fn row(name: &str, p: &Phase, conditions: &str) -> Row {
    Row {
        name: name.to_owned(),
        ms: Some(p.median_ms),
        rss_kib: p.peak_rss_kib,
        wire: (p.wire_bytes > 0).then_some(p.wire_bytes),
        conditions: conditions.to_owned(),
        ..Row::default()
    }
}

fn ms_row(name: &str, ms: f64, conditions: &str) -> Row {
    Row {
        name: name.to_owned(),
        ms: Some(ms),
        conditions: conditions.to_owned(),
        ..Row::default()
    }
}

fn versus(mut r: Row, ratio: f64, base: &str) -> Row {
    r.versus = format!("{ratio:.2}× {base}");
    r
}

fn table(out: &mut String, rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4);
    let v = rows
        .iter()
        .map(|r| r.versus.chars().count())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{:<w$}  {:>10}  {:<v$}  {:>10}  {:>10}  conditions",
        "", "median ms", "", "peak RSS", "wire"
    );
    let opt = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), bytes);
    for r in rows {
        let ms = r.ms.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}"));
        let _ = writeln!(
            out,
            "{:<w$}  {ms:>10}  {:<v$}  {:>10}  {:>10}  {}",
            r.name,
            r.versus,
            opt(r.rss_kib.map(|k| k * 1024)),
            opt(r.wire),
            r.conditions
        );
    }
}

const DURABLE: &str = "fresh follower home: enroll, fetch, verify, write every file, one syncfs";
const RSYNC: &str =
    "rsync daemon on loopback into an empty folder, then sync -f (syncfs, as durable)";

/// The cold comparison's rows.
fn cold_rows(rows: &mut Vec<Row>, c: &ColdReport) {
    let mut join = row("cold follower join --apply", &c.join_apply, DURABLE);
    if let Some((name, base)) = c.best_rsync() {
        join = versus(join, c.join_apply.ratio(base), name);
    }
    rows.push(join);
    if let Some(p) = &c.rsync {
        rows.push(row(
            "rsync -a + sync",
            p,
            &format!("{RSYNC}; no compression"),
        ));
    }
    if let Some(p) = &c.rsync_z {
        rows.push(row(
            "rsync -az + sync",
            p,
            &format!("{RSYNC}; -z: zlib on the wire"),
        ));
    }
    if let Some(why) = &c.rsync_skipped {
        rows.push(ms_row("rsync", f64::NAN, &format!("SKIPPED: {why}")));
    }
}

fn peaks_line(out: &mut String, p: &Peaks) {
    let show = |k: Option<u64>| k.map_or_else(|| "-".to_owned(), |k| bytes(k * 1024));
    let _ = writeln!(
        out,
        "peak memory (max RSS): master init {}, master rebuild {}, master serve {}, join --apply {}, apply {}, sync {}",
        show(p.master_init),
        show(p.master_rebuild),
        show(p.master_serve),
        show(p.join_apply),
        show(p.apply),
        show(p.sync)
    );
}

fn library(out: &mut String, r: &LibraryReport) {
    let source = r.library["source"].as_str().unwrap_or("?");
    let _ = writeln!(
        out,
        "== skill library: {} files, {} ({source}); median of {} runs after one warm-up\n",
        r.library["files"],
        bytes(r.library["bytes"].as_u64().unwrap_or(0)),
        r.runs
    );
    let mut rows = Vec::new();
    cold_rows(&mut rows, &r.cold_apply);
    rows.push(row(
        "cold follower join (store only)",
        &r.cold,
        "fetch and verify into the store, no file written",
    ));
    rows.push(row(
        "apply (cold)",
        &r.apply,
        "right after a store-only join: write every file, one syncfs",
    ));
    rows.push(row("no-change sync", &r.no_change, "signed head only"));
    rows.push(row(
        "one-file-change sync",
        &r.one_file_change,
        "after one file appended to and master rebuild (untimed); store only",
    ));
    rows.push(ms_row(
        "master init",
        r.master_init_ms,
        "cold snapshot of the library",
    ));
    rows.push(ms_row(
        "master rebuild (1 file)",
        r.master_rebuild_ms,
        "after one file appended to",
    ));
    rows.push(ms_row(
        "lstat baseline",
        r.lstat_baseline_ms,
        "walk + lstat, in process",
    ));
    rows.push(ms_row(
        "read+hash baseline",
        r.read_hash_baseline_ms,
        "walk + read + blake3, one thread, in process",
    ));
    table(out, &rows);
    let _ = writeln!(
        out,
        "\none-file change: {} on the wire for {} of file + trees on its path ({:.2}×)",
        bytes(r.one_file_change.wire_bytes),
        bytes(r.one_file_ideal_bytes),
        r.one_file_wire_over_ideal
    );
    let _ = writeln!(
        out,
        "no-change sync: {:.1} ms (project target ≤ 15 ms); short syncs are timed bare, their peak memory taken on the warm-up run",
        r.no_change.median_ms
    );
    peaks_line(out, &r.peak_rss_kib);
}

fn large_file(out: &mut String, f: &LargeFileReport) {
    let _ = writeln!(
        out,
        "\n== one big file: {} of incompressible bytes; {} timed cold rounds, no warm-up\n",
        bytes(f.file_bytes),
        f.cold_apply.runs
    );
    let mut rows = Vec::new();
    rows.push(row(
        "master init",
        &f.master_init,
        "cold snapshot: chunk, hash, store",
    ));
    cold_rows(&mut rows, &f.cold_apply);
    rows.push(row("cold follower join (store only)", &f.join, "one run"));
    rows.push(row("apply (cold)", &f.apply, "after that join; one run"));
    let edit = format!("byte {} inverted", f.edit.offset);
    rows.push(row(
        "master rebuild (one-byte edit)",
        &f.edit.master_rebuild,
        &edit,
    ));
    rows.push(row(
        "sync (one-byte edit)",
        &f.edit.sync,
        "follower holding the previous revision; store only",
    ));
    rows.push(row(
        "apply (one-byte edit)",
        &f.edit.apply,
        "rewrites the file",
    ));
    table(out, &rows);
    out.push('\n');
    peaks_line(out, &f.peak_rss_kib);
}

fn large_library(out: &mut String, l: &LargeLibraryReport) {
    let _ = writeln!(
        out,
        "\n== library of {} files of {} ({} of incompressible bytes); {} timed cold rounds, no warm-up\n",
        l.files,
        bytes(l.file_bytes),
        bytes(l.total_bytes),
        l.cold_apply.runs
    );
    let mut rows = vec![row("master init", &l.master_init, "cold snapshot")];
    cold_rows(&mut rows, &l.cold_apply);
    table(out, &rows);
    out.push('\n');
    peaks_line(out, &l.peak_rss_kib);
}

fn release_rows(rows: &mut Vec<Row>, label: &str, r: &Release, base: Option<&Release>) {
    let cmp = |mut row: Row, pick: fn(&Release) -> &Phase| {
        if let Some(b) = base {
            row = versus(row, pick(r).ratio(pick(b)), "previous");
        }
        row
    };
    rows.push(cmp(
        row(&format!("{label}: no-change sync"), &r.no_change, ""),
        |r| &r.no_change,
    ));
    rows.push(cmp(
        row(
            &format!("{label}: one-file-change sync"),
            &r.one_file_change,
            "store only",
        ),
        |r| &r.one_file_change,
    ));
    rows.push(cmp(
        row(
            &format!("{label}: apply (cold)"),
            &r.apply,
            "after a store-only join",
        ),
        |r| &r.apply,
    ));
    rows.push(cmp(
        row(&format!("{label}: one-file apply"), &r.one_file_apply, ""),
        |r| &r.one_file_apply,
    ));
}

fn followers(out: &mut String, f: &FollowersReport) {
    let _ = writeln!(
        out,
        "\n== {} cold followers of the {}-file library at once, against the previous release",
        f.followers, f.files
    );
    if let Some(why) = &f.skipped {
        let _ = writeln!(out, "SKIPPED: {why}");
        return;
    }
    let (Some(c), Some(b)) = (&f.current, &f.baseline) else {
        return;
    };
    for (label, r) in [("previous", b), ("this", c)] {
        let _ = writeln!(
            out,
            "{label} release ({}): master CPU {:.0} ms (user+sys of master serve), peak RSS {}, all done in {:.0} ms, {} on the wire",
            r.version,
            r.master_cpu_ms,
            r.master_peak_rss_kib
                .map_or_else(|| "-".to_owned(), |k| bytes(k * 1024)),
            r.wall_ms,
            bytes(r.wire_bytes)
        );
    }
    if let Some(x) = f.cpu_ratio {
        let _ = writeln!(out, "master CPU: {x:.2}× the previous release's");
    }
    let _ = writeln!(
        out,
        "\nsmall-library figures, both releases alternating run by run (median of {}):",
        f.runs
    );
    let mut rows = Vec::new();
    release_rows(&mut rows, "previous", b, None);
    release_rows(&mut rows, "this", c, Some(b));
    table(out, &rows);
}

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(
        out,
        "codexport bench sync: whole processes on loopback, {cores} cores; {}\n",
        r.measured_with
    );
    library(&mut out, &r.library);
    if let Some(f) = &r.large_file {
        large_file(&mut out, f);
    }
    if let Some(l) = &r.large_library {
        large_library(&mut out, l);
    }
    followers(&mut out, &r.followers);
    let _ = writeln!(out, "\n== targets (issue 13), ratios from this run\n");
    for t in &r.targets {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        let value = t.shown();
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.note)
        };
        let _ = writeln!(
            out,
            "{verdict:<6} {}: {value} (target {}){note}",
            t.name, t.limit
        );
    }
    out
}
