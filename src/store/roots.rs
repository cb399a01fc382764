//! The tree of roots of any revision. A revision of encoding 2 holds one (see
//! [`crate::roots`]); a revision made before roots existed holds the Codex dir itself, which
//! reads as a tree of roots holding that tree under the Codex root's name. Everything above
//! the store (merge, checkout, diff, show) works on trees of roots only.

use super::{ObjectSource, StoreError, Writer};
use crate::object::revision::Layout;
use crate::object::{
    EntryKind, EntryName, ObjectId, ObjectKind, RelPath, Revision, Tree, TreeEntry,
};

/// The tree holding `codex_dir` (a Codex dir's tree of `bytes` bytes) as the Codex root.
fn wrapper(codex_dir: ObjectId, bytes: u64) -> Tree {
    Tree::new(vec![TreeEntry {
        name: EntryName::new(crate::roots::CODEX.name).expect("root names are valid"),
        kind: EntryKind::Tree,
        id: codex_dir,
        size: bytes,
        private: false,
        chunked: false,
    }])
    .expect("one entry is a valid tree")
}

/// The id of a revision's tree of roots, without storing anything.
pub fn roots_id(rev: &Revision) -> ObjectId {
    match rev.layout {
        Layout::Roots => rev.root,
        Layout::CodexDir => ObjectKind::Tree.id_of(&wrapper(rev.root, rev.bytes).encode()),
    }
}

/// A revision's tree of roots, stored if it is the wrapper of an older revision.
pub fn roots_tree(w: &mut Writer<'_>, rev: &Revision) -> Result<ObjectId, StoreError> {
    match rev.layout {
        Layout::Roots => Ok(rev.root),
        Layout::CodexDir => w.put_tree(&wrapper(rev.root, rev.bytes)),
    }
}

/// Wraps a merged tree written by a codexport before roots (the Codex dir itself) as a tree
/// of roots; `bytes` is its size. Used when a store of format 3 is upgraded.
pub fn wrap_codex_tree(w: &mut Writer<'_>, tree: ObjectId) -> Result<ObjectId, StoreError> {
    let size = w.tree(&tree)?.size();
    w.put_tree(&wrapper(tree, size))
}

/// The entry at `path` of a revision's tree of roots (the top level itself for the root
/// path), read-only: an older revision's wrapper is not stored, only walked through.
pub fn lookup(
    src: &impl ObjectSource,
    rev: &Revision,
    path: &RelPath,
) -> Result<Option<TreeEntry>, StoreError> {
    let top = TreeEntry {
        name: EntryName::new("root").expect("valid name"),
        kind: EntryKind::Tree,
        id: roots_id(rev),
        size: rev.bytes,
        private: false,
        chunked: false,
    };
    let below = match (rev.layout, path.split_first()) {
        (_, None) => return Ok(Some(top)),
        (Layout::Roots, _) => path.clone(),
        (Layout::CodexDir, Some((first, rest))) if first == crate::roots::CODEX.name => {
            if rest.is_root() {
                return Ok(Some(TreeEntry {
                    id: rev.root,
                    ..top
                }));
            }
            rest
        }
        (Layout::CodexDir, Some(_)) => return Ok(None),
    };
    super::edit::lookup(src, rev.root, &below)
}

/// The entries of the top level of a revision's tree of roots.
pub fn top_entries(src: &impl ObjectSource, rev: &Revision) -> Result<Vec<TreeEntry>, StoreError> {
    Ok(match rev.layout {
        Layout::Roots => src.tree(&rev.root)?.entries().to_vec(),
        Layout::CodexDir => wrapper(rev.root, rev.bytes).entries().to_vec(),
    })
}
