//! A running `codexport master serve` on an ephemeral loopback port, for the demo,
//! `codexport bench sync`, the benchmarks and the integration tests.
//!
//! [`spawn_master`] starts `<exe> --home HOME [args…] master serve --host 127.0.0.1 --port 0
//! [--no-watch]` (or a port the caller chose) and reads the server's first stdout line, `codexport master serving on
//! http://ADDR (…)`, which it prints once it listens: so when `spawn_master` returns, the
//! server accepts connections and its real port is known. Port 0 lets parallel tests and
//! benchmarks never collide. The returned [`ServingMaster`] kills the server when dropped, so
//! a failing test or benchmark leaves no server behind; [`ServingMaster::stop`] shuts it down
//! the way a user or a service manager does (SIGTERM), for tests of a graceful shutdown.
//!
//! The server is driven only through its binary, whose path the caller passes (the test's
//! `CARGO_BIN_EXE_codexport`, or the running codexport's own executable).

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// How to start the server, beyond the home: built with chained calls, such as
/// `ServeOptions::new().watch(true).env("PATH", path)`.
///
/// The default runs without the file watcher (`--no-watch`): tests and benchmarks publish
/// with `master rebuild` when they choose, so that nothing is published behind their back.
/// The server's stderr is discarded unless [`ServeOptions::show_stderr`] is set.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    watch: bool,
    port: u16,
    args: Vec<OsString>,
    serve_args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    show_stderr: bool,
}

impl ServeOptions {
    /// No watcher, no extra arguments, the caller's environment, stderr discarded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the file watcher (publishes changes as they settle) when `on`; `--no-watch`
    /// otherwise.
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }

    /// Listens on this loopback port instead of one the system chooses (0): a server
    /// restarted on it is found again by the followers that enrolled with it.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Adds a global argument, placed after `--home HOME` and before `master serve` (such as
    /// `--json`).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds an argument of `master serve` itself, placed after its own (such as
    /// `--max-per-address 128`).
    pub fn serve_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.serve_args.push(arg.as_ref().to_owned());
        self
    }

    /// Sets an environment variable of the server, such as `PATH` (the master resolves MCP
    /// commands on it) or a variable `CODEXPORT_EXPORT_ENV` names.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable the caller has (such as `CODEXPORT_EXPORT_ENV`), so
    /// the server does not inherit it.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Lets the server's stderr (its log of enrolments, rebuilds and shutdown) through to the
    /// caller's stderr, as the demo shows it, instead of discarding it.
    pub fn show_stderr(mut self, on: bool) -> Self {
        self.show_stderr = on;
        self
    }

    /// The arguments after the executable.
    fn argv(&self, home: &Path) -> Vec<OsString> {
        let mut argv = vec![OsString::from("--home"), home.as_os_str().to_owned()];
        argv.extend(self.args.iter().cloned());
        argv.extend(
            ["master", "serve", "--host", "127.0.0.1", "--port"]
                .into_iter()
                .map(OsString::from),
        );
        argv.push(self.port.to_string().into());
        if !self.watch {
            argv.push("--no-watch".into());
        }
        argv.extend(self.serve_args.iter().cloned());
        argv
    }
}

/// Why [`spawn_master`] has no server to return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The executable could not be started.
    #[error("cannot start `{} master serve`: {source}", exe.display())]
    Spawn { exe: PathBuf, source: io::Error },
    /// The server's stdout could not be read.
    #[error("cannot read the first line of `master serve`: {0}")]
    Read(io::Error),
    /// The first line names no `http://ADDR` (the server failed to start and exited, or its
    /// banner changed).
    #[error("`master serve` printed no address; its first line was {line:?}")]
    NoAddress { line: String },
}

/// A `master serve` that is listening; killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ServingMaster {
    child: Child,
    addr: SocketAddr,
    banner: String,
}

impl ServingMaster {
    /// `http://ADDR`, the base of every request URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the system chose.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The line the server printed when it started listening (without its line end).
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// The server's process id, to watch it (peak RSS, I/O counters) while it runs.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL), as a crash would; dropping the handle reaps it.
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }

    /// Shuts the server down gracefully: SIGTERM (what `kill`, systemd and launchd send),
    /// then waits for it to exit.
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        if self.child.try_wait()?.is_none() {
            rustix::process::kill_process(
                rustix::process::Pid::from_child(&self.child),
                rustix::process::Signal::TERM,
            )?;
        }
        self.child.wait()
    }
}

