//! The follower's overlay and the merge: canonical tree + overlay + follower facts → the
//! merged tree that checkout writes into `~/.codex`.
//!
//! The merge is a pure function of its inputs (the facts include the follower's current
//! copies of the few files it co-owns), and its result is stored, so every apply is an exact
//! rollback point and `diff` is a tree diff. Nothing here writes outside the store.

pub mod config;
pub mod local;

pub use local::{LocalConfig, Policy};

use crate::object::{EntryKind, EntryName, ObjectId, ObjectKind, RelPath, Revision, Tree, TreeEntry};
use crate::store::diff::walk_files;
use crate::store::{ObjectSource, StoreError, Writer};
use miette::Diagnostic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum OverlayError {
    #[error("Local MCP conflicts with canonical names: {}.", names.join(", "))]
    #[diagnostic(code(codexport::usage::mcp_conflict), help("Add allowMcpOverrides = [{}] to ~/.codexport/local.toml to let your local definition replace the master's, or rename it in ~/.codexport/mcps.local.toml. Nothing was written.", quoted(names)))]
    McpConflict { names: Vec<String> },
    #[error("Local skills conflict with canonical skills: {}.", names.join(", "))]
    #[diagnostic(code(codexport::usage::skill_conflict), help("Add allowSkillOverrides = [{}] to ~/.codexport/local.toml to let your local skill replace the master's, or rename it in ~/.codexport/skills. Nothing was written.", quoted(names)))]
    SkillConflict { names: Vec<String> },
    #[error("{which} is not valid TOML: {what}")]
    #[diagnostic(code(codexport::usage::bad_toml), help("fix the file; nothing was written"))]
    BadConfig { which: &'static str, what: String },
    #[error("{} is invalid: {what}", path.display())]
    #[diagnostic(code(codexport::usage::bad_local), help("fix ~/.codexport/local.toml; nothing was written"))]
    BadLocal { path: PathBuf, what: String },
    #[error("{} cannot be used: {what}", path.display())]
    #[diagnostic(code(codexport::usage::bad_overlay_file), help("rename or remove it; overlay file names follow the same rules as synced files"))]
    BadOverlayFile { path: PathBuf, what: String },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(code(codexport::overlay::io), help("check permissions of ~/.codexport and ~/.codex"))]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// A file of the overlay (under `skills/` or `overrides/` of the state dir).
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub path: RelPath,
    pub kind: EntryKind,
    pub bytes: Vec<u8>,
}

/// Everything the follower adds: `local.toml`, `mcps.local.toml`, `skills/`, `overrides/`.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    pub local: LocalConfig,
    pub local_mcps: Option<String>,
    pub skills: Vec<LocalFile>,
    pub overrides: Vec<LocalFile>,
}

impl Overlay {
    pub fn load(state_dir: &Path) -> Result<Self, OverlayError> {
        let local = LocalConfig::load(&state_dir.join("local.toml"))?;
        let mcps = state_dir.join("mcps.local.toml");
        let local_mcps = match std::fs::read_to_string(&mcps) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(OverlayError::Io { path: mcps, source: e }),
        };
        Ok(Self { local, local_mcps, skills: read_files(&state_dir.join("skills"))?, overrides: read_files(&state_dir.join("overrides"))? })
    }
}

/// Every file below `dir` (symlinks as symlinks), with paths relative to it.
fn read_files(dir: &Path) -> Result<Vec<LocalFile>, OverlayError> {
    let mut out = Vec::new();
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(out);
    }
    read_into(dir, &RelPath::root(), &mut out)?;
    Ok(out)
}

fn read_into(abs: &Path, rel: &RelPath, out: &mut Vec<LocalFile>) -> Result<(), OverlayError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &Path, e| OverlayError::Io { path: path.to_owned(), source: e };
    for entry in std::fs::read_dir(abs).map_err(|e| io(abs, e))? {
        let entry = entry.map_err(|e| io(abs, e))?;
        let p = entry.path();
        let name = entry.file_name().into_string().map_err(|_| OverlayError::BadOverlayFile { path: p.clone(), what: "name is not UTF-8".into() })?;
        let name = EntryName::new(name).map_err(|e| OverlayError::BadOverlayFile { path: p.clone(), what: e.to_string() })?;
        let child = rel.join(&name);
        let meta = std::fs::symlink_metadata(&p).map_err(|e| io(&p, e))?;
        if meta.is_dir() {
            read_into(&p, &child, out)?;
        } else if meta.file_type().is_symlink() {
            use std::os::unix::ffi::OsStrExt;
            let target = std::fs::read_link(&p).map_err(|e| io(&p, e))?;
            out.push(LocalFile { path: child, kind: EntryKind::Symlink, bytes: target.as_os_str().as_bytes().to_vec() });
        } else if meta.is_file() {
            let kind = if meta.permissions().mode() & 0o100 != 0 { EntryKind::Executable } else { EntryKind::File };
            out.push(LocalFile { path: child, kind, bytes: std::fs::read(&p).map_err(|e| io(&p, e))? });
        }
    }
    Ok(())
}

