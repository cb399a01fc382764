//! The stat cache: what a file looked like when it was last hashed, so an unchanged file is
//! never read again (the trick git's index and restic's parent snapshot use).

use crate::object::{EntryKind, ObjectId};

/// The stat fields of one file and the blob id they were hashed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub kind: EntryKind,
    pub id: ObjectId,
    /// Modified no earlier than the snapshot that hashed it started: a write in the same
    /// timestamp tick could go unseen, so the next snapshot hashes it again (git's rule).
    pub racy: bool,
    /// `id` names a chunk list (the file was larger than the chunking threshold). Entries
    /// written before chunking existed lack the field, fail to decode and are re-hashed.
    pub chunked: bool,
}

impl StatEntry {
    /// Whether the file, as it is now, may be taken to hold the cached blob.
    pub fn matches(&self, now: &StatEntry) -> bool {
        !self.racy
            && self.size == now.size
            && self.mtime_ns == now.mtime_ns
            && self.ctime_ns == now.ctime_ns
            && self.inode == now.inode
            && self.kind == now.kind
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("postcard encoding into a Vec cannot fail")
    }

    /// A damaged entry decodes to `None` and is simply re-hashed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racy_entries_never_match() {
        let e = StatEntry {
            size: 1,
            mtime_ns: 2,
            ctime_ns: 3,
            inode: 4,
            kind: EntryKind::File,
            id: ObjectId::from_bytes([0; 32]),
            racy: false,
            chunked: false,
        };
        assert!(e.matches(&e));
        assert!(!StatEntry { racy: true, ..e }.matches(&e));
        assert!(!e.matches(&StatEntry { mtime_ns: 5, ..e }));
        assert_eq!(StatEntry::decode(&e.encode()), Some(e));
    }
}
