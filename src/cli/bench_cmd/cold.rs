//! The cold headline, like with like: a cold `follower join --apply` (enroll, fetch and
//! verify every object, write every file, one durability barrier) against an rsync daemon
//! copy into an empty folder followed by `sync -f DEST` (as durable). rsync runs twice per
//! round, with `-a` and with `-az` (codexport's objects travel compressed; on loopback `-z`
//! costs rsync time, on a slow network it saves it), and the three take turns leading the
//! round, so none always runs right after another's writes.
//!
//! Every timed run starts in an empty destination, after an untimed `sync -f`. Copies of a
//! library of many files are kept until the case ends: on ext4 without a journal, inode
//! allocation skips inodes freed in the last minutes, so creating 10,000 files right after
//! removing 10,000 others costs seconds of kernel time, and whoever ran after a removal
//! would pay for it.

use super::runner::{Fetch, Phase, Runner, remove};
use super::{BenchError, io_err};
use codexport_dev::rsync::{RsyncDaemon, sync_fs, wire_bytes};
use std::fs;
use std::path::{Path, PathBuf};

/// Cold copies of one library, medians over the same rounds.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct ColdReport {
    /// `follower join LINK --apply` into a fresh home.
    pub join_apply: Phase,
    /// `rsync -a` from the daemon, then `sync -f` (times summed; peak memory of the rsync
    /// client).
    pub rsync: Option<Phase>,
    /// `rsync -az` from the daemon, then `sync -f`.
    pub rsync_z: Option<Phase>,
    /// Why there are no rsync rows.
    pub rsync_skipped: Option<String>,
    /// Timed rounds.
    pub runs: usize,
    /// Whether one untimed round ran first.
    pub warm_up: bool,
}

