//! Sync benchmark: codexport against rsync and git on the same library, in the same run.
//!
//! Generates the default skill library (10,000 files, ≈ 40 MB; `CODEXPORT_BENCH_FILES`
//! overrides the count) as the master's codex dir in a temporary directory and measures,
//! as the median of `CODEXPORT_BENCH_RUNS` runs (default 5) after one warm-up, the wall time
//! of whole client processes on loopback. Cold fetches, which take seconds and write
//! thousands of files, run `CODEXPORT_BENCH_COLD_RUNS` times (default 3) without a warm-up.
//!
//! - codexport (this package's binary): `master serve --no-watch` in the background; cold
//!   `follower join` (a fresh follower each run), no-change `sync`, and one-file-change `sync`
//!   (one file appended to and `master rebuild`, untimed, before each); then the same with
//!   `--apply` (the revision also written into the follower's codex dir, as rsync does). Bytes
//!   on the wire come from the sync report.
//! - rsync: an rsync daemon on loopback serving the codex dir; `rsync -a --delete --stats`
//!   cold (into a fresh folder each run), no-change, one-file-change. Bytes on the wire are
//!   the client's "Total bytes sent" + "Total bytes received".
//! - git: a bare repository of the same tree (`git add -A` + `git commit`, untimed, after each
//!   change) served by `git daemon` on loopback (a `--no-local` path clone if the daemon does
//!   not start); `git clone --mirror` cold, `git fetch` no-change and one-file-change. Times
//!   only. Like codexport's sync, a mirror clone and a fetch only store objects; rsync writes
//!   the files themselves.
//!
//! A missing rsync or git fails the benchmark under `CI=true` (CI installs both itself) and is
//! skipped elsewhere with a notice on stderr naming it; nothing is installed. Peak RSS: the
//! codexport server's VmHWM from /proc before it is stopped, and each client's warm-up run
//! under `/usr/bin/time -f %M` when that exists. Then the ratios the project targets are
//! printed. `CODEXPORT_BENCH_JSON=1` adds everything as one JSON line. Run with
//! `cargo bench --bench sync`.
//!
//! Everything reads from a warm page cache (the library was just written), the same for all
//! three tools.

use codexport::follower::FETCHED;
use codexport::object::{EntryKind, ObjectId};
use codexport::store::{ObjectSource, Store};
use codexport_dev::bench::{baseline_tool, env_usize, human_bytes};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::serve::{ServeOptions, ServingMaster, spawn_master};
use std::ffi::OsString;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_codexport");
const TIME: &str = "/usr/bin/time";

/// A client command line, run directly when timed and under `/usr/bin/time` for peak RSS.
struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(&'static str, OsString)>,
}

fn cmd<P: Into<OsString>>(program: P, args: &[&dyn AsRefOs]) -> Cmd {
    Cmd {
        program: program.into(),
        args: args.iter().map(|a| a.os()).collect(),
        envs: Vec::new(),
    }
}

/// Strings and paths alike as arguments.
trait AsRefOs {
    fn os(&self) -> OsString;
}
impl AsRefOs for &str {
    fn os(&self) -> OsString {
        (*self).into()
    }
}
impl AsRefOs for String {
    fn os(&self) -> OsString {
        self.into()
    }
}
impl AsRefOs for PathBuf {
    fn os(&self) -> OsString {
        self.into()
    }
}
impl AsRefOs for &Path {
    fn os(&self) -> OsString {
        (*self).into()
    }
}

/// One finished client process.
struct Timed {
    elapsed: Duration,
    stdout: String,
    rss_kib: Option<u64>,
}

/// Runs `c` to completion, panicking with its output if it fails. With `rss_file`, runs it
/// under `/usr/bin/time` writing the peak RSS there (the time is then not used).
fn run(c: &Cmd, rss_file: Option<&Path>) -> Timed {
    let mut command = match rss_file {
        Some(f) => {
            let mut t = Command::new(TIME);
            t.args(["-f", "%M", "-o"]).arg(f).arg(&c.program);
            t
        }
        None => Command::new(&c.program),
    };
    command.args(&c.args).stdin(Stdio::null());
    for (k, v) in &c.envs {
        command.env(k, v);
    }
    let started = Instant::now();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", c.program.display()));
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{} {:?} failed ({}):\n{}{}",
        c.program.display(),
        c.args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rss_kib = rss_file
        .and_then(|f| fs::read_to_string(f).ok())
        .and_then(|s| s.lines().rev().find_map(|l| l.trim().parse::<u64>().ok()));
    Timed {
        elapsed,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        rss_kib,
    }
}

