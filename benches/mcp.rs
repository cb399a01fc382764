//! MCP launcher overhead: how much later a server answers `initialize` when Codex starts it
//! through `codexport mcp run <name>` (once hydrated) than when it starts it directly.
//!
//! Sets up a master home exporting one tiny node MCP server (a local package with no
//! dependencies, copied to followers as a node-source artifact) and a follower joined with
//! `--apply` through a real `master serve` on 127.0.0.1, hydrates the server on the follower
//! with `mcp repair`, then prints the medians of `CODEXPORT_BENCH_RUNS` runs (default 20,
//! after one warm-up each) of the time from spawn to the `initialize` answer of:
//!
//! - `node index.js` (the baseline: the server started directly),
//! - `codexport mcp run tiny` on the follower (reads the applied manifest, sees the artifact
//!   is ready, execs node on the hydrated copy),
//!
//! and, to show the launcher's own cost without node's start-up in the way, the time from
//! spawn to exit of `true` and of `codexport mcp run tiny` with `node` on `PATH` being `true`.
//! The cases run in turn, round after round, so each sees the same machine load (node's
//! start-up varies a lot on a busy machine). Checks the target `launcher ≤ 1.1 × direct +
//! 10 ms`. `CODEXPORT_BENCH_JSON=1` adds the table as one JSON line. Run with
//! `cargo bench --bench mcp`; needs `node` on PATH: without it the benchmark fails under
//! `CI=true` and is skipped elsewhere with a notice on stderr (nothing is installed).

use codexport_dev::bench::{Table, baseline_tool, env_usize};
use codexport_dev::serve::{ServeOptions, spawn_master};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TINY: &str = r"const readline = require('readline');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined) return;
  let result = {};
  if (msg.method === 'initialize') result = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'tiny', version: '1' } };
  if (msg.method === 'tools/list') result = { tools: [{ name: 'hello', description: 'says hello', inputSchema: { type: 'object' } }] };
  process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }) + '\n');
});
";

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

