//! The follower's Codex SessionStart hook: `codexport hook install | uninstall | run`.
//!
//! Once installed, every Codex session that starts (or resumes) on the follower first runs
//! `codexport hook run`, a best-effort `sync --apply` under one deadline that prints nothing
//! and always exits 0.
//!
//! # What the real Codex CLI needs (verified with @openai/codex 0.169.0, `codex exec`)
//!
//! - **The file format.** `~/.codex/hooks.json` is
//!   `{"hooks":{"SessionStart":[{"matcher":"startup|resume","hooks":[{"type":"command",
//!   "command":"…","timeout":4}]}]}}`; the timeout is in seconds, the command runs through
//!   the shell, and Codex waits for it before the session proceeds. Codex writes JSON about
//!   the session on the hook's stdin (`session_id`, `transcript_path`, `cwd`,
//!   `hook_event_name`, `model`, `permission_mode`, `source`: `startup` for a new session).
//! - **Stdout goes to the model.** Whatever a SessionStart hook prints on stdout is injected
//!   into the model's context, so `hook run` never writes there (its log is
//!   `~/.codexport/logs/hook.log`).
//! - **The feature flag.** `[features] hooks = true` in config.toml (alias `codex_hooks`).
//!   In 0.169 the feature is stable and on by default, but `hooks = false` turns every hook
//!   off (then `hooks/list` lists none), so install sets it explicitly.
//! - **Trust.** Codex runs a hook only if config.toml holds
//!   `[hooks.state."<absolute path of hooks.json>:session_start:<group>:<handler>"]`
//!   `trusted_hash = "sha256:…"` matching the handler's current hash; `codex exec` silently
//!   skips an untrusted hook and the TUI offers it for review under `/hooks`. The hash
//!   covers the handler's configuration (command, timeout, matcher), not its position: the
//!   same handler at group 0 or 1 has the same hash, so a trust entry may move with its
//!   handler (see [`trust_key_moves`]). Install asks `codex app-server` (JSON-RPC on stdio:
//!   `initialize`, `initialized`, `hooks/list`) for the key and `currentHash` instead of
//!   reimplementing the hash. Without a codex binary the hook is installed untrusted and the
//!   user is told to accept it once under `/hooks`.
//! - Our group goes first in SessionStart so its key (`…:session_start:0:0`) is stable
//!   whatever the master's hooks.json holds.

mod config;
mod json;
mod run;
mod trust;

pub use config::{enable_hooks_feature, move_trust_state};
pub use json::is_codexport_command;
pub use run::{RunOutcome, run};
pub use trust::{ListedHook, find_codex, list_hooks};

use crate::follower::{FollowerConfig, FollowerError};
use crate::fsutil::{LockError, StateLock};
use crate::paths::Paths;
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The SessionStart matcher of codexport's group: new and resumed sessions.
pub const MATCHER: &str = "startup|resume";
/// Default deadline of `hook run`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum HookError {
    #[error("~/.codex/hooks.json is not a valid hooks file: {what}")]
    #[diagnostic(
        code(codexport::usage::bad_hooks_json),
        help(
            "fix the file (it must be a JSON object like {{\"hooks\":{{\"SessionStart\":[…]}}}}); nothing was written"
        )
    )]
    BadHooksJson { what: String },
    #[error("{} is not valid TOML: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_codex_config),
        help("fix the file; nothing was written")
    )]
    BadConfig { path: PathBuf, what: String },
    #[error("{} is malformed: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_hook_toml),
        help("run `codexport hook install` again to rewrite it")
    )]
    BadHookToml { path: PathBuf, what: String },
    #[error("this machine is the master; the session-start hook belongs on followers")]
    #[diagnostic(
        code(codexport::usage::hook_on_master),
        help(
            "the master's ~/.codex is the source of every revision; run `codexport hook install` on each follower instead"
        )
    )]
    IsMaster,
    #[error("codex app-server did not list the hooks: {what}")]
    #[diagnostic(
        code(codexport::hook::app_server),
        help("open Codex once and accept the codexport hook under /hooks")
    )]
    AppServer { what: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::hook::io),
        help("check permissions of ~/.codex and ~/.codexport")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Follower(#[from] FollowerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HookError + '_ {
    move |source| HookError::Io {
        path: path.to_owned(),
        source,
    }
}

/// codexport's handler: the shell command and Codex's timeout for it, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookEntry {
    pub command: String,
    pub timeout: u64,
}

impl HookEntry {
    /// The entry for `exe` with a `timeout_ms` deadline; `extra` are further arguments
    /// (already quoted), such as `--home "…"`.
    pub fn new(exe: &Path, timeout_ms: u64, extra: &str) -> Self {
        let mut command = format!(
            "{} hook run --timeout-ms {timeout_ms}",
            shell_quote(&exe.display().to_string())
        );
        if !extra.is_empty() {
            command.push(' ');
            command.push_str(extra);
        }
        // Codex's timeout leaves a second beyond our own deadline for start-up and logging.
        Self {
            command,
            timeout: timeout_ms.div_ceil(1000) + 1,
        }
    }
}

