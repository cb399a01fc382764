//! More of `codexport mcp run` on a follower, with the tiny node-source server only (its
//! package.json has no dependencies, so hydration needs no registry): concurrent first runs,
//! variables exported with `CODEXPORT_EXPORT_ENV`, and a stdout that carries nothing but the
//! server's JSON-RPC while hydrating.

use crate::mcp::{TINY, initialize_and_list};
use crate::util::{Home, Master, settle};
use codexport_dev::serve::ServeOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const PACKAGE_JSON: &str = r#"{"name":"tiny-mcp","version":"1.0.0","main":"index.js"}"#;
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;

/// A master home exporting only `tiny` (in `srv/tiny`, from `package_json` and `index_js`),
/// initialised by `master init` and served by `master serve`, both with `env` added to their
/// environment (serve publishes again when it starts, so it needs the same variables), and a
/// follower joined with `--apply`; nothing is hydrated yet. The master no longer serves when
/// this returns.
fn tiny_pair(package_json: &str, index_js: &str, env: &[(&str, &str)]) -> (Home, Home) {
    let m = Home::new();
    let tiny = m.home.join("srv/tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    std::fs::write(tiny.join("package.json"), package_json).unwrap();
    std::fs::write(tiny.join("index.js"), index_js).unwrap();
    m.write(
        "config.toml",
        format!(
            "[mcp_servers.tiny]\ncommand = \"node\"\nargs = [\"{}/srv/tiny/index.js\"]\nstartup_timeout_sec = 30\n",
            m.home.display()
        ),
    );
    settle();
    let master_cmd = |args: &[&str]| {
        let mut cmd = crate::util::codexport();
        cmd.arg("--home")
            .arg(&m.home)
            .args(args)
            .env_remove("CODEXPORT_HOME")
            .env_remove("CODEXPORT_EXPORT_ENV")
            .envs(env.iter().copied());
        cmd
    };
    let init = master_cmd(&["master", "init"]).output().unwrap();
    assert!(
        init.status.success(),
        "master init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let options = env.iter().fold(
        ServeOptions::new()
            .env_remove("CODEXPORT_HOME")
            .env_remove("CODEXPORT_EXPORT_ENV"),
        |o, (k, v)| o.env(k, v),
    );
    let master = Master::spawn(&m, &options);
    let f = Home::new();
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    f.json(&[
        "follower",
        "join",
        "--apply",
        link["link"].as_str().unwrap(),
    ]);
    master.stop();
    let list = f.json(&["mcp", "list"]);
    let tiny = &list["servers"][0];
    assert_eq!(tiny["name"], "tiny", "{list}");
    assert_eq!(tiny["kind"], "node-source", "{list}");
    assert_eq!(tiny["hydrated"], false, "{list}");
    (m, f)
}

/// One `codexport mcp run NAME` process, its stdout read line by line on a thread and its
/// stderr collected on another (so neither pipe can fill up and stall it).
struct Launch {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Launch {
    fn spawn(follower: &Home, name: &str) -> Self {
        let mut child = crate::util::codexport()
            .arg("--home")
            .arg(&follower.home)
            .args(["mcp", "run", name])
            .env_remove("CODEXPORT_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// Writes one line to the server.
    fn send(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    /// The next line of stdout, if one comes within two minutes (a first run hydrates).
    fn next_line(&self) -> Result<String, RecvTimeoutError> {
        self.lines.recv_timeout(Duration::from_secs(120))
    }

    /// Closes stdin (the server then exits), waits up to 10 s (then kills), and returns the
    /// stdout lines not read yet and the whole stderr.
    fn finish(mut self) -> (Vec<String>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let stderr = self.stderr.join().unwrap();
        (self.lines.iter().collect(), stderr)
    }
}

fn log_of(follower: &Home, name: &str) -> String {
    std::fs::read_to_string(follower.state().join(format!("logs/mcp/{name}.log")))
        .unwrap_or_default()
}

#[test]
fn concurrent_first_runs_hydrate_once() {
    let (_m, f) = tiny_pair(PACKAGE_JSON, &TINY.replace("VERSION", "1"), &[]);
    let mut runs: Vec<Launch> = (0..3).map(|_| Launch::spawn(&f, "tiny")).collect();
    for run in &mut runs {
        run.send(INITIALIZE);
    }
    let answers: Vec<_> = runs.iter().map(Launch::next_line).collect();
    let outputs: Vec<_> = runs.into_iter().map(Launch::finish).collect();
    for (answer, (_, stderr)) in answers.iter().zip(&outputs) {
        let line = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("no initialize answer ({e}); stderr: {stderr}"));
        let init: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON-RPC: {line:?}: {e}; stderr: {stderr}"));
        assert_eq!(init["id"], 1, "{init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "tiny", "{init}");
    }
    let log = log_of(&f, "tiny");
    let hydrations = log.lines().filter(|l| l.contains("hydrating tiny")).count();
    assert_eq!(hydrations, 1, "one hydration for three first runs:\n{log}");
    let list = f.json(&["mcp", "list"]);
    assert_eq!(list["servers"][0]["hydrated"], true, "{list}");
}

#[test]
fn exported_env_reaches_the_server_but_not_config_toml() {
    let echo = TINY.replace("'VERSION'", "process.env.TINY_SECRET || 'unset'");
    let env = [
        ("CODEXPORT_EXPORT_ENV", "TINY_SECRET"),
        ("TINY_SECRET", "s3cret"),
    ];
    let (m, f) = tiny_pair(PACKAGE_JSON, &echo, &env);
    let (init, tools) = initialize_and_list(&f, "tiny", None).unwrap();
    assert_eq!(init["result"]["serverInfo"]["version"], "s3cret", "{init}");
    assert_eq!(tools["result"]["tools"][0]["name"], "hello", "{tools}");

    let manifest = f.state().join("mcp/manifest.json");
    let mode = std::fs::metadata(&manifest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is {mode:o}", manifest.display());
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("s3cret")
    );
    let config = std::fs::read_to_string(f.codex().join("config.toml")).unwrap();
    assert!(config.contains("tiny"), "{config}");
    assert!(
        !config.contains("s3cret"),
        "the secret leaked into config.toml:\n{config}"
    );
    let master_config = std::fs::read_to_string(m.codex().join("config.toml")).unwrap();
    assert!(!master_config.contains("s3cret"));

    // A master process started without the variables (a service, another shell) republishes
    // at start and on changes; the exported value is kept, not silently dropped.
    let bare = Master::start(&m, false);
    crate::sync_point_at(&f, &bare.url);
    m.write("AGENTS.md", "# changed without the env\n");
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    let (init, _) = initialize_and_list(&f, "tiny", None).unwrap();
    assert_eq!(init["result"]["serverInfo"]["version"], "s3cret", "{init}");
}

#[test]
fn hydration_output_never_reaches_stdout() {
    // The root package's postinstall prints to npm's stdout while `npm install` runs.
    let package_json = r#"{"name":"tiny-mcp","version":"1.0.0","main":"index.js","scripts":{"postinstall":"echo HYDRATION-NOISE"}}"#;
    let (_m, f) = tiny_pair(package_json, &TINY.replace("VERSION", "1"), &[]);
    let mut run = Launch::spawn(&f, "tiny");
    run.send(INITIALIZE);
    let first = run.next_line();
    let second = first.is_ok().then(|| {
        run.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        run.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#);
        run.next_line()
    });
    let (rest, stderr) = run.finish();
    let first = first.unwrap_or_else(|e| panic!("no first line ({e}); stderr: {stderr}"));
    let init: serde_json::Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("first stdout line is not the server's JSON: {first:?}: {e}"));
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "tiny", "{init}");
    let second = second
        .unwrap()
        .unwrap_or_else(|e| panic!("no tools/list answer ({e})"));
    let tools: serde_json::Value = serde_json::from_str(&second)
        .unwrap_or_else(|e| panic!("second stdout line is not JSON: {second:?}: {e}"));
    assert_eq!(tools["id"], 2, "{tools}");
    assert!(rest.is_empty(), "stray stdout lines: {rest:?}");

    // The hydration did run npm, and its output went to stderr and the log.
    let log = log_of(&f, "tiny");
    assert!(log.contains("hydrating tiny"), "{log}");
    assert!(log.contains("--omit=dev"), "{log}");
    assert!(log.contains("HYDRATION-NOISE"), "{log}");
    assert!(stderr.contains("HYDRATION-NOISE"), "{stderr}");
}
