//! Test helpers: temporary homes, a realistic `~/.codex`, running the real binary.

use codexport_dev::serve::{ServeOptions, ServingMaster, spawn_master};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary home with `.codex` and `.codexport` below it.
pub struct Home {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir_all(&home).unwrap();
        Self { _dir: dir, home }
    }

    pub fn codex(&self) -> PathBuf {
        self.home.join(".codex")
    }

    pub fn state(&self) -> PathBuf {
        self.home.join(".codexport")
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.codex().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    /// Runs the real `codexport` binary with `--home` set to this home.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(&self.home, args)
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let r = self.run(&all);
        assert!(
            r.ok(),
            "codexport {args:?} failed ({}): {}{}",
            r.code,
            r.stderr,
            r.stdout
        );
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{}", r.stdout))
    }

    /// Builds a realistic `~/.codex`: config with MCPs, credentials, nested skills with
    /// executable scripts, symlinks, unicode names, runtime state that must be excluded, and
    /// a read-only file.
    pub fn realistic(&self) {
        self.write(
            "config.toml",
            format!(
                "# master config\nmodel = \"gpt-5-codex\"\n\n[projects.\"{h}/src\"]\ntrust_level = \"trusted\"\n\n[mcp_servers.fs]\ncommand = \"node\"\nargs = [\"{h}/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js\", \"{h}\"]\nenv = {{ TOKEN = \"secret\" }}\n\n[mcp_servers.web]\nurl = \"http://127.0.0.1:9000/mcp\"\n",
                h = self.home.display()
            ),
        );
        self.write(
            "auth.json",
            "{\"auth_mode\":\"chatgpt\",\"tokens\":{\"access_token\":\"t\"}}",
        );
        self.write("AGENTS.md", "# Agents\n");
        self.write("hooks.json", "{\"hooks\":{}}");
        self.write("prompts/fix.md", "Fix it.\n");
        self.write(
            "rules/default.rules",
            "prefix_rule(pattern=[\"ls\"], decision=\"allow\")\n",
        );
        self.write("skills/alpha/SKILL.md", "---\nname: alpha\n---\n");
        let script = self.write("skills/alpha/scripts/run.sh", "#!/bin/sh\necho hi\n");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        self.write(
            "skills/alpha/cache/kept.md",
            "inside a skill, cache/ is kept\n",
        );
        self.write("skills/alpha/deep/er/still/file.txt", "deep\n");
        self.write("skills/ünïcødé 技能/SKILL.md", "---\nname: unicode\n---\n");
        self.write("skills/.system/bundled/SKILL.md", "codex's own\n");
        let ro = self.write("prompts/readonly.md", "read only\n");
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
        symlink("alpha", self.codex().join("skills/alpha-link")).unwrap();
        symlink("/etc/hostname", self.codex().join("skills/outside-link")).unwrap();
        // Excluded runtime state.
        self.write("sessions/2026/11/x.jsonl", "{}");
        self.write("archived_sessions/y.jsonl", "{}");
        self.write("history.jsonl", "{}");
        self.write("session_index.jsonl", "{}");
        self.write("state_5.sqlite", "db");
        self.write("logs_1.sqlite-wal", "wal");
        self.write("log/codex.log", "log");
        self.write("installation_id", "id");
        self.write("version.json", "{}");
        self.write("shell_snapshots/s.sh", "x");
        self.write("cache/x", "x");
        self.write("unlisted.txt", "not in the selection");
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

pub fn run_in(home: &Path, args: &[&str]) -> Run {
    run_env(home, args, &[])
}

/// [`run_in`] with extra environment variables.
/// The real `codexport` binary, with none of the variables that would point it at the
/// caller's own folders (`CODEXPORT_HOME`, `CODEX_HOME`).
pub fn codexport() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codexport"));
    cmd.env_remove("CODEXPORT_HOME").env_remove("CODEX_HOME");
    cmd
}

pub fn run_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out: Output = codexport()
        .arg("--home")
        .arg(home)
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run codexport");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Lets the coarse filesystem clock move past files just written, so they are not racily
/// clean relative to the next snapshot.
pub fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(30));
}

/// Whether this process can read a file whose mode denies it (true when running as root).
pub fn permissions_bypassed(dir: &Path) -> bool {
    let p = dir.join(".probe-unreadable");
    fs::write(&p, "x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
    let readable = fs::read(&p).is_ok();
    fs::remove_file(&p).unwrap();
    readable
}

/// A running `codexport master serve` on 127.0.0.1 with an ephemeral port (started by
/// `codexport_dev::serve::spawn_master`); killed when dropped.
pub struct Master {
    server: ServingMaster,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Master {
    /// Starts the real binary; `watch` turns the file watcher on.
    pub fn start(home: &Home, watch: bool) -> Self {
        Self::spawn(home, &ServeOptions::new().watch(watch))
    }

    /// Starts with a given `PATH` (the master resolves MCP commands on it).
    pub fn start_with_path(home: &Home, watch: bool, path: Option<&str>) -> Self {
        let options = ServeOptions::new().watch(watch);
        Self::spawn(
            home,
            &match path {
                Some(p) => options.env("PATH", p),
                None => options,
            },
        )
    }

    /// Starts the real binary with `options`.
    pub fn spawn(home: &Home, options: &ServeOptions) -> Self {
        let server = spawn_master(env!("CARGO_BIN_EXE_codexport"), &home.home, options)
            .unwrap_or_else(|e| panic!("start master serve: {e}"));
        let url = server.url();
        Self { server, url }
    }

    pub fn port(&self) -> String {
        self.server.port().to_string()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// SIGKILL, as a crash: the server stops at once (reaped when dropped).
    pub fn kill(&mut self) {
        self.server.kill().expect("kill master serve");
    }

    /// SIGTERM, then wait: a graceful shutdown.
    pub fn stop(self) {
        self.server.stop().expect("stop master serve");
    }
}

/// A master home with a realistic `.codex`, initialised.
pub fn master_home() -> Home {
    let h = Home::new();
    h.realistic();
    settle();
    assert!(h.run(&["master", "init"]).ok());
    h
}

/// A join link for `master` (on loopback), from `master link`.
pub fn link(master_home: &Home, master: &Master) -> String {
    let link = master_home.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    link["link"].as_str().unwrap().to_owned()
}

/// Prints a join link for `master` and enrolls `follower` with it; returns the join JSON.
pub fn enroll(master_home: &Home, master: &Master, follower: &Home) -> serde_json::Value {
    follower.json(&["follower", "join", &link(master_home, master)])
}

/// `codexport --json follower join --apply LINK` on `follower`, with `env`.
pub fn join_apply(follower: &Home, link: &str, env: &[(&str, &str)]) -> Run {
    run_env(
        &follower.home,
        &["--json", "follower", "join", "--apply", link],
        env,
    )
}

/// A master (realistic `.codex`) serving on loopback and a follower that joined it with
/// `--apply`; `prepare` runs on the follower's home before it joins.
pub fn pair_with(prepare: impl FnOnce(&Home)) -> (Home, Master, Home) {
    let m = master_home();
    let master = Master::start(&m, false);
    let f = Home::new();
    prepare(&f);
    let joined = f.json(&["follower", "join", "--apply", &link(&m, &master)]);
    assert_eq!(joined["sync"]["apply"]["result"], "applied", "{joined}");
    (m, master, f)
}
