//! Trees: one directory level, entries sorted by name and unique.
//!
//! Encoding version 3 records, per entry, whether the file is private (group and others may
//! not read it), so a credential never becomes more readable by being synced, and whether
//! its id names a chunk list (a large file). Versions 1 (neither flag) and 2 (no chunked
//! flag) are still read and keep their encoding, hence their ids.

use super::{DecodeError, EntryName, ObjectId, ObjectKind, codec};

pub(crate) const MAGIC: &[u8; 4] = b"CXTR";
/// The encoding written; [`Tree::decode`] also reads versions 1 and 2.
pub const VERSION: u8 = 3;
const ID_CONTEXT_V1: &str = "codexport 2026-11-25 tree v1";
const ID_CONTEXT_V2: &str = "codexport 2026-12-01 tree v2";
pub(crate) const ID_CONTEXT: &str = "codexport 2026-12-08 tree v3";
/// Most entries one tree may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The id derivation context of a tree encoded in `version`.
pub(crate) fn id_context(version: u8) -> &'static str {
    match version {
        1 => ID_CONTEXT_V1,
        2 => ID_CONTEXT_V2,
        _ => ID_CONTEXT,
    }
}

/// What a tree entry points at. Exec bits are kept as a kind of their own; the other mode
/// bits that matter travel as [`TreeEntry::private`]; owner and the rest are per machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Executable,
    /// A blob holding the link target text; never followed.
    Symlink,
    Tree,
}

impl EntryKind {
    /// The kind of object an entry of this kind names, unless it is chunked (see
    /// [`TreeEntry::object_kind`]).
    pub fn object_kind(self) -> ObjectKind {
        match self {
            EntryKind::Tree => ObjectKind::Tree,
            _ => ObjectKind::Blob,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Executable => "executable",
            EntryKind::Symlink => "symlink",
            EntryKind::Tree => "tree",
        }
    }
}

/// One entry. `size` is the blob's length, or for a tree the total blob bytes below it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeEntry {
    pub name: EntryName,
    pub kind: EntryKind,
    pub id: ObjectId,
    pub size: u64,
    /// Group and others may not read the file: it is checked out owner-only. Always false
    /// for trees and symlinks.
    pub private: bool,
    /// The `id` names a chunk list (a large file), not a blob. Only for files.
    pub chunked: bool,
}

impl TreeEntry {
    /// The kind of object the entry's id names.
    pub fn object_kind(&self) -> ObjectKind {
        if self.chunked {
            ObjectKind::Chunks
        } else {
            self.kind.object_kind()
        }
    }
}

/// A version 1 entry: no mode information.
#[derive(serde::Serialize, serde::Deserialize)]
struct TreeEntryV1 {
    name: EntryName,
    kind: EntryKind,
    id: ObjectId,
    size: u64,
}

/// A version 2 entry: private, but never chunked.
#[derive(serde::Serialize, serde::Deserialize)]
struct TreeEntryV2 {
    name: EntryName,
    kind: EntryKind,
    id: ObjectId,
    size: u64,
    private: bool,
}

impl From<&TreeEntry> for TreeEntryV1 {
    fn from(e: &TreeEntry) -> Self {
        TreeEntryV1 {
            name: e.name.clone(),
            kind: e.kind,
            id: e.id,
            size: e.size,
        }
    }
}

impl From<&TreeEntry> for TreeEntryV2 {
    fn from(e: &TreeEntry) -> Self {
        TreeEntryV2 {
            name: e.name.clone(),
            kind: e.kind,
            id: e.id,
            size: e.size,
            private: e.private,
        }
    }
}

impl From<TreeEntryV1> for TreeEntry {
    fn from(e: TreeEntryV1) -> Self {
        TreeEntry {
            name: e.name,
            kind: e.kind,
            id: e.id,
            size: e.size,
            private: false,
            chunked: false,
        }
    }
}

