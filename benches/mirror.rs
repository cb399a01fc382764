//! Mirror benchmark: many cold followers of the generated library from a static mirror
//! behind nginx against the same from `master serve`, in one run; then a one-file-change
//! and a no-change sync from each source.
//!
//! Setup (untimed): a master home whose codex dir holds one file, `master init`, a folder
//! mirror (`master mirror add DIR --url <nginx>`, nginx over DIR on loopback), `master
//! serve`, and `CODEXPORT_BENCH_FOLLOWERS` followers (default 200) enrolled with `follower
//! join` (each registers its mirror key on the way). Follower 0 reaches the master through a
//! counting relay (`codexport_dev::relay`), so the bytes and requests of its syncs with the
//! master are known as nginx's access log knows the mirror's. Each follower's state dir,
//! as join left it, is copied aside. Then the generated library (10,000 files by default,
//! `CODEXPORT_BENCH_FILES`) becomes the master's second revision (`master rebuild`) and
//! `master publish` puts it on the mirror.
//!
//! Cold runs: every follower syncs (`sync`: the store only, no `--apply`, the same for both
//! sources), `CODEXPORT_BENCH_CONCURRENCY` at a time (default 50), each a whole client
//! process; every follower holds only the one-file revision it joined at, so each fetches
//! the whole library.
//! - from the master: `master serve` running, nginx's root pointed at an empty folder (each
//!   follower still asks nginx once, and gets a 404), so every follower takes the master's
//!   head; the master's CPU is its process's utime+stime over the run.
//! - from the mirror: the followers' state dirs put back as join left them, `master serve`
//!   stopped; nginx's CPU is its master's and workers' utime+stime over the run. Each
//!   follower reads the head file, the keyring (once per content key) and the pack.
//!
//! One-file change (`CODEXPORT_BENCH_RUNS` times, default 5, medians): one file of the
//! library appended to, `master rebuild`, `master publish` (master offline); follower 1
//! syncs from the mirror with the master offline (requests and bytes from nginx's access
//! log: request and response, headers included), then follower 0 from the master with
//! nginx serving an empty folder (requests and bytes through the relay). Then a no-change
//! sync of each the same way.
//!
//! Prints every figure with its condition and the ratios against the master measured in
//! the same run; `CODEXPORT_BENCH_JSON=1` adds one JSON line, `CODEXPORT_BENCH_VERBOSE=1`
//! lets `master serve`'s log through. The codexport binary is the one cargo builds for this
//! bench (`target/release/codexport` under `cargo bench`), or `CODEXPORT_BENCH_EXE`. Run
//! with `cargo bench --bench mirror`; it takes minutes (the enrolment and the cold runs, two
//! of each follower's full fetches) and needs nginx.

use codexport::object::mirror::{HEAD_FILE, HeadFile};
use codexport_dev::bench::{
    cpu_time, cpu_time_with_children, env_usize, human_bytes as size, machine_cpu_time,
    reaped_children_cpu_time,
};
use codexport_dev::library::{self, LibrarySpec};
use codexport_dev::relay::{Crossed, Relay};
use codexport_dev::serve::{ServeOptions, ServingMaster, spawn_master};
use codexport_dev::static_server::{Nginx, Served, free_port};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The codexport binary every process of the run is.
fn exe() -> PathBuf {
    std::env::var_os("CODEXPORT_BENCH_EXE").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_codexport")),
        PathBuf::from,
    )
}

/// Runs `codexport --json --home HOME ARGS…`; panics with its output unless it succeeds.
/// Returns its JSON answer.
fn codexport<S: AsRef<OsStr>>(home: &Path, args: &[S]) -> serde_json::Value {
    let out = Command::new(exe())
        .arg("--json")
        .arg("--home")
        .arg(home)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "codexport {:?} in {} failed ({}):\n{stdout}{}",
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        home.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"))
}

