//! Apply (checkout) benchmark against cp and rsync, from the same run.
//!
//! Generates the default skill library (10,000 files, ≈ 40 MB; `CODEXPORT_BENCH_FILES`
//! overrides the count) as a master's codex dir with `codexport bench gen-library`, runs
//! `master init` and `master serve --no-watch` on loopback, and measures, as the median of
//! `CODEXPORT_BENCH_RUNS` runs (default 5) after one warm-up, whole processes of this
//! package's binary and of the baselines:
//!
//! - `cp -a` of the master's codex dir into a fresh folder (cold),
//! - `rsync -a --delete src/ dst/` into an empty folder (cold), and again after one file of
//!   the source changed (one-file),
//! - cold `codexport apply`: each run on a fresh follower home, enrolled with a new join link
//!   and fetched (`follower join`, untimed) first,
//! - one-file `codexport apply`: on one applied follower, after one master file was appended
//!   to (`codexport_dev::library::touch_one`), `master rebuild` and a follower `sync` (all
//!   untimed).
//!
//! Every timed process reports its wall time and its CPU time (user + sys, all threads). Bash's
//! `time` keyword reports both to the millisecond (from `wait4`'s rusage); without bash,
//! `/usr/bin/time -f "%e %U %S"` is used, which truncates CPU times to 10 ms; without either,
//! only wall time is measured and the output says so. A missing rsync fails the benchmark
//! under `CI=true` (CI installs it itself) and elsewhere skips its rows with a notice on
//! stderr naming it; nothing is installed.
//!
//! Targets: cold apply ≤ 1.5× `cp -a`; one-file apply ≤ 20 ms of process CPU time; and the
//! one-file apply against rsync one-file is reported. `CODEXPORT_BENCH_JSON=1` adds the table
//! as one JSON line. Run with `cargo bench --bench apply`.
//!
//! Everything reads from a warm page cache (the library was just written; the follower's store
//! was just fetched), the same for all tools.

use codexport_dev::bench::{Table, baseline_tool, succeeds};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::serve::{ServeOptions, ServingMaster, spawn_master};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_codexport");
const GNU_TIME: &str = "/usr/bin/time";
/// Bash's `time` keyword: the child's wall and CPU times to the millisecond on stderr, the
/// child's own stderr into the file named by `$1`, its stdout and exit status passed through.
const BASH_TIMED: &str = r#"TIMEFORMAT="%3R %3U %3S"; err=$1; shift; time "$@" 2>"$err""#;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

/// How a timed process's CPU time is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Bash,
    GnuTime,
    WallOnly,
}

impl Clock {
    fn detect() -> Self {
        if succeeds("bash", &["-c", "time true"]) {
            Clock::Bash
        } else if Path::new(GNU_TIME).exists() {
            Clock::GnuTime
        } else {
            Clock::WallOnly
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Clock::Bash => "wall and user+sys CPU from bash's `time` (1 ms resolution)",
            Clock::GnuTime => {
                "wall from the parent's clock; user+sys CPU from /usr/bin/time -f \"%e %U %S\" (each truncated to 10 ms)"
            }
            Clock::WallOnly => {
                "wall time only: neither bash nor /usr/bin/time found, CPU time not measured"
            }
        }
    }
}

/// A command line.
struct Cmd {
    program: OsString,
    args: Vec<OsString>,
}

