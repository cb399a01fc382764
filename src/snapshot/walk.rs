//! Walks the selected part of every root with `lstat`. Symlinks are kept as symlinks, except
//! a top-level one that leaves its root (a stow-style `config.toml` or `skills/` living in a
//! dotfiles folder): its target's content is taken as if it stood there, since a follower
//! has no such folder to point at. A root's own folder may be a link (it is where the user
//! keeps that root).

use super::SnapshotError;
use super::select::{Selection, UNLISTED, Verdict};
use crate::object::{EntryKind, EntryName, ObjectId};
use crate::roots::Root;
use crate::store::StatEntry;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file found by the walk; `stat.id` is filled in from the cache or by hashing.
#[derive(Debug)]
pub struct Found {
    /// Its path in the tree of roots (`codex/config.toml`).
    pub rel: String,
    pub abs: PathBuf,
    pub stat: StatEntry,
    /// Group and others may not read it (or it is a credential, whatever its mode).
    pub private: bool,
}

/// A top-level symlink whose target (outside its root) was taken in its place.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Followed {
    /// The root it is in (its name in the root table).
    pub root: &'static str,
    /// Its name in that root.
    pub name: String,
    /// Where it points (resolved).
    pub target: PathBuf,
}

/// A top-level name of a root that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftOut {
    /// The root it is in (its name in the root table).
    pub root: &'static str,
    pub name: String,
    /// Whether it is a folder (shown as `name/`).
    pub dir: bool,
    /// The exclusion rule's reason, or "not in the selection" for an unlisted name.
    pub why: &'static str,
    /// No rule knows it (neither taken nor known runtime state): the master names it, in a
    /// root that asks for it, so a new setup folder does not go unnoticed.
    pub unknown: bool,
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
    /// The tree of roots: one folder per root that holds anything.
    pub root: Dir,
    pub files: Vec<Found>,
    /// Paths skipped, each with the reason (non-UTF-8 names, sockets, …).
    pub warnings: Vec<String>,
    /// Top-level symlinks followed out of their root.
    pub followed: Vec<Followed>,
    /// Top-level names not taken (runtime state, unlisted files), each with the reason.
    pub left_out: Vec<LeftOut>,
}

/// Walks every root at its folder, taking what its selection takes. A required root that is
/// missing (or not a folder) is an error; a missing optional one holds nothing.
pub fn walk(roots: &[(Selection<'_>, &Path)]) -> Result<Walk, SnapshotError> {
    let mut walk = Walk::default();
    let mut top = Dir::default();
    for (selection, dir) in roots {
        let root = selection.root;
        if !root_exists(root, dir)? {
            continue;
        }
        let mut sub = Dir::default();
        // Resolved, so a link's target can be told to lie inside or outside it.
        let inside = fs::canonicalize(dir).map_err(|e| SnapshotError::unreadable(dir, e))?;
        let at = At {
            selection,
            prefix: root.name,
            top: Some(&inside),
        };
        walk_dir(dir, "", &at, &mut sub, &mut walk)?;
        if !sub.entries.is_empty() {
            let name = EntryName::new(root.name).expect("root names are valid entry names");
            top.entries.push((name, Node::Dir(sub)));
        }
    }
    walk.root = top;
    Ok(walk)
}

/// What the walk records for a top-level name of `root` that its selection does not take.
fn left_out_of(root: &Root, name: &str, dir: bool, verdict: Verdict) -> Option<LeftOut> {
    let (why, unknown) = match verdict {
        Verdict::Taken => return None,
        Verdict::Excluded(why) => (why, false),
        Verdict::Unlisted => (UNLISTED, true),
    };
    Some(LeftOut {
        root: root.name,
        name: name.to_owned(),
        dir,
        why,
        unknown,
    })
}

/// The top-level names of every root that a snapshot leaves out, with why: the verdicts of
/// the walk, from one `readdir` per root (for `status`, which must stay cheap).
pub fn left_out(roots: &[(Selection<'_>, &Path)]) -> Result<Vec<LeftOut>, SnapshotError> {
    let mut out = Vec::new();
    for (selection, dir) in roots {
        let reader = match fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SnapshotError::unreadable(dir, e)),
        };
        for entry in reader {
            let entry = entry.map_err(|e| SnapshotError::unreadable(dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            out.extend(left_out_of(
                selection.root,
                &name,
                is_dir,
                selection.verdict(&name),
            ));
        }
    }
    out.sort_by(|a, b| (a.root, &a.name).cmp(&(b.root, &b.name)));
    Ok(out)
}

impl LeftOut {
    /// Whether the master names it as not synced: no rule knows it, in a root that asks for
    /// such notices (`~/.codex`).
    pub fn is_notice(&self) -> bool {
        self.unknown && crate::roots::by_name(self.root).is_some_and(|r| r.notice_unlisted)
    }

    /// Its name as shown (`foo/` for a folder).
    pub fn shown(&self) -> String {
        if self.dir {
            format!("{}/", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// Whether a root's folder is there to walk (a link to a folder counts).
fn root_exists(root: &Root, dir: &Path) -> Result<bool, SnapshotError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(_) if root.required => Err(SnapshotError::NotADirectory {
            path: dir.to_owned(),
        }),
        Ok(_) => Err(SnapshotError::RootNotADirectory {
            root: root.shown,
            path: dir.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.required => {
            Err(SnapshotError::CodexDirMissing {
                path: dir.to_owned(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SnapshotError::unreadable(dir, e)),
    }
}

/// Where a walk is: the root's selection, its name (prefix of tree paths), and, at the
/// root's top level only, the resolved root folder.
struct At<'a> {
    selection: &'a Selection<'a>,
    prefix: &'static str,
    top: Option<&'a Path>,
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

/// Walks one directory level (`rel` relative to the root).
fn walk_dir(
    abs: &Path,
    rel: &str,
    at: &At<'_>,
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
        let verdict = at.selection.verdict(&child_rel);
        if rel.is_empty() {
            let dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if let Some(left) = left_out_of(at.selection.root, &child_rel, dir, verdict) {
                walk.left_out.push(left);
                continue;
            }
        } else if verdict != Verdict::Taken {
            continue;
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
            if let Some((target, target_meta)) =
                at.top.and_then(|inside| leaves(&child_abs, inside))
            {
                walk.followed.push(Followed {
                    root: at.selection.root.name,
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
            let below = At { top: None, ..*at };
            walk_dir(&child_abs, &child_rel, &below, &mut sub, walk)?;
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
        let private = kind != EntryKind::Symlink
            && (meta.mode() & 0o044 == 0 || at.selection.root.is_secret(&child_rel));
        dir.entries.push((entry_name, Node::File(walk.files.len())));
        walk.files.push(Found {
            rel: format!("{}/{child_rel}", at.prefix),
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
