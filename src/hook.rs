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
//!   handler (see `overlay::hooks::trust_key_moves`). Install asks `codex app-server` (JSON-RPC on stdio:
//!   `initialize`, `initialized`, `hooks/list`) for the key and `currentHash` instead of
//!   reimplementing the hash. Without a codex binary the hook is installed untrusted and the
//!   user is told to accept it once under `/hooks`.
//! - Our group goes first in SessionStart so its key (`…:session_start:0:0`) is stable
//!   whatever the master's hooks.json holds.

mod run;
mod trust;

pub use run::{RunOutcome, RunResult, run};
pub use trust::{ListedHook, find_codex, list_hooks};

use crate::follower::{FollowerConfig, FollowerError};
use crate::fsutil::{LockError, StateLock};
use crate::overlay::OverlayError;
use crate::overlay::hooks::{
    self, HookEntry, merge_hooks_json, move_trust_state, set_hooks_feature, set_trust, shell_quote,
    trust_key_moves,
};
use crate::paths::Paths;
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Default deadline of `hook run`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum HookError {
    #[error("{} is not valid TOML: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_codex_config),
        help("fix the file; nothing was written")
    )]
    BadConfig { path: PathBuf, what: String },
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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Overlay(#[from] OverlayError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HookError + '_ {
    move |source| HookError::Io {
        path: path.to_owned(),
        source,
    }
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

/// Whether Codex trusts the installed hook (it runs only trusted hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Marked trusted with the hash `codex app-server` reported.
    Trusted,
    /// No codex binary was found to ask; accept the hook once under /hooks.
    NoCodex,
    /// Asking codex failed (see `trust_error`); accept the hook once under /hooks.
    Failed,
}

/// What `hook install` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstallReport {
    pub entry: HookEntry,
    /// The deadline of one `hook run`.
    pub timeout_ms: u64,
    pub hooks_json: String,
    pub trust: Trust,
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

/// config.toml's text; a missing file is empty.
fn read_config(path: &Path) -> Result<String, HookError> {
    Ok(read_optional(path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

fn parse_config(text: &str, path: &Path) -> Result<toml_edit::DocumentMut, HookError> {
    crate::toml_doc::parse(text).map_err(|what| HookError::BadConfig {
        path: path.to_owned(),
        what,
    })
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
    let config_text = read_config(&config_path)?;
    let mut doc = parse_config(&config_text, &config_path)?;
    set_hooks_feature(&mut doc).map_err(|what| HookError::BadConfig {
        path: config_path.clone(),
        what: what.clone(),
    })?;
    move_trust_state(
        &mut doc,
        &hooks_json_path(paths).display().to_string(),
        &moves,
    );

    // Everything is validated; now write.
    let toml_path = paths.state_dir.join(crate::paths::state::HOOK_TOML);
    crate::fsutil::write_atomic(
        &toml_path,
        hooks::hook_toml(&entry, timeout_ms).as_bytes(),
        0o600,
    )
    .map_err(io(&toml_path))?;
    if current.as_deref() != Some(hooks.as_slice()) {
        write_keeping_mode(&hooks_path, &hooks)?;
    }
    let mut report = InstallReport {
        entry,
        timeout_ms,
        hooks_json: hooks_path.display().to_string(),
        trust: Trust::NoCodex,
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
                set_trust(&mut doc, &key, &hash);
                report.trust = Trust::Trusted;
                report.trust_key = Some(key);
            }
            Err(e) => {
                report.trust = Trust::Failed;
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
            let text = read_config(&config_path)?;
            let mut doc = parse_config(&text, &config_path)?;
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