/// Runs `f(0..n)` on `concurrency` threads, each index once; the results in index order.
fn run_all<T: Send>(n: usize, concurrency: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, n.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        return;
                    }
                    let r = f(i);
                    results.lock().expect("no worker panics holding it")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every index ran"))
        .collect()
}

/// A sync's timeout: generous, since a cold run shares two cores among many followers.
const SYNC: [&str; 3] = ["sync", "--timeout-ms", "1800000"];

/// The master, the mirror, the followers, and what stands between them.
struct Bench {
    tmp: tempfile::TempDir,
    master: PathBuf,
    mirror: PathBuf,
    nginx: Nginx,
    /// The port `master serve` listens on, each time it is started.
    port: u16,
    /// Follower 0's way to the master.
    relay: Relay,
    followers: Vec<PathBuf>,
    concurrency: usize,
}

impl Bench {
    fn codex(&self) -> PathBuf {
        self.master.join(".codex")
    }

    fn pristine(&self, i: usize) -> PathBuf {
        self.tmp.path().join("pristine").join(i.to_string())
    }

    /// `master serve` on its port, without the watcher, with room for every follower's
    /// connections from the one loopback address.
    fn serve(&self) -> ServingMaster {
        spawn_master(
            exe(),
            &self.master,
            &ServeOptions::new()
                .port(self.port)
                .serve_arg("--max-per-address")
                .serve_arg("100000")
                .show_stderr(std::env::var_os("CODEXPORT_BENCH_VERBOSE").is_some()),
        )
        .unwrap_or_else(|e| panic!("start master serve: {e}"))
    }

    /// Points nginx's root (a symlink) at the mirror, or at an empty folder: a follower then
    /// finds no head there (a 404) and takes the master's. The mirror itself stays as it is,
    /// so `master serve`'s publisher finds it published.
    fn mirror_served(&self, served: bool) {
        let target = if served {
            self.mirror.clone()
        } else {
            self.tmp.path().join("empty")
        };
        let link = self.tmp.path().join("served");
        let next = self.tmp.path().join("served.next");
        let _ = fs::remove_file(&next);
        std::os::unix::fs::symlink(&target, &next).expect("make a symlink");
        fs::rename(&next, &link).expect("replace nginx's root");
    }

    /// Puts every follower's state dir back as `follower join` left it.
    fn reset_followers(&self) {
        run_all(self.followers.len(), self.concurrency, |i| {
            let state = self.followers[i].join(".codexport");
            fs::remove_dir_all(&state).expect("remove a follower's state dir");
            copy_dir(&self.pristine(i), &state);
        });
    }

    /// Requests nginx served since `before` of them.
    fn served_since(&self, before: usize) -> Vec<Served> {
        self.nginx.served().split_off(before)
    }
}

/// `cp -a FROM TO` (modes kept: the state dir is owner-only).
fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

