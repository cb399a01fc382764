//! Timing helpers shared by `benches/` and `codexport bench`: medians, the two physical
//! baselines every snapshot figure is compared against, a small result table, the CPU time
//! of processes (a server's, the clients'), and the lookup of the other tools (rsync, git)
//! some benchmarks compare against.
//!
//! The baselines are what no snapshot can beat on the same tree: [`lstat_all`] (the cost of
//! noticing that nothing changed) and [`read_and_hash_all`] (the cost of reading and hashing
//! everything once, on one core), or [`read_and_hash_parallel`] on as many threads as the
//! snapshot has. Both walk the whole tree, follow no symlinks and store
//! nothing. This module only reads what it is pointed at, and never installs a missing tool.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A count from the environment variable `name` (such as `CODEXPORT_BENCH_RUNS`), or
/// `default` when it is unset. Panics naming the variable when it is not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

/// The size in MiB of the large-content cases the benchmarks add when
/// `CODEXPORT_BENCH_LARGE_MIB` is set (1024 for the cases of issue 13); `None` when unset.
pub fn large_content_mib() -> Option<u64> {
    std::env::var_os("CODEXPORT_BENCH_LARGE_MIB")
        .map(|_| env_usize("CODEXPORT_BENCH_LARGE_MIB", 1024).max(1) as u64)
}

/// Runs `f` once to warm up (page cache, allocator, lazily opened tables), then `runs` times,
/// and returns the median of the timed runs. `runs` of 0 is taken as 1.
pub fn median_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    median_with_setup(runs, || (), |()| f())
}

/// Like [`median_of`], but each run first calls `setup` (untimed) and hands its value to `f`;
/// whatever `f` returns is dropped after the clock stops, so fresh state dirs can be made and
/// removed outside the measurement.
pub fn median_with_setup<S, T, F, R>(runs: usize, mut setup: S, mut f: F) -> Duration
where
    S: FnMut() -> T,
    F: FnMut(T) -> R,
{
    drop(f(setup()));
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let input = setup();
            let started = Instant::now();
            let out = f(input);
            let elapsed = started.elapsed();
            drop(out);
            elapsed
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// The lstat baseline: walks `dir` with `symlink_metadata` only and returns how many
/// non-directory entries it found.
pub fn lstat_all(dir: &Path) -> io::Result<u64> {
    let mut files = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            files += lstat_all(&path)?;
        } else {
            files += 1;
        }
    }
    Ok(files)
}

/// The read+hash baseline: walks `dir` on one thread, reads every regular file (and every
/// symlink's target name) and blake3-hashes it, storing nothing. Returns the bytes hashed.
pub fn read_and_hash_all(dir: &Path) -> io::Result<u64> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        let content = if meta.is_dir() {
            bytes += read_and_hash_all(&path)?;
            continue;
        } else if meta.is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            fs::read_link(&path)?.as_os_str().as_bytes().to_vec()
        } else if meta.is_file() {
            fs::read(&path)?
        } else {
            continue;
        };
        std::hint::black_box(blake3::hash(&content));
        bytes += content.len() as u64;
    }
    Ok(bytes)
}

/// A byte count for people: bytes below 10 KiB, then KiB below 10 MiB, then MiB.
pub fn human_bytes(n: u64) -> String {
    if n < 10 * 1024 {
        format!("{n} B")
    } else if n < 10 * 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / 1024.0 / 1024.0)
    }
}

/// The read+hash baseline on `threads` threads (rayon's pool size, as a snapshot uses): walks
/// `dir` first, then reads and blake3-hashes the files in parallel, one file per task,
/// storing nothing. Returns the bytes hashed. With one thread it is [`read_and_hash_all`].
pub fn read_and_hash_parallel(dir: &Path, threads: usize) -> io::Result<u64> {
    use rayon::prelude::*;
    let mut paths = Vec::new();
    walk_files(dir, &mut paths)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(io::Error::other)?;
    pool.install(|| {
        paths
            .par_iter()
            .map(|(path, link)| {
                let content = if *link {
                    use std::os::unix::ffi::OsStrExt;
                    fs::read_link(path)?.as_os_str().as_bytes().to_vec()
                } else {
                    fs::read(path)?
                };
                std::hint::black_box(blake3::hash(&content));
                Ok(content.len() as u64)
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    })
}

/// Every regular file and symlink below `dir` (symlinks flagged, never followed).
fn walk_files(dir: &Path, out: &mut Vec<(std::path::PathBuf, bool)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            walk_files(&path, out)?;
        } else if meta.is_symlink() || meta.is_file() {
            out.push((path, meta.is_symlink()));
        }
    }
    Ok(())
}

/// One measured row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub median_ms: f64,
    /// The row this one is compared with, by name.
    pub baseline: Option<String>,
    /// `median / baseline median`, when the baseline row exists.
    pub ratio: Option<f64>,
}

