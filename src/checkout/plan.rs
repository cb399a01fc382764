//! The plan of an apply: what to change so that every managed path of the roots' folders
//! holds the new merged tree (a tree of roots: its top-level entries are roots, each written
//! into its own folder, see [`crate::roots`]). It is made against what is on disk (through the checkout index), not
//! against what was written last time, so a file deleted, edited, made more readable or
//! replaced by a folder or a link is put back, and a type change of the master's (file ↔
//! folder ↔ symlink) works in both directions.
//!
//! Managed paths are those of the last applied tree and the new one (and the folders above
//! them). Anything else is never touched. A managed path that holds something codexport did
//! not write there (a local edit, a folder in the way) is backed up before it is replaced.

use super::disk::{Found, Parents, Stat, abs, found_with, lstat, parents};
use super::index::{Index, IndexEntry};
use super::{CheckoutError, STAGING_NAME};
use crate::object::{EntryKind, ObjectId, RelPath, TreeEntry};
use crate::roots::RootDirs;
use crate::store::ObjectSource;
use crate::store::diff::{ChangeKind, tree_diff, walk_files};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

/// Why a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// New in the tree.
    Added,
    /// Changed in the tree.
    #[default]
    Updated,
    /// Unchanged in the tree, but not what the disk holds (deleted, edited, chmod'ed, or
    /// replaced locally): put back.
    Restored,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Write the blob `id` at `path` as `kind` (file, executable or symlink) with permission
    /// bits `mode` (files only). `old` is what the last applied tree had there, if anything.
    Put {
        path: RelPath,
        kind: EntryKind,
        id: ObjectId,
        old: Option<(EntryKind, ObjectId)>,
        /// The tree's private flag.
        #[serde(default)]
        private: bool,
        #[serde(default)]
        mode: Option<u32>,
        #[serde(default)]
        why: Why,
        /// The path holds something codexport did not write there: it is backed up first.
        #[serde(default)]
        backup: bool,
    },
    /// Remove what is at `path`: the file codexport wrote (`old`), or, backed up first,
    /// something else in the way (with `dir`, a whole folder).
    Delete {
        path: RelPath,
        old: Option<(EntryKind, ObjectId)>,
        #[serde(default)]
        backup: bool,
        #[serde(default)]
        dir: bool,
    },
}

impl Op {
    pub fn path(&self) -> &RelPath {
        match self {
            Op::Put { path, .. } | Op::Delete { path, .. } => path,
        }
    }

    /// Whether the path's current content is backed up before this step.
    pub fn backs_up(&self) -> bool {
        match self {
            Op::Put { backup, .. } | Op::Delete { backup, .. } => *backup,
        }
    }
}

/// A plan from what the codex dir holds to a merged tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The merged tree applied before (`None` on the first apply).
    pub old: Option<ObjectId>,
    pub new: ObjectId,
    /// Deletes first (shallowest first), then puts, each in path order.
    pub ops: Vec<Op>,
    /// Directories of the old tree that the new one lacks, deepest first; removed if empty.
    pub stale_dirs: Vec<RelPath>,
    /// The index entries of the new tree's paths that no step writes (already right).
    #[serde(skip)]
    pub kept: Vec<IndexEntry>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.stale_dirs.is_empty()
    }

    /// Counts of (added, updated, deleted, restored) files.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for op in &self.ops {
            match op {
                Op::Put {
                    why: Why::Added, ..
                } => c.added += 1,
                Op::Put {
                    why: Why::Updated, ..
                } => c.updated += 1,
                Op::Put {
                    why: Why::Restored, ..
                } => c.restored += 1,
                Op::Delete { old: Some(_), .. } => c.deleted += 1,
                Op::Delete { old: None, .. } => {}
            }
        }
        c
    }

    /// The paths a step changes, and what is wrong with each now (for `verify`), once each.
    pub fn differences(&self) -> Vec<(RelPath, &'static str)> {
        let mut seen = HashSet::new();
        self.ops
            .iter()
            .filter(|op| seen.insert(op.path().clone()))
            .map(|op| {
                let what = match op {
                    Op::Delete { dir: true, .. } => "a folder stands where the tree has a file",
                    Op::Put {
                        why: Why::Added, ..
                    } => "missing (new in the tree)",
                    Op::Put {
                        why: Why::Updated, ..
                    } => "changed in the tree",
                    Op::Put {
                        backup: true,
                        why: Why::Restored,
                        ..
                    } => "differs from the tree",
                    Op::Put { old: None, .. } => "missing",
                    Op::Put { .. } => "missing, or its mode differs from the tree",
                    Op::Delete {
                        old: Some(_),
                        backup: false,
                        ..
                    } => "no longer in the tree",
                    Op::Delete { old: Some(_), .. } => "edited here, and no longer in the tree",
                    Op::Delete { .. } => "in the way of the tree",
                };
                (op.path().clone(), what)
            })
            .collect()
    }
}

