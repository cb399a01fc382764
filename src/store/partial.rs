//! Loose objects a follower kept from a fetch that did not finish. They were verified on
//! arrival and arrived in post-order, so each stored tree's children are stored too; the
//! next fetch names them and the master sends only the rest.

use super::{PARTIAL, Reader, StoreError, Writer};
use crate::object::ObjectId;
use redb::{ReadableTable, ReadableTableMetadata};

impl Reader<'_> {
    /// Up to `limit` loose object ids.
    pub fn partial(&self, limit: usize) -> Result<Vec<ObjectId>, StoreError> {
        let table = &self.partial;
        let mut out = Vec::new();
        for item in table.iter()?.take(limit) {
            out.push(ObjectId::from_bytes(item?.0.value()));
        }
        Ok(out)
    }
}

impl Writer<'_> {
    pub fn add_partial(&mut self, id: &ObjectId) -> Result<(), StoreError> {
        self.txn.open_table(PARTIAL)?.insert(id.to_bytes(), ())?;
        Ok(())
    }

    /// Forgets loose objects once a fetch completed (they are now reachable from a ref).
    pub fn clear_partial(&mut self) -> Result<u64, StoreError> {
        let n = self.txn.open_table(PARTIAL)?.len()?;
        // Dropping the table is one operation; deleting entry by entry cost time and memory
        // proportional to the library.
        self.txn.delete_table(PARTIAL)?;
        self.txn.open_table(PARTIAL)?;
        Ok(n)
    }
}
