//! The targets of issue 13 ("Large content"), checked on the figures of one run: ratios
//! against baselines of the same run, and peak memory and bytes on the wire, which do not
//! depend on the machine's load. A target whose case did not run is `n/a`, with the reason.

use super::Report;
use super::library::Peaks;

/// Peak memory allowed for each process with one big file.
const PEAK_LIMIT_KIB: u64 = 100 << 10;
/// Bytes on the wire allowed for a one-byte edit in the middle of the big file.
const EDIT_WIRE_LIMIT: u64 = 2 << 20;
/// Cold `join --apply` over the faster rsync + sync.
const COLD_LIMIT: f64 = 1.0;
/// The master's CPU time for the cold followers over the previous release's.
const CPU_LIMIT: f64 = 0.5;
/// Small-library figures over the previous release's: "no regression", with this much room
/// for the noise of a shared machine.
const REGRESSION_LIMIT: f64 = 1.10;

/// One target and whether this run met it.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Target {
    pub name: String,
    /// The measured figure, in `unit`.
    pub value: Option<f64>,
    /// `×` (a ratio), `MiB` or `B`.
    pub unit: &'static str,
    pub limit: String,
    /// `None` when not measured in this run.
    pub met: Option<bool>,
    /// What the figure is, or why it is missing.
    pub note: String,
}

impl Target {
    /// The value as printed: a ratio with two decimals, MiB with one, bytes in their unit.
    pub fn shown(&self) -> String {
        match (self.value, self.unit) {
            (None, _) => "-".to_owned(),
            (Some(v), "B") => super::bytes(v as u64),
            (Some(v), "MiB") => format!("{v:.1} MiB"),
            (Some(v), unit) => format!("{v:.2}{unit}"),
        }
    }
}

fn target(
    name: &str,
    (value, unit): (Option<f64>, &'static str),
    limit: &str,
    ok: impl Fn(f64) -> bool,
) -> Target {
    Target {
        name: name.to_owned(),
        value,
        unit,
        limit: limit.to_owned(),
        met: value.map(ok),
        note: String::new(),
    }
}

pub(super) fn check(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let no_large = "not run: pass --large-content (or --large)";
    let large_peaks = r.large_file.as_ref().map(|f| &f.peak_rss_kib);
    for (name, pick) in PEAK_KINDS {
        let value = large_peaks.and_then(pick).map(|k| k as f64 / 1024.0);
        let mut t = target(
            &format!("peak memory of {name}, one big file"),
            (value, "MiB"),
            "≤ 100 MiB",
            |v| v <= (PEAK_LIMIT_KIB as f64 / 1024.0),
        );
        t.note = match (&r.large_file, value) {
            (None, _) => no_large.to_owned(),
            (Some(_), None) => "not measured: GNU time (/usr/bin/time) not found".to_owned(),
            (Some(f), Some(_)) => format!("{} file", super::bytes(f.file_bytes)),
        };
        out.push(t);
    }
    let edit = r.large_file.as_ref().map(|f| f.edit.sync.wire_bytes as f64);
    let mut t = target(
        "one-byte edit in the middle of the big file, bytes on the wire",
        (edit, "B"),
        "≤ 2 MiB",
        |v| v <= EDIT_WIRE_LIMIT as f64,
    );
    t.note = if edit.is_some() {
        "sync of a follower holding the previous revision".to_owned()
    } else {
        no_large.to_owned()
    };
    out.push(t);

    let mut cold = target(
        "cold join --apply / (rsync + sync), skill library",
        (r.library.cold_apply.ratio(), "×"),
        "≤ 1.0×",
        |v| v <= COLD_LIMIT,
    );
    cold.note = cold_note(
        &r.library.cold_apply,
        &format!("{} files", r.library.library["files"]),
    );
    out.push(cold);
    let lib = r.large_library.as_ref();
    let mut cold = target(
        "cold join --apply / (rsync + sync), library of 1 MiB files",
        (lib.and_then(|l| l.cold_apply.ratio()), "×"),
        "≤ 1.0×",
        |v| v <= COLD_LIMIT,
    );
    cold.note = match lib {
        Some(l) => cold_note(&l.cold_apply, &format!("{} files of 1 MiB", l.files)),
        None => no_large.to_owned(),
    };
    out.push(cold);

    let f = &r.followers;
    let mut cpu = target(
        &format!(
            "master CPU, {} cold followers / previous release",
            f.followers
        ),
        (f.cpu_ratio, "×"),
        "≤ 0.5×",
        |v| v <= CPU_LIMIT,
    );
    cpu.note = f.skipped.clone().unwrap_or_default();
    out.push(cpu);
    for (name, pick) in REGRESSION_KINDS {
        let value = match (&f.current, &f.baseline) {
            (Some(c), Some(b)) => Some(pick(c).ratio(pick(b))),
            _ => None,
        };
        let mut t = target(
            &format!("{name} / previous release (no regression)"),
            (value, "×"),
            "≤ 1.10×",
            |v| v <= REGRESSION_LIMIT,
        );
        t.note = f
            .skipped
            .clone()
            .unwrap_or_else(|| "alternating run by run".into());
        out.push(t);
    }
    out
}

type PeakOf = fn(&Peaks) -> Option<u64>;

const PEAK_KINDS: [(&str, PeakOf); 5] = [
    ("master init", |p| p.master_init),
    ("master rebuild", |p| p.master_rebuild),
    ("master serve", |p| p.master_serve),
    ("follower join --apply", |p| p.join_apply),
    ("apply", |p| p.apply),
];

type PhaseOf = fn(&super::followers::Release) -> &super::runner::Phase;

const REGRESSION_KINDS: [(&str, PhaseOf); 4] = [
    ("no-change sync", |r| &r.no_change),
    ("one-file-change sync", |r| &r.one_file_change),
    ("cold apply", |r| &r.apply),
    ("one-file apply", |r| &r.one_file_apply),
];

fn cold_note(c: &super::cold::ColdReport, what: &str) -> String {
    match (c.best_rsync(), &c.rsync_skipped) {
        (Some((name, _)), _) => format!("{what}; against {name}, the faster of rsync -a and -az"),
        (None, Some(why)) => format!("rsync skipped: {why}"),
        (None, None) => "rsync not run".to_owned(),
    }
}
