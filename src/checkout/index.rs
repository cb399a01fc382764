//! The checkout index: what codexport last wrote at every managed path of the roots, with
//! the stat fields it had then (git's index, for the follower). A path whose stat is
//! unchanged holds what was written, so finding drift costs one `lstat` per managed file and
//! reads only files whose stat changed.
//!
//! It is a cache, kept in `~/.codexport/checkout-index` (layout in store-format.md): written
//! after every apply without a durability barrier, and trusted only for the merged tree it
//! names. Missing, damaged or for another tree, it is rebuilt by hashing.

use super::CheckoutError;
use super::disk::{Parents, Stat, lstat, parents};
use crate::object::{EntryKind, ObjectId, RelPath};
use crate::roots::RootDirs;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"CXIX";
/// Version 2 names every root's folder; an index of version 1 (one codex dir) is a cache
/// miss, rebuilt by hashing.
const VERSION: u8 = 2;

/// One managed file (or symlink) as codexport wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexEntry {
    pub path: RelPath,
    pub kind: EntryKind,
    pub id: ObjectId,
    /// The tree's private flag (the file was written owner-only).
    pub private: bool,
    pub stat: Stat,
    /// Modified no earlier than the index was written: a change in the same timestamp tick
    /// could go unseen, so the content is checked again next time (git's racily-clean rule).
    pub racy: bool,
}

impl IndexEntry {
    /// Whether the file, as `now` describes it, may be taken to hold what was written.
    pub fn unchanged(&self, now: &Stat) -> bool {
        !self.racy && self.stat == *now
    }
}

/// The index of one merged tree checked out into the roots' folders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    /// Each root's folder, by name.
    pub roots: BTreeMap<String, PathBuf>,
    /// The merged tree these entries are the files of.
    pub tree: ObjectId,
    /// Sorted by path.
    pub entries: Vec<IndexEntry>,
}

fn file(state_dir: &Path) -> PathBuf {
    state_dir.join(crate::paths::state::CHECKOUT_INDEX)
}

impl Index {
    /// The index, if there is a readable one for these folders and `tree`.
    pub fn load(state_dir: &Path, dirs: &RootDirs, tree: ObjectId) -> Option<Self> {
        let bytes = std::fs::read(file(state_dir)).ok()?;
        let body = bytes.strip_prefix(MAGIC)?.strip_prefix(&[VERSION])?;
        let index: Index = postcard::from_bytes(body).ok()?;
        (index.tree == tree && index.roots == dirs.by_name()).then_some(index)
    }

    /// Writes the index (owner-only, atomically, without a durability barrier: it is a
    /// cache). Entries modified no earlier than now are marked racy first.
    pub fn save(mut self, state_dir: &Path) -> Result<(), CheckoutError> {
        let stamp_path = state_dir.join(crate::paths::state::CHECKOUT_STAMP);
        let now = crate::fsutil::filesystem_now(&stamp_path)
            .map_err(|e| CheckoutError::io(&stamp_path, e))?;
        for e in &mut self.entries {
            e.racy |= e.stat.mtime_ns >= now;
        }
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        let bytes = postcard::to_extend(&self, bytes).expect("postcard encoding cannot fail");
        let path = file(state_dir);
        crate::fsutil::write_atomic_unsynced(&path, &bytes, 0o600)
            .map_err(|e| CheckoutError::io(&path, e))
    }

    /// The index of `plan.new` once `plan` ran: what it kept, and the stat of what it wrote.
    pub fn after(plan: &super::Plan, dirs: &RootDirs) -> Result<Self, CheckoutError> {
        let mut entries = plan.kept.clone();
        for op in &plan.ops {
            let super::Op::Put {
                path,
                kind,
                id,
                private,
                ..
            } = op
            else {
                continue;
            };
            let abs = super::disk::abs(dirs, path);
            // A path that is gone again is simply not indexed: the next plan puts it back.
            if let Some(meta) = lstat(&abs)? {
                entries.push(IndexEntry {
                    path: path.clone(),
                    kind: *kind,
                    id: *id,
                    private: *private,
                    stat: Stat::of(&meta),
                    racy: false,
                });
            }
        }
        Ok(Self {
            roots: dirs.by_name(),
            tree: plan.new,
            entries,
        })
    }

    /// Removes the index (its tree is no longer what the codex dir holds).
    pub fn forget(state_dir: &Path) -> Result<(), CheckoutError> {
        let path = file(state_dir);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CheckoutError::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Whether every managed path still holds what was written, by `lstat` alone: the
    /// directories above it are real directories and its stat is unchanged (and not racy).
    /// `false` means "look closer", not "drifted".
    pub fn clean(&self) -> Result<bool, CheckoutError> {
        let dirs = RootDirs::from_names(&self.roots);
        let mut known = HashSet::new();
        for e in &self.entries {
            let Some(abs) = dirs.abs(&e.path) else {
                return Ok(false);
            };
            if !matches!(parents(&dirs, &e.path, &mut known, None)?, Parents::Dirs) {
                return Ok(false);
            }
            match lstat(&abs)? {
                Some(meta) if e.unchanged(&Stat::of(&meta)) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_marks_racy_entries() {
        let state = tempfile::tempdir().unwrap();
        let codex = tempfile::tempdir().unwrap();
        let dirs = RootDirs::from_dirs([(crate::roots::CODEX, codex.path().to_owned())]);
        let f = codex.path().join("a");
        std::fs::write(&f, "x").unwrap();
        let mut stat = Stat::of(&std::fs::symlink_metadata(&f).unwrap());
        // Modified "after" the index is written: racily clean.
        let real = stat;
        stat.mtime_ns = i64::MAX;
        let tree = ObjectId::from_bytes([1; 32]);
        let index = Index {
            roots: dirs.by_name(),
            tree,
            entries: vec![IndexEntry {
                path: RelPath::new("codex/a").unwrap(),
                kind: EntryKind::File,
                id: ObjectId::from_bytes([2; 32]),
                private: false,
                stat,
                racy: false,
            }],
        };
        index.clone().save(state.path()).unwrap();
        let loaded = Index::load(state.path(), &dirs, tree).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        // Written just now: racily clean, so not trusted by stat alone.
        assert!(loaded.entries[0].racy);
        assert!(!loaded.clean().unwrap());
        let settled = Index {
            entries: vec![IndexEntry {
                racy: false,
                stat: real,
                ..loaded.entries[0].clone()
            }],
            ..loaded
        };
        assert!(settled.clean().unwrap());
        std::fs::write(&f, "yy").unwrap();
        assert!(!settled.clean().unwrap());
        assert!(Index::load(state.path(), &dirs, ObjectId::from_bytes([9; 32])).is_none());
        let elsewhere = RootDirs::from_dirs([(crate::roots::CODEX, state.path().to_owned())]);
        assert!(Index::load(state.path(), &elsewhere, tree).is_none());
        Index::forget(state.path()).unwrap();
        assert!(Index::load(state.path(), &dirs, tree).is_none());
    }
}
