//! Many cold followers at once, against a previous release measured in the same run.
//!
//! Each release gets its own master (the same generated library, `master init`, `master
//! serve`) and its own followers, since releases of different protocols cannot talk to each
//! other. `--followers` followers are enrolled with fresh links (untimed), then all run
//! `follower join` (store only) at once; the master's CPU time (user + sys of the `master
//! serve` process, from /proc before and after) is the figure, beside its peak memory and the
//! wall time until the last follower is done. The releases take turns: the baseline's load
//! first, then this binary's, never both at once.
//!
//! Then the small-library figures of both releases, alternating run by run on the same
//! machine load: no-change `sync`; cold `apply` (each on a follower of the load above, fetched
//! and not yet applied); one-file-change `sync` and `apply` (one master file appended to and
//! `master rebuild`, untimed, before each).

use super::library::change_one;
use super::runner::{self, Fetch, Phase, Runner, median, ms, remove};
use super::{BenchError, Ctx, io_err};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::measure::{cpu_time, peak_rss_kib};
use codexport_dev::serve::{ServeOptions, ServingMaster};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One release's figures.
#[derive(Debug, serde::Serialize)]
pub(super) struct Release {
    /// `--version` of its binary.
    pub version: String,
    /// CPU time of its `master serve` while the followers joined.
    pub master_cpu_ms: f64,
    pub master_peak_rss_kib: Option<u64>,
    /// From the first follower's start to the last one's exit.
    pub wall_ms: f64,
    /// Bytes on the wire, all followers.
    pub wire_bytes: u64,
    /// Objects each follower fetched.
    pub objects: u64,
    pub no_change: Phase,
    pub apply: Phase,
    pub one_file_change: Phase,
    pub one_file_apply: Phase,
}

#[derive(Debug, Default, serde::Serialize)]
pub(super) struct FollowersReport {
    /// Why this comparison was not run.
    pub skipped: Option<String>,
    pub followers: usize,
    pub files: usize,
    pub runs: usize,
    pub current: Option<Release>,
    pub baseline: Option<Release>,
    /// This release's master CPU time over the baseline's.
    pub cpu_ratio: Option<f64>,
}

/// One release under test: its binary, its master and its followers.
struct Pair {
    exe: PathBuf,
    dir: PathBuf,
    master: PathBuf,
    server: ServingMaster,
    followers: Vec<PathBuf>,
}

pub(super) fn run(ctx: &Ctx<'_>) -> Result<FollowersReport, BenchError> {
    let (bench, args, runs, tmp) = (ctx.bench, ctx.args, ctx.runs, ctx.tmp);
    let files = args.files.max(1);
    let skipped = |why: String| FollowersReport {
        skipped: Some(why),
        followers: args.followers,
        files,
        runs,
        ..FollowersReport::default()
    };
    let Some(baseline) = &args.baseline_bin else {
        return Ok(skipped(
            "no previous release given (--baseline-bin PATH or CODEXPORT_BENCH_BASELINE_BIN): the master CPU time of cold followers and the small-library figures were not compared with it".into(),
        ));
    };
    if args.followers == 0 {
        return Ok(skipped("--followers 0".into()));
    }
    if ctx.global.codex_dir.is_some() {
        bench.say("many followers: a generated library (--files), not --codex-dir");
    }
    let versions = [version(baseline)?, version(&bench.exe)?];
    let mut pairs = Vec::new();
    for (label, exe) in [("baseline", baseline), ("current", &bench.exe)] {
        pairs.push(Pair::start(
            bench,
            exe,
            &tmp.join(format!("many-{label}")),
            files,
            args.followers,
        )?);
    }
    let mut loads = Vec::new();
    for (pair, label) in pairs.iter().zip(["baseline", "current"]) {
        bench.say(format_args!(
            "{} cold followers of the {label} release at once",
            args.followers
        ));
        loads.push(pair.cold_load(bench)?);
    }
    let rows = small_rows(bench, &mut pairs, runs)?;
    for pair in &pairs {
        remove(&pair.dir)?;
    }
    let mut releases = loads
        .into_iter()
        .zip(rows)
        .zip(versions)
        .map(|((load, rows), version)| Release {
            version,
            master_cpu_ms: ms(load.cpu),
            master_peak_rss_kib: load.peak,
            wall_ms: ms(load.wall),
            wire_bytes: load.wire_bytes,
            objects: load.objects,
            no_change: rows.no_change,
            apply: rows.apply,
            one_file_change: rows.one_file,
            one_file_apply: rows.one_file_apply,
        });
    let baseline = releases.next();
    let current = releases.next();
    let cpu_ratio = match (&current, &baseline) {
        (Some(c), Some(b)) => Some(c.master_cpu_ms / b.master_cpu_ms.max(f64::MIN_POSITIVE)),
        _ => None,
    };
    Ok(FollowersReport {
        skipped: None,
        followers: args.followers,
        files,
        runs,
        current,
        baseline,
        cpu_ratio,
    })
}

