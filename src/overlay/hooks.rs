//! codexport's session-start hook in the merged tree: `hooks.json` with codexport's entry
//! first (and a master's own codexport entries stripped), and the two things the hook needs
//! in `config.toml` (`[features] hooks = true`, and Codex's trust entries moved with their
//! handlers). Pure functions of their inputs, so the merge stays pure; `crate::hook` installs
//! and runs the hook with them.

mod json;

pub use json::is_codexport_command;

use super::OverlayError;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table};

/// The SessionStart matcher of codexport's group: new and resumed sessions.
pub const MATCHER: &str = "startup|resume";

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
pub fn installed(state_dir: &Path) -> Result<Option<HookEntry>, OverlayError> {
    let path = state_dir.join(crate::paths::state::HOOK_TOML);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OverlayError::Io { path, source: e }),
    };
    let bad = |what: String| OverlayError::BadHookToml {
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

pub fn hook_toml(entry: &HookEntry, timeout_ms: u64) -> String {
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
) -> Result<Vec<u8>, OverlayError> {
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
) -> Result<Vec<TrustMove>, OverlayError> {
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

/// Sets `features.hooks = true` (and the old alias `codex_hooks`, if present, too).
pub fn set_hooks_feature(doc: &mut DocumentMut) -> Result<(), String> {
    if !doc.contains_key("features") {
        doc.insert("features", Item::Table(Table::new()));
    }
    let features = doc["features"]
        .as_table_like_mut()
        .ok_or("`features` is not a table")?;
    let is_true = |item: Option<&Item>| item.and_then(Item::as_bool) == Some(true);
    if !is_true(features.get("hooks")) {
        features.insert("hooks", toml_edit::value(true));
    }
    if features.contains_key("codex_hooks") && !is_true(features.get("codex_hooks")) {
        features.insert("codex_hooks", toml_edit::value(true));
    }
    Ok(())
}

/// config.toml with `[features] hooks = true`; the text unchanged when it already says so.
/// For the merge: call it on the merged config.toml when the hook is installed.
pub fn enable_hooks_feature(config_text: &str) -> Result<String, OverlayError> {
    let bad = |what| OverlayError::BadConfig {
        which: "config.toml",
        what,
    };
    let mut doc = crate::toml_doc::parse(config_text).map_err(bad)?;
    let before = doc.to_string();
    set_hooks_feature(&mut doc).map_err(|what| bad(what.clone()))?;
    let after = doc.to_string();
    Ok(if after == before {
        config_text.to_owned()
    } else {
        after
    })
}

/// The `[hooks.state]` table, created (implicitly, so no empty `[hooks]` header appears) when
/// missing. `None` when `hooks` or `hooks.state` is something other than a table.
fn state_table(doc: &mut DocumentMut, create: bool) -> Option<&mut Table> {
    let mut table = doc.as_table_mut();
    for part in ["hooks", "state"] {
        if !table.contains_key(part) {
            if !create {
                return None;
            }
            let mut t = Table::new();
            t.set_implicit(true);
            table.insert(part, Item::Table(t));
        }
        table = table.get_mut(part)?.as_table_mut()?;
    }
    Some(table)
}

/// Records Codex's trust in one handler: `[hooks.state."<key>"] trusted_hash = "<hash>"`.
pub fn set_trust(doc: &mut DocumentMut, key: &str, hash: &str) {
    let Some(state) = state_table(doc, true) else {
        return;
    };
    match state.get_mut(key).and_then(Item::as_table_like_mut) {
        Some(t) => {
            if t.get("trusted_hash").and_then(Item::as_str) != Some(hash) {
                t.insert("trusted_hash", toml_edit::value(hash));
            }
        }
        None => {
            let mut t = Table::new();
            t.insert("trusted_hash", toml_edit::value(hash));
            state.insert(key, Item::Table(t));
        }
    }
}

/// Moves `[hooks.state."<hooks_json>:<from>"]` entries to `<to>` (dropping those whose
/// handler is gone), all at once so chains of moves do not overwrite each other. Entries of
/// other files and unlisted positions stay. For the merge: `hooks_json` is this follower's
/// `hooks.json` path (see `crate::hook::hooks_json_path`), `moves` come from `trust_key_moves`.
pub fn move_trust_state(doc: &mut DocumentMut, hooks_json: &str, moves: &[TrustMove]) {
    if moves.is_empty() {
        return;
    }
    let Some(state) = state_table(doc, false) else {
        return;
    };
    let mut taken = Vec::new();
    for m in moves {
        if let Some(item) = state.remove(&format!("{hooks_json}:{}", m.from)) {
            taken.push((item, m.to.clone()));
        }
    }
    for (item, to) in taken {
        if let Some(to) = to {
            state.insert(&format!("{hooks_json}:{to}"), item);
        }
    }
}