/// Rows of (name, median ms, ratio vs a named baseline) plus free-form notes (targets,
/// sizes). Ratios are computed when printed, so a row may name a baseline added later.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<(String, Duration, Option<String>)>,
    notes: Vec<(String, String)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row, compared with the row named `baseline` if given.
    pub fn row(&mut self, name: &str, median: Duration, baseline: Option<&str>) -> &mut Self {
        self.rows
            .push((name.to_owned(), median, baseline.map(str::to_owned)));
        self
    }

    /// Adds a line printed under the table (and a key in the JSON `notes` object).
    pub fn note(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.notes.push((key.to_owned(), value.to_string()));
        self
    }

    /// The median of the named row.
    pub fn median(&self, name: &str) -> Option<Duration> {
        self.rows
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, d, _)| *d)
    }

    /// `median(name) / median(baseline)`.
    pub fn ratio(&self, name: &str, baseline: &str) -> Option<f64> {
        let (a, b) = (self.median(name)?, self.median(baseline)?);
        (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
    }

    /// The rows with their ratios resolved.
    pub fn rows(&self) -> Vec<Row> {
        self.rows
            .iter()
            .map(|(name, median, baseline)| Row {
                name: name.clone(),
                median_ms: median.as_secs_f64() * 1e3,
                baseline: baseline.clone(),
                ratio: baseline.as_deref().and_then(|b| self.ratio(name, b)),
            })
            .collect()
    }

    /// The table as aligned text.
    pub fn render(&self) -> String {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| r.name.len())
            .chain([4])
            .max()
            .unwrap_or(4);
        let mut out = format!("{:<width$}  {:>10}  ratio\n", "name", "median ms");
        for r in &rows {
            let _ = write!(out, "{:<width$}  {:>10.2}", r.name, r.median_ms);
            match (&r.baseline, r.ratio) {
                (Some(b), Some(x)) => {
                    let _ = write!(out, "  {x:.2}× {b}");
                }
                (Some(b), None) => {
                    let _ = write!(out, "  ({b}: missing)");
                }
                _ => {}
            }
            out.push('\n');
        }
        for (k, v) in &self.notes {
            let _ = writeln!(out, "{k}: {v}");
        }
        out
    }

    /// Prints [`Table::render`] to stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// `{"rows": [{name, median_ms, baseline, ratio}], "notes": {key: value}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let notes: serde_json::Map<String, serde_json::Value> = self
            .notes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        serde_json::json!({ "rows": self.rows(), "notes": notes })
    }
}

/// CPU time a running process has used so far, all its threads, user and system
/// (`utime + stime` of /proc/PID/stat); `None` when it is gone or not on Linux.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    // utime and stime are fields 14 and 15 of proc(5).
    stat_cpu(&format!("/proc/{pid}/stat"), 14)
}

/// CPU time of this process's children that have exited and been waited for (`cutime +
/// cstime` of /proc/self/stat): what the client processes a benchmark ran used.
pub fn reaped_children_cpu_time() -> Option<Duration> {
    // cutime and cstime are fields 16 and 17 of proc(5).
    stat_cpu("/proc/self/stat", 16)
}

/// The whole machine's CPU time since boot, from the `cpu` line of /proc/stat: (busy,
/// waiting for I/O), busy being user, nice, system, irq, softirq and steal time of all
/// CPUs. What a benchmark did not use itself, other processes did.
pub fn machine_cpu_time() -> Option<(Duration, Duration)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let secs = |t: u64| Duration::from_secs_f64(t as f64 / clock_ticks() as f64);
    Some((secs(busy), secs(at(4))))
}