/// The real binary with `--home` set.
fn codexport(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codexport"));
    cmd.arg("--home")
        .arg(home)
        .env_remove("CODEXPORT_HOME")
        .env_remove("CODEXPORT_EXPORT_ENV")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs to completion; panics with stderr on failure, returns stdout.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run codexport");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A master home exporting `tiny`, and a follower that applied it and hydrated the server.
/// Returns the follower's home and the master's `index.js`.
fn set_up(tmp: &Path) -> (PathBuf, PathBuf) {
    let (master, follower) = (tmp.join("master"), tmp.join("follower"));
    let tiny = master.join("srv/tiny");
    std::fs::create_dir_all(&tiny).expect("master home");
    std::fs::create_dir_all(master.join(".codex")).expect("master codex dir");
    std::fs::create_dir_all(&follower).expect("follower home");
    std::fs::write(
        tiny.join("package.json"),
        r#"{"name":"tiny-mcp","version":"1.0.0","main":"index.js"}"#,
    )
    .expect("package.json");
    let index = tiny.join("index.js");
    std::fs::write(&index, TINY).expect("index.js");
    let config = format!(
        "[mcp_servers.tiny]\ncommand = \"node\"\nargs = [\"{}\"]\n",
        index.display()
    );
    std::fs::write(master.join(".codex/config.toml"), config).expect("config.toml");
    // Past the filesystem clock's tick, so nothing is recorded as racily clean.
    std::thread::sleep(Duration::from_millis(50));
    run_ok(codexport(&master).args(["master", "init"]));

    let serve = spawn_master(
        env!("CARGO_BIN_EXE_codexport"),
        &master,
        &ServeOptions::new()
            .env_remove("CODEXPORT_HOME")
            .env_remove("CODEXPORT_EXPORT_ENV")
            .env("NO_COLOR", "1"),
    )
    .unwrap_or_else(|e| panic!("start master serve: {e}"));
    let port = serve.port().to_string();
    let link = run_ok(codexport(&master).args([
        "--json",
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ]));
    let link: serde_json::Value = serde_json::from_str(&link).expect("link JSON");
    let join = link["link"].as_str().expect("a link");
    run_ok(codexport(&follower).args(["follower", "join", "--apply", join]));
    drop(serve);

    let ready = run_ok(codexport(&follower).args(["mcp", "repair", "tiny"]));
    assert!(ready.contains("tiny: ready"), "mcp repair: {ready}");
    (follower, index)
}

/// A started server that answered `initialize`; killed when dropped (outside the clock).
struct Answered(Child);

impl Drop for Answered {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd`, sends `initialize` and waits for the first line of stdout: the answer.
fn initialize(cmd: &mut Command) -> Answered {
    let mut child = Answered(
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the server"),
    );
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    writeln!(stdin, "{INITIALIZE}").expect("send initialize");
    child.0.stdin = Some(stdin);
    let mut line = String::new();
    BufReader::new(child.0.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the answer");
    assert!(
        line.starts_with(r#"{"jsonrpc":"2.0","id":1,"result":{"#),
        "not an initialize answer: {line:?}"
    );
    child
}

/// Spawns `cmd` and waits for it to exit.
fn exit(cmd: &mut Command) -> Answered {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{cmd:?}: {status}");
    Answered(child)
}

/// One measured case: builds its command (untimed), then starts it and waits (timed).
type Case<'a> = (
    &'a str,
    Box<dyn Fn() -> Command + 'a>,
    fn(&mut Command) -> Answered,
);

/// Runs every case once to warm up, then `runs` rounds of every case in turn; returns each
/// case's median (the middle of the sorted times, as `codexport_dev::bench::median_of`). What a
/// case returns is dropped (the server killed) after its clock stops.
fn interleaved(runs: usize, cases: &[Case<'_>]) -> Vec<Duration> {
    let mut times = vec![Vec::new(); cases.len()];
    for round in 0..=runs.max(1) {
        for (i, (_, build, measure)) in cases.iter().enumerate() {
            let mut cmd = build();
            let started = Instant::now();
            let out = measure(&mut cmd);
            let elapsed = started.elapsed();
            drop(out);
            if round > 0 {
                times[i].push(elapsed);
            }
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_unstable();
            t[t.len() / 2]
        })
        .collect()
}

/// The `true` program on `PATH`.
fn true_program() -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&path)
        .map(|d| d.join("true"))
        .find(|p| p.is_file())
        .expect("`true` on PATH")
}

fn main() {
    if !baseline_tool("node", "the MCP launcher benchmark") {
        return;
    }
    let runs = env_usize("CODEXPORT_BENCH_RUNS", 20);
    let tmp = tempfile::Builder::new()
        .prefix("codexport-bench-mcp-")
        .tempdir()
        .expect("temp dir");
    let (follower, index) = set_up(tmp.path());
    // A PATH on which `node` is `true`: the launcher resolves it, execs it, and it exits.
    let fake = tmp.path().join("fake-bin");
    std::fs::create_dir_all(&fake).expect("fake bin dir");
    std::os::unix::fs::symlink(true_program(), fake.join("node")).expect("fake node");

    let (direct, launcher) = ("direct: node index.js", "launcher: codexport mcp run tiny");
    let (truth, alone) = (
        "true (spawn to exit)",
        "launcher alone: mcp run, node = true",
    );
    let cases: [Case<'_>; 4] = [
        (
            direct,
            Box::new(|| {
                let mut c = Command::new("node");
                c.arg(&index);
                c
            }),
            initialize,
        ),
        (
            launcher,
            Box::new(|| {
                let mut c = codexport(&follower);
                c.args(["mcp", "run", "tiny"]);
                c
            }),
            initialize,
        ),
        (
            truth,
            Box::new(|| {
                let mut c = Command::new(fake.join("node"));
                c.env("PATH", &fake);
                c
            }),
            exit,
        ),
        (
            alone,
            Box::new(|| {
                let mut c = codexport(&follower);
                c.args(["mcp", "run", "tiny"]).env("PATH", &fake);
                c
            }),
            exit,
        ),
    ];
    let medians = interleaved(runs, &cases);

    let mut table = Table::new();
    for ((name, _, _), median) in cases.iter().zip(&medians) {
        let baseline = match *name {
            n if n == launcher => Some(direct),
            n if n == alone => Some(truth),
            _ => None,
        };
        table.row(name, *median, baseline);
    }
    let ms = |name: &str| {
        table
            .median(name)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    let limit = ms(direct) * 1.1 + 10.0;
    let verdict = if ms(launcher) <= limit {
        "pass"
    } else {
        "FAIL"
    };
    let overhead = format!("{:+.2} ms", ms(launcher) - ms(direct));
    let own = format!("{:+.2} ms", ms(alone) - ms(truth));
    let check = format!("{:.2} ms ≤ {limit:.2} ms: {verdict}", ms(launcher));
    table
        .note(
            "runs",
            format!("median of {runs} interleaved rounds after one warm-up"),
        )
        .note("launcher overhead (answer)", overhead)
        .note("launcher's own cost (exit)", own)
        .note("launcher ≤ 1.1 × direct + 10 ms", check);
    table.print();
    if std::env::var_os("CODEXPORT_BENCH_JSON").is_some() {
        println!("{}", table.to_json());
    }
}