impl Drop for ServingMaster {
    fn drop(&mut self) {
        // Nothing to do after a `stop` (the child was reaped, so kill does not signal).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `exe --home HOME [args…] master serve --host 127.0.0.1 --port 0 [--no-watch]` with
/// `options` and waits until it listens (its first stdout line). `home` must hold an
/// initialised master (`master init`). The server's stdin is closed; its stdout is not read
/// after the first line (the server prints nothing else there).
pub fn spawn_master(
    exe: impl AsRef<Path>,
    home: impl AsRef<Path>,
    options: &ServeOptions,
) -> Result<ServingMaster, ServeError> {
    let exe = exe.as_ref();
    let mut cmd = Command::new(exe);
    // The home decides the folders, not the caller's own Codex dir (options may set it).
    cmd.env_remove("CODEX_HOME");
    cmd.args(options.argv(home.as_ref()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if options.show_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (key, value) in &options.env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let mut child = cmd.spawn().map_err(|source| ServeError::Spawn {
        exe: exe.to_owned(),
        source,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    // Owned by the handle from here on, so every error path below kills the server.
    let mut master = ServingMaster {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        banner: line.trim_end().to_owned(),
    };
    read.map_err(ServeError::Read)?;
    master.addr = address_in(&line).ok_or(ServeError::NoAddress { line })?;
    Ok(master)
}

/// The `ADDR` of the first `http://ADDR` word of `line`.
fn address_in(line: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|a| a.trim_end_matches('/').parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_of_the_banner() {
        let a = address_in("codexport master serving on http://127.0.0.1:41234 (protocol v2)\n");
        assert_eq!(a, Some(SocketAddr::from(([127, 0, 0, 1], 41234))));
        assert_eq!(
            address_in("serving on http://[::1]:80").map(|a| a.port()),
            Some(80)
        );
        assert_eq!(address_in(""), None);
        assert_eq!(address_in("error: the store is in use"), None);
    }

    #[test]
    fn argv_places_global_args_before_the_command() {
        let argv = ServeOptions::new().arg("--json").argv(Path::new("/h"));
        let argv: Vec<&str> = argv.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "--home",
                "/h",
                "--json",
                "master",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-watch"
            ]
        );
        let watching = ServeOptions::new().watch(true).argv(Path::new("/h"));
        assert_eq!(watching.last().unwrap(), "0");
        let fixed = ServeOptions::new()
            .port(4242)
            .watch(true)
            .argv(Path::new("/h"));
        assert_eq!(fixed.last().unwrap(), "4242");
    }

    /// A stand-in server (a shell script) that prints the banner and then waits for a signal.
    fn fake_server(dir: &Path, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let exe = dir.join("fake-codexport");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    #[test]
    fn spawns_reads_the_port_and_stops_with_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_server(
            dir.path(),
            // The trap is set before the banner: once the banner is read, SIGTERM is caught.
            "trap 'exit 7' TERM\n\
             echo \"serving on http://127.0.0.1:4242 ($FAKE_ENV $*)\"\n\
             while :; do sleep 0.05; done",
        );
        let master = spawn_master(
            &exe,
            dir.path(),
            &ServeOptions::new().env("FAKE_ENV", "from-options"),
        )
        .unwrap();
        assert_eq!(master.port(), 4242);
        assert_eq!(master.url(), "http://127.0.0.1:4242");
        assert!(
            master.banner().contains("from-options"),
            "{}",
            master.banner()
        );
        assert!(
            master.banner().ends_with("--no-watch)"),
            "{}",
            master.banner()
        );
        let status = master.stop().unwrap();
        assert_eq!(status.code(), Some(7), "SIGTERM reached the trap");
    }

    #[test]
    fn no_address_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_server(dir.path(), "echo 'error: the store is in use'\nexit 1");
        let err = spawn_master(&exe, dir.path(), &ServeOptions::new()).unwrap_err();
        assert!(
            matches!(&err, ServeError::NoAddress { line } if line.contains("in use")),
            "{err}"
        );
        let err =
            spawn_master(dir.path().join("missing"), dir.path(), &ServeOptions::new()).unwrap_err();
        assert!(matches!(err, ServeError::Spawn { .. }), "{err}");
    }
}