/// What a plan does, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    pub restored: u64,
}

/// The permission bits a file of the tree is written with: 0644 or 0755, owner-only (0600,
/// 0700) when private or a credential; never more permissive than a stricter file it
/// replaces (only the exec bit follows the tree).
pub fn mode_for(path: &RelPath, kind: EntryKind, private: bool, replacing: Option<u32>) -> u32 {
    let base = if kind == EntryKind::Executable {
        0o755
    } else {
        0o644
    };
    let base = if private || crate::roots::is_secret(path) {
        base & 0o700
    } else {
        base
    };
    match replacing {
        Some(existing) => base & (existing | 0o100),
        None => base,
    }
}

/// A file as the tree has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    kind: EntryKind,
    id: ObjectId,
    private: bool,
}

impl From<&TreeEntry> for Want {
    fn from(e: &TreeEntry) -> Self {
        Self {
            kind: e.kind,
            id: e.id,
            private: e.private,
        }
    }
}

/// What codexport wrote at a path, and (from a valid index) the stat it had then.
#[derive(Debug, Clone, Copy)]
struct Written {
    want: Want,
    stat: Option<Stat>,
    racy: bool,
}

/// A path as found on disk.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// A folder above it is not a real folder (removed first), so the path itself is free.
    Blocked,
    Found(Found),
}

/// Plans the change from what the roots' folders hold to `new`. `old` is the merged tree
/// applied last and `index` its checkout index, when valid (see [`Index::load`]); without
/// one, every managed file present is hashed.
pub fn plan(
    src: &impl ObjectSource,
    dirs: &RootDirs,
    old: Option<ObjectId>,
    new: ObjectId,
    index: Option<&Index>,
) -> Result<Plan, CheckoutError> {
    let written = written(src, old, index)?;
    let (wanted, changed) = wanted(src, old, new, &written)?;
    for (path, w) in &wanted {
        let in_root = dirs.locate(path).filter(|(_, rel)| !rel.is_root());
        let Some((_, rel)) = in_root else {
            return Err(CheckoutError::OutsideRoots {
                path: path.to_string(),
            });
        };
        if rel.first() == Some(STAGING_NAME)
            || path
                .components()
                .any(|c| c.starts_with(super::stage::STAGED_PREFIX))
        {
            return Err(CheckoutError::Reserved {
                path: path.to_string(),
            });
        }
        if w.kind == EntryKind::Tree {
            return Err(CheckoutError::BadPlan {
                path: path.to_string(),
            });
        }
    }
    // What the old tree had outside today's roots (a root this codexport no longer places)
    // is left alone: it cannot be reached.
    let written: BTreeMap<RelPath, Written> = written
        .into_iter()
        .filter(|(p, _)| dirs.locate(p).is_some_and(|(_, rel)| !rel.is_root()))
        .collect();
    let disk = probe(dirs, &written, &wanted)?;
    let mut decide = Decide {
        dirs,
        written: &written,
        wanted: &wanted,
        changed: &changed,
        deleted: written
            .keys()
            .filter(|p| !wanted.contains_key(*p))
            .map(RelPath::as_str)
            .collect(),
        stale: stale_dirs(&written, &wanted),
        removals: BTreeMap::new(),
        puts: Vec::new(),
        kept: Vec::new(),
    };
    decide.obstacles(&disk.obstacles)?;
    for (path, probe) in disk.probes {
        decide.path(path, probe)?;
    }
    // Shallowest first: removing a folder or link also removes what was below it.
    let mut ops: Vec<Op> = decide.removals.into_values().collect();
    ops.sort_by_key(|op| (op.path().components().count(), op.path().clone()));
    ops.extend(decide.puts);
    Ok(Plan {
        old,
        new,
        ops,
        stale_dirs: decide.stale,
        kept: decide.kept,
    })
}

/// What the disk holds at every managed path.
struct Disk<'a> {
    probes: Vec<(&'a RelPath, Probe)>,
    /// Things that are not folders where the tree needs one above a wanted path.
    obstacles: BTreeMap<RelPath, std::path::PathBuf>,
}

