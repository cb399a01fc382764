//! The follower's overlay and the merge: the master's tree of roots + overlay + follower
//! facts → the merged tree of roots that checkout writes into each root's folder.
//!
//! Each root's merge rules (see [`crate::roots`]) say what applies where: config.toml and
//! hooks.json of the Codex root, its config layers (custom agents), co-owned files, local
//! skills (for `~/.codex/skills` and `~/.agents/skills`) and overrides.
//!
//! The merge is a pure function of its inputs (the facts include the follower's current
//! copies of the few files it co-owns), and its result is stored, so every apply is an exact
//! rollback point and `diff` is a tree diff. Nothing here writes outside the store.

pub mod config;
mod files;
pub mod hooks;
pub mod layers;
pub mod local;

use files::read_files;
pub use files::stamp;

pub use local::{LocalConfig, Policy};

use crate::object::{EntryKind, ObjectId, ObjectKind, RelPath, Revision};
use crate::roots::{ROOTS, Root, RootDirs};
use crate::store::edit::{Edit, edit, lookup};
use crate::store::{ObjectSource, StoreError, Writer};
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum OverlayError {
    #[error("Local MCP conflicts with canonical names: {}.", names.join(", "))]
    #[diagnostic(
        code(codexport::usage::mcp_conflict),
        help(
            "Add allowMcpOverrides = [{}] to ~/.codexport/local.toml to let your local definition replace the master's, or rename it in ~/.codexport/mcps.local.toml. Nothing was written.",
            quoted(names)
        )
    )]
    McpConflict { names: Vec<String> },
    #[error("Local skills conflict with canonical skills: {}.", names.join(", "))]
    #[diagnostic(
        code(codexport::usage::skill_conflict),
        help(
            "Add allowSkillOverrides = [{}] to ~/.codexport/local.toml to let your local skill replace the master's, or rename it in ~/.codexport/{overlay}. Nothing was written.",
            quoted(names)
        )
    )]
    SkillConflict {
        names: Vec<String>,
        /// The overlay folder the local skills are in.
        overlay: &'static str,
    },
    #[error("{which} is not valid TOML: {what}")]
    #[diagnostic(
        code(codexport::usage::bad_toml),
        help("fix the file; nothing was written")
    )]
    BadConfig { which: &'static str, what: String },
    #[error("{} is invalid: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_local),
        help("fix ~/.codexport/local.toml; nothing was written")
    )]
    BadLocal { path: PathBuf, what: String },
    #[error("{} cannot be used: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_overlay_file),
        help("rename or remove it; overlay file names follow the same rules as synced files")
    )]
    BadOverlayFile { path: PathBuf, what: String },
    #[error("{} is malformed: {what}", path.display())]
    #[diagnostic(
        code(codexport::usage::bad_hook_toml),
        help(
            "run `codexport hook install` again to rewrite it (or `codexport hook uninstall` to remove the hook)"
        )
    )]
    BadHookToml { path: PathBuf, what: String },
    #[error("~/.codex/hooks.json is not a valid hooks file: {what}")]
    #[diagnostic(
        code(codexport::usage::bad_hooks_json),
        help(
            "fix the file (it must be a JSON object like {{\"hooks\":{{\"SessionStart\":[…]}}}}); nothing was written"
        )
    )]
    BadHooksJson { what: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::overlay::io),
        help("check permissions of ~/.codexport and ~/.codex")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A file of the overlay (under `skills/`, `agent-skills/` or `overrides/` of the state dir).
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub path: RelPath,
    pub kind: EntryKind,
    /// Group and others may not read it.
    pub private: bool,
    pub bytes: Vec<u8>,
}