fn setup(files: usize, followers: usize, concurrency: usize) -> Option<(Bench, String)> {
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-mirror-")
        .tempdir()
        .expect("temp dir");
    let master = tmp.path().join("master");
    fs::create_dir_all(master.join(".codex")).expect("master codex dir");
    fs::write(master.join(".codex/AGENTS.md"), "# Agents\n").expect("AGENTS.md");
    codexport(&master, &["master", "init"]);
    let mirror = tmp.path().join("mirror");
    fs::create_dir_all(&mirror).expect("mirror dir");
    fs::create_dir_all(tmp.path().join("empty")).expect("empty dir");
    std::os::unix::fs::symlink(&mirror, tmp.path().join("served")).expect("make a symlink");
    let nginx = match Nginx::start(&tmp.path().join("served")) {
        Ok(n) => n,
        Err(e) => {
            codexport_dev::skip::skipped("the mirror benchmark", &e);
            return None;
        }
    };
    let dest = mirror.to_str().expect("a UTF-8 temp path");
    codexport(
        &master,
        &["master", "mirror", "add", dest, "--url", &nginx.url()],
    );
    let port = free_port().expect("a free loopback port");
    let relay = Relay::start(port).expect("start the relay");
    let bench = Bench {
        followers: (0..followers)
            .map(|i| tmp.path().join(format!("follower-{i}")))
            .collect(),
        tmp,
        master,
        mirror,
        nginx,
        port,
        relay,
        concurrency,
    };

    // Enrolment: links one at a time (each writes the master's store), joins in parallel.
    let serve = bench.serve();
    let started = Instant::now();
    let links: Vec<String> = (0..followers)
        .map(|i| {
            let port = if i == 0 { bench.relay.port() } else { port }.to_string();
            let link = codexport(
                &bench.master,
                &["master", "link", "--host", "127.0.0.1", "--port", &port],
            );
            link["link"].as_str().expect("a join link").to_owned()
        })
        .collect();
    run_all(followers, concurrency, |i| {
        let joined = codexport(&bench.followers[i], &["follower", "join", &links[i]]);
        assert!(joined.get("mirrors_error").is_none(), "{joined}");
    });
    let enrolment = started.elapsed();
    serve.stop().expect("stop master serve");
    fs::create_dir_all(bench.tmp.path().join("pristine")).expect("pristine dir");
    run_all(followers, concurrency, |i| {
        copy_dir(&bench.followers[i].join(".codexport"), &bench.pristine(i));
    });

    let lib = library::generate(
        &bench.codex(),
        &LibrarySpec {
            files,
            ..LibrarySpec::default()
        },
    )
    .expect("generate the library");
    // Past the filesystem clock's tick, so the snapshot does not see racily clean files.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        codexport(&bench.master, &["master", "rebuild"])["created"],
        true
    );
    let published = codexport(&bench.master, &["master", "publish"]);
    let report = &published["mirrors"][0]["report"];
    assert_eq!(report["recipients"], followers, "{published}");
    let conditions = format!(
        "{followers} followers, library {} files / {:.1} MB, store-only `sync` (no --apply) for both sources, {concurrency} at a time, loopback, {} CPUs; enrolment took {:.1} s",
        lib.files,
        lib.bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        enrolment.as_secs_f64()
    );
    Some((bench, conditions))
}

/// One follower's sync, as its JSON report says.
#[derive(Debug, Clone, serde::Serialize)]
struct Synced {
    source: String,
    wire_bytes: u64,
    elapsed_ms: f64,
}

fn sync(home: &Path) -> Synced {
    let r = codexport(home, &SYNC);
    Synced {
        source: r["source"].as_str().unwrap_or_default().to_owned(),
        wire_bytes: r["wire_bytes"].as_u64().unwrap_or(0),
        elapsed_ms: r["elapsed_ms"].as_f64().unwrap_or(f64::NAN),
    }
}

/// What one cold run of every follower measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Cold {
    wall_s: f64,
    /// The serving side's CPU over the run: `master serve`, or nginx's processes.
    server_cpu_s: f64,
    /// nginx's CPU over the run (also during the master's run: the 404s of the head).
    nginx_cpu_s: f64,
    /// Every follower process's CPU, added.
    clients_cpu_s: f64,
    /// The machine's busy CPU time over the run (all processes), and its time waiting for
    /// I/O: what the benchmark did not use, other processes did.
    machine_busy_s: f64,
    iowait_s: f64,
    wire_bytes_median: u64,
    sync_ms_median: f64,
    /// Requests nginx served per follower, and all it sent (headers included).
    nginx_requests: usize,
    nginx_sent_bytes: u64,
    /// Follower 0's traffic with the master (through the relay).
    follower0: Crossed,
    sources: Vec<String>,
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