/// Double-quotes `s` for a POSIX shell (`\`, `"`, `$` and `` ` `` escaped).
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The installed entry (`~/.codexport/hook.toml`), if the hook is installed.
pub fn installed(state_dir: &Path) -> Result<Option<HookEntry>, HookError> {
    let path = state_dir.join(crate::paths::state::HOOK_TOML);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(HookError::Io { path, source: e }),
    };
    let bad = |what: String| HookError::BadHookToml {
        path: path.clone(),
        what,
    };
    let doc = crate::toml_doc::parse(&text).map_err(bad)?;
    let command = doc
        .get("command")
        .and_then(toml_edit::Item::as_str)
        .ok_or_else(|| bad("missing command".into()))?;
    let timeout = doc
        .get("timeout")
        .and_then(toml_edit::Item::as_integer)
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| bad("missing timeout".into()))?;
    Ok(Some(HookEntry {
        command: command.to_owned(),
        timeout,
    }))
}

fn hook_toml(entry: &HookEntry, timeout_ms: u64) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    doc["command"] = toml_edit::value(entry.command.clone());
    doc["timeout"] = toml_edit::value(entry.timeout as i64);
    doc["timeout_ms"] = toml_edit::value(timeout_ms as i64);
    format!(
        "# codexport's Codex SessionStart hook, written by `codexport hook install`.\n# The merge keeps this entry first in ~/.codex/hooks.json; `codexport hook uninstall` removes it.\n{doc}"
    )
}

/// `hooks.json` with every codexport handler removed and, if `ours` is given, our group
/// inserted first in SessionStart (matcher `startup|resume`, so its trust key is
/// `…:session_start:0:0`). Every other key, event, group and handler keeps its place.
/// Idempotent. Returns `existing` unchanged when there is nothing to do; otherwise the
/// document pretty-printed (two-space indents, final newline).
pub fn merge_hooks_json(
    existing: Option<&[u8]>,
    ours: Option<&HookEntry>,
) -> Result<Vec<u8>, HookError> {
    let (doc, changed, _) = json::edit(existing, ours)?;
    Ok(match existing {
        Some(bytes) if !changed => bytes.to_vec(),
        _ => json::to_bytes(&doc),
    })
}

/// A trust entry that moves when `merge_hooks_json` edits the file: the key suffix
/// (`session_start:1:0`, after `<hooks.json path>:`) before and after; `to: None` means the
/// handler is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustMove {
    pub from: String,
    pub to: Option<String>,
}

/// Where the trust entries of `existing`'s handlers go once `merge_hooks_json(existing,
/// ours)` has run: handlers after our inserted group shift by one, removed codexport
/// handlers lose theirs (or keep it, at `session_start:0:0`, when one is exactly `ours`).
/// Only entries that change are listed. Apply them with [`move_trust_state`].
pub fn trust_key_moves(
    existing: Option<&[u8]>,
    ours: Option<&HookEntry>,
) -> Result<Vec<TrustMove>, HookError> {
    let (_, _, placements) = json::edit(existing, ours)?;
    let mut kept_ours = false;
    let mut moves = Vec::new();
    for p in placements {
        let (event, g, h) = &p.old;
        let from = format!("{}:{g}:{h}", json::snake(event));
        let to = match p.new {
            Some((ng, nh)) => Some(format!("{}:{ng}:{nh}", json::snake(event))),
            None if p.same_as_ours && !kept_ours => {
                kept_ours = true;
                Some("session_start:0:0".to_owned())
            }
            None => None,
        };
        if to.as_deref() != Some(from.as_str()) {
            moves.push(TrustMove { from, to });
        }
    }
    Ok(moves)
}

/// The absolute path of `hooks.json` as Codex names it in trust keys.
pub fn hooks_json_path(paths: &Paths) -> PathBuf {
    let p = paths.codex_dir.join("hooks.json");
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// What `hook install` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstallReport {
    pub entry: HookEntry,
    pub hooks_json: String,
    /// `trusted`, `no_codex` (no codex binary found) or `failed` (see `trust_error`).
    pub trust: &'static str,
    pub trust_key: Option<String>,
    pub trust_error: Option<String>,
    pub codex: Option<String>,
}

/// Extra arguments `hook run` needs to find this home when it is not the default one.
fn location_args(paths: &Paths) -> String {
    let mut extra = Vec::new();
    if paths.home != Paths::default_home() {
        extra.push(format!(
            "--home {}",
            shell_quote(&paths.home.display().to_string())
        ));
    }
    if paths.codex_dir != paths.home.join(".codex") {
        extra.push(format!(
            "--codex-dir {}",
            shell_quote(&paths.codex_dir.display().to_string())
        ));
    }
    extra.join(" ")
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, HookError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HookError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Replaces `path` atomically, keeping its permission bits (0644 for a new file).
fn write_keeping_mode(path: &Path, bytes: &[u8]) -> Result<(), HookError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777);
    crate::fsutil::write_atomic(path, bytes, mode).map_err(io(path))
}

