//! Tree differences, walking only subtrees whose ids differ.

use super::{ObjectSource, StoreError};
use crate::object::{EntryKind, ObjectId, RelPath, TreeEntry};
use std::collections::BTreeMap;

/// How one path differs between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

/// One changed file (blob entry) between two trees: its entry on each side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub path: RelPath,
    pub kind: ChangeKind,
    pub old: Option<TreeEntry>,
    pub new: Option<TreeEntry>,
}

/// The file-level changes from `old` (absent = empty) to `new` (absent = empty).
pub fn tree_diff(
    src: &impl ObjectSource,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
) -> Result<Vec<Change>, StoreError> {
    let mut out = Vec::new();
    diff_into(src, &RelPath::root(), old, new, &mut out)?;
    Ok(out)
}

fn entries(
    src: &impl ObjectSource,
    id: Option<ObjectId>,
) -> Result<BTreeMap<String, TreeEntry>, StoreError> {
    let Some(id) = id else {
        return Ok(BTreeMap::new());
    };
    Ok(src
        .tree(&id)?
        .entries()
        .iter()
        .map(|e| (e.name.to_string(), e.clone()))
        .collect())
}

fn diff_into(
    src: &impl ObjectSource,
    base: &RelPath,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    out: &mut Vec<Change>,
) -> Result<(), StoreError> {
    if old == new {
        return Ok(());
    }
    let old_entries = entries(src, old)?;
    let new_entries = entries(src, new)?;
    let names: std::collections::BTreeSet<&String> =
        old_entries.keys().chain(new_entries.keys()).collect();
    for name in names {
        let a = old_entries.get(name);
        let b = new_entries.get(name);
        let path = base.join(&a.or(b).expect("name comes from one of the maps").name);
        let sub = |e: Option<&TreeEntry>| e.filter(|e| e.kind == EntryKind::Tree).map(|e| e.id);
        let blob = |e: Option<&TreeEntry>| e.filter(|e| e.kind != EntryKind::Tree).cloned();
        diff_into(src, &path, sub(a), sub(b), out)?;
        let (ba, bb) = (blob(a), blob(b));
        let same =
            |x: &TreeEntry, y: &TreeEntry| (x.kind, x.id, x.private) == (y.kind, y.id, y.private);
        let kind = match (&ba, &bb) {
            (None, None) => continue,
            (Some(x), Some(y)) if same(x, y) => continue,
            (Some(_), Some(_)) => ChangeKind::Modified,
            (None, Some(_)) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
        };
        out.push(Change {
            path,
            kind,
            old: ba,
            new: bb,
        });
    }
    Ok(())
}

/// Counts the changes by kind.
pub fn count(changes: &[Change]) -> super::log::ChangeCounts {
    let mut c = super::log::ChangeCounts::default();
    for ch in changes {
        match ch.kind {
            ChangeKind::Added => c.added += 1,
            ChangeKind::Modified => c.modified += 1,
            ChangeKind::Removed => c.removed += 1,
        }
    }
    c
}

/// Every file (non-tree entry) below `root`, in path order.
pub fn walk_files(
    src: &impl ObjectSource,
    root: ObjectId,
) -> Result<Vec<(RelPath, TreeEntry)>, StoreError> {
    let mut out = Vec::new();
    walk_into(src, &RelPath::root(), root, &mut out)?;
    Ok(out)
}

fn walk_into(
    src: &impl ObjectSource,
    base: &RelPath,
    id: ObjectId,
    out: &mut Vec<(RelPath, TreeEntry)>,
) -> Result<(), StoreError> {
    for e in src.tree(&id)?.entries() {
        let path = base.join(&e.name);
        if e.kind == EntryKind::Tree {
            walk_into(src, &path, e.id, out)?;
        } else {
            out.push((path, e.clone()));
        }
    }
    Ok(())
}