impl ColdReport {
    /// The faster of the two rsync copies (`-a` or `-az`, each with its `sync -f`), and
    /// which it was: the baseline the target is judged against.
    pub fn best_rsync(&self) -> Option<(&'static str, &Phase)> {
        let plain = self.rsync.as_ref().map(|p| ("rsync -a + sync", p));
        let z = self.rsync_z.as_ref().map(|p| ("rsync -az + sync", p));
        match (plain, z) {
            (Some(a), Some(b)) => Some(if b.1.median_ms < a.1.median_ms { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// `join --apply` / the faster rsync + sync.
    pub fn ratio(&self) -> Option<f64> {
        self.best_rsync().map(|(_, p)| self.join_apply.ratio(p))
    }
}

/// Whether rsync can be compared with: `Ok(None)` when it runs, `Ok(Some(why))` when it is
/// missing (the rows are skipped and the report says so), an error under CI, where the
/// figures must be complete.
pub(super) fn rsync_missing() -> Result<Option<String>, BenchError> {
    match codexport_dev::bench::find_tool("rsync") {
        Ok(()) => Ok(None),
        Err(missing) if codexport_dev::bench::in_ci() => Err(BenchError::Step {
            args: "rsync --version".into(),
            status: "not found".into(),
            stderr: format!("{missing}; CI=true, so the benchmark fails instead of skipping"),
        }),
        Err(missing) => Ok(Some(missing.to_string())),
    }
}

/// Where the master is: its home and its server's port.
#[derive(Clone, Copy)]
pub(super) struct Served<'a> {
    pub home: &'a Path,
    pub codex: &'a Path,
    pub port: u16,
}

#[derive(Clone, Copy)]
enum Contestant {
    JoinApply,
    Rsync { compress: bool },
}

/// How the rounds run.
#[derive(Clone, Copy)]
pub(super) struct Rounds {
    /// Timed rounds.
    pub runs: usize,
    /// One untimed round first.
    pub warm_up: bool,
    /// Keep every copy until the end (a library of many files), rather than removing each
    /// before the next (big files, whose copies would fill the disk).
    pub keep: bool,
}

/// Runs the rounds in `dir`. Returns the report and the home of the last follower, joined
/// and applied, kept for later runs (the other copies are removed).
pub(super) fn compare(
    bench: &Runner<'_>,
    master: Served<'_>,
    dir: &Path,
    rounds: Rounds,
) -> Result<(ColdReport, PathBuf), BenchError> {
    let Rounds {
        runs,
        warm_up,
        keep,
    } = rounds;
    let rsync_skipped = rsync_missing()?;
    let daemon = match rsync_skipped {
        None => {
            let scratch = dir.join("rsyncd");
            fs::create_dir_all(&scratch).map_err(io_err(&scratch))?;
            Some(RsyncDaemon::start(&scratch, master.codex).map_err(io_err(&scratch))?)
        }
        Some(_) => None,
    };
    let mut contestants = vec![Contestant::JoinApply];
    if daemon.is_some() {
        contestants.push(Contestant::Rsync { compress: false });
        contestants.push(Contestant::Rsync { compress: true });
    }
    let (mut join, mut plain, mut z) = (Vec::new(), Vec::new(), Vec::new());
    let mut follower = PathBuf::new();
    let mut copies = Vec::new();
    for round in usize::from(!warm_up)..=runs {
        bench.say(format_args!("cold copies, round {round} of {runs}"));
        // Each contestant leads in turn.
        contestants.rotate_left(1);
        for c in &contestants {
            let f = match *c {
                Contestant::JoinApply => {
                    if !keep {
                        remove(&follower)?;
                    }
                    follower = dir.join(format!("follower-{round}"));
                    copies.push(follower.clone());
                    cold_join_apply(bench, master, &follower)?
                }
                Contestant::Rsync { compress } => {
                    let daemon = daemon.as_ref().expect("rsync runs only with its daemon");
                    let dest = if keep {
                        dir.join(format!(
                            "rsync-{}-{round}",
                            if compress { "z" } else { "a" }
                        ))
                    } else {
                        dir.join("rsync-dest")
                    };
                    copies.push(dest.clone());
                    rsync_copy(bench, daemon, &dest, compress)?
                }
            };
            if round > 0 {
                match *c {
                    Contestant::JoinApply => join.push(f),
                    Contestant::Rsync { compress: false } => plain.push(f),
                    Contestant::Rsync { compress: true } => z.push(f),
                }
            }
        }
    }
    for copy in copies.iter().filter(|c| **c != follower) {
        remove(copy)?;
    }
    let phase = |v: &[Fetch]| (!v.is_empty()).then(|| Phase::of(v));
    let report = ColdReport {
        join_apply: Phase::of(&join),
        rsync: phase(&plain),
        rsync_z: phase(&z),
        rsync_skipped,
        runs,
        warm_up,
    };
    bench.say(format_args!(
        "cold medians: join --apply {:.0} ms, rsync -a + sync {}, rsync -az + sync {}",
        report.join_apply.median_ms,
        shown(report.rsync.as_ref()),
        shown(report.rsync_z.as_ref())
    ));
    Ok((report, follower))
}

fn shown(p: Option<&Phase>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{:.0} ms", p.median_ms))
}

/// One timed cold `follower join LINK --apply` into a fresh `home` (the link and the
/// settling sync untimed).
pub(super) fn cold_join_apply(
    bench: &Runner<'_>,
    master: Served<'_>,
    home: &Path,
) -> Result<Fetch, BenchError> {
    fs::create_dir_all(home).map_err(io_err(home))?;
    let link = bench.link(&bench.exe, master.home, master.port)?;
    bench.settle(home)?;
    let step = bench.json(home, &["follower", "join", &link, "--apply"], true)?;
    if step.value["sync"]["apply"]["result"] != "applied" {
        return Err(BenchError::BadOutput {
            args: "codexport follower join --apply".into(),
            what: format!("nothing applied: {}", step.value),
        });
    }
    Ok(Fetch::of(&step.measured, &step.value["sync"]))
}

/// One timed rsync copy into an empty `dest`, then `sync -f dest`: the times summed, the
/// peak memory and CPU time of the rsync client, the bytes on the wire from its stats.
fn rsync_copy(
    bench: &Runner<'_>,
    daemon: &RsyncDaemon,
    dest: &Path,
    compress: bool,
) -> Result<Fetch, BenchError> {
    remove(dest)?;
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    bench.settle(dest)?;
    let copy = bench.checked(&daemon.client(dest, compress), "rsync", true)?;
    let sync = bench.checked(&sync_fs(dest), "sync -f", false)?;
    Ok(Fetch {
        elapsed: copy.wall + sync.wall,
        cpu: copy.cpu,
        peak_rss_kib: copy.peak_rss_kib,
        wire_bytes: wire_bytes(&copy.stdout),
        ..Fetch::default()
    })
}