/// Everything the follower adds: `local.toml`, `mcps.local.toml`, local skills for each root
/// that takes them (`skills/`, `agent-skills/`), `overrides/`.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    pub local: LocalConfig,
    pub local_mcps: Option<String>,
    /// Local skills, by the name of the root they land in (paths relative to the overlay
    /// folder: `<skill>/…`).
    pub skills: Vec<(&'static str, Vec<LocalFile>)>,
    /// Files replacing the master's, by the name of their root (paths relative to it).
    pub overrides: Vec<(&'static str, Vec<LocalFile>)>,
    /// codexport's session-start hook, when `hook install` ran on this follower.
    pub hook: Option<hooks::HookEntry>,
}

impl Overlay {
    pub fn load(state_dir: &Path) -> Result<Self, OverlayError> {
        let local = LocalConfig::load(&state_dir.join(crate::paths::state::LOCAL_TOML))?;
        let mcps = state_dir.join(crate::paths::state::LOCAL_MCPS);
        let local_mcps = match std::fs::read_to_string(&mcps) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(OverlayError::Io {
                    path: mcps,
                    source: e,
                });
            }
        };
        let hook = hooks::installed(state_dir)?;
        let mut skills = Vec::new();
        let mut overrides = Vec::new();
        for root in ROOTS {
            if let Some(ls) = root.merge.local_skills {
                skills.push((root.name, read_files(&state_dir.join(ls.overlay))?));
            }
            if let Some(dir) = root.merge.overrides {
                overrides.push((root.name, read_files(&state_dir.join(dir))?));
            }
        }
        Ok(Self {
            local,
            local_mcps,
            skills,
            overrides,
            hook,
        })
    }
}

/// What the merge knows about this follower.
pub struct MergeFacts<'a> {
    pub home: &'a Path,
    /// Where each root lies on this follower.
    pub dirs: &'a RootDirs,
    /// The master's host as this follower reaches it (replaces loopback MCP URLs).
    pub master_host: Option<String>,
    /// The follower's current content of a path of the tree of roots, if present.
    pub current: &'a dyn Fn(&RelPath) -> Option<Vec<u8>>,
    /// The canonical tree of roots of the revision applied last, if any.
    pub previous_canonical: Option<ObjectId>,
    /// The codexport executable that runs command MCP servers (`mcp run <name>`), when the
    /// revision carries an MCP manifest.
    pub launcher: Option<&'a Path>,
}

/// The merge's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Merged {
    pub tree: ObjectId,
    pub unknown_variables: Vec<String>,
    /// Files taken as the master has them because they could not be merged (a custom agent
    /// that is not valid TOML), each with why.
    pub warnings: Vec<String>,
}

/// Merges a revision with the overlay and stores the merged tree of roots. Only the trees
/// along edited paths are rewritten, so the cost follows the overlay, not the library.
pub fn merge(
    w: &mut Writer<'_>,
    revision: &Revision,
    overlay: &Overlay,
    facts: &MergeFacts<'_>,
) -> Result<Merged, OverlayError> {
    let mut root = crate::store::roots::roots_tree(w, revision)?;
    let mut unknown = std::collections::BTreeSet::new();
    let mut warnings = Vec::new();
    for r in ROOTS {
        let trust_moves = merge_hooks(w, &mut root, r, overlay)?;
        unknown.extend(merge_config_file(
            w,
            &mut root,
            (r, revision),
            overlay,
            facts,
            trust_moves,
        )?);
        let layers = layers::merge(
            w,
            &mut root,
            r,
            &config_context(revision, overlay, facts, r),
        )?;
        unknown.extend(layers.unknown_variables);
        warnings.extend(layers.warnings);
        merge_co_owned(w, &mut root, r, overlay, facts)?;
        add_local_skills(w, &mut root, r, overlay)?;
        // Overrides replace canonical files (or directories) at the same path.
        for (_, files) in overlay.overrides.iter().filter(|(n, _)| *n == r.name) {
            for f in files {
                root = put(
                    w,
                    root,
                    &f.path.under(&r.path("")),
                    (f.kind, f.private),
                    &f.bytes,
                )?;
            }
        }
    }
    Ok(Merged {
        tree: root,
        unknown_variables: unknown.into_iter().collect(),
        warnings,
    })
}

/// The config merge's context for `root` (paths mapped from the master's home and codex dir
/// to this follower's).
fn config_context(
    revision: &Revision,
    overlay: &Overlay,
    facts: &MergeFacts<'_>,
    root: &Root,
) -> config::ConfigContext {
    let codex_dir = facts.dirs.codex();
    config::ConfigContext {
        master_home: revision.home.clone(),
        master_codex_dir: revision.codex_dir.clone(),
        home: facts.home.display().to_string(),
        codex_dir: codex_dir.display().to_string(),
        path_variables: overlay.local.path_variables.clone(),
        master_host: facts.master_host.clone(),
        hooks_json_path: root
            .merge
            .hooks
            .and_then(|h| facts.dirs.get(root.name).map(|d| d.join(h)))
            .unwrap_or_else(|| codex_dir.join("hooks.json"))
            .display()
            .to_string(),
        ..config::ConfigContext::default()
    }
}