/// What the merge knows about this follower.
pub struct MergeFacts<'a> {
    pub home: &'a Path,
    pub codex_dir: &'a Path,
    /// The master's host as this follower reaches it (replaces loopback MCP URLs).
    pub master_host: Option<String>,
    /// The follower's current content of a path in its codex dir, if present.
    pub current: &'a dyn Fn(&RelPath) -> Option<Vec<u8>>,
    /// The canonical tree of the revision applied last, if any.
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
}

type FileMap = BTreeMap<RelPath, (EntryKind, ObjectId, u64)>;

const CONFIG: &str = "config.toml";

/// Merges a revision with the overlay and stores the merged tree.
pub fn merge(w: &mut Writer<'_>, revision: &Revision, overlay: &Overlay, facts: &MergeFacts<'_>) -> Result<Merged, OverlayError> {
    let mut files: FileMap = walk_files(w, revision.root)?.into_iter().map(|(p, e)| (p, (e.kind, e.id, e.size))).collect();
    let mut unknown_variables = Vec::new();
    let previous = |w: &Writer<'_>, path: &str| -> Result<Option<Vec<u8>>, OverlayError> {
        let Some(root) = facts.previous_canonical else { return Ok(None) };
        let found = walk_files(w, root)?.into_iter().find(|(p, _)| p.as_str() == path);
        Ok(match found {
            Some((_, e)) => Some(w.blob(&e.id)?),
            None => None,
        })
    };

    // config.toml
    let config_path = RelPath::new(CONFIG).expect("valid path");
    if let Some((kind, id, _)) = files.get(&config_path).copied() {
        let master = String::from_utf8_lossy(&w.blob(&id)?).into_owned();
        let mut ctx = config::ConfigContext {
            master_home: revision.home.clone(),
            master_codex_dir: revision.codex_dir.clone(),
            home: facts.home.display().to_string(),
            codex_dir: facts.codex_dir.display().to_string(),
            path_variables: overlay.local.path_variables.clone(),
            master_host: facts.master_host.clone(),
            local_mcps: overlay.local_mcps.clone(),
            allow_mcp_overrides: overlay.local.allow_mcp_overrides.clone(),
            current: (facts.current)(&config_path).map(|b| String::from_utf8_lossy(&b).into_owned()),
            previous_master: None,
            launcher: facts.launcher.map(|p| p.display().to_string()),
        };
        if let Some(prev) = previous(w, CONFIG)? {
            let prev_ctx = config::ConfigContext { current: None, local_mcps: None, launcher: None, ..ctx.clone() };
            ctx.previous_master = config::merge_config(&String::from_utf8_lossy(&prev), &prev_ctx).ok().map(|m| m.text);
        }
        let merged = config::merge_config(&master, &ctx)?;
        unknown_variables = merged.unknown_variables;
        put(w, &mut files, config_path, kind, &merged.text.into_bytes())?;
    } else if overlay.local_mcps.is_some() {
        let ctx = config::ConfigContext {
            home: facts.home.display().to_string(),
            codex_dir: facts.codex_dir.display().to_string(),
            path_variables: overlay.local.path_variables.clone(),
            local_mcps: overlay.local_mcps.clone(),
            ..config::ConfigContext::default()
        };
        let merged = config::merge_config("", &ctx)?;
        put(w, &mut files, config_path, EntryKind::File, &merged.text.into_bytes())?;
    }

    // Co-owned files, by policy.
    let policy_paths: Vec<(RelPath, Policy)> = files.keys().map(|p| (p.clone(), overlay.local.policy(p.as_str()))).filter(|(_, pol)| *pol != Policy::Replace).collect();
    for (path, policy) in policy_paths {
        let Some(current) = (facts.current)(&path) else { continue };
        let (kind, id, _) = files[&path];
        let master = w.blob(&id)?;
        let content = match policy {
            Policy::Replace => continue,
            Policy::KeepLocal => current,
            Policy::AppendLocal => append_local(&master, &current, previous(w, path.as_str())?.as_deref()),
        };
        put(w, &mut files, path, kind, &content)?;
    }

    // Local skills land where Codex reads skills.
    let mut clashes = std::collections::BTreeSet::new();
    let skill_names: std::collections::BTreeSet<String> = overlay.skills.iter().filter_map(|f| f.path.first().map(str::to_owned)).collect();
    for name in &skill_names {
        let prefix = format!("skills/{name}");
        let canonical: Vec<RelPath> = files.keys().filter(|p| p.as_str() == prefix || p.as_str().starts_with(&format!("{prefix}/"))).cloned().collect();
        if canonical.is_empty() {
            continue;
        }
        if overlay.local.allow_skill_overrides.contains(name) {
            for p in canonical {
                files.remove(&p);
            }
        } else {
            clashes.insert(name.clone());
        }
    }
    if !clashes.is_empty() {
        return Err(OverlayError::SkillConflict { names: clashes.into_iter().collect() });
    }
    for f in &overlay.skills {
        let path = RelPath::new(&format!("skills/{}", f.path)).map_err(|e| OverlayError::BadOverlayFile { path: PathBuf::from(f.path.as_str()), what: e.to_string() })?;
        put(w, &mut files, path, f.kind, &f.bytes)?;
    }
    // Overrides replace canonical files at the same path.
    for f in &overlay.overrides {
        // A file cannot sit where the merged tree has a directory, or below a file.
        remove_conflicting(&mut files, &f.path);
        put(w, &mut files, f.path.clone(), f.kind, &f.bytes)?;
    }

    let tree = build(w, &files)?;
    Ok(Merged { tree, unknown_variables })
}