/// A background daemon, killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn wait_for_port(port: u16) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// VmHWM of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One measured operation.
#[derive(serde::Serialize)]
struct Row {
    tool: &'static str,
    operation: &'static str,
    median_ms: f64,
    runs_ms: Vec<f64>,
    wire_bytes: Option<u64>,
    /// The warm-up run's peak RSS.
    client_peak_rss_kib: Option<u64>,
}

/// Runs `step`'s command once as a warm-up (for peak RSS, under /usr/bin/time if there is
/// one), then `runs` times, numbered 1..=runs (the warm-up is 0); `after` sees each result.
/// `wire` reads bytes from a timed run's stdout.
struct Phase<'a> {
    runs: usize,
    rss_dir: Option<&'a Path>,
    /// Cold runs take seconds and write thousands of files: they skip the warm-up, and the
    /// first timed run is the one under /usr/bin/time (whose own cost is negligible there).
    warm_up: bool,
}

impl Phase<'_> {
    fn measure(
        &self,
        tool: &'static str,
        operation: &'static str,
        mut step: impl FnMut(usize) -> Cmd,
        mut after: impl FnMut(usize, &Timed),
        wire: Option<fn(&str) -> u64>,
    ) -> Row {
        let mut timed = Vec::new();
        let mut rss = None;
        let first = usize::from(!self.warm_up);
        for i in first..=self.runs {
            let c = step(i);
            let rss_file = self.rss_dir.filter(|_| i == first).map(|d| d.join("rss"));
            let t = run(&c, rss_file.as_deref());
            after(i, &t);
            if i == first {
                rss = t.rss_kib;
            }
            if i > 0 {
                timed.push(t);
            }
        }
        let mut elapsed: Vec<Duration> = timed.iter().map(|t| t.elapsed).collect();
        elapsed.sort_unstable();
        let wire_bytes = wire.map(|f| {
            let mut w: Vec<u64> = timed.iter().map(|t| f(&t.stdout)).collect();
            w.sort_unstable();
            w[w.len() / 2]
        });
        Row {
            tool,
            operation,
            median_ms: ms(elapsed[elapsed.len() / 2]),
            runs_ms: timed.iter().map(|t| ms(t.elapsed)).collect(),
            wire_bytes,
            client_peak_rss_kib: rss,
        }
    }
}

/// Removes a previous cold run's copy (untimed), if there is one.
fn remove_if_exists(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    ms(v[v.len() / 2])
}

