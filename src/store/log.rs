//! The revision log: one summary per revision, so `log` never walks trees.

use super::StoreError;
use crate::object::ObjectId;

/// Summary of one revision, keyed by its number in `revlog-v1`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub number: u64,
    pub id: ObjectId,
    pub time_ms: i64,
    pub files: u64,
    pub bytes: u64,
    /// Objects and encoded bytes of the revision's closure (what a cold fetch transfers).
    pub objects: u64,
    pub object_bytes: u64,
    pub changes: ChangeCounts,
}

/// Files added, modified (content, kind or target) and removed relative to the parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeCounts {
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
}

impl ChangeCounts {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.modified == 0 && self.removed == 0
    }
}

impl LogEntry {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("postcard encoding into a Vec cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            what: format!("revision log entry: {e}"),
        })
    }
}
