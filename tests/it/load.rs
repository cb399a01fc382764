//! Load: many followers syncing a large library at once from one master, as separate
//! processes on 127.0.0.1. The figures are in docs/reliability.md.

use crate::faults::{assert_fsck_clean, enroll_cold, fetched, head_of, library_master};
use crate::mitm::{Mitm, Mode};
use crate::util::{Home, Master, Run};
use codexport::object::SignedHead;
use codexport_dev::serve::ServeOptions;
use std::fs;
use std::process::{Child, Stdio};
use std::time::Instant;

/// The master's peak RSS (VmHWM) must stay under this while 50 followers sync 10,000 files
/// (measured: about 245 MiB; most of it is 50 zstd encoders and their stream buffers).
const PEAK_RSS_BOUND_KIB: u64 = 400 << 10;

/// Starts `codexport --json sync` for a follower, its output piped.
pub(crate) fn spawn_sync(home: &Home) -> Child {
    crate::util::codexport()
        .arg("--home")
        .arg(&home.home)
        .args(["--json", "sync", "--timeout-ms", "600000"])
        .env_remove("CODEXPORT_HOME")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn codexport sync")
}

/// Waits for a started command and collects its output.
pub(crate) fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// User plus system CPU time of a process, in seconds (Linux clock ticks of 1/100 s).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which ends with the last ')'.
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Checks that every `--json sync` run fetched the whole head; returns each run's seconds
/// and the wire bytes of all.
pub(crate) fn check_runs(runs: &[Run], head: &SignedHead) -> (Vec<f64>, u64) {
    let (mut each, mut wire) = (Vec::new(), 0);
    for (i, r) in runs.iter().enumerate() {
        assert!(
            r.ok(),
            "follower {i}: exit {}\n{}{}",
            r.code,
            r.stdout,
            r.stderr
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["result"], "fetched", "follower {i}: {v}");
        assert_eq!(
            v["objects"].as_u64(),
            Some(head.body.objects),
            "follower {i}"
        );
        each.push(v["elapsed_ms"].as_f64().unwrap() / 1e3);
        wire += v["wire_bytes"].as_u64().unwrap();
    }
    (each, wire)
}

/// Peak resident memory of a process (VmHWM), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "a release-mode test: .ci/run runs it with `cargo test --release -- --ignored` (about 25 s; 140 s in debug)"]
fn fifty_followers_sync_a_10k_file_library_at_once() {
    const FOLLOWERS: usize = 50;
    let setup = Instant::now();
    let m = library_master(10_000);
    // The followers all come from 127.0.0.1 here; on a network each has its own address.
    let options = ServeOptions::new()
        .serve_arg("--max-per-address")
        .serve_arg("256");
    let master = Master::spawn(&m, &options);
    let mitm = Mitm::start(&master.url, Mode::RefuseFetch);
    let followers: Vec<Home> = (0..FOLLOWERS).map(|_| Home::new()).collect();
    for f in &followers {
        enroll_cold(&m, &master, &mitm, f);
    }
    let head = head_of(&master, &followers[0]);
    eprintln!(
        "setup (10,000 files, init, {FOLLOWERS} enrollments): {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let children: Vec<Child> = followers.iter().map(spawn_sync).collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    let elapsed = started.elapsed();
    let pid = master.pid();
    let (peak, cpu) = (peak_rss_kib(pid), cpu_seconds(pid));
    let (mut each, wire) = check_runs(&runs, &head);
    each.sort_by(f64::total_cmp);
    eprintln!(
        "{FOLLOWERS} followers synced 10,000 files ({} objects, {} MiB each; {} MiB on the wire in all) in {:.1} s",
        head.body.objects,
        head.body.bytes >> 20,
        wire >> 20,
        elapsed.as_secs_f64(),
    );
    eprintln!(
        "per follower: fastest {:.1} s, median {:.1} s, slowest {:.1} s; master: peak RSS {} MiB, CPU {cpu:.1} s",
        each[0],
        each[each.len() / 2],
        each[each.len() - 1],
        peak >> 10
    );
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "the master's peak RSS {} MiB is over the bound of {} MiB",
        peak >> 10,
        PEAK_RSS_BOUND_KIB >> 10
    );
    master.stop();
    // Every follower verifies: its fetched ref names the head, and fsck re-hashes every
    // object it stored.
    for f in &followers {
        assert_eq!(fetched(f), Some(head.body.revision.to_string()));
        assert_fsck_clean(f, "a follower");
    }
}