fn codexport_cmd(home: &Path, args: &[&str]) -> Cmd {
    let mut c = cmd(EXE, &[&"--json", &"--home", &home]);
    c.args.extend(args.iter().map(OsString::from));
    c.envs.push(("NO_COLOR", "1".into()));
    c
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

/// The least a one-file change can move: the file's content plus every tree on its path, in
/// the follower's newest fetched revision.
fn ideal_bytes(follower: &Path, codex: &Path, changed: &Path) -> u64 {
    let store = Store::open(&follower.join(".codexport")).expect("open the follower's store");
    let r = store.read().expect("read the follower's store");
    let id = r
        .get_ref(FETCHED)
        .expect("fetched ref")
        .expect("a fetched revision");
    let mut tree: ObjectId = r.revision(&id).expect("revision").root;
    let mut total = 0;
    for part in changed.strip_prefix(codex).expect("inside the codex dir") {
        total += r.get_required(&tree).expect("tree").1.len() as u64;
        let t = r.tree(&tree).expect("tree");
        let e = t
            .get(part.to_str().expect("UTF-8 name"))
            .expect("the changed path is in the revision");
        if e.kind == EntryKind::Tree {
            tree = e.id;
        } else {
            total += e.size;
            break;
        }
    }
    total
}

/// What the codexport runs measured besides the rows.
struct CodexportExtra {
    ideal_bytes: u64,
    rebuild_ms: f64,
    server_rss_kib: Option<u64>,
}

/// Starts `master serve --no-watch` for `master` on a loopback port; returns it and the port.
fn start_server(master: &Path) -> (ServingMaster, String) {
    let server = spawn_master(EXE, master, &ServeOptions::new())
        .unwrap_or_else(|e| panic!("start master serve: {e}"));
    let port = server.port().to_string();
    (server, port)
}

/// Cold joins into fresh follower homes named `prefix-N`; returns the row and the last home.
fn cold_joins(
    phase: &Phase<'_>,
    operation: &'static str,
    (tmp, master, port): (&Path, &Path, &str),
    prefix: &str,
    extra: &[&str],
) -> (Row, PathBuf) {
    let follower = |i: usize| tmp.join(format!("{prefix}-{i}"));
    let row = phase.measure(
        "codexport",
        operation,
        |i| {
            if i > 0 {
                remove_if_exists(&follower(i - 1));
            }
            let out = run(
                &codexport_cmd(
                    master,
                    &["master", "link", "--host", "127.0.0.1", "--port", port],
                ),
                None,
            );
            let link = json(&out.stdout)["link"]
                .as_str()
                .expect("a link")
                .to_owned();
            let mut c = codexport_cmd(&follower(i), &["follower", "join", &link]);
            c.args.extend(extra.iter().map(OsString::from));
            c
        },
        |_, _| {},
        Some(|s| json(s)["sync"]["wire_bytes"].as_u64().unwrap_or(0)),
    );
    (row, follower(phase.runs))
}

fn sync_wire(stdout: &str) -> u64 {
    json(stdout)["wire_bytes"].as_u64().unwrap_or(0)
}

/// One-file-change syncs of `home` (`sync` plus `extra`): before each, one file is appended
/// to and `master rebuild` runs (untimed, collected in `rebuilds`). Returns the row and the
/// median of the one-file ideal (file + trees on its path).
fn one_file_syncs(
    phase: &Phase<'_>,
    operation: &'static str,
    (master, codex, home): (&Path, &Path, &Path),
    (seed, extra): (u64, &[&str]),
    rebuilds: &mut Vec<Duration>,
) -> (Row, u64) {
    let mut ideals = Vec::new();
    let changed = std::cell::RefCell::new(PathBuf::new());
    let mut args = vec!["sync"];
    args.extend_from_slice(extra);
    let row = phase.measure(
        "codexport",
        operation,
        |i| {
            *changed.borrow_mut() =
                library::touch_one(codex, seed + i as u64).expect("touch one file");
            let r = run(&codexport_cmd(master, &["master", "rebuild"]), None);
            if i > 0 {
                rebuilds.push(r.elapsed);
            }
            codexport_cmd(home, &args)
        },
        |i, t| {
            assert_eq!(json(&t.stdout)["result"], "fetched");
            if i > 0 {
                ideals.push(ideal_bytes(home, codex, &changed.borrow()));
            }
        },
        Some(sync_wire),
    );
    ideals.sort_unstable();
    (row, ideals[ideals.len() / 2])
}

fn bench_codexport(
    tmp: &Path,
    codex: &Path,
    (phase, cold): (&Phase<'_>, &Phase<'_>),
    rows: &mut Vec<Row>,
) -> CodexportExtra {
    let master = codex
        .parent()
        .expect("the codex dir is inside the master home");
    run(&codexport_cmd(master, &["master", "init"]), None);
    let (server, port) = start_server(master);
    let at = (tmp, master, port.as_str());

    let (row, home) = cold_joins(cold, "cold (follower join)", at, "follower", &[]);
    rows.push(row);
    let (row, applied) = cold_joins(cold, "cold (join --apply)", at, "applied", &["--apply"]);
    rows.push(row);
    for (operation, home, extra) in [
        ("no-change sync", &home, &[][..]),
        ("no-change sync --apply", &applied, &["--apply"][..]),
    ] {
        let mut args = vec!["sync"];
        args.extend_from_slice(extra);
        rows.push(phase.measure(
            "codexport",
            operation,
            |_| codexport_cmd(home, &args),
            |_, t| assert_eq!(json(&t.stdout)["result"], "current"),
            Some(sync_wire),
        ));
    }
    let mut rebuilds = Vec::new();
    let (row, ideal_bytes) = one_file_syncs(
        phase,
        "one-file-change sync",
        (master, codex, &home),
        (1, &[]),
        &mut rebuilds,
    );
    rows.push(row);
    // The applied follower missed the changes above: its warm-up run catches up.
    let (row, _) = one_file_syncs(
        phase,
        "one-file-change sync --apply",
        (master, codex, &applied),
        (51, &["--apply"]),
        &mut rebuilds,
    );
    rows.push(row);
    let server_rss_kib = peak_rss_kib(server.pid());
    drop(server);
    CodexportExtra {
        ideal_bytes,
        rebuild_ms: median_ms(rebuilds),
        server_rss_kib,
    }
}

/// "Total bytes sent: 1,234" + "Total bytes received: 5,678" from `rsync --stats`.
fn rsync_wire(stdout: &str) -> u64 {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.trim()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("Total bytes sent:") + field("Total bytes received:")
}

fn bench_rsync(
    tmp: &Path,
    codex: &Path,
    (phase, cold): (&Phase<'_>, &Phase<'_>),
    rows: &mut Vec<Row>,
) {
    let dir = tmp.join("rsync");
    fs::create_dir_all(&dir).expect("rsync dir");
    let meta = fs::metadata(tmp).expect("temp dir");
    let conf = dir.join("rsyncd.conf");
    fs::write(
        &conf,
        format!(
            "address = 127.0.0.1\nuse chroot = no\nuid = {}\ngid = {}\nlog file = {}\n\n[codex]\npath = {}\nread only = yes\n",
            meta.uid(),
            meta.gid(),
            dir.join("rsyncd.log").display(),
            codex.display()
        ),
    )
    .expect("write rsyncd.conf");
    let port = free_port();
    let daemon = Daemon(
        Command::new("rsync")
            .args([
                "--daemon",
                "--no-detach",
                "--port",
                &port.to_string(),
                "--config",
            ])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the rsync daemon"),
    );
    if !wait_for_port(port) {
        println!("the rsync daemon did not start; rsync skipped");
        return;
    }
    let url = format!("rsync://127.0.0.1:{port}/codex/");
    let dest = |i: usize| dir.join(format!("dest-{i}"));
    let client = |to: PathBuf| {
        // A trailing slash: copy the folder's content into `to`.
        let mut to = to.into_os_string();
        to.push("/");
        let mut c = cmd("rsync", &[&"-a", &"--delete", &"--stats", &url]);
        c.args.push(to);
        c
    };
    rows.push(cold.measure(
        "rsync",
        "cold",
        |i| {
            if i > 0 {
                remove_if_exists(&dest(i - 1));
            }
            client(dest(i))
        },
        |_, _| {},
        Some(rsync_wire),
    ));
    let last = dest(cold.runs);
    rows.push(phase.measure(
        "rsync",
        "no-change",
        |_| client(last.clone()),
        |_, _| {},
        Some(rsync_wire),
    ));
    rows.push(phase.measure(
        "rsync",
        "one-file-change",
        |i| {
            library::touch_one(codex, i as u64 + 101).expect("touch one file");
            client(last.clone())
        },
        |_, _| {},
        Some(rsync_wire),
    ));
    drop(daemon);
}

fn git(args: &[&dyn AsRefOs]) -> Cmd {
    let mut c = cmd("git", args);
    c.envs.push(("GIT_CONFIG_NOSYSTEM", "1".into()));
    c
}

/// Returns the median master-side `git add -A` + `git commit` time per one-file change.
fn bench_git(
    tmp: &Path,
    codex: &Path,
    (phase, cold): (&Phase<'_>, &Phase<'_>),
    rows: &mut Vec<Row>,
) -> f64 {
    let served = tmp.join("git");
    let bare = served.join("master.git");
    run(&git(&[&"init", &"-q", &"--bare", &bare]), None);
    let gd = format!("--git-dir={}", bare.display());
    let wt = format!("--work-tree={}", codex.display());
    let commit = |msg: &str| {
        let started = Instant::now();
        run(&git(&[&gd, &wt, &"add", &"-A"]), None);
        run(
            &git(&[
                &gd,
                &wt,
                &"-c",
                &"user.name=bench",
                &"-c",
                &"user.email=bench@localhost",
                &"commit",
                &"-q",
                &"-m",
                &msg,
            ]),
            None,
        );
        started.elapsed()
    };
    commit("library");
    let port = free_port();
    let daemon = Command::new("git")
        .arg("daemon")
        .arg("--reuseaddr")
        .arg("--export-all")
        .arg(format!("--base-path={}", served.display()))
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Daemon);
    let (url, no_local) = if daemon.is_some() && wait_for_port(port) {
        (format!("git://127.0.0.1:{port}/master.git"), false)
    } else {
        println!("git daemon did not start; cloning with --no-local from the path instead");
        (bare.display().to_string(), true)
    };
    let clone = |i: usize| served.join(format!("clone-{i}.git"));
    rows.push(cold.measure(
        "git",
        "cold (clone --mirror)",
        |i| {
            if i > 0 {
                remove_if_exists(&clone(i - 1));
            }
            let mut c = git(&[&"clone", &"-q", &"--mirror", &url.as_str(), &clone(i)]);
            if no_local {
                c.args.insert(1, "--no-local".into());
            }
            c
        },
        |_, _| {},
        None,
    ));
    let fetch = format!("--git-dir={}", clone(cold.runs).display());
    rows.push(phase.measure(
        "git",
        "no-change fetch",
        |_| git(&[&fetch.as_str(), &"fetch", &"-q"]),
        |_, _| {},
        None,
    ));
    let mut commits = Vec::new();
    rows.push(phase.measure(
        "git",
        "one-file-change fetch",
        |i| {
            library::touch_one(codex, i as u64 + 201).expect("touch one file");
            let d = commit("one file");
            if i > 0 {
                commits.push(d);
            }
            git(&[&fetch.as_str(), &"fetch", &"-q"])
        },
        |_, _| {},
        None,
    ));
    drop(daemon);
    median_ms(commits)
}

