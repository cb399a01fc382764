//! What the tests need from outside the repository, in one place: the real clients they
//! install (each pinned to one version), a size-capped tmpfs, and a user without root's
//! powers.
//!
//! Each helper returns why it could not provide the thing; the test then calls
//! `codexport_dev::skip!`, which fails the test under CI (`.ci/run` installs node, npm, uv,
//! zsh and systemd-analyze, and runs as root, so nothing may be missing there) and shows a
//! `SKIPPED` notice on the terminal elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real Codex CLI, from the npm registry.
pub const CODEX_CLI: &str = "@openai/codex@0.171.0";
/// The reference filesystem MCP server, from the npm registry.
pub const MCP_FILESYSTEM: &str = "@modelcontextprotocol/server-filesystem@2026.8.31";
/// The reference time MCP server, a uv tool from PyPI.
pub const MCP_TIME: &str = "mcp-server-time==2026.10.19";

/// The last lines of a failed command's output, for the reason of a skip or failure.
fn tail(out: &std::process::Output) -> String {
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().rev().take(6).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Runs `cmd`; `Err` names `what` and why it failed (not found, or its exit and output).
pub fn succeed(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("{what} failed ({}):\n{}", out.status, tail(&out))),
        Err(e) => Err(format!("{what} could not start: {e}")),
    }
}

/// `npm install PACKAGE` into `dir` (its `node_modules`).
pub fn npm_install(dir: &Path, package: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    succeed(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(dir)
            .arg(package),
        &format!("npm install {package}"),
    )
}

/// The real Codex CLI ([`CODEX_CLI`]), installed once into `target/` (under a lock, so
/// parallel tests install it once).
pub fn codex_cli() -> Result<PathBuf, String> {
    let version = CODEX_CLI.rsplit('@').next().expect("a pinned version");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/codex-cli-{version}"));
    let bin = dir.join("node_modules/.bin/codex");
    if !bin.exists() {
        let _lock = std::fs::File::create(dir.with_extension("lock"))
            .ok()
            .inspect(|f| {
                let _ = f.lock();
            });
        if !bin.exists() {
            npm_install(&dir, CODEX_CLI)?;
        }
    }
    Ok(bin)
}

/// `uv tool install PACKAGE` with `home` as HOME, so the tool lands in `home/.local/bin`.
pub fn uv_tool_install(home: &Path, package: &str) -> Result<(), String> {
    succeed(
        Command::new("uv")
            .args(["tool", "install", package])
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_BIN_HOME")
            .env_remove("UV_TOOL_DIR")
            .env_remove("UV_TOOL_BIN_DIR"),
        &format!("uv tool install {package}"),
    )
}

/// A tmpfs of `mb` MiB at a directory, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it (needs root, or CAP_SYS_ADMIN).
    pub fn mount(dir: &Path, mb: u32) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        succeed(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
                .arg(dir),
            "mount -t tmpfs",
        )?;
        Ok(Self(dir.to_owned()))
    }

    pub fn resize(&self, mb: u32) {
        succeed(
            Command::new("mount")
                .args(["-o", &format!("remount,size={mb}m")])
                .arg(&self.0),
            "mount -o remount",
        )
        .unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `codexport ARGS` as the unprivileged user `nobody` (through `setpriv`), for tests of what
/// file modes deny, which root bypasses. `dir` (a test's temporary directory, the home below
/// it) is handed to nobody first.
pub fn run_as_nobody(dir: &Path, home: &Path, args: &[&str]) -> Result<crate::util::Run, String> {
    succeed(
        Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(dir),
        "chown -R nobody",
    )?;
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_codexport"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("HOME", home)
        .env_remove("CODEXPORT_HOME")
        .env_remove("CODEX_HOME")
        .env("NO_COLOR", "1")
        .output()
        .map_err(|e| format!("setpriv could not start: {e}"))?;
    Ok(crate::util::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Stops a running Codex CLI: npm's `codex` is a node wrapper that forwards SIGTERM to the
/// real binary (a SIGKILL would leave that running); waits up to 10 s, then kills.
pub fn stop_codex(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stopping = std::time::Instant::now();
    while child.try_wait().ok().flatten().is_none()
        && stopping.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
