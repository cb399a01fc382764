//! Walks the selected part of the codex dir with `lstat`. Symlinks are kept as symlinks,
//! except a top-level one that leaves the codex dir (a stow-style `config.toml` or `skills/`
//! living in a dotfiles folder): its target's content is taken as if it stood there, since a
//! follower has no such folder to point at.

use super::SnapshotError;
use super::select::{Verdict, verdict};
use crate::object::{EntryKind, EntryName, ObjectId};
use crate::paths::is_secret;
use crate::store::StatEntry;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file found by the walk; `stat.id` is filled in from the cache or by hashing.
#[derive(Debug)]
pub struct Found {
    pub rel: String,
    pub abs: PathBuf,
    pub stat: StatEntry,
    /// Group and others may not read it (or it is a credential, whatever its mode).
    pub private: bool,
}

/// A top-level symlink whose target (outside the codex dir) was taken in its place.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Followed {
    /// Its name in the codex dir.
    pub name: String,
    /// Where it points (resolved).
    pub target: PathBuf,
}

/// A top-level name of the codex dir that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    pub name: String,
    /// The exclusion rule's reason, or "not in the selection" for an unlisted name.
    pub why: &'static str,
}

/// A directory level as walked: names with files (indexes into `Walk::files`) or subdirs.
#[derive(Debug, Default)]
pub struct Dir {
    pub entries: Vec<(EntryName, Node)>,
}

#[derive(Debug)]
pub enum Node {
    File(usize),
    Dir(Dir),
}

/// Everything the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub root: Dir,
    pub files: Vec<Found>,
    /// Paths skipped, each with the reason (non-UTF-8 names, sockets, …).
    pub warnings: Vec<String>,
    /// Top-level symlinks followed out of the codex dir.
    pub followed: Vec<Followed>,
    /// Top-level names not taken (runtime state, unlisted files), each with the reason.
    pub left_out: Vec<LeftOut>,
}

/// Walks `codex_dir`, taking what the selection table selects.
pub fn walk(codex_dir: &Path) -> Result<Walk, SnapshotError> {
    match fs::symlink_metadata(codex_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(SnapshotError::NotADirectory {
                path: codex_dir.to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::CodexDirMissing {
                path: codex_dir.to_owned(),
            });
        }
        Err(e) => return Err(SnapshotError::unreadable(codex_dir, e)),
    }
    let mut walk = Walk::default();
    let mut root = Dir::default();
    // Resolved, so a link's target can be told to lie inside or outside it.
    let inside =
        fs::canonicalize(codex_dir).map_err(|e| SnapshotError::unreadable(codex_dir, e))?;
    walk_dir(codex_dir, "", Some(&inside), &mut root, &mut walk)?;
    walk.root = root;
    Ok(walk)
}

/// The target of a top-level symlink when it leaves the codex dir and exists; `None` keeps
/// the link as a link (it points inside, or nowhere).
fn leaves(link: &Path, inside: &Path) -> Option<(PathBuf, fs::Metadata)> {
    let target = fs::canonicalize(link).ok()?;
    if target.starts_with(inside) {
        return None;
    }
    let meta = fs::metadata(&target).ok()?;
    (meta.is_dir() || meta.is_file()).then_some((target, meta))
}

/// Walks one directory level; `top` is the resolved codex dir while walking its top level.
fn walk_dir(
    abs: &Path,
    rel: &str,
    top: Option<&Path>,
    dir: &mut Dir,
    walk: &mut Walk,
) -> Result<(), SnapshotError> {
    let reader = fs::read_dir(abs).map_err(|e| SnapshotError::unreadable(abs, e))?;
    for entry in reader {
        let entry = entry.map_err(|e| SnapshotError::unreadable(abs, e))?;
        let child_abs = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            walk.warnings.push(format!(
                "skipped {}: the file name is not UTF-8",
                child_abs.display()
            ));
            continue;
        };
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        match verdict(&child_rel) {
            Verdict::Taken => {}
            Verdict::Excluded(rule) if rel.is_empty() => {
                walk.left_out.push(LeftOut {
                    name: child_rel,
                    why: rule.why,
                });
                continue;
            }
            Verdict::Unlisted if rel.is_empty() => {
                walk.left_out.push(LeftOut {
                    name: child_rel,
                    why: "not in the selection",
                });
                continue;
            }
            Verdict::Excluded(_) | Verdict::Unlisted => continue,
        }
        let entry_name = match EntryName::new(name) {
            Ok(n) => n,
            Err(e) => {
                walk.warnings
                    .push(format!("skipped {}: {e}", child_abs.display()));
                continue;
            }
        };
        let mut meta = fs::symlink_metadata(&child_abs)
            .map_err(|e| SnapshotError::unreadable(&child_abs, e))?;
        let mut child_abs = child_abs;
        if meta.file_type().is_symlink() {
            if let Some((target, target_meta)) = top.and_then(|inside| leaves(&child_abs, inside)) {
                walk.followed.push(Followed {
                    name: child_rel.clone(),
                    target: target.clone(),
                });
                child_abs = target;
                meta = target_meta;
            }
        }
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            let mut sub = Dir::default();
            walk_dir(&child_abs, &child_rel, None, &mut sub, walk)?;
            dir.entries.push((entry_name, Node::Dir(sub)));
            continue;
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_file() {
            if meta.mode() & 0o100 != 0 {
                EntryKind::Executable
            } else {
                EntryKind::File
            }
        } else {
            walk.warnings.push(format!(
                "skipped {}: not a regular file, directory or symlink",
                child_abs.display()
            ));
            continue;
        };
        let stat = stat_entry(&meta, kind);
        let private =
            kind != EntryKind::Symlink && (meta.mode() & 0o044 == 0 || is_secret(&child_rel));
        dir.entries.push((entry_name, Node::File(walk.files.len())));
        walk.files.push(Found {
            rel: child_rel,
            abs: child_abs,
            stat,
            private,
        });
    }
    Ok(())
}

/// The stat fields codexport compares, with a zero id.
pub fn stat_entry(meta: &fs::Metadata, kind: EntryKind) -> StatEntry {
    StatEntry {
        size: meta.size(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ctime_ns: meta
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.ctime_nsec()),
        inode: meta.ino(),
        kind,
        id: ObjectId::from_bytes([0; 32]),
        racy: false,
        chunked: false,
    }
}

/// Reads what a file or symlink holds: its bytes, or the link target's bytes.
pub fn read_content(found: &Found) -> Result<Vec<u8>, SnapshotError> {
    if found.stat.kind == EntryKind::Symlink {
        use std::os::unix::ffi::OsStrExt;
        let target =
            fs::read_link(&found.abs).map_err(|e| SnapshotError::unreadable(&found.abs, e))?;
        Ok(target.as_os_str().as_bytes().to_vec())
    } else {
        fs::read(&found.abs).map_err(|e| SnapshotError::unreadable(&found.abs, e))
    }
}