/// Every follower syncs, `concurrency` at a time; `server` is the serving process.
fn cold_run(b: &Bench, serving: Option<&ServingMaster>) -> Cold {
    let nginx_cpu = || cpu_time_with_children(b.nginx.pid()).unwrap_or_default();
    let server_cpu = || match serving {
        Some(s) => cpu_time(s.pid()).unwrap_or_default(),
        None => nginx_cpu(),
    };
    let (served, relayed) = (b.nginx.served().len(), b.relay.crossed());
    let machine = || machine_cpu_time().unwrap_or_default();
    let (server0, nginx0, clients0, machine0) = (
        server_cpu(),
        nginx_cpu(),
        reaped_children_cpu_time().unwrap_or_default(),
        machine(),
    );
    let started = Instant::now();
    let synced = run_all(b.followers.len(), b.concurrency, |i| sync(&b.followers[i]));
    let wall = started.elapsed();
    let machine1 = machine();
    let served = b.served_since(served);
    let mut sources: Vec<String> = synced.iter().map(|s| s.source.clone()).collect();
    sources.sort();
    sources.dedup();
    Cold {
        wall_s: wall.as_secs_f64(),
        server_cpu_s: server_cpu().saturating_sub(server0).as_secs_f64(),
        nginx_cpu_s: nginx_cpu().saturating_sub(nginx0).as_secs_f64(),
        clients_cpu_s: reaped_children_cpu_time()
            .unwrap_or_default()
            .saturating_sub(clients0)
            .as_secs_f64(),
        machine_busy_s: machine1.0.saturating_sub(machine0.0).as_secs_f64(),
        iowait_s: machine1.1.saturating_sub(machine0.1).as_secs_f64(),
        wire_bytes_median: median(synced.iter().map(|s| s.wire_bytes).collect()),
        sync_ms_median: median(synced.iter().map(|s| s.elapsed_ms).collect()),
        nginx_requests: served.len(),
        nginx_sent_bytes: served.iter().map(|s| s.sent_bytes).sum(),
        follower0: b.relay.crossed() - relayed,
        sources,
    }
}

/// One sync of one follower, as the serving side saw it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Probe {
    requests: u64,
    /// Requests and responses, headers included.
    bytes: u64,
    /// The sync report's `wire_bytes` (object payload: the fetch stream, or the packs).
    wire_bytes: u64,
}

/// A sync of `home` from the mirror (the master offline): what nginx served for it.
fn from_mirror(b: &Bench, home: &Path, expect: &str) -> Probe {
    let before = b.nginx.served().len();
    let r = codexport(home, &SYNC);
    assert_eq!(r["result"], expect, "{r}");
    assert_eq!(r["source"], b.nginx.url(), "{r}");
    let served = b.served_since(before);
    Probe {
        requests: served.len() as u64,
        bytes: served.iter().map(|s| s.request_bytes + s.sent_bytes).sum(),
        wire_bytes: r["wire_bytes"].as_u64().unwrap_or(0),
    }
}

/// A sync of follower 0 from the master (nginx serving an empty folder): what crossed the relay.
fn from_master(b: &Bench, expect: &str) -> Probe {
    let before = b.relay.crossed();
    let r = codexport(&b.followers[0], &SYNC);
    assert_eq!(r["result"], expect, "{r}");
    assert_eq!(r["source"], "master", "{r}");
    let crossed = b.relay.crossed() - before;
    Probe {
        requests: crossed.requests,
        bytes: crossed.up + crossed.down,
        wire_bytes: r["wire_bytes"].as_u64().unwrap_or(0),
    }
}

/// The medians of one kind of probe over the runs.
fn medians(probes: &[Probe]) -> Probe {
    Probe {
        requests: median(probes.iter().map(|p| p.requests).collect()),
        bytes: median(probes.iter().map(|p| p.bytes).collect()),
        wire_bytes: median(probes.iter().map(|p| p.wire_bytes).collect()),
    }
}

/// The small syncs of every run, by kind.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Small {
    one_file_mirror: Vec<Probe>,
    one_file_master: Vec<Probe>,
    no_change_mirror: Vec<Probe>,
    no_change_master: Vec<Probe>,
}

