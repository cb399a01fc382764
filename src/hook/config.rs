//! The two things the hook needs in `~/.codex/config.toml`, edited with toml_edit so the
//! rest of the file (comments, order, layout) stays: `[features] hooks = true` and
//! `[hooks.state."<key>"] trusted_hash = "…"`.

use super::{HookError, TrustMove};
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table};

pub(super) fn read(path: &Path) -> Result<String, HookError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(HookError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

pub(super) fn parse(text: &str, path: &Path) -> Result<DocumentMut, HookError> {
    crate::toml_doc::parse(text).map_err(|what| HookError::BadConfig {
        path: path.to_owned(),
        what,
    })
}

/// Sets `features.hooks = true` (and the old alias `codex_hooks`, if present, too).
pub(super) fn set_hooks_feature(doc: &mut DocumentMut, path: &Path) -> Result<(), HookError> {
    if !doc.contains_key("features") {
        doc.insert("features", Item::Table(Table::new()));
    }
    let features = doc["features"]
        .as_table_like_mut()
        .ok_or_else(|| HookError::BadConfig {
            path: path.to_owned(),
            what: "`features` is not a table".into(),
        })?;
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
pub fn enable_hooks_feature(config_text: &str) -> Result<String, HookError> {
    let path = Path::new("config.toml");
    let mut doc = parse(config_text, path)?;
    let before = doc.to_string();
    set_hooks_feature(&mut doc, path)?;
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
pub(super) fn set_trust(doc: &mut DocumentMut, key: &str, hash: &str) {
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
/// `hooks.json` path (see `hook::hooks_json_path`), `moves` come from `trust_key_moves`.
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
