//! The apply history: one record per apply or rollback on a follower. The merged trees of
//! the newest records are the rollback points; `gc` keeps them.

use super::{Reader, StoreError, Writer};
use crate::object::ObjectId;
use redb::{ReadableTable, TableDefinition};

pub(crate) const APPLIES: TableDefinition<u64, &[u8]> = TableDefinition::new("applies-v1");

/// One apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApplyRecord {
    pub seq: u64,
    pub time_ms: i64,
    /// `apply` or `rollback`.
    pub kind: String,
    pub number: u64,
    pub revision: ObjectId,
    /// The revision's tree of roots (what the master sent; see `store::roots`).
    pub canonical: ObjectId,
    /// The merged tree of roots written into the roots' folders.
    pub merged: ObjectId,
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Local edits backed up before being replaced.
    pub drift: u64,
    pub backup_dir: Option<String>,
}

impl ApplyRecord {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
            what: format!("apply record: {e}"),
        })
    }
}

impl Reader<'_> {
    /// The apply history, oldest first.
    pub fn applies(&self) -> Result<Vec<ApplyRecord>, StoreError> {
        self.applies
            .iter()?
            .map(|item| ApplyRecord::decode(item?.1.value()))
            .collect()
    }

    pub fn last_apply(&self) -> Result<Option<ApplyRecord>, StoreError> {
        self.applies
            .last()?
            .map(|(_, v)| ApplyRecord::decode(v.value()))
            .transpose()
    }
}

impl Writer<'_> {
    pub fn last_apply(&self) -> Result<Option<ApplyRecord>, StoreError> {
        self.txn
            .open_table(APPLIES)?
            .last()?
            .map(|(_, v)| ApplyRecord::decode(v.value()))
            .transpose()
    }

    /// Appends a record, numbering it after the last one.
    pub fn append_apply(&mut self, mut record: ApplyRecord) -> Result<ApplyRecord, StoreError> {
        record.seq = self.last_apply()?.map_or(1, |r| r.seq + 1);
        let bytes =
            postcard::to_allocvec(&record).expect("postcard encoding into a Vec cannot fail");
        self.txn
            .open_table(APPLIES)?
            .insert(record.seq, bytes.as_slice())?;
        Ok(record)
    }

    /// Drops all but the newest `keep` records.
    pub fn prune_applies(&mut self, keep: usize) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(APPLIES)?;
        let seqs: Vec<u64> = table
            .iter()?
            .map(|i| i.map(|(k, _)| k.value()))
            .collect::<Result<_, _>>()?;
        for seq in seqs.iter().take(seqs.len().saturating_sub(keep)) {
            table.remove(*seq)?;
        }
        Ok(())
    }
}