fn size(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), human_bytes)
}

fn check(label: &str, value: f64, ok: bool, target: &str) -> String {
    let verdict = if value.is_nan() {
        "n/a"
    } else if ok {
        "ok"
    } else {
        "MISSED"
    };
    format!("{label}: {value:.2} (target {target}): {verdict}")
}

fn print_report(rows: &[Row], extra: &CodexportExtra, git_commit_ms: Option<f64>) -> Vec<String> {
    println!(
        "{:<10} {:<30} {:>10} {:>12} {:>16}",
        "tool", "operation", "median ms", "wire bytes", "client peak RSS"
    );
    for r in rows {
        println!(
            "{:<10} {:<30} {:>10.1} {:>12} {:>16}",
            r.tool,
            r.operation,
            r.median_ms,
            size(r.wire_bytes),
            size(r.client_peak_rss_kib.map(|k| k * 1024))
        );
    }
    let find = |tool: &str, op: &str| rows.iter().find(|r| r.tool == tool && r.operation == op);
    let ms_of = |tool: &str, op: &str| find(tool, op).map_or(f64::NAN, |r| r.median_ms);
    let cx_one = find("codexport", "one-file-change sync");
    let one_wire = cx_one.and_then(|r| r.wire_bytes).unwrap_or(0) as f64;
    let ratio_one = ms_of("codexport", "one-file-change sync") / ms_of("rsync", "one-file-change");
    let ratio_wire = one_wire / extra.ideal_bytes.max(1) as f64;
    let no_change = ms_of("codexport", "no-change sync");
    let ratio_cold = ms_of("codexport", "cold (follower join)") / ms_of("rsync", "cold");
    let ratio_one_applied =
        ms_of("codexport", "one-file-change sync --apply") / ms_of("rsync", "one-file-change");
    let ratio_cold_applied = ms_of("codexport", "cold (join --apply)") / ms_of("rsync", "cold");
    let notes = vec![
        format!(
            "server peak RSS (codexport master serve): {}",
            size(extra.server_rss_kib.map(|k| k * 1024))
        ),
        format!(
            "master-side work per change, not in the times above: codexport master rebuild {:.1} ms; git add -A + commit {}; rsync none",
            extra.rebuild_ms,
            git_commit_ms.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"))
        ),
        format!(
            "one-file change: file + trees on its path = {} (median)",
            size(Some(extra.ideal_bytes))
        ),
        check(
            "codexport one-file sync / rsync one-file",
            ratio_one,
            ratio_one <= 0.2,
            "≤ 0.2",
        ),
        check(
            "codexport one-file wire bytes / (file + trees on its path)",
            ratio_wire,
            ratio_wire <= 2.0,
            "≤ 2",
        ),
        check(
            "codexport no-change sync, ms",
            no_change,
            no_change <= 15.0,
            "≤ 15 ms",
        ),
        check(
            "codexport cold / rsync cold",
            ratio_cold,
            ratio_cold <= 1.0,
            "≤ 1",
        ),
        check(
            "  the same, both writing the files (sync --apply / rsync one-file)",
            ratio_one_applied,
            ratio_one_applied <= 0.2,
            "≤ 0.2",
        ),
        check(
            "  the same, both writing the files (join --apply / rsync cold)",
            ratio_cold_applied,
            ratio_cold_applied <= 1.0,
            "≤ 1",
        ),
    ];
    println!();
    for n in &notes {
        println!("{n}");
    }
    notes
}

