//! Asking the real Codex for a hook's trust key and hash: `codex app-server` speaks JSON-RPC
//! (one JSON object per line) on stdio; `hooks/list` answers with each hook's `key`,
//! `command`, `currentHash` and `trustStatus`.

use super::{HookEntry, HookError};
use crate::paths::Paths;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::paths::codex_binary as find_codex;

/// One hook as `hooks/list` reports it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedHook {
    pub key: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub current_hash: Option<String>,
    #[serde(default)]
    pub trust_status: Option<String>,
}

/// Runs `codex app-server` with `CODEX_HOME` (and `HOME`) set to this home's and returns the
/// hooks it lists for `cwd` = the home, within `wait`.
pub fn list_hooks(
    codex: &Path,
    paths: &Paths,
    wait: Duration,
) -> Result<Vec<ListedHook>, HookError> {
    let started = Instant::now();
    let fail = |what: String| HookError::AppServer { what };
    let mut child = Command::new(codex)
        .arg("app-server")
        .env("CODEX_HOME", &paths.codex_dir)
        .env("HOME", &paths.home)
        .current_dir(&paths.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("cannot start {} app-server: {e}", codex.display())))?;
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let cwd = paths.home.display().to_string();
    let requests = [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "codexport", "version": env!("CARGO_PKG_VERSION")}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "hooks/list", "params": {"cwds": [cwd]}}),
    ];
    let mut stdin = child.stdin.take();
    let sent = stdin.as_mut().map(|s| {
        requests
            .iter()
            .try_for_each(|r| writeln!(s, "{r}"))
            .and_then(|()| s.flush())
    });
    let answer = match sent {
        Some(Ok(())) => wait_for_answer(&rx, started + wait),
        Some(Err(e)) => Err(format!("writing to it failed: {e}")),
        None => Err("no stdin".into()),
    };
    // The app server exits when its stdin closes. Killing it outright would leave the real
    // server behind when `codex` is npm's node wrapper, so wait a little first.
    drop(stdin);
    let closing = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if closing.elapsed() > Duration::from_secs(3) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = answer.map_err(fail)?;
    let mut hooks = Vec::new();
    for entry in answer["result"]["data"].as_array().into_iter().flatten() {
        for h in entry["hooks"].as_array().into_iter().flatten() {
            if let Ok(h) = serde_json::from_value::<ListedHook>(h.clone()) {
                hooks.push(h);
            }
        }
    }
    Ok(hooks)
}

/// The JSON-RPC answer with id 2, or why there is none by `deadline`.
fn wait_for_answer(
    rx: &mpsc::Receiver<String>,
    deadline: Instant,
) -> Result<serde_json::Value, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err("no answer to hooks/list within 10 s".into());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("it exited without answering hooks/list".into());
            }
        };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["id"] != 1 && msg["id"] != 2 {
            continue;
        }
        if let Some(err) = msg.get("error") {
            return Err(format!(
                "{} failed: {err}",
                if msg["id"] == 1 {
                    "initialize"
                } else {
                    "hooks/list"
                }
            ));
        }
        if msg["id"] == 2 {
            return Ok(msg);
        }
    }
}

/// Our handler's trust key and current hash, as the real Codex computes them.
pub(super) fn trusted_key(
    codex: &Path,
    paths: &Paths,
    entry: &HookEntry,
    wait: Duration,
) -> Result<(String, String), HookError> {
    let hooks = list_hooks(codex, paths, wait)?;
    let ours = hooks
        .iter()
        .filter(|h| h.command.as_deref() == Some(entry.command.as_str()))
        .find(|h| h.key.contains(":session_start:"))
        .ok_or_else(|| HookError::AppServer { what: format!("the codexport hook is not among the {} hooks it lists (are hooks disabled in config.toml?)", hooks.len()) })?;
    let hash = ours
        .current_hash
        .clone()
        .ok_or_else(|| HookError::AppServer {
            what: "the codexport hook has no currentHash".into(),
        })?;
    Ok((ours.key.clone(), hash))
}