/// Installs the hook on an enrolled follower: hook.toml, hooks.json, the feature flag, and
/// (through `codex app-server`) Codex's trust in it. Running it again gives the same files.
pub fn install(paths: &Paths, exe: &Path, timeout_ms: u64) -> Result<InstallReport, HookError> {
    if paths.master_key().exists() {
        return Err(HookError::IsMaster);
    }
    FollowerConfig::load(paths)?;
    let _lock = StateLock::acquire(&paths.state_dir, crate::store::WAIT)?;
    let entry = HookEntry::new(exe, timeout_ms, &location_args(paths));
    let hooks_path = paths.codex_dir.join("hooks.json");
    let config_path = paths.codex_dir.join("config.toml");
    let current = read_optional(&hooks_path)?;
    let hooks = merge_hooks_json(current.as_deref(), Some(&entry))?;
    let moves = trust_key_moves(current.as_deref(), Some(&entry))?;
    let config_text = config::read(&config_path)?;
    let mut doc = config::parse(&config_text, &config_path)?;
    config::set_hooks_feature(&mut doc, &config_path)?;
    move_trust_state(
        &mut doc,
        &hooks_json_path(paths).display().to_string(),
        &moves,
    );

    // Everything is validated; now write.
    let toml_path = paths.state_dir.join(crate::paths::state::HOOK_TOML);
    crate::fsutil::write_atomic(&toml_path, hook_toml(&entry, timeout_ms).as_bytes(), 0o644)
        .map_err(io(&toml_path))?;
    if current.as_deref() != Some(hooks.as_slice()) {
        write_keeping_mode(&hooks_path, &hooks)?;
    }
    let mut report = InstallReport {
        entry,
        hooks_json: hooks_path.display().to_string(),
        trust: "no_codex",
        trust_key: None,
        trust_error: None,
        codex: None,
    };
    if let Some(codex) = find_codex() {
        report.codex = Some(codex.display().to_string());
        // Codex must see the new files to hash them; write config.toml first (feature on).
        write_config(&config_path, &config_text, &doc)?;
        match trust::trusted_key(&codex, paths, &report.entry, Duration::from_secs(10)) {
            Ok((key, hash)) => {
                config::set_trust(&mut doc, &key, &hash);
                report.trust = "trusted";
                report.trust_key = Some(key);
            }
            Err(e) => {
                report.trust = "failed";
                report.trust_error = Some(e.to_string());
            }
        }
    }
    write_config(&config_path, &config_text, &doc)?;
    Ok(report)
}

fn write_config(path: &Path, before: &str, doc: &toml_edit::DocumentMut) -> Result<(), HookError> {
    let text = doc.to_string();
    if text == before && path.exists() {
        return Ok(());
    }
    write_keeping_mode(path, text.as_bytes())
}

/// What `hook uninstall` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UninstallReport {
    /// Codexport handlers removed from hooks.json.
    pub removed: usize,
    pub hook_toml_removed: bool,
}

/// Removes codexport's handlers (and their trust entries) and hook.toml; every other hook
/// stays, trusted as before.
pub fn uninstall(paths: &Paths) -> Result<UninstallReport, HookError> {
    let _lock = StateLock::acquire(&paths.state_dir, crate::store::WAIT)?;
    let hooks_path = paths.codex_dir.join("hooks.json");
    let config_path = paths.codex_dir.join("config.toml");
    let mut removed = 0;
    if let Some(current) = read_optional(&hooks_path)? {
        let hooks = merge_hooks_json(Some(&current), None)?;
        let moves = trust_key_moves(Some(&current), None)?;
        removed = moves.iter().filter(|m| m.to.is_none()).count();
        if config_path.exists() && !moves.is_empty() {
            let text = config::read(&config_path)?;
            let mut doc = config::parse(&text, &config_path)?;
            move_trust_state(
                &mut doc,
                &hooks_json_path(paths).display().to_string(),
                &moves,
            );
            write_config(&config_path, &text, &doc)?;
        }
        // A file left as `{"hooks": {}}` stays: it may be the master's, and one that only
        // codexport wrote leaves the merged tree, so the next apply deletes it.
        if hooks != current {
            write_keeping_mode(&hooks_path, &hooks)?;
        }
    }
    let toml_path = paths.state_dir.join(crate::paths::state::HOOK_TOML);
    let hook_toml_removed = match std::fs::remove_file(&toml_path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(HookError::Io {
                path: toml_path,
                source: e,
            });
        }
    };
    Ok(UninstallReport {
        removed,
        hook_toml_removed,
    })
}
