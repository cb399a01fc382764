//! The plan of an apply: what changes in the codex dir to go from the previously applied
//! merged tree to the new one. Only paths of the old merged tree are ever deleted, so files
//! codexport never wrote are never touched.

use crate::object::{EntryKind, ObjectId, RelPath};
use crate::store::diff::{ChangeKind, tree_diff, walk_files};
use crate::store::{ObjectSource, StoreError};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Write the blob `id` at `path` as `kind` (file, executable or symlink). `old` is the
    /// blob the previous merged tree had there, if any (for drift detection).
    Put {
        path: RelPath,
        kind: EntryKind,
        id: ObjectId,
        old: Option<(EntryKind, ObjectId)>,
    },
    /// Remove the file codexport wrote at `path` (`old` is what it wrote).
    Delete {
        path: RelPath,
        old: (EntryKind, ObjectId),
    },
}

impl Op {
    pub fn path(&self) -> &RelPath {
        match self {
            Op::Put { path, .. } | Op::Delete { path, .. } => path,
        }
    }
}

/// A plan from one merged tree to another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The merged tree applied before (`None` on the first apply).
    pub old: Option<ObjectId>,
    pub new: ObjectId,
    /// Deletes first, then puts, each in path order.
    pub ops: Vec<Op>,
    /// Directories of the old tree that the new one lacks; removed if empty afterwards.
    pub stale_dirs: Vec<RelPath>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.stale_dirs.is_empty()
    }

    /// Counts of (added, updated, deleted) files.
    pub fn counts(&self) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for op in &self.ops {
            match op {
                Op::Put { old: None, .. } => c.0 += 1,
                Op::Put { old: Some(_), .. } => c.1 += 1,
                Op::Delete { .. } => c.2 += 1,
            }
        }
        c
    }
}

/// Plans the change from `old` to `new`. On a first apply (`old` is `None`) every file of
/// `new` is a put.
pub fn plan(
    src: &impl ObjectSource,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Result<Plan, StoreError> {
    let mut deletes = Vec::new();
    let mut puts = Vec::new();
    for ch in tree_diff(src, old, Some(new))? {
        match (ch.kind, ch.old, ch.new) {
            (ChangeKind::Removed, Some(o), _) => deletes.push(Op::Delete {
                path: ch.path,
                old: o,
            }),
            (_, o, Some((kind, id))) => puts.push(Op::Put {
                path: ch.path,
                kind,
                id,
                old: o,
            }),
            _ => {}
        }
    }
    let dirs = |root: Option<ObjectId>| -> Result<std::collections::BTreeSet<RelPath>, StoreError> {
        let mut set = std::collections::BTreeSet::new();
        if let Some(root) = root {
            for (path, _) in walk_files(src, root)? {
                let parts: Vec<&str> = path.components().collect();
                for i in 1..parts.len() {
                    set.insert(
                        RelPath::new(&parts[..i].join("/")).expect("prefix of a valid path"),
                    );
                }
            }
        }
        Ok(set)
    };
    let stale_dirs = if deletes.is_empty() {
        Vec::new()
    } else {
        let new_dirs = dirs(Some(new))?;
        // Deepest first, so parents empty out before they are tried.
        let mut stale: Vec<RelPath> = dirs(old)?
            .into_iter()
            .filter(|d| !new_dirs.contains(d))
            .collect();
        stale.reverse();
        stale
    };
    deletes.extend(puts);
    Ok(Plan {
        old,
        new,
        ops: deletes,
        stale_dirs,
    })
}
