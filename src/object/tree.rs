//! Trees: one directory level, entries sorted by name and unique.

use super::{DecodeError, EntryName, ObjectId, ObjectKind, codec};

pub(crate) const MAGIC: &[u8; 4] = b"CXTR";
pub(crate) const ID_CONTEXT: &str = "codexport 2026-11-25 tree v1";
/// Most entries one tree may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

/// What a tree entry points at. Exec bits are kept as a kind of their own; other mode bits
/// (read-only, owner) are per machine and not recorded.
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
    /// The kind of object the entry's id names.
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
}

/// A directory level. Construct with [`Tree::new`], which sorts and checks uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Tree {
    entries: Vec<TreeEntry>,
}

impl Tree {
    /// Sorts entries by name (bytewise) and refuses duplicates.
    pub fn new(mut entries: Vec<TreeEntry>) -> Result<Self, DecodeError> {
        entries.sort_by(|a, b| a.name.as_str().as_bytes().cmp(b.name.as_str().as_bytes()));
        let tree = Self { entries };
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
        codec::encode(MAGIC, self)
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Tree.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let tree: Tree = codec::decode(MAGIC, "tree (CXTR)", bytes)?;
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
        let t = Tree::new(vec![entry("a", EntryKind::Executable, 7)]).unwrap();
        let mut expected = b"CXTR\x01\x01\x01a\x01".to_vec();
        expected.extend_from_slice(&[7; 32]);
        expected.push(3);
        assert_eq!(t.encode(), expected);
        assert_eq!(Tree::decode(&expected).unwrap(), t);
        assert_eq!(
            t.id().to_string(),
            ObjectId::derived(ID_CONTEXT, &expected).to_string()
        );
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
        let dots = b"CXTR\x01\x01\x02..\x00"
            .iter()
            .copied()
            .chain([0; 32])
            .chain([0])
            .collect::<Vec<_>>();
        assert!(matches!(
            Tree::decode(&dots),
            Err(DecodeError::Malformed(_))
        ));
        // Trailing garbage and wrong version.
        let mut trailing = good.encode();
        trailing.push(0);
        assert!(Tree::decode(&trailing).is_err());
        let mut v2 = good.encode();
        v2[4] = 2;
        assert!(matches!(
            Tree::decode(&v2),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