/// The previous canonical tree's content at `path`, if it had a file there.
fn previous_blob(
    w: &Writer<'_>,
    facts: &MergeFacts<'_>,
    path: &RelPath,
) -> Result<Option<Vec<u8>>, OverlayError> {
    let Some(prev_root) = facts.previous_canonical else {
        return Ok(None);
    };
    match lookup(w, prev_root, path)? {
        Some(e) if e.kind != EntryKind::Tree => Ok(Some(w.file(&e)?)),
        _ => Ok(None),
    }
}

/// hooks.json: the master's hooks without the master's own codexport hook, and this
/// follower's hook (if installed) first, so its trust key stays `session_start:0:0`.
/// Returns the trust keys that move because of it.
fn merge_hooks(
    w: &mut Writer<'_>,
    root: &mut ObjectId,
    r: &Root,
    overlay: &Overlay,
) -> Result<Vec<hooks::TrustMove>, OverlayError> {
    let Some(hooks) = r.merge.hooks else {
        return Ok(Vec::new());
    };
    let hooks_path = r.path(hooks);
    let master_entry = lookup(w, *root, &hooks_path)?.filter(|e| e.kind != EntryKind::Tree);
    let private = master_entry.as_ref().is_some_and(|e| e.private);
    let master_hooks = match master_entry {
        Some(e) => Some(w.file(&e)?),
        None => None,
    };
    let trust_moves = hooks::trust_key_moves(master_hooks.as_deref(), overlay.hook.as_ref())?;
    if master_hooks.is_some() || overlay.hook.is_some() {
        let merged = hooks::merge_hooks_json(master_hooks.as_deref(), overlay.hook.as_ref())?;
        if master_hooks.as_deref() != Some(merged.as_slice()) {
            *root = put(w, *root, &hooks_path, (EntryKind::File, private), &merged)?;
        }
    }
    Ok(trust_moves)
}

/// config.toml through the config merge (see `config`); returns unknown `${names}`.
fn merge_config_file(
    w: &mut Writer<'_>,
    root: &mut ObjectId,
    (r, revision): (&Root, &Revision),
    overlay: &Overlay,
    facts: &MergeFacts<'_>,
    trust_moves: Vec<hooks::TrustMove>,
) -> Result<Vec<String>, OverlayError> {
    let Some(config) = r.merge.config else {
        return Ok(Vec::new());
    };
    let config_path = r.path(config);
    let config_entry = lookup(w, *root, &config_path)?.filter(|e| e.kind != EntryKind::Tree);
    if config_entry.is_none() && overlay.local_mcps.is_none() {
        return Ok(Vec::new());
    }
    {
        let master = match &config_entry {
            Some(e) => String::from_utf8_lossy(&w.file(e)?).into_owned(),
            None => String::new(),
        };
        let mut ctx = config::ConfigContext {
            local_mcps: overlay.local_mcps.clone(),
            allow_mcp_overrides: overlay.local.allow_mcp_overrides.clone(),
            current: (facts.current)(&config_path)
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            previous_master: None,
            launcher: facts.launcher.map(|p| p.display().to_string()),
            trust_moves,
            ..config_context(revision, overlay, facts, r)
        };
        if let Some(prev) = previous_blob(w, facts, &config_path)? {
            let prev_ctx = config::ConfigContext {
                current: None,
                local_mcps: None,
                launcher: None,
                trust_moves: Vec::new(),
                ..ctx.clone()
            };
            ctx.previous_master = config::merge_config(&String::from_utf8_lossy(&prev), &prev_ctx)
                .ok()
                .map(|m| m.text);
        }
        let merged = config::merge_config(&master, &ctx)?;
        let unknown_variables = merged.unknown_variables;
        let text = match overlay.hook {
            Some(_) => hooks::enable_hooks_feature(&merged.text)?,
            None => merged.text,
        };
        let kind = config_entry.map_or((EntryKind::File, false), |e| (e.kind, e.private));
        *root = put(w, *root, &config_path, kind, text.as_bytes())?;
        Ok(unknown_variables)
    }
}

