//! Apply (checkout) benchmark against cp and rsync, from the same run; the converged
//! follower's no-change paths against a stat walk and one HTTP request; the share of a cold
//! apply spent re-hashing what it writes.
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
//!   untimed),
//! - no-change `codexport sync --apply` on that follower, converged: the master serves the
//!   revision it applied and nothing changed on either side, so the sync fetches the signed
//!   head, finds no new revision and runs the drift check (one `lstat` per managed file
//!   against the checkout index). One untimed `sync --apply` first settles the checkout
//!   index (it re-hashes files the last apply wrote in the index's own timestamp tick, the
//!   racily clean ones, and saves their stat); every run must then report `current` with
//!   nothing applied, and the notes say how many took the fast path (index clean, store not
//!   opened). Baseline: a bare stat walk of the same ~/.codex as a whole process,
//!   `find CODEX -printf '%s %T@ %C@ %i\n'` with stdout to /dev/null (one `lstat` per entry,
//!   directories included, and nothing compared),
//! - `codexport hook run` on that follower (what Codex runs at session start; not installed,
//!   stdin from /dev/null): it skips the drift walk when nothing is new, so its no-change path
//!   is one verified head and the state file. Every run must log `current` in
//!   ~/.codexport/logs/hook.log and print nothing. Baseline: one `curl` of the master's
//!   `GET /v2/head` with the follower's credential (`Authorization: Bearer …`), as a whole
//!   process, body to /dev/null.
//!
//! Each no-change command and its baseline run alternately (baseline, then codexport, in every
//! round), so both see the same load on a shared machine.
//!
//! Every timed process reports its wall time and its CPU time (user + sys, all threads). Bash's
//! `time` keyword reports both to the millisecond (from `wait4`'s rusage); without bash,
//! `/usr/bin/time -f "%e %U %S"` is used, which truncates CPU times to 10 ms; without either,
//! only wall time is measured and the output says so. A missing rsync, curl or GNU find fails
//! the benchmark under `CI=true` (where the figures must be complete) and elsewhere skips the
//! rows that need it with a notice on stderr naming it; nothing is installed.
//!
//! The re-hash cost of a cold apply is estimated in process: every blob a checkout writes is
//! hashed exactly once on its way out of the store (`ObjectSource::blob` checks it against
//! its id, on the one thread that stages the files, from bytes already in memory; a blob's id
//! is the plain blake3 of the file's content), and nothing else in a cold apply hashes file
//! contents (the codex dir is empty, so the plan compares nothing). So the check costs what
//! blake3 of every library file's content costs on one thread from memory: the contents are
//! read first (untimed), then hashed one file at a time, median of several passes after a
//! warm-up, and divided by the median wall time of the cold `codexport apply` of the same
//! run. Trees are re-hashed too but are small and not counted; the bytes hashed here are read
//! from ≈ 40 MB of memory, beyond the CPU caches, where a checkout hashes bytes it has just
//! decompressed and still holds in cache, so if anything this errs high.
//!
//! Targets: cold apply ≤ 1.5× `cp -a`; one-file apply ≤ 20 ms of process CPU time; no-change
//! `sync --apply` ≤ 3× the stat walk (wall); no-change `hook run` ≤ 3× one curl of the head
//! (wall); the one-file apply against rsync one-file and the re-hash share of a cold apply
//! are reported. `CODEXPORT_BENCH_JSON=1` adds the table (rows with medians and ratios, notes
//! with targets and verdicts) as one JSON line. Run with `cargo bench --bench apply`.
//!
//! Everything reads from a warm page cache (the library was just written; the follower's store
//! was just fetched), the same for all tools.

use codexport_dev::bench::{Table, baseline_tool, env_usize, succeeds};
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
#[derive(Clone)]
struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Send its stdout to /dev/null (as `> /dev/null` would) instead of keeping it.
    discard_stdout: bool,
}

