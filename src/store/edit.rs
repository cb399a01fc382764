//! Path edits on stored trees that rewrite only the trees along the edited path, so the
//! work of a merge follows the size of the change, not of the library.

use super::{ObjectSource, StoreError, Writer};
use crate::object::{EntryKind, EntryName, ObjectId, RelPath, Tree, TreeEntry};

/// What to do at a path.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    /// Place a blob (file, executable or symlink) there, replacing whatever was there.
    Put {
        kind: EntryKind,
        id: ObjectId,
        size: u64,
        /// Checked out owner-only (see [`TreeEntry::private`]).
        private: bool,
        /// `id` names a chunk list (see [`TreeEntry::chunked`]).
        chunked: bool,
    },
    /// Remove the file or subtree there (directories left empty are removed too).
    Remove,
}

/// The entry at `path` below `root`, if any.
pub fn lookup(
    src: &impl ObjectSource,
    root: ObjectId,
    path: &RelPath,
) -> Result<Option<TreeEntry>, StoreError> {
    let mut current = TreeEntry {
        name: EntryName::new("root").expect("valid name"),
        kind: EntryKind::Tree,
        id: root,
        size: 0,
        private: false,
        chunked: false,
    };
    for part in path.components() {
        if current.kind != EntryKind::Tree {
            return Ok(None);
        }
        match src.tree(&current.id)?.get(part) {
            Some(e) => current = e.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Applies one edit; returns the new root tree id.
pub fn edit(
    w: &mut Writer<'_>,
    root: ObjectId,
    path: &RelPath,
    change: Edit,
) -> Result<ObjectId, StoreError> {
    let parts: Vec<&str> = path.components().collect();
    if parts.is_empty() {
        return Ok(root);
    }
    match edit_at(w, Some(root), &parts, change)? {
        Some((id, _)) => Ok(id),
        None => w.put_tree(&Tree::default()),
    }
}

fn edit_at(
    w: &mut Writer<'_>,
    tree: Option<ObjectId>,
    parts: &[&str],
    change: Edit,
) -> Result<Option<(ObjectId, u64)>, StoreError> {
    let mut entries = match tree {
        Some(id) => w.tree(&id)?.entries().to_vec(),
        None => Vec::new(),
    };
    let name = EntryName::new(parts[0]).map_err(|e| StoreError::Corrupt {
        what: format!("edit path: {e}"),
    })?;
    let pos = entries.iter().position(|e| e.name == name);
    let replacement = if parts.len() == 1 {
        match change {
            Edit::Put {
                kind,
                id,
                size,
                private,
                chunked,
            } => Some(TreeEntry {
                name,
                kind,
                id,
                size,
                private,
                chunked,
            }),
            Edit::Remove => None,
        }
    } else {
        let sub = pos
            .map(|i| &entries[i])
            .filter(|e| e.kind == EntryKind::Tree)
            .map(|e| e.id);
        edit_at(w, sub, &parts[1..], change)?.map(|(id, size)| TreeEntry {
            name,
            kind: EntryKind::Tree,
            id,
            size,
            private: false,
            chunked: false,
        })
    };
    match (pos, replacement) {
        (Some(i), Some(e)) => entries[i] = e,
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, Some(e)) => entries.push(e),
        (None, None) => {}
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let tree = Tree::new(entries).map_err(|e| StoreError::Corrupt {
        what: format!("edited tree: {e}"),
    })?;
    Ok(Some((w.put_tree(&tree)?, tree.size())))
}