/// One-file-change and no-change syncs, `runs` times, from the mirror (the master offline)
/// and from the master (nginx serving an empty folder), one follower each.
fn small_syncs(b: &Bench, runs: usize) -> Small {
    let mut small = Small::default();
    for run in 0..runs {
        library::touch_one(&b.codex(), 1000 + run as u64).expect("touch one file");
        assert_eq!(
            codexport(&b.master, &["master", "rebuild"])["created"],
            true
        );
        codexport(&b.master, &["master", "publish"]);
        let mirror = &b.followers[1];
        small
            .one_file_mirror
            .push(from_mirror(b, mirror, "fetched"));
        small
            .no_change_mirror
            .push(from_mirror(b, mirror, "current"));
        b.mirror_served(false);
        let serve = b.serve();
        small.one_file_master.push(from_master(b, "fetched"));
        small.no_change_master.push(from_master(b, "current"));
        serve.stop().expect("stop master serve");
        b.mirror_served(true);
    }
    small
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".to_owned()
    }
}

/// The sizes of the mirror's head file, of its sealed index, and of the keyring it names.
fn head_parts(mirror: &Path) -> (u64, u64, u64) {
    let bytes = fs::read(mirror.join(HEAD_FILE)).expect("the mirror's head");
    let file = HeadFile::decode(&bytes).expect("a valid head file");
    let keyring = fs::metadata(mirror.join(file.keyring_name())).expect("the keyring");
    (bytes.len() as u64, file.index.len() as u64, keyring.len())
}

fn row(label: &str, master: &str, mirror: &str, ratio: &str) {
    println!("{label:<44} {master:>14} {mirror:>14} {ratio:>10}");
}