fn cmd(program: impl Into<OsString>, args: &[&OsStr]) -> Cmd {
    Cmd {
        program: program.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        discard_stdout: false,
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
        if c.discard_stdout {
            // The timing wrapper's stdout is the child's: `… > /dev/null`.
            wrapped.stdout(Stdio::null());
        }
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

    /// Runs `a` then `b`, `runs + 1` times in turn (the first round a warm-up, not kept), so
    /// both see the same machine load; `check_a` and `check_b` see every finished run.
    fn alternate(
        &self,
        runs: usize,
        (a, mut check_a): (&Cmd, impl FnMut(&Sample)),
        (b, mut check_b): (&Cmd, impl FnMut(&Sample)),
    ) -> (Series, Series) {
        let (mut sa, mut sb) = (Series::default(), Series::default());
        for i in 0..=runs {
            for (c, check, s) in [
                (a, &mut check_a as &mut dyn FnMut(&Sample), &mut sa),
                (b, &mut check_b as &mut dyn FnMut(&Sample), &mut sb),
            ] {
                let sample = self.run(c);
                check(&sample);
                if i > 0 {
                    s.wall.push(sample.wall);
                    s.cpu.extend(sample.cpu);
                }
            }
        }
        (sa, sb)
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
    /// The follower home of the one-file applies, kept (applied) for the no-change runs.
    follower: PathBuf,
}

/// Cold applies, each on a fresh follower home, then one-file applies on the last one (kept:
/// the caller removes it).
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
    Applies {
        cold,
        one_file,
        cold_added,
        one_file_counts,
        follower: home,
    }
}

/// What the no-change runs on the converged follower measured.
struct NoChange {
    /// `find CODEX -printf …` and no-change `codexport sync --apply`, alternately.
    find: Option<Series>,
    sync: Series,
    /// Runs (warm-up included) that took the fast path: index clean, store not opened.
    sync_fast: usize,
    /// Runs (warm-up included) that opened the store and found nothing to write.
    sync_unchanged: usize,
    /// `curl` of `GET /v2/head` and `codexport hook run`, alternately.
    curl: Option<Series>,
    hook: Series,
    /// The last word of the hook's log line of each run (warm-up included).
    hook_results: Vec<String>,
}

/// Whether a `sync --apply` JSON result says nothing new was fetched and nothing written:
/// `Some(true)` on the fast path (no apply ran), `Some(false)` when the apply ran and found
/// the codex dir unchanged, `None` otherwise.
fn no_change_path(r: &serde_json::Value) -> Option<bool> {
    if r["result"] != "current" || r["objects"] != 0 || r["held_at"] != serde_json::Value::Null {
        return None;
    }
    let a = &r["apply"];
    if a.is_null() {
        return Some(true);
    }
    let untouched = ["added", "updated", "deleted", "restored"]
        .iter()
        .all(|k| a[k] == 0)
        && a["drift"].as_array().is_some_and(Vec::is_empty);
    (a["result"] == "unchanged" && untouched).then_some(false)
}

/// The number of lines of `home`'s hook log and the result word of its last line (a line
/// is: time, result, elapsed, message).
fn last_hook_result(home: &Path) -> (usize, String) {
    let log = home.join(".codexport/logs/hook.log");
    let text = fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("no hook log at {}: {e}", log.display()));
    let line = text.lines().last().unwrap_or_default();
    let result = line.split_whitespace().nth(1).unwrap_or_default();
    (text.lines().count(), result.to_owned())
}