impl From<TreeEntryV2> for TreeEntry {
    fn from(e: TreeEntryV2) -> Self {
        TreeEntry {
            name: e.name,
            kind: e.kind,
            id: e.id,
            size: e.size,
            private: e.private,
            chunked: false,
        }
    }
}

/// A directory level. Construct with [`Tree::new`], which sorts and checks uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    entries: Vec<TreeEntry>,
    /// The encoding it was decoded from, which it keeps (its id depends on it).
    version: u8,
}

impl Tree {
    /// Sorts entries by name (bytewise) and refuses duplicates.
    pub fn new(mut entries: Vec<TreeEntry>) -> Result<Self, DecodeError> {
        entries.sort_by(|a, b| a.name.as_str().as_bytes().cmp(b.name.as_str().as_bytes()));
        let tree = Self {
            entries,
            version: VERSION,
        };
        tree.check()?;
        Ok(tree)
    }

    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_str().as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Total blob bytes below this tree.
    pub fn size(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |total, e| total.saturating_add(e.size))
    }

    pub fn encode(&self) -> Vec<u8> {
        let e = &self.entries;
        match self.version {
            1 => codec::encode(
                MAGIC,
                1,
                &e.iter().map(TreeEntryV1::from).collect::<Vec<_>>(),
            ),
            2 => codec::encode(
                MAGIC,
                2,
                &e.iter().map(TreeEntryV2::from).collect::<Vec<_>>(),
            ),
            _ => codec::encode(MAGIC, VERSION, e),
        }
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Tree.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let version = codec::version_of(MAGIC, "tree (CXTR)", &[1, 2, VERSION], bytes)?;
        let entries = match version {
            1 => codec::decode_body::<Vec<TreeEntryV1>>(MAGIC, 1, bytes)?
                .into_iter()
                .map(TreeEntry::from)
                .collect(),
            2 => codec::decode_body::<Vec<TreeEntryV2>>(MAGIC, 2, bytes)?
                .into_iter()
                .map(TreeEntry::from)
                .collect(),
            _ => codec::decode_body(MAGIC, VERSION, bytes)?,
        };
        let tree = Tree { entries, version };
        tree.check()?;
        Ok(tree)
    }

    fn check(&self) -> Result<(), DecodeError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(DecodeError::TooLarge {
                what: "tree entry count",
                limit: MAX_ENTRIES as u64,
            });
        }
        for pair in self.entries.windows(2) {
            if pair[0].name.as_str().as_bytes() >= pair[1].name.as_str().as_bytes() {
                return Err(DecodeError::Unsorted {
                    name: pair[1].name.to_string(),
                });
            }
        }
        for e in &self.entries {
            let file = matches!(e.kind, EntryKind::File | EntryKind::Executable);
            if (e.private || e.chunked) && !file {
                return Err(DecodeError::Malformed(format!(
                    "{:?} is a {} marked private or chunked",
                    e.name.as_str(),
                    e.kind.as_str()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind, byte: u8) -> TreeEntry {
        TreeEntry {
            name: EntryName::new(name).unwrap(),
            kind,
            id: ObjectId::from_bytes([byte; 32]),
            size: 3,
            private: false,
            chunked: false,
        }
    }

    #[test]
    fn sorted_and_unique() {
        let t = Tree::new(vec![
            entry("b", EntryKind::File, 1),
            entry("a", EntryKind::Tree, 2),
        ])
        .unwrap();
        assert_eq!(t.entries()[0].name.as_str(), "a");
        assert!(t.get("b").is_some());
        assert!(
            Tree::new(vec![
                entry("a", EntryKind::File, 1),
                entry("a", EntryKind::File, 2)
            ])
            .is_err()
        );
    }

    /// Pins the encoding: changing it must be a deliberate format change.
    #[test]
    fn golden_bytes() {
        let mut secret = entry("a", EntryKind::Executable, 7);
        secret.private = true;
        let t = Tree::new(vec![secret]).unwrap();
        let mut expected = b"CXTR\x03\x01\x01a\x01".to_vec();
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[3, 1, 0]);
        assert_eq!(t.encode(), expected);
        assert_eq!(Tree::decode(&expected).unwrap(), t);
        assert_eq!(
            t.id().to_string(),
            ObjectId::derived(ID_CONTEXT, &expected).to_string()
        );
        // As store-format.md section 12 states it.
        assert_eq!(
            t.id().to_string(),
            "c9e62092b06e80ffb3335b52dffdbc203bc454a0fea0c672e4637b7190105086"
        );
    }

    /// Version 2 trees (before chunking) are read, keep their bytes and id, and have no
    /// chunked entries.
    #[test]
    fn version_2_trees_are_read() {
        let mut v2 = b"CXTR\x02\x01\x01a\x01".to_vec();
        v2.extend_from_slice(&[7; 32]);
        v2.extend_from_slice(&[3, 1]);
        let t = Tree::decode(&v2).unwrap();
        let mut secret = entry("a", EntryKind::Executable, 7);
        secret.private = true;
        assert_eq!(t.entries(), [secret]);
        assert_eq!(t.encode(), v2, "re-encodes as it was");
        assert_eq!(t.id(), ObjectId::derived(ID_CONTEXT_V2, &v2));
        // The id store-format.md section 12 gave it when version 2 was written.
        assert_eq!(
            t.id().to_string(),
            "875269b7a34c4bbafa5622192c3e8be3768c38be3e70d91149f19d82a2adea81"
        );
    }

    /// Version 1 trees (before modes were recorded) are read, keep their bytes and id, and
    /// have no private entries.
    #[test]
    fn version_1_trees_are_read() {
        let mut v1 = b"CXTR\x01\x01\x01a\x01".to_vec();
        v1.extend_from_slice(&[7; 32]);
        v1.push(3);
        let t = Tree::decode(&v1).unwrap();
        assert_eq!(t.entries(), [entry("a", EntryKind::Executable, 7)]);
        assert_eq!(t.encode(), v1, "re-encodes as it was");
        assert_eq!(t.id(), ObjectId::derived(ID_CONTEXT_V1, &v1));
        assert_ne!(t.id(), Tree::new(t.entries().to_vec()).unwrap().id());
        // A private flag on a symlink or tree has no meaning and is refused.
        let mut bad = b"CXTR\x03\x01\x01a\x02".to_vec();
        bad.extend_from_slice(&[7; 32]);
        bad.extend_from_slice(&[3, 1, 0]);
        assert!(Tree::decode(&bad).is_err());
        // So is a chunked flag on anything but a file.
        let n = bad.len();
        bad[n - 2..].copy_from_slice(&[0, 1]);
        assert!(Tree::decode(&bad).is_err());
    }

    #[test]
    fn decoder_refuses_forgeries() {
        let good = Tree::new(vec![
            entry("a", EntryKind::File, 1),
            entry("b", EntryKind::File, 1),
        ])
        .unwrap();
        let mut bytes = good.encode();
        // Swap the two names: unsorted.
        let a = bytes.iter().position(|&b| b == b'a').unwrap();
        let b = bytes.iter().position(|&b| b == b'b').unwrap();
        bytes.swap(a, b);
        assert!(matches!(
            Tree::decode(&bytes),
            Err(DecodeError::Unsorted { .. })
        ));
        // Name "..".
        let dots = b"CXTR\x03\x01\x02..\x00"
            .iter()
            .copied()
            .chain([0; 32])
            .chain([0, 0, 0])
            .collect::<Vec<_>>();
        assert!(matches!(
            Tree::decode(&dots),
            Err(DecodeError::Malformed(_))
        ));
        // Trailing garbage and wrong version.
        let mut trailing = good.encode();
        trailing.push(0);
        assert!(Tree::decode(&trailing).is_err());
        let mut v4 = good.encode();
        v4[4] = 4;
        assert!(matches!(
            Tree::decode(&v4),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
