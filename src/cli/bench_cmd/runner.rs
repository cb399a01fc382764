//! Running the benchmarked binaries (this one, or a baseline release) and the baseline tools
//! as whole processes, and the medians of what they reported.

use super::{BenchError, io_err};
use codexport_dev::measure::{Measured, Meter};
use codexport_dev::serve::{ServeError, ServeOptions, ServingMaster, spawn_master};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs binaries on temporary homes, measured by one [`Meter`].
pub(super) struct Runner<'m> {
    /// This codexport binary.
    pub exe: PathBuf,
    meter: &'m Meter,
    verbose: bool,
}

/// One finished codexport process and its parsed `--json` stdout.
pub(super) struct Step {
    pub measured: Measured,
    pub value: serde_json::Value,
}

impl<'m> Runner<'m> {
    pub fn new(exe: PathBuf, meter: &'m Meter, verbose: bool) -> Self {
        Self {
            exe,
            meter,
            verbose,
        }
    }

    /// Progress on stderr, unless `--json` or `--quiet`.
    pub fn say(&self, what: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("bench sync: {what}");
        }
    }

    /// Runs `exe --json --home HOME ARGS…` to completion, under GNU time with `usage`;
    /// fails unless it exits 0 with a JSON object on stdout.
    pub fn json_of(
        &self,
        exe: &Path,
        home: &Path,
        args: &[&str],
        usage: bool,
    ) -> Result<Step, BenchError> {
        let mut cmd = Command::new(exe);
        cmd.arg("--json")
            .arg("--home")
            .arg(home)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("CODEXPORT_HOME");
        let shown = format!("codexport {}", args.join(" "));
        let measured = self.checked(&cmd, &shown, usage)?;
        let value = serde_json::from_str(&measured.stdout).map_err(|e| BenchError::BadOutput {
            args: shown,
            what: e.to_string(),
        })?;
        Ok(Step { measured, value })
    }

    /// [`Runner::json_of`] with this binary.
    pub fn json(&self, home: &Path, args: &[&str], usage: bool) -> Result<Step, BenchError> {
        self.json_of(&self.exe, home, args, usage)
    }

    /// Runs any command to completion; fails unless it exits 0.
    pub fn checked(&self, cmd: &Command, shown: &str, usage: bool) -> Result<Measured, BenchError> {
        let program = PathBuf::from(cmd.get_program());
        let m = self
            .meter
            .run(cmd, usage)
            .map_err(|source| BenchError::Spawn {
                exe: program,
                source,
            })?;
        if !m.status.success() {
            return Err(BenchError::Step {
                args: shown.to_owned(),
                status: m.status.to_string(),
                stderr: format!("{}{}", m.stdout.trim(), m.stderr.trim()),
            });
        }
        Ok(m)
    }

    /// Makes everything written so far on `dir`'s filesystem durable (`sync -f`, untimed),
    /// so the next timed run does not pay for the dirty pages of the one before.
    pub fn settle(&self, dir: &Path) -> Result<(), BenchError> {
        self.checked(&codexport_dev::rsync::sync_fs(dir), "sync -f", false)
            .map(drop)
    }

    /// A fresh join link from the master at `home`, served on `port`.
    pub fn link(&self, exe: &Path, home: &Path, port: u16) -> Result<String, BenchError> {
        let port = port.to_string();
        let step = self.json_of(
            exe,
            home,
            &["master", "link", "--host", "127.0.0.1", "--port", &port],
            false,
        )?;
        step.value["link"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| BenchError::BadOutput {
                args: "codexport master link".into(),
                what: "no link".into(),
            })
    }

    /// `sync --json [--apply]`, which must report `expected` (`current` or `fetched`).
    pub fn sync(
        &self,
        exe: &Path,
        home: &Path,
        expected: &str,
        usage: bool,
    ) -> Result<Fetch, BenchError> {
        let step = self.json_of(exe, home, &["sync"], usage)?;
        if step.value["result"] != expected {
            return Err(BenchError::BadOutput {
                args: "codexport sync".into(),
                what: format!("expected result {expected:?}, got {}", step.value["result"]),
            });
        }
        Ok(Fetch::of(&step.measured, &step.value))
    }
}

/// `exe master serve --no-watch` on an ephemeral loopback port, with `options`; killed when
/// dropped.
pub(super) fn serve(
    exe: &Path,
    home: &Path,
    options: &ServeOptions,
) -> Result<ServingMaster, BenchError> {
    spawn_master(exe, home, options).map_err(|e| match e {
        ServeError::Spawn { exe, source } => BenchError::Spawn { exe, source },
        other => BenchError::BadOutput {
            args: "codexport master serve".into(),
            what: other.to_string(),
        },
    })
}

/// Removes a directory tree if it is there (untimed cleanup between runs).
pub(super) fn remove(dir: &Path) -> Result<(), BenchError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(dir)(e)),
        _ => Ok(()),
    }
}

/// What one timed process did: its wall time, CPU time and peak memory when measured, and
/// what its sync report says it moved.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Fetch {
    pub elapsed: Duration,
    pub cpu: Option<Duration>,
    pub peak_rss_kib: Option<u64>,
    pub objects: u64,
    pub object_bytes: u64,
    pub wire_bytes: u64,
}

impl Fetch {
    /// From a finished process and its sync report (any fields it lacks count 0).
    pub fn of(m: &Measured, report: &serde_json::Value) -> Self {
        Self {
            elapsed: m.wall,
            cpu: m.cpu,
            peak_rss_kib: m.peak_rss_kib,
            ..Self::moved(report)
        }
    }

    /// Only what a sync report says was moved.
    pub fn moved(report: &serde_json::Value) -> Self {
        let n = |k: &str| report[k].as_u64().unwrap_or(0);
        Self {
            objects: n("objects"),
            object_bytes: n("object_bytes"),
            wire_bytes: n("wire_bytes"),
            ..Self::default()
        }
    }
}

/// Medians over the timed runs, each field on its own; the peak memory is the largest
/// measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct Phase {
    pub median_ms: f64,
    pub objects: u64,
    pub object_bytes: u64,
    pub wire_bytes: u64,
    pub runs_ms: Vec<f64>,
    pub cpu_ms: Option<f64>,
    pub peak_rss_kib: Option<u64>,
}

pub(super) fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Phase {
    /// The medians of `runs` (all zero for none).
    pub fn of(runs: &[Fetch]) -> Self {
        if runs.is_empty() {
            return Self::default();
        }
        let cpu: Vec<Duration> = runs.iter().filter_map(|f| f.cpu).collect();
        Self {
            median_ms: ms(median(runs.iter().map(|f| f.elapsed).collect())),
            objects: median(runs.iter().map(|f| f.objects).collect()),
            object_bytes: median(runs.iter().map(|f| f.object_bytes).collect()),
            wire_bytes: median(runs.iter().map(|f| f.wire_bytes).collect()),
            runs_ms: runs.iter().map(|f| ms(f.elapsed)).collect(),
            cpu_ms: (!cpu.is_empty()).then(|| ms(median(cpu))),
            peak_rss_kib: runs.iter().filter_map(|f| f.peak_rss_kib).max(),
        }
    }

    /// This phase's median over `base`'s.
    pub fn ratio(&self, base: &Phase) -> f64 {
        self.median_ms / base.median_ms.max(f64::MIN_POSITIVE)
    }
}
