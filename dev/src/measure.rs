//! Whole processes measured as users see them: wall time from the parent's clock and, where
//! GNU time is installed, the child's CPU time (user + sys, all threads) and peak memory
//! (max RSS), which the kernel hands its parent at exit (`wait4`'s rusage). Nothing is
//! polled, so a peak reached just before exit is not missed. For a process still running
//! (a server), its CPU time and peak memory so far are read from /proc.
//!
//! GNU time is the one way to the rusage without unsafe code (std's `Child::wait` drops it,
//! and the safe wrappers in the tree do not return it). Without it, only wall time is
//! measured and [`Meter::describe`] says so. Nothing here installs it.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where GNU time is looked for.
pub const GNU_TIME: &str = "/usr/bin/time";

/// One finished process.
#[derive(Debug, Clone)]
pub struct Measured {
    pub status: ExitStatus,
    /// From spawn to exit, on the parent's clock.
    pub wall: Duration,
    /// User + sys CPU time of the process and its threads (10 ms resolution), under GNU time.
    pub cpu: Option<Duration>,
    /// Peak resident memory, in KiB, under GNU time.
    pub peak_rss_kib: Option<u64>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs processes, under GNU time when asked to measure and when it is there.
#[derive(Debug)]
pub struct Meter {
    gnu_time: bool,
    scratch: PathBuf,
    next: AtomicU64,
}

impl Meter {
    /// A meter writing GNU time's reports into `scratch` (an existing directory).
    pub fn new(scratch: &Path) -> Self {
        let gnu_time = crate::bench::succeeds(GNU_TIME, &["-f", "%M", "true"]);
        Self {
            gnu_time,
            scratch: scratch.to_owned(),
            next: AtomicU64::new(0),
        }
    }

    /// Whether CPU time and peak memory are measured.
    pub fn measures_usage(&self) -> bool {
        self.gnu_time
    }

    /// How processes are measured, for a report.
    pub fn describe(&self) -> &'static str {
        if self.gnu_time {
            "wall time from the parent's clock; CPU time and peak memory (max RSS) from GNU time (the child's rusage at exit)"
        } else {
            "wall time only: GNU time (/usr/bin/time) not found, so CPU time and peak memory of short processes are not measured"
        }
    }

    /// Runs `cmd` to completion (stdin closed, output captured). With `usage`, and GNU time
    /// there, it runs under GNU time, which adds about 2 ms of wall time (its own start):
    /// measure short processes' times on other runs.
    pub fn run(&self, cmd: &Command, usage: bool) -> io::Result<Measured> {
        let report = (usage && self.gnu_time).then(|| {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            self.scratch.join(format!("usage-{n}"))
        });
        let mut run = match &report {
            Some(file) => {
                let mut t = Command::new(GNU_TIME);
                t.args(["-f", "%U %S %M", "-o"])
                    .arg(file)
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                t
            }
            None => {
                let mut c = Command::new(cmd.get_program());
                c.args(cmd.get_args());
                c
            }
        };
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => run.env(key, v),
                None => run.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            run.current_dir(dir);
        }
        run.stdin(Stdio::null());
        let started = Instant::now();
        let Output {
            status,
            stdout,
            stderr,
        } = run.output()?;
        let wall = started.elapsed();
        let usage = report.as_deref().and_then(read_usage);
        if let Some(file) = &report {
            let _ = fs::remove_file(file);
        }
        Ok(Measured {
            status,
            wall,
            cpu: usage.map(|u| u.0),
            peak_rss_kib: usage.map(|u| u.1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}

/// GNU time's `%U %S %M` line (the last line: a failing child adds a status line before it).
fn read_usage(file: &Path) -> Option<(Duration, u64)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().rev().find_map(|line| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [user, sys, rss] = parts[..] else {
            return None;
        };
        let (user, sys): (f64, f64) = (user.parse().ok()?, sys.parse().ok()?);
        Some((Duration::from_secs_f64(user + sys), rss.parse().ok()?))
    })
}

/// User + sys CPU time of a running process, all its threads, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which ends at the last ')': state is the first,
    // utime the 12th and stime the 13th.
    let rest: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// Peak resident memory of a running process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `program args…` as a [`Command`], for [`Meter::run`].
pub fn command<I, S>(program: impl Into<OsString>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(program.into());
    c.args(args);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_measures_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let meter = Meter::new(dir.path());
        let mut c = command("sh", ["-c", "echo out; echo err >&2; echo \"$X\""]);
        c.env("X", "seen");
        let m = meter.run(&c, true).unwrap();
        assert!(m.status.success());
        assert_eq!(m.stdout, "out\nseen\n");
        assert_eq!(m.stderr, "err\n");
        if meter.measures_usage() {
            assert!(m.peak_rss_kib.is_some_and(|k| k > 0), "{m:?}");
            assert!(m.cpu.is_some(), "{m:?}");
        }
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
        let failed = meter.run(&command("sh", ["-c", "exit 3"]), true).unwrap();
        assert_eq!(failed.status.code(), Some(3));
        assert_eq!(failed.cpu.is_some(), meter.measures_usage());
    }

    #[test]
    fn reads_a_running_process() {
        let me = std::process::id();
        assert!(peak_rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_time(me).is_some());
        assert!(cpu_time(u32::MAX).is_none());
    }
}
