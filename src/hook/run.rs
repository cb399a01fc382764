//! `codexport hook run`: what Codex runs when a session starts. A best-effort
//! `sync --apply` within one deadline; never a byte on stdout (Codex would hand it to the
//! model); one line per run in `~/.codexport/logs/hook.log`.

use crate::follower::apply::ApplyOutcome;
use crate::follower::{self, SyncOptions, SyncReport};
use crate::paths::Paths;
use std::io::{IsTerminal, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The log rotates (to `hook.log.1`) once it is larger than this.
pub const LOG_LIMIT: u64 = 1 << 20;
/// How long past the deadline a sync that ignores it is waited for before giving up.
const GRACE: Duration = Duration::from_millis(250);

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// Nothing new.
    Current,
    /// A new revision was applied.
    Applied,
    /// A rollback holds this follower.
    Held,
    Error,
}

impl RunResult {
    fn as_str(self) -> &'static str {
        match self {
            RunResult::Current => "current",
            RunResult::Applied => "applied",
            RunResult::Held => "held",
            RunResult::Error => "error",
        }
    }
}

/// What one run did, as logged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    pub result: RunResult,
    pub message: String,
    pub elapsed_ms: u64,
}

/// Runs the hook: reads (and ignores) Codex's JSON on stdin, syncs and applies within
/// `timeout_ms`, logs one line. Never prints to stdout and never fails.
pub fn run(paths: &Paths, timeout_ms: u64) -> RunOutcome {
    let started = Instant::now();
    let deadline = started + Duration::from_millis(timeout_ms);
    let stdin_done = drain_stdin();
    let (result, mut message) = sync_within(paths, deadline);
    if result != RunResult::Error && crate::follower::plugins::pending(paths) {
        message.push_str(&install_plugins_in_background(paths));
    }
    if let Some(done) = stdin_done {
        // Codex writes a few hundred bytes and closes the pipe; never wait past the deadline.
        let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
    let outcome = RunOutcome {
        result,
        message,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    log(paths, &outcome);
    outcome
}

/// Reads stdin to its end on a thread; the receiver hears when it is done.
fn drain_stdin() -> Option<mpsc::Receiver<()>> {
    if std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    Some(rx)
}

fn sync_within(paths: &Paths, deadline: Instant) -> (RunResult, String) {
    if paths.master_key().exists() {
        return (
            RunResult::Error,
            "this machine is the master; the hook syncs followers only".into(),
        );
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let (tx, rx) = mpsc::channel();
    let owned = paths.clone();
    std::thread::spawn(move || {
        let opts = SyncOptions {
            timeout: left,
            progress: false,
            apply: true,
            drift_check: false,
        };
        let _ = tx.send(follower::sync(&owned, &opts));
    });
    match rx.recv_timeout(left + GRACE) {
        Ok(Ok(report)) => describe(&report),
        Ok(Err(e)) => {
            let code = miette::Diagnostic::code(&e)
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            (RunResult::Error, format!("{e}{code}"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => (
            RunResult::Error,
            format!("gave up after the {} ms deadline", left.as_millis()),
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => (
            RunResult::Error,
            "the sync stopped unexpectedly (see stderr)".into(),
        ),
    }
}

/// Starts `codexport plugins install` on its own (in its own process group, every stream
/// closed), so plugins the applied config enables are installed without holding up the
/// session; Codex loads them from the next session on. Returns what to log.
fn install_plugins_in_background(paths: &Paths) -> String {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return "; plugins to install (run `codexport plugins install`)".into();
    };
    let spawned = std::process::Command::new(exe)
        .arg("--home")
        .arg(&paths.home)
        .arg("--codex-dir")
        .arg(&paths.codex_dir)
        .args(["--quiet", "plugins", "install"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(_) => "; installing plugins in the background (see ~/.codexport/logs/plugins/)".into(),
        Err(e) => {
            format!("; plugins to install, but `codexport plugins install` could not start: {e}")
        }
    }
}

fn describe(r: &SyncReport) -> (RunResult, String) {
    if let Some(held) = r.held_at {
        return (
            RunResult::Held,
            format!(
                "held at revision {held} by a rollback; the master's newest is {} (run `codexport apply` to return)",
                r.number
            ),
        );
    }
    match &r.apply {
        Some(a) if a.result == ApplyOutcome::Applied => {
            let mut msg = format!(
                "revision {} from {}: {} added, {} updated, {} deleted",
                a.number, r.master_url, a.added, a.updated, a.deleted
            );
            if !a.drift.is_empty() {
                msg.push_str(&format!("; local edits backed up: {}", a.drift.join(", ")));
            }
            (RunResult::Applied, msg)
        }
        _ => (
            RunResult::Current,
            format!("revision {} from {}", r.number, r.master_url),
        ),
    }
}

/// Appends the outcome to `logs/hook.log`, rotating it past [`LOG_LIMIT`]. Best effort.
fn log(paths: &Paths, outcome: &RunOutcome) {
    let dir = paths.logs();
    let path = dir.join("hook.log");
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_LIMIT) {
        let _ = std::fs::rename(&path, dir.join("hook.log.1"));
    }
    let time = crate::time::Utc::from_ms(crate::time::now_ms()).rfc3339();
    let message = outcome.message.replace(['\n', '\r'], " ");
    let line = format!(
        "{time} {} {}ms {message}\n",
        outcome.result.as_str(),
        outcome.elapsed_ms
    );
    if let Ok(mut f) = crate::fsutil::open_log(&path) {
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rotates_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path().to_owned(), None);
        let logs = paths.state_dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("hook.log"), vec![b'x'; LOG_LIMIT as usize + 1]).unwrap();
        let outcome = RunOutcome {
            result: RunResult::Error,
            message: "two\nlines".into(),
            elapsed_ms: 7,
        };
        log(&paths, &outcome);
        assert_eq!(
            std::fs::metadata(logs.join("hook.log.1")).unwrap().len(),
            LOG_LIMIT + 1
        );
        let line = std::fs::read_to_string(logs.join("hook.log")).unwrap();
        assert!(line.ends_with("Z error 7ms two lines\n"), "{line}");
        assert_eq!(line.lines().count(), 1);
    }
}