/// Fields `field` and `field + 1` (numbered from 1, as proc(5) does) of a /proc stat file,
/// added, as a time.
fn stat_cpu(path: &str, field: usize) -> Option<Duration> {
    let stat = fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it,
    // where field 3 is the first.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = tick(field)? + tick(field + 1)?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// CPU time of a process and of its live children (nginx's master and its workers).
pub fn cpu_time_with_children(pid: u32) -> Option<Duration> {
    let own = cpu_time(pid)?;
    Some(
        children(pid)
            .into_iter()
            .filter_map(cpu_time)
            .fold(own, |a, b| a + b),
    )
}

/// The live processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100, Linux's USER_HZ,
/// when that cannot be asked).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

// Baseline tools the benchmarks compare against (rsync, git). Nothing here installs them:
// CI installs rsync and git itself before it runs the benchmarks, and anyone else decides
// what goes on their machine.

/// Whether a program runs and exits successfully (output discarded).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A tool a benchmark compares against is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{tool}` not found: `{tool} --version` does not run; install {tool} and put it on PATH")]
pub struct MissingTool {
    /// The program name that was looked up.
    pub tool: String,
}

/// Looks `tool` up by running `tool --version` (found on `PATH` and runnable).
pub fn find_tool(tool: &str) -> Result<(), MissingTool> {
    if succeeds(tool, &["--version"]) {
        Ok(())
    } else {
        Err(MissingTool {
            tool: tool.to_owned(),
        })
    }
}

pub use crate::skip::in_ci;

/// Whether the benchmark can measure `comparison` (such as "rsync rows"), which needs the
/// baseline tool `tool`. A missing tool is a failure under CI, where the figures must be
/// complete (CI installs rsync and git itself): this panics naming the tool. Elsewhere it
/// shows a skip notice naming the tool and what is left out (`skip::show`) and returns false.
pub fn baseline_tool(tool: &str, comparison: &str) -> bool {
    decide(find_tool(tool), comparison, in_ci())
}

fn decide(found: Result<(), MissingTool>, comparison: &str, ci: bool) -> bool {
    match found {
        Ok(()) => true,
        Err(missing) if ci => {
            panic!("{missing}; CI=true, so the benchmark fails instead of skipping {comparison}")
        }
        Err(missing) => {
            crate::skip::show(comparison, &missing.to_string());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_skips_warm_up_and_takes_middle() {
        let mut calls = 0;
        let d = median_of(3, || {
            calls += 1;
            if calls == 1 {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        assert_eq!(calls, 4);
        assert!(d < Duration::from_millis(50));
        let mut setups = 0;
        median_with_setup(2, || setups += 1, |()| ());
        assert_eq!(setups, 3);
    }

    #[test]
    fn baselines_count_files_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("x"), b"12345").unwrap();
        fs::write(dir.path().join("a/b/y"), b"678").unwrap();
        std::os::unix::fs::symlink("x", dir.path().join("a/link")).unwrap();
        assert_eq!(lstat_all(dir.path()).unwrap(), 3);
        assert_eq!(read_and_hash_all(dir.path()).unwrap(), 9);
        assert_eq!(read_and_hash_parallel(dir.path(), 2).unwrap(), 9);
    }

    #[test]
    fn a_missing_tool_is_named_and_skipped_outside_ci() {
        let missing = find_tool("codexport-no-such-tool").unwrap_err();
        assert_eq!(missing.tool, "codexport-no-such-tool");
        assert!(
            missing
                .to_string()
                .starts_with("`codexport-no-such-tool` not found")
        );
        assert!(!decide(Err(missing), "the rows of a missing tool", false));
        assert!(decide(Ok(()), "rows", true));
    }

    #[test]
    #[should_panic(expected = "`codexport-no-such-tool` not found")]
    fn a_missing_tool_fails_under_ci() {
        decide(find_tool("codexport-no-such-tool"), "its rows", true);
    }

    #[test]
    fn cpu_time_of_this_process_and_its_children() {
        let me = std::process::id();
        let spent = std::time::Instant::now();
        while spent.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(blake3::hash(b"spin"));
        }
        assert!(cpu_time(me).is_some_and(|t| t > Duration::ZERO));
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(children(me).contains(&child.id()));
        assert!(cpu_time_with_children(me).is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(reaped_children_cpu_time().is_some());
        let (busy, _) = machine_cpu_time().unwrap();
        assert!(busy >= cpu_time(me).unwrap());
        assert_eq!(cpu_time(u32::MAX), None);
    }

    #[test]
    fn settings_and_byte_counts() {
        assert_eq!(env_usize("CODEXPORT_DEV_NO_SUCH_SETTING", 7), 7);
        assert_eq!(human_bytes(10 * 1024 - 1), "10239 B");
        assert_eq!(human_bytes(10 * 1024), "10.0 KiB");
        assert_eq!(human_bytes(25 << 20), "25.0 MiB");
    }

    #[test]
    fn table_ratios_and_json() {
        let mut t = Table::new();
        t.row("no-change", Duration::from_millis(30), Some("lstat"));
        t.row("lstat", Duration::from_millis(10), None);
        t.row("orphan", Duration::from_millis(1), Some("missing"));
        t.note("target", "≤ 3×");
        assert!((t.ratio("no-change", "lstat").unwrap() - 3.0).abs() < 1e-9);
        let text = t.render();
        assert!(text.contains("3.00× lstat"), "{text}");
        assert!(text.contains("target: ≤ 3×"), "{text}");
        let json = t.to_json();
        assert_eq!(json["rows"][0]["name"], "no-change");
        assert!((json["rows"][0]["ratio"].as_f64().unwrap() - 3.0).abs() < 1e-9);
        assert!(json["rows"][2]["ratio"].is_null());
        assert_eq!(json["notes"]["target"], "≤ 3×");
    }
}