/// One `lstat` walk over the managed paths, in path order; then the files whose stat
/// changed since they were written are hashed, in parallel.
fn probe<'a>(
    dirs: &RootDirs,
    written: &'a BTreeMap<RelPath, Written>,
    wanted: &'a BTreeMap<RelPath, Want>,
) -> Result<Disk<'a>, CheckoutError> {
    let paths: BTreeSet<&RelPath> = written.keys().chain(wanted.keys()).collect();
    let mut known = HashSet::new();
    let mut obstacles = BTreeMap::new();
    let mut looked: Vec<(&RelPath, Option<std::fs::Metadata>, Option<Probe>)> = Vec::new();
    for path in paths {
        match parents(dirs, path, &mut known, None)? {
            Parents::Dirs => {}
            Parents::Missing => {
                looked.push((path, None, Some(Probe::Found(Found::Missing))));
                continue;
            }
            Parents::Blocked(prefix, abs) => {
                // In the way only of what the tree wants there; what goes away is never
                // reached through a link or below a file.
                if wanted.contains_key(path) {
                    obstacles.entry(prefix).or_insert(abs);
                }
                looked.push((path, None, Some(Probe::Blocked)));
                continue;
            }
        }
        match lstat(&abs(dirs, path))? {
            None => looked.push((path, None, Some(Probe::Found(Found::Missing)))),
            Some(meta) => {
                let stat = Stat::of(&meta);
                let trusted = written.get(path).and_then(|w| {
                    let same = w.stat == Some(stat) && !w.racy;
                    same.then_some(Found::Blob(w.want.kind, w.want.id, stat))
                });
                looked.push((path, Some(meta), trusted.map(Probe::Found)));
            }
        }
    }
    let probes = looked
        .into_par_iter()
        .map(|(path, meta, probe)| match (probe, meta) {
            (Some(p), _) => Ok((path, p)),
            (None, Some(meta)) => {
                found_with(&abs(dirs, path), &meta).map(|f| (path, Probe::Found(f)))
            }
            (None, None) => Ok((path, Probe::Found(Found::Missing))),
        })
        .collect::<Result<_, CheckoutError>>()?;
    Ok(Disk { probes, obstacles })
}

/// The decisions, path by path.
struct Decide<'a> {
    dirs: &'a RootDirs,
    written: &'a BTreeMap<RelPath, Written>,
    wanted: &'a BTreeMap<RelPath, Want>,
    changed: &'a HashSet<RelPath>,
    /// Paths of the old tree the new one lacks.
    deleted: HashSet<&'a str>,
    stale: Vec<RelPath>,
    removals: BTreeMap<RelPath, Op>,
    puts: Vec<Op>,
    kept: Vec<IndexEntry>,
}

impl Decide<'_> {
    /// Something that is not a folder where the tree needs one: removed first, backed up
    /// unless it is exactly what codexport wrote there (the old tree had a file or link).
    fn obstacles(
        &mut self,
        obstacles: &BTreeMap<RelPath, std::path::PathBuf>,
    ) -> Result<(), CheckoutError> {
        for (prefix, abs) in obstacles {
            let had = self.written.get(prefix).map(|w| (w.want.kind, w.want.id));
            let ours = match (had, lstat(abs)?) {
                (Some(had), Some(meta)) => {
                    matches!(found_with(abs, &meta)?, Found::Blob(k, i, _) if (k, i) == had)
                }
                _ => false,
            };
            self.removals.insert(
                prefix.clone(),
                Op::Delete {
                    path: prefix.clone(),
                    old: had,
                    backup: !ours,
                    dir: false,
                },
            );
        }
        Ok(())
    }

    /// What to do at one managed path, given what is there.
    fn path(&mut self, path: &RelPath, probe: Probe) -> Result<(), CheckoutError> {
        let had = self.written.get(path).map(|w| (w.want.kind, w.want.id));
        let abs = abs(self.dirs, path);
        let found = match probe {
            Probe::Blocked => Found::Missing,
            Probe::Found(f) => f,
        };
        let Some(want) = self.wanted.get(path) else {
            // Gone from the tree: removed if it is still a file or link; a local edit is
            // backed up first. A folder or special file is not codexport's: left alone.
            if let Found::Blob(k, i, _) = found {
                self.removals.entry(path.clone()).or_insert(Op::Delete {
                    path: path.clone(),
                    old: had,
                    backup: had != Some((k, i)),
                    dir: false,
                });
            }
            return Ok(());
        };
        let why = match (self.changed.contains(path), had) {
            (false, _) => Why::Restored,
            (true, None) => Why::Added,
            (true, Some(_)) => Why::Updated,
        };
        let (backup, replacing) = match found {
            Found::Blob(k, i, stat) if (k, i) == (want.kind, want.id) => {
                let mode = mode_for(path, want.kind, want.private, Some(stat.perm()));
                if want.kind == EntryKind::Symlink || stat.perm() == mode {
                    self.kept.push(IndexEntry {
                        path: path.clone(),
                        kind: want.kind,
                        id: want.id,
                        private: want.private,
                        stat,
                        racy: false,
                    });
                    return Ok(());
                }
                // Same content, too permissive: written again with the right mode.
                (false, Some(stat.perm()))
            }
            Found::Blob(k, i, stat) => {
                let replacing = (k != EntryKind::Symlink).then_some(stat.perm());
                (had != Some((k, i)), replacing)
            }
            Found::Missing => (false, None),
            Found::Dir => {
                // A folder where a file goes: fine once the plan empties it; otherwise it holds
                // something of the follower's, which is backed up and removed first.
                let stale: HashSet<&str> = self.stale.iter().map(RelPath::as_str).collect();
                if !vacated(&abs, path.as_str(), &self.deleted, &stale)? {
                    self.removals.insert(
                        path.clone(),
                        Op::Delete {
                            path: path.clone(),
                            old: None,
                            backup: true,
                            dir: true,
                        },
                    );
                }
                (false, None)
            }
            Found::Special => return Err(CheckoutError::Special { path: abs }),
        };
        let mode = (want.kind != EntryKind::Symlink)
            .then(|| mode_for(path, want.kind, want.private, replacing));
        self.puts.push(Op::Put {
            path: path.clone(),
            kind: want.kind,
            id: want.id,
            old: had,
            private: want.private,
            mode,
            why,
            backup,
        });
        Ok(())
    }
}