/// No-change `sync --apply` and `hook run` on the applied follower at `home`, each
/// alternating with its baseline (the stat walk, one curl of the head) when the tool exists.
fn bench_no_change(
    timer: &Timer,
    runs: usize,
    home: &Path,
    master: &Master,
    tools: (bool, bool),
) -> NoChange {
    let (have_find, have_curl) = tools;
    // Settles the checkout index: files the last apply wrote in the index's own timestamp
    // tick were recorded as racily clean; this run hashes them and saves their stat.
    let first = json(&untimed(&codexport(home, &["sync", "--apply"])));
    assert!(
        no_change_path(&first).is_some(),
        "the follower is not converged: {first}"
    );
    let codex = home.join(".codex");
    let sync_cmd = codexport(home, &["sync", "--apply"]);
    let (mut sync_fast, mut sync_unchanged) = (0, 0);
    let check_sync = |s: &Sample| match no_change_path(&json(&s.stdout)) {
        Some(true) => sync_fast += 1,
        Some(false) => sync_unchanged += 1,
        None => panic!("no-change sync --apply changed something: {}", s.stdout),
    };
    let mut walk = cmd(
        "find",
        &[
            codex.as_os_str(),
            "-printf".as_ref(),
            r"%s %T@ %C@ %i\n".as_ref(),
        ],
    );
    walk.discard_stdout = true;
    let (find, sync) = if have_find {
        let (f, s) = timer.alternate(runs, (&walk, |_: &Sample| {}), (&sync_cmd, check_sync));
        (Some(f), s)
    } else {
        (None, timer.series(runs, |_| sync_cmd.clone(), check_sync))
    };

    let hook_cmd = cmd(
        EXE,
        &[
            "--home".as_ref(),
            home.as_os_str(),
            "hook".as_ref(),
            "run".as_ref(),
        ],
    );
    let mut hook_results = Vec::new();
    let check_hook = |s: &Sample| {
        assert!(s.stdout.is_empty(), "hook run printed {:?}", s.stdout);
        let (lines, result) = last_hook_result(home);
        assert_eq!(lines, hook_results.len() + 1, "one hook log line per run");
        hook_results.push(result);
    };
    let credential =
        fs::read_to_string(home.join(".codexport/credential")).expect("the follower's credential");
    let bearer = format!("Authorization: Bearer {}", credential.trim());
    let url = format!("http://127.0.0.1:{}/v2/head", master.port);
    let curl = cmd(
        "curl",
        &[
            "-fsS".as_ref(),
            "-o".as_ref(),
            "/dev/null".as_ref(),
            "-H".as_ref(),
            bearer.as_ref(),
            url.as_ref(),
        ],
    );
    let (curl, hook) = if have_curl {
        let (c, h) = timer.alternate(runs, (&curl, |_: &Sample| {}), (&hook_cmd, check_hook));
        (Some(c), h)
    } else {
        (None, timer.series(runs, |_| hook_cmd.clone(), check_hook))
    };
    assert!(
        hook_results.iter().all(|r| r == "current"),
        "hook run did not find the follower current: {hook_results:?}"
    );
    NoChange {
        find,
        sync,
        sync_fast,
        sync_unchanged,
        curl,
        hook,
        hook_results,
    }
}

/// The in-process estimate of a cold apply's re-hashing.
struct Rehash {
    files: usize,
    bytes: u64,
    /// Hashing every content once, per pass (warm-up left out).
    passes: Vec<Duration>,
}

/// Appends the content of every regular file below `dir` (and every symlink's target name,
/// as a symlink blob holds it) to `out`, in directory order; follows no symlinks.
fn read_contents(dir: &Path, out: &mut Vec<Vec<u8>>) {
    use std::os::unix::ffi::OsStrExt;
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let meta = fs::symlink_metadata(&path).expect("lstat a library file");
        if meta.is_dir() {
            read_contents(&path, out);
        } else if meta.is_symlink() {
            let target = fs::read_link(&path).expect("read a library link");
            out.push(target.as_os_str().as_bytes().to_vec());
        } else if meta.is_file() {
            out.push(fs::read(&path).expect("read a library file"));
        }
    }
}