fn put(w: &mut Writer<'_>, files: &mut FileMap, path: RelPath, kind: EntryKind, bytes: &[u8]) -> Result<(), StoreError> {
    let id = w.put(ObjectKind::Blob, bytes)?;
    files.insert(path, (kind, id, bytes.len() as u64));
    Ok(())
}

fn remove_conflicting(files: &mut FileMap, path: &RelPath) {
    let below = format!("{}/", path.as_str());
    files.retain(|p, _| !p.as_str().starts_with(&below) && !path.as_str().starts_with(&format!("{}/", p.as_str())));
}

/// The master's lines, then the lines the follower added (present now, absent from the
/// master's previous version and from its new one).
pub fn append_local(master: &[u8], current: &[u8], previous_master: Option<&[u8]>) -> Vec<u8> {
    let master_text = String::from_utf8_lossy(master);
    let current_text = String::from_utf8_lossy(current);
    let prev_text = previous_master.map(String::from_utf8_lossy);
    let known: std::collections::HashSet<&str> = master_text.lines().chain(prev_text.as_deref().unwrap_or("").lines()).collect();
    let mut out = master_text.to_string();
    let local: Vec<&str> = current_text.lines().filter(|l| !known.contains(l) && !l.trim().is_empty()).collect();
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

/// Builds and stores the nested trees of a flat file map; returns the root id.
fn build(w: &mut Writer<'_>, files: &FileMap) -> Result<ObjectId, StoreError> {
    #[derive(Default)]
    struct Dir {
        files: Vec<TreeEntry>,
        dirs: BTreeMap<String, Dir>,
    }
    fn store(w: &mut Writer<'_>, dir: Dir) -> Result<(ObjectId, u64), StoreError> {
        let mut entries = dir.files;
        for (name, sub) in dir.dirs {
            let (id, size) = store(w, sub)?;
            entries.push(TreeEntry { name: EntryName::new(name).expect("came from a valid path"), kind: EntryKind::Tree, id, size });
        }
        let tree = Tree::new(entries).map_err(|e| StoreError::Corrupt { what: format!("merged tree: {e}") })?;
        Ok((w.put_tree(&tree)?, tree.size()))
    }
    let mut root = Dir::default();
    for (path, (kind, id, size)) in files {
        let parts: Vec<&str> = path.components().collect();
        let (last, parents) = parts.split_last().expect("file paths are not empty");
        let mut dir = &mut root;
        for p in parents {
            dir = dir.dirs.entry((*p).to_owned()).or_default();
        }
        dir.files.push(TreeEntry { name: EntryName::new(*last).expect("came from a valid path"), kind: *kind, id: *id, size: *size });
    }
    Ok(store(w, root)?.0)
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
