//! Opening a store: creating it, checking its format, and upgrading a store of an earlier
//! format in place (the object index without compression, `objects-v1`, becomes
//! `objects-v2`; a store before roots has its rollback points and stat cache moved under the
//! Codex root).

use super::pack::{Location, Packs};
use super::{
    FOLLOWERS, META, OBJECTS, OBJECTS_V1, PARTIAL, REFS, REVLOG, STATCACHE, Store, StoreError,
    TOKENS, applies, meta,
};
use crate::object::FORMAT_VERSION;

/// The last format whose revisions and rollback points held the Codex dir itself.
const BEFORE_ROOTS: u8 = 3;
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
        let found = {
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
                None => {
                    meta_table.insert(meta::FORMAT, [FORMAT_VERSION].as_slice())?;
                }
                // Earlier formats are upgraded in place: the tables in this transaction (to
                // the format before roots), the rest in `upgrade_to_roots`.
                Some(_) => {
                    meta_table.insert(meta::FORMAT, [BEFORE_ROOTS].as_slice())?;
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
            found
        };
        txn.commit()?;
        if found.is_some_and(|v| v < FORMAT_VERSION) {
            self.upgrade_to_roots()?;
        }
        Ok(())
    }

    /// Format 3 to 4, in one transaction: the merged and canonical trees of every rollback
    /// point were the Codex dir itself and become trees of roots holding it under the Codex
    /// root's name (new tree objects; the old ones stay, reachable through them), and the
    /// stat cache's keys (paths in the Codex dir) become paths of the tree of roots. A crash
    /// before the commit leaves format 3, upgraded again at the next open.
    fn upgrade_to_roots(&self) -> Result<(), StoreError> {
        let mut w = self.write()?;
        let records = w
            .txn
            .open_table(applies::APPLIES)?
            .iter()?
            .map(|item| {
                let (k, v) = item?;
                Ok((k.value(), v.value().to_vec()))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for (seq, bytes) in records {
            let mut record = applies::ApplyRecord::decode(&bytes)?;
            record.merged = super::roots::wrap_codex_tree(&mut w, record.merged)?;
            record.canonical = super::roots::wrap_codex_tree(&mut w, record.canonical)?;
            let bytes =
                postcard::to_allocvec(&record).expect("postcard encoding into a Vec cannot fail");
            w.txn
                .open_table(applies::APPLIES)?
                .insert(seq, bytes.as_slice())?;
        }
        let entries = {
            let table = w.txn.open_table(STATCACHE)?;
            table
                .iter()?
                .map(|item| {
                    let (k, v) = item?;
                    Ok((k.value().to_owned(), v.value().to_vec()))
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        {
            let mut table = w.txn.open_table(STATCACHE)?;
            for (path, _) in &entries {
                table.remove(path.as_str())?;
            }
            for (path, value) in &entries {
                let moved = format!("{}/{path}", crate::roots::CODEX.name);
                table.insert(moved.as_str(), value.as_slice())?;
            }
        }
        w.set_meta(meta::FORMAT, &[FORMAT_VERSION])?;
        w.commit()
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