fn cmd(program: impl Into<OsString>, args: &[&OsStr]) -> Cmd {
    Cmd {
        program: program.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// `codexport --json --home HOME ARGS…`.
fn codexport(home: &Path, args: &[&str]) -> Cmd {
    let mut c = cmd(
        EXE,
        &["--json".as_ref(), "--home".as_ref(), home.as_os_str()],
    );
    c.args.extend(args.iter().map(OsString::from));
    c
}

fn command(c: &Cmd) -> Command {
    let mut command = Command::new(&c.program);
    command
        .args(&c.args)
        .stdin(Stdio::null())
        .env_remove("CODEXPORT_HOME")
        .env("NO_COLOR", "1");
    command
}

fn check_status(c: &Cmd, status: std::process::ExitStatus, stdout: &[u8], stderr: &str) {
    assert!(
        status.success(),
        "{} {:?} failed ({status}):\n{}{stderr}",
        c.program.display(),
        c.args,
        String::from_utf8_lossy(stdout),
    );
}

/// Runs `c` untimed to completion and returns its stdout; panics with its output on failure.
fn untimed(c: &Cmd) -> String {
    let out = command(c)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", c.program.display()));
    check_status(
        c,
        out.status,
        &out.stdout,
        &String::from_utf8_lossy(&out.stderr),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

/// One finished timed process.
struct Sample {
    wall: Duration,
    cpu: Option<Duration>,
    stdout: String,
}

/// The last line of `text` holding three numbers (seconds): wall, user, sys.
fn three_times(text: &str) -> Option<(Duration, Duration)> {
    text.lines().rev().find_map(|line| {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        (v.len() == 3).then(|| {
            (
                Duration::from_secs_f64(v[0]),
                Duration::from_secs_f64(v[1] + v[2]),
            )
        })
    })
}

/// Runs timed processes with one [`Clock`], writing the clock's files into `scratch`.
struct Timer {
    clock: Clock,
    scratch: PathBuf,
}

impl Timer {
    fn run(&self, c: &Cmd) -> Sample {
        let (err_file, times_file) = (self.scratch.join("stderr"), self.scratch.join("times"));
        let mut wrapped = match self.clock {
            Clock::Bash => {
                let mut w = Command::new("bash");
                w.args(["-c", BASH_TIMED, "bash"])
                    .arg(&err_file)
                    .arg(&c.program);
                w
            }
            Clock::GnuTime => {
                let mut w = Command::new(GNU_TIME);
                w.args(["-f", "%e %U %S", "-o"])
                    .arg(&times_file)
                    .arg(&c.program);
                w
            }
            Clock::WallOnly => Command::new(&c.program),
        };
        wrapped
            .args(&c.args)
            .stdin(Stdio::null())
            .env_remove("CODEXPORT_HOME")
            .env("NO_COLOR", "1");
        let started = Instant::now();
        let out = wrapped
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", c.program.display()));
        let parent_wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let child_err = fs::read_to_string(&err_file).unwrap_or_default();
        check_status(c, out.status, &out.stdout, &format!("{child_err}{stderr}"));
        let (wall, cpu) = match self.clock {
            Clock::Bash => {
                let (wall, cpu) = three_times(&stderr)
                    .unwrap_or_else(|| panic!("no times from bash in {stderr:?}"));
                (wall, Some(cpu))
            }
            Clock::GnuTime => {
                let text = fs::read_to_string(&times_file).unwrap_or_default();
                let (_, cpu) = three_times(&text)
                    .unwrap_or_else(|| panic!("no times from {GNU_TIME} in {text:?}"));
                (parent_wall, Some(cpu))
            }
            Clock::WallOnly => (parent_wall, None),
        };
        Sample {
            wall,
            cpu,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }

    /// Runs `step(i)` for i = 0 (warm-up, not kept) and 1..=runs; `step` does the untimed
    /// setup and returns the command to time; `check` sees every finished run.
    fn series(
        &self,
        runs: usize,
        mut step: impl FnMut(usize) -> Cmd,
        mut check: impl FnMut(&Sample),
    ) -> Series {
        let mut s = Series::default();
        for i in 0..=runs {
            let c = step(i);
            let sample = self.run(&c);
            check(&sample);
            if i > 0 {
                s.wall.push(sample.wall);
                s.cpu.extend(sample.cpu);
            }
        }
        s
    }
}

/// The timed runs of one operation.
#[derive(Default)]
struct Series {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn ms_list(v: &[Duration]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
        .collect();
    format!("[{}] ms", parts.join(", "))
}

/// The master: its home, codex dir, server and port.
struct Master {
    home: PathBuf,
    codex: PathBuf,
    port: String,
    server: ServingMaster,
}

impl Master {
    /// Generates the library, runs `master init` and starts `master serve --no-watch`.
    fn start(home: &Path, files: usize) -> (Self, serde_json::Value) {
        let codex = home.join(".codex");
        let files = files.to_string();
        let gen_args: [&OsStr; 6] = [
            "--json".as_ref(),
            "bench".as_ref(),
            "gen-library".as_ref(),
            codex.as_os_str(),
            "--files".as_ref(),
            files.as_ref(),
        ];
        let stats = json(&untimed(&cmd(EXE, &gen_args)));
        // Past the filesystem clock's tick, so the first snapshot does not see racily clean files.
        std::thread::sleep(Duration::from_millis(50));
        untimed(&codexport(home, &["master", "init"]));
        let server = spawn_master(
            EXE,
            home,
            &ServeOptions::new()
                .env_remove("CODEXPORT_HOME")
                .env("NO_COLOR", "1"),
        )
        .unwrap_or_else(|e| panic!("start master serve: {e}"));
        let port = server.port().to_string();
        let master = Self {
            home: home.to_owned(),
            codex,
            port,
            server,
        };
        (master, stats)
    }

    /// Enrolls a new follower at `home` with a fresh join link and fetches (no apply).
    fn join(&self, home: &Path) {
        let link = json(&untimed(&codexport(
            &self.home,
            &[
                "master",
                "link",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port,
            ],
        )));
        let link = link["link"].as_str().expect("a join link");
        untimed(&codexport(home, &["follower", "join", link]));
    }
}

fn remove(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    }
}

/// `cp -a` of the master's codex dir into a fresh folder each run.
fn bench_cp(timer: &Timer, runs: usize, tmp: &Path, codex: &Path) -> Series {
    let dest = |i: usize| tmp.join(format!("cp-{i}"));
    let s = timer.series(
        runs,
        |i| {
            if i > 0 {
                remove(&dest(i - 1));
            }
            cmd(
                "cp",
                &["-a".as_ref(), codex.as_os_str(), dest(i).as_os_str()],
            )
        },
        |_| {},
    );
    remove(&dest(runs));
    s
}

/// `rsync -a --delete src/ dst/` cold into an empty folder, then one-file changes into the
/// last copy (one master file appended to, untimed, before each run).
fn bench_rsync(timer: &Timer, runs: usize, tmp: &Path, codex: &Path) -> (Series, Series) {
    let dest = |i: usize| tmp.join(format!("rsync-{i}"));
    let with_slash = |p: &Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("/");
        s
    };
    let rsync = |to: &Path| {
        cmd(
            "rsync",
            &[
                "-a".as_ref(),
                "--delete".as_ref(),
                &with_slash(codex),
                &with_slash(to),
            ],
        )
    };
    let cold = timer.series(
        runs,
        |i| {
            if i > 0 {
                remove(&dest(i - 1));
            }
            fs::create_dir_all(dest(i)).expect("an empty rsync destination");
            rsync(&dest(i))
        },
        |_| {},
    );
    let last = dest(runs);
    let one_file = timer.series(
        runs,
        |i| {
            library::touch_one(codex, 1_000 + i as u64).expect("touch one file");
            rsync(&last)
        },
        |_| {},
    );
    remove(&last);
    (cold, one_file)
}

/// What the codexport apply runs measured.
struct Applies {
    cold: Series,
    one_file: Series,
    /// `added` of each cold apply, `+added ~updated -deleted` of each one-file apply.
    cold_added: Vec<u64>,
    one_file_counts: Vec<String>,
}

/// Cold applies, each on a fresh follower home, then one-file applies on the last one.
fn bench_applies(timer: &Timer, runs: usize, tmp: &Path, master: &Master) -> Applies {
    let follower = |i: usize| tmp.join(format!("follower-{i}"));
    let mut cold_added = Vec::new();
    let cold = timer.series(
        runs,
        |i| {
            if i > 0 {
                remove(&follower(i - 1));
            }
            master.join(&follower(i));
            codexport(&follower(i), &["apply"])
        },
        |s| {
            let r = json(&s.stdout);
            assert_eq!(r["result"], "applied", "cold apply: {r}");
            cold_added.push(r["added"].as_u64().unwrap_or(0));
        },
    );
    let home = follower(runs);
    let mut one_file_counts = Vec::new();
    let one_file = timer.series(
        runs,
        |i| {
            library::touch_one(&master.codex, i as u64 + 1).expect("touch one file");
            untimed(&codexport(&master.home, &["master", "rebuild"]));
            let sync = json(&untimed(&codexport(&home, &["sync"])));
            assert_eq!(sync["result"], "fetched", "sync after a change: {sync}");
            codexport(&home, &["apply"])
        },
        |s| {
            let r = json(&s.stdout);
            assert_eq!(r["result"], "applied", "one-file apply: {r}");
            one_file_counts.push(format!(
                "+{} ~{} -{}",
                r["added"], r["updated"], r["deleted"]
            ));
        },
    );
    remove(&home);
    Applies {
        cold,
        one_file,
        cold_added,
        one_file_counts,
    }
}

fn check(value: f64, ok: bool, target: &str) -> String {
    let verdict = if value.is_nan() {
        "n/a"
    } else if ok {
        "ok"
    } else {
        "MISSED"
    };
    format!("{value:.2} (target {target}): {verdict}")
}

/// Adds the wall row, and the CPU row when CPU time was measured.
fn rows(table: &mut Table, name: &str, s: &Series, baseline: Option<&str>) {
    if let Some(wall) = median(&s.wall) {
        table.row(name, wall, baseline);
    }
    if let Some(cpu) = median(&s.cpu) {
        let cpu_name = format!("{name}, CPU");
        let cpu_base = baseline.map(|b| format!("{b}, CPU"));
        table.row(&cpu_name, cpu, cpu_base.as_deref());
    }
}

/// Everything measured, for the table.
struct Results {
    cp: Series,
    rsync: Option<(Series, Series)>,
    applies: Applies,
}

fn report(r: &Results, clock: Clock, runs: usize, library: &serde_json::Value) -> Table {
    let mut t = Table::new();
    rows(&mut t, "cp -a (cold)", &r.cp, None);
    if let Some((cold, _)) = &r.rsync {
        rows(&mut t, "rsync (cold)", cold, None);
    }
    rows(
        &mut t,
        "codexport apply (cold)",
        &r.applies.cold,
        Some("cp -a (cold)"),
    );
    if let Some((_, one)) = &r.rsync {
        rows(&mut t, "rsync (one-file)", one, None);
    }
    let one_base = r.rsync.as_ref().map(|_| "rsync (one-file)");
    rows(
        &mut t,
        "codexport apply (one-file)",
        &r.applies.one_file,
        one_base,
    );

    let cold_ratio = t
        .ratio("codexport apply (cold)", "cp -a (cold)")
        .unwrap_or(f64::NAN);
    let one_cpu_ms = median(&r.applies.one_file.cpu).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    let vs_rsync = t
        .ratio("codexport apply (one-file)", "rsync (one-file)")
        .unwrap_or(f64::NAN);
    let vs_rsync_cpu = t
        .ratio("codexport apply (one-file), CPU", "rsync (one-file), CPU")
        .unwrap_or(f64::NAN);
    t.note(
        "library",
        format!(
            "{} files, {} skills, {:.1} MB",
            library["files"],
            library["skills"],
            library["bytes"].as_f64().unwrap_or(0.0) / 1e6
        ),
    )
    .note(
        "runs",
        format!("median of {runs} after one warm-up; whole processes"),
    )
    .note("clock", clock.describe())
    .note(
        "cold apply / cp -a (wall)",
        check(cold_ratio, cold_ratio <= 1.5, "≤ 1.5×"),
    )
    .note(
        "one-file apply CPU (user+sys), ms",
        check(one_cpu_ms, one_cpu_ms <= 20.0, "≤ 20 ms"),
    )
    .note(
        "one-file apply / rsync one-file (wall)",
        format!("{vs_rsync:.2}"),
    )
    .note(
        "one-file apply / rsync one-file (CPU)",
        format!("{vs_rsync_cpu:.2}"),
    );
    if r.rsync.is_none() {
        t.note("rsync", "not available, skipped");
    }
    t.note("cold apply wall per run", ms_list(&r.applies.cold.wall))
        .note("cold apply CPU per run", ms_list(&r.applies.cold.cpu))
        .note(
            "one-file apply wall per run",
            ms_list(&r.applies.one_file.wall),
        )
        .note(
            "one-file apply CPU per run",
            ms_list(&r.applies.one_file.cpu),
        )
        .note(
            "files added per cold apply",
            format!("{:?}", r.applies.cold_added),
        )
        .note(
            "changes per one-file apply",
            format!("{:?}", r.applies.one_file_counts),
        );
    t
}

fn main() {
    let files = env_usize("CODEXPORT_BENCH_FILES", LibrarySpec::default().files);
    let runs = env_usize("CODEXPORT_BENCH_RUNS", 5).max(1);
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-apply-")
        .tempdir()
        .expect("temp dir");
    let scratch = tmp.path().join("scratch");
    fs::create_dir_all(&scratch).expect("scratch dir");
    let clock = Clock::detect();
    let timer = Timer { clock, scratch };
    println!("timing: {}", clock.describe());
    let have_rsync = baseline_tool("rsync", "the rsync rows");

    let (master, library) = Master::start(&tmp.path().join("master"), files);
    let cp = bench_cp(&timer, runs, tmp.path(), &master.codex);
    // rsync after the applies: its one-file runs append to master files, which the applies'
    // revisions should not see.
    let applies = bench_applies(&timer, runs, tmp.path(), &master);
    let rsync = have_rsync.then(|| bench_rsync(&timer, runs, tmp.path(), &master.codex));
    let Master { server, .. } = master;
    drop(server);

    let results = Results { cp, rsync, applies };
    let table = report(&results, clock, runs, &library);
    println!();
    table.print();
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!("{}", table.to_json());
    }
}
