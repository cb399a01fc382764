//! Trees: one directory level, entries sorted by name and unique.
//!
//! Encoding version 2 records, per entry, whether the file is private (group and others may
//! not read it), so a credential never becomes more readable by being synced. Version 1
//! trees (written before that) are still read; their entries are not private.

use super::{DecodeError, EntryName, ObjectId, ObjectKind, codec};

pub(crate) const MAGIC: &[u8; 4] = b"CXTR";
/// The encoding written; [`Tree::decode`] also reads version 1.
pub const VERSION: u8 = 2;
const ID_CONTEXT_V1: &str = "codexport 2026-11-25 tree v1";
pub(crate) const ID_CONTEXT: &str = "codexport 2026-12-01 tree v2";
/// Most entries one tree may hold.
pub const MAX_ENTRIES: usize = 1 << 20;

/// The id derivation context of a tree encoded in `version`.
pub(crate) fn id_context(version: u8) -> &'static str {
    if version == 1 {
        ID_CONTEXT_V1
    } else {
        ID_CONTEXT
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
    /// Group and others may not read the file: it is checked out owner-only. Always false
    /// for trees and symlinks.
    pub private: bool,
}

/// A version 1 entry: no mode information.
#[derive(serde::Serialize, serde::Deserialize)]
struct TreeEntryV1 {
    name: EntryName,
    kind: EntryKind,
    id: ObjectId,
    size: u64,
}

/// A directory level. Construct with [`Tree::new`], which sorts and checks uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    entries: Vec<TreeEntry>,
    /// Set when decoded from a version 1 encoding, which it keeps (its id depends on it).
    v1: bool,
}

impl Tree {
    /// Sorts entries by name (bytewise) and refuses duplicates.
    pub fn new(mut entries: Vec<TreeEntry>) -> Result<Self, DecodeError> {
        entries.sort_by(|a, b| a.name.as_str().as_bytes().cmp(b.name.as_str().as_bytes()));
        let tree = Self { entries, v1: false };
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
        if self.v1 {
            let v1: Vec<TreeEntryV1> = self
                .entries
                .iter()
                .map(|e| TreeEntryV1 {
                    name: e.name.clone(),
                    kind: e.kind,
                    id: e.id,
                    size: e.size,
                })
                .collect();
            codec::encode(MAGIC, 1, &v1)
        } else {
            codec::encode(MAGIC, VERSION, &self.entries)
        }
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Tree.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let tree = match codec::version_of(MAGIC, "tree (CXTR)", &[1, VERSION], bytes)? {
            1 => {
                let v1: Vec<TreeEntryV1> = codec::decode_body(MAGIC, 1, bytes)?;
                Tree {
                    entries: v1
                        .into_iter()
                        .map(|e| TreeEntry {
                            name: e.name,
                            kind: e.kind,
                            id: e.id,
                            size: e.size,
                            private: false,
                        })
                        .collect(),
                    v1: true,
                }
            }
            _ => Tree {
                entries: codec::decode_body(MAGIC, VERSION, bytes)?,
                v1: false,
            },
        };
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
            if e.private && matches!(e.kind, EntryKind::Tree | EntryKind::Symlink) {
                return Err(DecodeError::Malformed(format!(
                    "{:?} is a {} marked private",
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
        let mut expected = b"CXTR\x02\x01\x01a\x01".to_vec();
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[3, 1]);
        assert_eq!(t.encode(), expected);
        assert_eq!(Tree::decode(&expected).unwrap(), t);
        assert_eq!(
            t.id().to_string(),
            ObjectId::derived(ID_CONTEXT, &expected).to_string()
        );
        // As store-format.md section 12 states it.
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
        let mut bad = b"CXTR\x02\x01\x01a\x02".to_vec();
        bad.extend_from_slice(&[7; 32]);
        bad.extend_from_slice(&[3, 1]);
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
        let dots = b"CXTR\x02\x01\x02..\x00"
            .iter()
            .copied()
            .chain([0; 32])
            .chain([0, 0])
            .collect::<Vec<_>>();
        assert!(matches!(
            Tree::decode(&dots),
            Err(DecodeError::Malformed(_))
        ));
        // Trailing garbage and wrong version.
        let mut trailing = good.encode();
        trailing.push(0);
        assert!(Tree::decode(&trailing).is_err());
        let mut v3 = good.encode();
        v3[4] = 3;
        assert!(matches!(
            Tree::decode(&v3),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
    }
}