/// Co-owned files of a root, by policy (keep-local, append-local): its defaults, and for
/// the Codex root the `[policies]` of local.toml.
fn merge_co_owned(
    w: &mut Writer<'_>,
    root: &mut ObjectId,
    r: &Root,
    overlay: &Overlay,
    facts: &MergeFacts<'_>,
) -> Result<(), OverlayError> {
    let mut co_owned: Vec<&str> = r.merge.policies.iter().map(|(p, _)| *p).collect();
    if r.name == crate::roots::CODEX.name {
        co_owned.extend(overlay.local.policies.keys().map(String::as_str));
    }
    for rel in co_owned {
        let Ok(rel) = RelPath::new(rel) else {
            continue;
        };
        let path = rel.under(&r.path(""));
        let policy = overlay.local.policy_of(&path);
        let Some(entry) = lookup(w, *root, &path)?.filter(|e| e.kind != EntryKind::Tree) else {
            continue;
        };
        let Some(current) = (facts.current)(&path) else {
            continue;
        };
        let content = match policy {
            Policy::Replace => continue,
            Policy::KeepLocal => current,
            Policy::AppendLocal => append_local(
                &w.file(&entry)?,
                &current,
                previous_blob(w, facts, &path)?.as_deref(),
            ),
        };
        *root = put(w, *root, &path, (entry.kind, entry.private), &content)?;
    }
    Ok(())
}

/// Local skills land where Codex reads skills (each root's skills folder); a clash with a
/// skill of the master fails unless allowed.
fn add_local_skills(
    w: &mut Writer<'_>,
    root: &mut ObjectId,
    r: &Root,
    overlay: &Overlay,
) -> Result<(), OverlayError> {
    let Some(ls) = r.merge.local_skills else {
        return Ok(());
    };
    let into = r.path(ls.into);
    let files: &[LocalFile] = overlay
        .skills
        .iter()
        .find(|(n, _)| *n == r.name)
        .map_or(&[], |(_, f)| f.as_slice());
    let skill_names: std::collections::BTreeSet<&str> =
        files.iter().filter_map(|f| f.path.first()).collect();
    let mut clashes = Vec::new();
    for name in skill_names {
        let Ok(dir) = RelPath::new(name).map(|n| n.under(&into)) else {
            continue;
        };
        if lookup(w, *root, &dir)?.is_none() {
            continue;
        }
        if overlay
            .local
            .allow_skill_overrides
            .iter()
            .any(|n| n == name)
        {
            *root = edit(w, *root, &dir, Edit::Remove)?;
        } else {
            clashes.push(name.to_owned());
        }
    }
    if !clashes.is_empty() {
        return Err(OverlayError::SkillConflict {
            names: clashes,
            overlay: ls.overlay,
        });
    }
    for f in files {
        *root = put(
            w,
            *root,
            &f.path.under(&into),
            (f.kind, f.private),
            &f.bytes,
        )?;
    }
    Ok(())
}

/// Stores `bytes` at `path` as `kind`; owner-only when `private`.
fn put(
    w: &mut Writer<'_>,
    root: ObjectId,
    path: &RelPath,
    (kind, private): (EntryKind, bool),
    bytes: &[u8],
) -> Result<ObjectId, StoreError> {
    let (id, chunked) = if kind == EntryKind::Symlink {
        (w.put(ObjectKind::Blob, bytes)?, false)
    } else {
        w.put_content(bytes)?
    };
    edit(
        w,
        root,
        path,
        Edit::Put {
            kind,
            id,
            size: bytes.len() as u64,
            private: private && kind != EntryKind::Symlink,
            chunked,
        },
    )
}

/// The master's lines, then the lines the follower added (present now, absent from the
/// master's previous version and from its new one).
pub fn append_local(master: &[u8], current: &[u8], previous_master: Option<&[u8]>) -> Vec<u8> {
    let master_text = String::from_utf8_lossy(master);
    let current_text = String::from_utf8_lossy(current);
    let prev_text = previous_master.map(String::from_utf8_lossy);
    let known: std::collections::HashSet<&str> = master_text
        .lines()
        .chain(prev_text.as_deref().unwrap_or("").lines())
        .collect();
    let mut out = master_text.to_string();
    let local: Vec<&str> = current_text
        .lines()
        .filter(|l| !known.contains(l) && !l.trim().is_empty())
        .collect();
    if !local.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        for l in local {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_local_keeps_follower_lines_and_drops_removed_master_lines() {
        let prev = b"allow git\nallow ls\n";
        let current = b"allow git\nallow ls\nallow cargo test\n";
        let master = b"allow git\nallow rg\n";
        let out = String::from_utf8(append_local(master, current, Some(prev))).unwrap();
        assert_eq!(out, "allow git\nallow rg\nallow cargo test\n");
        assert_eq!(append_local(b"a\n", b"a\n", None), b"a\n");
    }
}