/// `exe --version`, trimmed.
fn version(exe: &Path) -> Result<String, BenchError> {
    let out = Command::new(exe)
        .arg("--version")
        .output()
        .map_err(|source| BenchError::Spawn {
            exe: exe.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(BenchError::BadOutput {
            args: format!("{} --version", exe.display()),
            what: "it does not run as codexport".into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What one load of cold followers cost the master.
struct Load {
    cpu: Duration,
    peak: Option<u64>,
    wall: Duration,
    wire_bytes: u64,
    objects: u64,
}

impl Pair {
    /// The library, `master init` and `master serve` of `exe` in `dir`; `followers` homes
    /// enrolled later.
    fn start(
        bench: &Runner<'_>,
        exe: &Path,
        dir: &Path,
        files: usize,
        followers: usize,
    ) -> Result<Self, BenchError> {
        let master = dir.join("master");
        let codex = master.join(".codex");
        library::generate(&codex, &LibrarySpec { files, seed: 1 }).map_err(io_err(&codex))?;
        std::thread::sleep(Duration::from_millis(50));
        bench.json_of(exe, &master, &["master", "init"], false)?;
        // All followers come from 127.0.0.1 here; on a network each has its own address.
        // A follower holds up to four connections at once (enroll, head, fetch, retries).
        let per_address = (followers * 4 + 32).min(768).to_string();
        let options = ServeOptions::new()
            .serve_arg("--max-per-address")
            .serve_arg(per_address);
        let server = runner::serve(exe, &master, &options)?;
        Ok(Self {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            master,
            server,
            followers: (0..followers)
                .map(|i| dir.join(format!("follower-{i}")))
                .collect(),
        })
    }

    fn codex(&self) -> PathBuf {
        self.master.join(".codex")
    }

    /// Enrolls every follower's link (untimed), then runs all their cold joins at once.
    fn cold_load(&self, bench: &Runner<'_>) -> Result<Load, BenchError> {
        let mut links = Vec::new();
        for home in &self.followers {
            fs::create_dir_all(home).map_err(io_err(home))?;
            links.push(bench.link(&self.exe, &self.master, self.server.port())?);
        }
        bench.settle(&self.dir)?;
        let pid = self.server.pid();
        let cpu_before = cpu_time(pid).unwrap_or_default();
        let started = Instant::now();
        let children = self
            .followers
            .iter()
            .zip(&links)
            .map(|(home, link)| self.spawn_join(home, link))
            .collect::<Result<Vec<Child>, BenchError>>()?;
        let mut reports = Vec::new();
        for child in children {
            let out = child
                .wait_with_output()
                .map_err(|source| BenchError::Spawn {
                    exe: self.exe.clone(),
                    source,
                })?;
            if !out.status.success() {
                return Err(BenchError::Step {
                    args: "codexport follower join".into(),
                    status: out.status.to_string(),
                    // With --json the error is on stdout.
                    stderr: format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout).trim(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).map_err(|e| BenchError::BadOutput {
                    args: "codexport follower join".into(),
                    what: e.to_string(),
                })?;
            reports.push(Fetch::moved(&v["sync"]));
        }
        let wall = started.elapsed();
        let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
        Ok(Load {
            cpu,
            peak: peak_rss_kib(pid),
            wall,
            wire_bytes: reports.iter().map(|f| f.wire_bytes).sum(),
            objects: median(reports.iter().map(|f| f.objects).collect()),
        })
    }

    fn spawn_join(&self, home: &Path, link: &str) -> Result<Child, BenchError> {
        Command::new(&self.exe)
            .arg("--json")
            .arg("--home")
            .arg(home)
            .args(["follower", "join", link, "--timeout-ms", "600000"])
            .env("NO_COLOR", "1")
            .env_remove("CODEXPORT_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                exe: self.exe.clone(),
                source,
            })
    }
}

/// The small-library rows of one release.
#[derive(Default)]
struct Rows {
    no_change: Phase,
    apply: Phase,
    one_file: Phase,
    one_file_apply: Phase,
}

/// The small-library figures of every pair, alternating run by run (the first run of each
/// kind a warm-up). Cold applies use followers 1..=runs of each load; the rest are removed
/// first, and follower 0 serves the no-change and one-file runs.
fn small_rows(
    bench: &Runner<'_>,
    pairs: &mut [Pair],
    runs: usize,
) -> Result<Vec<Rows>, BenchError> {
    bench.say("small-library figures of both releases, alternating");
    let n = pairs.len();
    let (mut no_change, mut apply, mut one_file, mut one_apply) = (
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
        vec![vec![]; n],
    );
    for pair in pairs.iter_mut() {
        for extra in pair
            .followers
            .split_off((runs + 2).min(pair.followers.len()))
        {
            remove(&extra)?;
        }
    }
    for i in 0..=runs {
        for k in turns(n, i) {
            let (pair, home) = (&pairs[k], &pairs[k].followers[0]);
            let f = bench.sync(&pair.exe, home, "current", false)?;
            if i > 0 {
                no_change[k].push(f);
            }
        }
    }
    // Followers 1..: cold applies, the first a warm-up, the releases leading in turn. The
    // applied homes are removed only at the end (see `cold.rs` on creating files right after
    // removing others).
    for i in 1..pairs.iter().map(|p| p.followers.len()).min().unwrap_or(1) {
        for k in turns(n, i) {
            let pair = &pairs[k];
            bench.settle(&pair.dir)?;
            let step = bench.json_of(&pair.exe, &pair.followers[i], &["apply"], false)?;
            if i > 1 {
                apply[k].push(Fetch::of(&step.measured, &serde_json::Value::Null));
            }
        }
    }
    for pair in pairs.iter() {
        // Follower 0 applies once, untimed, so its one-file applies write one file.
        bench.json_of(&pair.exe, &pair.followers[0], &["apply"], false)?;
    }
    for i in 0..=runs {
        for k in turns(n, i) {
            let (pair, home) = (&pairs[k], &pairs[k].followers[0]);
            change_one(&pair.codex(), i as u64 + 1)?;
            bench.json_of(&pair.exe, &pair.master, &["master", "rebuild"], false)?;
            let f = bench.sync(&pair.exe, home, "fetched", false)?;
            let step = bench.json_of(&pair.exe, home, &["apply"], false)?;
            if i > 0 {
                one_file[k].push(f);
                one_apply[k].push(Fetch::of(&step.measured, &serde_json::Value::Null));
            }
        }
    }
    Ok((0..n)
        .map(|k| Rows {
            no_change: Phase::of(&no_change[k]),
            apply: Phase::of(&apply[k]),
            one_file: Phase::of(&one_file[k]),
            one_file_apply: Phase::of(&one_apply[k]),
        })
        .collect())
}

/// The order of `n` releases in round `i`: each leads in turn.
fn turns(n: usize, i: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k + i) % n)
}