fn main() {
    let files = env_usize("CODEXPORT_BENCH_FILES", LibrarySpec::default().files);
    let runs = env_usize("CODEXPORT_BENCH_RUNS", 5).max(1);
    let cold_runs = env_usize("CODEXPORT_BENCH_COLD_RUNS", 3).max(1);
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-sync-")
        .tempdir()
        .expect("temp dir");
    let codex = tmp.path().join("master").join(".codex");
    let started = Instant::now();
    let lib = library::generate(
        &codex,
        &LibrarySpec {
            files,
            ..LibrarySpec::default()
        },
    )
    .expect("generate the library");
    // Past the filesystem clock's tick, so the first snapshot does not see racily clean files.
    std::thread::sleep(Duration::from_millis(50));
    println!(
        "library: {} files, {} skills, {:.1} MB; medians of {runs} runs after one warm-up ({cold_runs} runs, no warm-up, for cold fetches); whole client processes on loopback",
        lib.files,
        lib.skills,
        lib.bytes as f64 / 1e6
    );
    let have_time = Path::new(TIME).exists();
    if !have_time {
        println!("{TIME} not found: client peak RSS not measured");
    }
    let rss_dir = tmp.path().join("rss");
    fs::create_dir_all(&rss_dir).expect("rss dir");
    let rss_dir = have_time.then_some(rss_dir.as_path());
    let phase = Phase {
        runs,
        rss_dir,
        warm_up: true,
    };
    let cold = Phase {
        runs: cold_runs,
        rss_dir,
        warm_up: false,
    };
    let phases = (&phase, &cold);
    let (have_rsync, have_git) = (
        baseline_tool("rsync", "the rsync rows"),
        baseline_tool("git", "the git rows"),
    );
    println!();

    let mut rows = Vec::new();
    let extra = bench_codexport(tmp.path(), &codex, phases, &mut rows);
    if have_rsync {
        bench_rsync(tmp.path(), &codex, phases, &mut rows);
    }
    let git_commit_ms = have_git.then(|| bench_git(tmp.path(), &codex, phases, &mut rows));
    let notes = print_report(&rows, &extra, git_commit_ms);
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!(
            "{}",
            serde_json::json!({
                "files": lib.files, "bytes": lib.bytes, "runs": runs, "cold_runs": cold_runs, "rows": rows, "notes": notes,
                "one_file_ideal_bytes": extra.ideal_bytes, "server_peak_rss_kib": extra.server_rss_kib,
                "master_rebuild_ms": extra.rebuild_ms, "git_add_commit_ms": git_commit_ms,
            })
        );
    }
}