/// A row of two figures, shown by `show`, and their ratio (mirror / master).
fn compare(label: &str, (master, mirror): (f64, f64), show: impl Fn(f64) -> String) {
    row(label, &show(master), &show(mirror), &ratio(mirror, master));
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn bytes(b: f64) -> String {
    size(b as u64)
}

fn print_cold(n: usize, master: &Cold, mirror: &Cold) {
    println!("\ncold: all {n} followers, each holding only the one-file revision it joined at");
    row("", "master serve", "nginx mirror", "mirror/master");
    let both = |f: fn(&Cold) -> f64| (f(master), f(mirror));
    compare("wall time, all followers", both(|c| c.wall_s), secs);
    compare(
        "serving CPU (master serve | nginx)",
        both(|c| c.server_cpu_s),
        secs,
    );
    let per_follower = |s: f64| format!("{:.1} ms", s * 1e3 / n as f64);
    row(
        "  per follower",
        &per_follower(master.server_cpu_s),
        &per_follower(mirror.server_cpu_s),
        "",
    );
    compare(
        "followers' CPU, all processes added",
        both(|c| c.clients_cpu_s),
        secs,
    );
    compare(
        "bytes read per follower (wire_bytes, median)",
        both(|c| c.wire_bytes_median as f64),
        bytes,
    );
    let per = mirror.nginx_sent_bytes / n.max(1) as u64;
    row(
        "  all of it, headers included",
        &format!("{} (f. 0)", size(master.follower0.down)),
        &format!("{} (avg)", size(per)),
        &ratio(per as f64, master.follower0.down as f64),
    );
    row(
        "requests per follower",
        &format!("{} (f. 0)", master.follower0.requests),
        &format!("{:.1} (avg)", mirror.nginx_requests as f64 / n as f64),
        "",
    );
    compare(
        "one follower's sync (median)",
        both(|c| c.sync_ms_median),
        |ms| format!("{ms:.0} ms"),
    );
    let others = |c: &Cold, ours: f64| secs((c.machine_busy_s - ours).max(0.0));
    row(
        "other processes' CPU meanwhile (machine)",
        &others(
            master,
            master.clients_cpu_s + master.server_cpu_s + master.nginx_cpu_s,
        ),
        &others(mirror, mirror.clients_cpu_s + mirror.server_cpu_s),
        "",
    );
    row(
        "the machine's time waiting for I/O",
        &secs(master.iowait_s),
        &secs(mirror.iowait_s),
        "",
    );
    println!(
        "sources: master run {:?}, mirror run {:?}; nginx during the master run: {} requests (404s: it served an empty folder), {:.2} s CPU",
        master.sources, mirror.sources, master.nginx_requests, master.nginx_cpu_s
    );
}

/// Prints the one-file and no-change rows; returns the verdicts on the targets.
fn print_small(runs: usize, small: &Small) -> Vec<String> {
    println!(
        "\nsmall syncs of one follower, median of {runs} runs: from the mirror with the master offline; from the master with nginx serving an empty folder"
    );
    row("", "master serve", "nginx mirror", "mirror/master");
    for (what, master, mirror) in [
        (
            "one-file change",
            &small.one_file_master,
            &small.one_file_mirror,
        ),
        (
            "no change",
            &small.no_change_master,
            &small.no_change_mirror,
        ),
    ] {
        let (master, mirror) = (medians(master), medians(mirror));
        row(
            &format!("{what}: requests (round trips)"),
            &master.requests.to_string(),
            &mirror.requests.to_string(),
            "",
        );
        compare(
            &format!("{what}: bytes, both ways, headers included"),
            (master.bytes as f64, mirror.bytes as f64),
            bytes,
        );
        compare(
            &format!("{what}: wire_bytes (object payload)"),
            (master.wire_bytes as f64, mirror.wire_bytes as f64),
            bytes,
        );
    }
    // Judged on every run, not only the median: one publish in many starts a new chain.
    let most_requests = small
        .one_file_mirror
        .iter()
        .map(|p| p.requests)
        .max()
        .unwrap_or(0);
    let ratios: Vec<f64> = small
        .one_file_mirror
        .iter()
        .zip(&small.one_file_master)
        .map(|(mirror, master)| mirror.bytes as f64 / master.bytes.max(1) as f64)
        .collect();
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let checks = vec![
        format!(
            "one-file change from the mirror, most requests in a run: {most_requests} (target: 2 round trips): {}",
            verdict(most_requests <= 2)
        ),
        format!(
            "one-file change, mirror bytes / master bytes: median {:.2}, worst run {worst:.2} (target ≤ 2): {}",
            median(ratios.clone()),
            verdict(worst <= 2.0)
        ),
    ];
    for c in &checks {
        println!("{c}");
    }
    checks
}

fn main() {
    let files = env_usize("CODEXPORT_BENCH_FILES", LibrarySpec::default().files);
    let followers = env_usize("CODEXPORT_BENCH_FOLLOWERS", 200).max(2);
    let concurrency = env_usize("CODEXPORT_BENCH_CONCURRENCY", 50).max(1);
    let runs = env_usize("CODEXPORT_BENCH_RUNS", 5).max(1);
    let started = Instant::now();
    let Some((b, conditions)) = setup(files, followers, concurrency) else {
        return;
    };
    println!("mirror benchmark: {conditions}");
    let (head_bytes, index_bytes, keyring_bytes) = head_parts(&b.mirror);
    println!(
        "mirror: head file {} ({} of it the sealed index), keyring {} for {followers} recipients (read once per content key)",
        size(head_bytes),
        size(index_bytes),
        size(keyring_bytes)
    );

    b.mirror_served(false);
    let serve = b.serve();
    let master = cold_run(&b, Some(&serve));
    serve.stop().expect("stop master serve");
    b.mirror_served(true);
    assert_eq!(
        master.sources,
        ["master"],
        "every follower took the master's head"
    );
    b.reset_followers();
    let mirror = cold_run(&b, None);
    assert_eq!(
        mirror.sources,
        [b.nginx.url()],
        "every follower took the mirror's head"
    );
    print_cold(followers, &master, &mirror);

    let small = small_syncs(&b, runs);
    let checks = print_small(runs, &small);
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!(
            "{}",
            serde_json::json!({
                "conditions": conditions, "followers": followers, "concurrency": concurrency,
                "files": files, "runs": runs, "head_file_bytes": head_bytes,
                "index_bytes": index_bytes, "keyring_bytes": keyring_bytes,
                "cold_master": master, "cold_mirror": mirror, "small": small, "checks": checks,
            })
        );
    }
}
