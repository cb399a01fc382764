//! Opening a store: creating it, checking its format, and upgrading a store of an earlier
//! format in place (the object index without compression, `objects-v1`, becomes
//! `objects-v2`).

use super::pack::{Location, Packs};
use super::{
    FOLLOWERS, META, OBJECTS, OBJECTS_V1, PARTIAL, REFS, REVLOG, STATCACHE, Store, StoreError,
    TOKENS, applies, meta,
};
use crate::object::FORMAT_VERSION;
use redb::{Database, ReadableDatabase, ReadableTable, TableHandle};
use std::path::{Path, PathBuf};

impl Store {
    /// The database file inside a state directory.
    pub fn db_path(state_dir: &Path) -> PathBuf {
        state_dir.join(crate::paths::state::STORE_DB)
    }

    /// Opens an existing store; refuses a missing one.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = Self::db_path(state_dir);
        if !path.exists() {
            return Err(StoreError::NotInitialized { path });
        }
        Self::open_or_create(state_dir)
    }

    /// Opens an existing store, waiting up to `wait` while another process (a running
    /// `master serve`, a sync) holds it.
    pub fn open_waiting(state_dir: &Path, wait: std::time::Duration) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            match Self::open(state_dir) {
                Err(StoreError::Busy { .. }) if started.elapsed() < wait => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// Opens the store, creating it (and the state directory) if needed.
    pub fn open_or_create(state_dir: &Path) -> Result<Self, StoreError> {
        crate::fsutil::create_private_dir_all(state_dir)
            .map_err(|e| StoreError::io(state_dir, e))?;
        let path = Self::db_path(state_dir);
        let fresh = !path.exists();
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Busy { path: path.clone() },
            other => StoreError::Db(other.into()),
        })?;
        if fresh {
            // The database holds credentials' hashes and copies of secrets: owner-only.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::io(&path, e))?;
        }
        let store = Self {
            db,
            packs: Packs::new(state_dir.join(crate::paths::state::PACKS)),
            path,
        };
        store.init_tables()?;
        Ok(store)
    }

    /// Creates missing tables and checks the format. An existing, complete store is only
    /// read: opening must not cost a durable commit (the session-start hook opens it).
    fn init_tables(&self) -> Result<(), StoreError> {
        if self.tables_ready()? {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta_table = txn.open_table(META)?;
            let found = meta_table
                .get(meta::FORMAT)?
                .map(|v| v.value().first().copied().unwrap_or(0));
            match found {
                Some(v) if v > FORMAT_VERSION => {
                    return Err(StoreError::UpgradeRequired {
                        path: self.path.clone(),
                        found: v,
                        supported: FORMAT_VERSION,
                    });
                }
                Some(v) if v == FORMAT_VERSION => {}
                // Earlier formats are upgraded in place, in this transaction (below).
                _ => {
                    meta_table.insert(meta::FORMAT, [FORMAT_VERSION].as_slice())?;
                }
            }
            drop(meta_table);
            if has_table(&txn, OBJECTS_V1.name())? {
                migrate_v1(&txn)?;
            }
            txn.open_table(OBJECTS)?;
            txn.open_table(REFS)?;
            txn.open_table(REVLOG)?;
            txn.open_table(STATCACHE)?;
            txn.open_table(TOKENS)?;
            txn.open_table(FOLLOWERS)?;
            txn.open_table(PARTIAL)?;
            txn.open_table(applies::APPLIES)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Whether every table exists and the format is one this codexport reads.
    fn tables_ready(&self) -> Result<bool, StoreError> {
        use redb::TableHandle;
        let r = self.db.begin_read()?;
        let names: std::collections::HashSet<String> =
            r.list_tables()?.map(|t| t.name().to_owned()).collect();
        let wanted = [
            META.name(),
            OBJECTS.name(),
            REFS.name(),
            REVLOG.name(),
            STATCACHE.name(),
            TOKENS.name(),
            FOLLOWERS.name(),
            PARTIAL.name(),
            applies::APPLIES.name(),
        ];
        if !wanted.iter().all(|n| names.contains(*n)) || names.contains(OBJECTS_V1.name()) {
            return Ok(false);
        }
        let found = r
            .open_table(META)?
            .get(meta::FORMAT)?
            .map(|v| v.value().first().copied().unwrap_or(0));
        match found {
            Some(v) if v > FORMAT_VERSION => Err(StoreError::UpgradeRequired {
                path: self.path.clone(),
                found: v,
                supported: FORMAT_VERSION,
            }),
            Some(v) => Ok(v == FORMAT_VERSION),
            None => Ok(false),
        }
    }
}

fn has_table(txn: &redb::WriteTransaction, name: &str) -> Result<bool, StoreError> {
    use redb::TableHandle;
    Ok(txn.list_tables()?.any(|t| t.name() == name))
}

/// Moves every entry of `objects-v1` (formats before 2) to `objects-v2`, as raw objects, and drops
/// the old table. Every revision, log entry and rollback point stays: only the index's
/// encoding changes (the packs of format 1 stay readable through it).
fn migrate_v1(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    let old: Vec<([u8; 32], Location)> = {
        let table = txn.open_table(OBJECTS_V1)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            let loc = Location::decode_v1(&v.value()).ok_or_else(|| StoreError::Corrupt {
                what: "an entry of the format 1 object index".into(),
            })?;
            out.push((k.value(), loc));
        }
        out
    };
    let mut table = txn.open_table(OBJECTS)?;
    for (id, loc) in &old {
        table.insert(*id, loc.encode())?;
    }
    drop(table);
    txn.delete_table(OBJECTS_V1)?;
    Ok(old.len() as u64)
}