/// Reads every file of the library at `codex` (untimed), then times blake3 of each content,
/// one file at a time on this thread (as a checkout checks each blob it writes): one warm-up
/// pass and `passes` timed ones.
fn bench_rehash(codex: &Path, passes: usize) -> Rehash {
    let mut contents = Vec::new();
    read_contents(codex, &mut contents);
    let bytes = contents.iter().map(|c| c.len() as u64).sum();
    let pass = || {
        let started = Instant::now();
        for c in &contents {
            std::hint::black_box(blake3::hash(std::hint::black_box(c)));
        }
        started.elapsed()
    };
    pass();
    Rehash {
        files: contents.len(),
        bytes,
        passes: (0..passes).map(|_| pass()).collect(),
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
    no_change: NoChange,
    rehash: Rehash,
}

const COLD_APPLY: &str = "codexport apply (cold)";
const STAT_WALK: &str = "find -printf stat walk of ~/.codex";
const NO_CHANGE_SYNC: &str = "codexport sync --apply (no-change)";
const CURL_HEAD: &str = "curl GET /v2/head";
const NO_CHANGE_HOOK: &str = "codexport hook run (no-change)";
const REHASH: &str = "blake3 of the library in memory (1 thread)";

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

fn report(r: &Results, clock: Clock, runs: usize, library: &serde_json::Value) -> Table {
    let mut t = Table::new();
    rows(&mut t, "cp -a (cold)", &r.cp, None);
    if let Some((cold, _)) = &r.rsync {
        rows(&mut t, "rsync (cold)", cold, None);
    }
    rows(&mut t, COLD_APPLY, &r.applies.cold, Some("cp -a (cold)"));
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
    let nc = &r.no_change;
    if let Some(find) = &nc.find {
        rows(&mut t, STAT_WALK, find, None);
    }
    rows(&mut t, NO_CHANGE_SYNC, &nc.sync, Some(STAT_WALK));
    if let Some(curl) = &nc.curl {
        rows(&mut t, CURL_HEAD, curl, None);
    }
    rows(&mut t, NO_CHANGE_HOOK, &nc.hook, Some(CURL_HEAD));
    if let Some(hash) = median(&r.rehash.passes) {
        t.row(REHASH, hash, Some(COLD_APPLY));
    }

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
    .note("clock", clock.describe());
    apply_notes(&mut t, r);
    no_change_notes(&mut t, nc);
    rehash_notes(&mut t, &r.rehash);
    t
}

/// Targets and per-run figures of the cold and one-file applies.
fn apply_notes(t: &mut Table, r: &Results) {
    let cold_ratio = t.ratio(COLD_APPLY, "cp -a (cold)").unwrap_or(f64::NAN);
    let one_cpu_ms = ms(median(&r.applies.one_file.cpu));
    let vs_rsync = t
        .ratio("codexport apply (one-file)", "rsync (one-file)")
        .unwrap_or(f64::NAN);
    let vs_rsync_cpu = t
        .ratio("codexport apply (one-file), CPU", "rsync (one-file), CPU")
        .unwrap_or(f64::NAN);
    t.note(
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
}

/// Targets, conditions and per-run figures of the no-change runs.
fn no_change_notes(t: &mut Table, nc: &NoChange) {
    let ratio = |t: &Table, a: &str, b: &str| t.ratio(a, b).unwrap_or(f64::NAN);
    let sync_wall = ratio(t, NO_CHANGE_SYNC, STAT_WALK);
    let sync_cpu = ratio(
        t,
        &format!("{NO_CHANGE_SYNC}, CPU"),
        &format!("{STAT_WALK}, CPU"),
    );
    let hook_wall = ratio(t, NO_CHANGE_HOOK, CURL_HEAD);
    let hook_cpu = ratio(
        t,
        &format!("{NO_CHANGE_HOOK}, CPU"),
        &format!("{CURL_HEAD}, CPU"),
    );
    let total = nc.sync_fast + nc.sync_unchanged;
    t.note(
        "no-change conditions",
        "the follower holds the master's newest revision (applied, checkout index settled by \
         one untimed sync --apply), the master serves on loopback, nothing changed on either \
         side; each codexport run alternates with its baseline",
    )
    .note(
        "no-change sync --apply / stat walk (wall)",
        check(sync_wall, sync_wall <= 3.0, "≤ 3×"),
    )
    .note(
        "no-change sync --apply / stat walk (CPU)",
        format!("{sync_cpu:.2}"),
    )
    .note(
        "no-change sync --apply path",
        format!(
            "{} of {total} runs (warm-up included) on the fast path (checkout index clean by \
             lstat, store not opened), {} opened the store and wrote nothing; every JSON \
             result `current`, nothing fetched or applied",
            nc.sync_fast, nc.sync_unchanged
        ),
    )
    .note(
        "stat walk",
        "find over the follower's ~/.codex printing size, mtime, ctime and inode of every \
         entry to /dev/null",
    )
    .note(
        "no-change hook run / curl head (wall)",
        check(hook_wall, hook_wall <= 3.0, "≤ 3×"),
    )
    .note(
        "no-change hook run / curl head (CPU)",
        format!("{hook_cpu:.2}"),
    )
    .note(
        "hook run results (logged)",
        format!(
            "{:?}; stdin from /dev/null, nothing printed; skips the drift walk when nothing is new",
            nc.hook_results
        ),
    )
    .note(
        "curl head",
        "one GET /v2/head on loopback with the follower's credential, body to /dev/null",
    );
    if nc.find.is_none() {
        t.note("find", "GNU find not available, stat walk skipped");
    }
    if nc.curl.is_none() {
        t.note("curl", "not available, skipped");
    }
    t.note(
        "no-change sync --apply wall per run",
        ms_list(&nc.sync.wall),
    )
    .note("no-change sync --apply CPU per run", ms_list(&nc.sync.cpu))
    .note("no-change hook run wall per run", ms_list(&nc.hook.wall))
    .note("no-change hook run CPU per run", ms_list(&nc.hook.cpu));
    if let Some(find) = &nc.find {
        t.note("stat walk wall per run", ms_list(&find.wall));
    }
    if let Some(curl) = &nc.curl {
        t.note("curl head wall per run", ms_list(&curl.wall));
    }
}

/// The re-hash share of a cold apply.
fn rehash_notes(t: &mut Table, h: &Rehash) {
    let hash_ms = ms(median(&h.passes));
    let cold_ms = ms(t.median(COLD_APPLY));
    t.note(
        "re-hash cost",
        format!(
            "≈ {:.1} % of a cold apply (blake3 of {:.1} MB in {hash_ms:.1} ms vs cold apply \
             {cold_ms:.1} ms)",
            hash_ms / cold_ms * 100.0,
            h.bytes as f64 / 1e6,
        ),
    )
    .note(
        "re-hash estimate",
        format!(
            "{} library files read into memory first (untimed), each hashed once per pass on \
             one thread, median of {} passes after one warm-up, divided by the median wall \
             time of the cold apply above",
            h.files,
            h.passes.len()
        ),
    )
    .note("re-hash passes", ms_list(&h.passes));
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
    let have_find = baseline_tool("find", "the stat-walk row (GNU find)");
    let have_curl = baseline_tool("curl", "the curl GET /v2/head row");

    let (master, library) = Master::start(&tmp.path().join("master"), files);
    let cp = bench_cp(&timer, runs, tmp.path(), &master.codex);
    // The library as generated, as every cold apply writes it.
    let rehash = bench_rehash(&master.codex, runs.max(5));
    // rsync after the applies: its one-file runs append to master files, which the applies'
    // revisions should not see.
    let applies = bench_applies(&timer, runs, tmp.path(), &master);
    let no_change = bench_no_change(
        &timer,
        runs,
        &applies.follower,
        &master,
        (have_find, have_curl),
    );
    remove(&applies.follower);
    let rsync = have_rsync.then(|| bench_rsync(&timer, runs, tmp.path(), &master.codex));
    let Master { server, .. } = master;
    drop(server);

    let results = Results {
        cp,
        rsync,
        applies,
        no_change,
        rehash,
    };
    let table = report(&results, clock, runs, &library);
    println!();
    table.print();
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!("{}", table.to_json());
    }
}