/// What codexport wrote at each path of the last applied tree: from the index when it is
/// valid for that tree, else from the tree (with no stat, so each present file is hashed).
fn written(
    src: &impl ObjectSource,
    old: Option<ObjectId>,
    index: Option<&Index>,
) -> Result<BTreeMap<RelPath, Written>, CheckoutError> {
    if let Some(index) = index.filter(|i| Some(i.tree) == old) {
        return Ok(index
            .entries
            .iter()
            .map(|e| {
                let w = Written {
                    want: Want {
                        kind: e.kind,
                        id: e.id,
                        private: e.private,
                    },
                    stat: Some(e.stat),
                    racy: e.racy,
                };
                (e.path.clone(), w)
            })
            .collect());
    }
    let Some(old) = old else {
        return Ok(BTreeMap::new());
    };
    Ok(walk_files(src, old)?
        .into_iter()
        .map(|(path, e)| {
            let w = Written {
                want: Want::from(&e),
                stat: None,
                racy: true,
            };
            (path, w)
        })
        .collect())
}

/// The files of `new`, from what was written plus the tree difference (equal subtrees are
/// not read), and the paths that difference changed.
fn wanted(
    src: &impl ObjectSource,
    old: Option<ObjectId>,
    new: ObjectId,
    written: &BTreeMap<RelPath, Written>,
) -> Result<(BTreeMap<RelPath, Want>, HashSet<RelPath>), CheckoutError> {
    let mut wanted: BTreeMap<RelPath, Want> =
        written.iter().map(|(p, w)| (p.clone(), w.want)).collect();
    let mut changed = HashSet::new();
    for ch in tree_diff(src, old, Some(new))? {
        match (ch.kind, ch.new) {
            (ChangeKind::Removed, _) | (_, None) => {
                wanted.remove(&ch.path);
            }
            (_, Some(e)) => {
                wanted.insert(ch.path.clone(), Want::from(&e));
            }
        }
        changed.insert(ch.path);
    }
    Ok((wanted, changed))
}

/// Every folder above `paths`.
fn dirs_of<'a>(paths: impl Iterator<Item = &'a RelPath>) -> BTreeSet<RelPath> {
    let mut set = BTreeSet::new();
    for path in paths {
        let parts: Vec<&str> = path.components().collect();
        for i in 1..parts.len() {
            set.insert(RelPath::new(&parts[..i].join("/")).expect("prefix of a valid path"));
        }
    }
    set
}

/// Folders of the old tree that the new one lacks, deepest first.
fn stale_dirs(
    written: &BTreeMap<RelPath, Written>,
    wanted: &BTreeMap<RelPath, Want>,
) -> Vec<RelPath> {
    let keep = dirs_of(wanted.keys());
    let mut stale: Vec<RelPath> = dirs_of(written.keys())
        .into_iter()
        .filter(|d| !keep.contains(d))
        .collect();
    stale.reverse();
    stale
}

/// Whether the folder `abs` (relative path `rel`) is empty once the plan's deletes and
/// stale-folder removals have run.
fn vacated(
    abs: &Path,
    rel: &str,
    deletes: &HashSet<&str>,
    stale: &HashSet<&str>,
) -> Result<bool, CheckoutError> {
    let io_err = |e| CheckoutError::io(abs, e);
    for entry in std::fs::read_dir(abs).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Ok(false);
        };
        let child = format!("{rel}/{name}");
        if entry.file_type().map_err(io_err)?.is_dir() {
            if !stale.contains(child.as_str()) || !vacated(&entry.path(), &child, deletes, stale)? {
                return Ok(false);
            }
        } else if !deletes.contains(child.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}
