//! The store: objects in pack files indexed by redb, plus refs, the revision log, the stat
//! cache and metadata, all in one database per machine (`~/.codexport/store.redb`).
//!
//! Owns every byte under `~/.codexport/store*`. It never reads or writes `~/.codex`. redb
//! admits one process at a time; a second one gets [`StoreError::Busy`].

mod access_tables;
pub mod applies;
pub mod diff;
pub mod edit;
pub mod fsck;
pub mod history;
pub mod log;
mod objects;
mod open;
pub mod pack;
pub mod partial;
#[cfg(test)]
mod proptests;
pub mod rev;
pub mod roots;
pub mod statcache;

pub use log::LogEntry;
pub use objects::{ObjectSource, WriteError};
pub use pack::{Compression, Location};
pub use statcache::StatEntry;

use crate::object::{DecodeError, ObjectId, ObjectKind, Revision, SignedHead, Tree};
use miette::Diagnostic;
use objects::locate_in;
use pack::{Appender, Packs};
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use thiserror::Error;

pub(crate) const OBJECTS: TableDefinition<[u8; 32], [u8; Location::ENCODED_LEN]> =
    TableDefinition::new("objects-v2");
/// The object index of format 1 (raw objects only), migrated to `objects-v2` on open.
pub(crate) const OBJECTS_V1: TableDefinition<[u8; 32], [u8; Location::ENCODED_LEN_V1]> =
    TableDefinition::new("objects-v1");
pub(crate) const REFS: TableDefinition<&str, [u8; 32]> = TableDefinition::new("refs-v1");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-v1");
pub(crate) const REVLOG: TableDefinition<u64, &[u8]> = TableDefinition::new("revlog-v1");
pub(crate) const STATCACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("statcache-v1");
/// Join tokens on the master: blake3 of the token → encoded record (see `access`).
pub(crate) const TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("tokens-v1");
/// Enrolled followers on the master: name → encoded record (see `access`).
pub(crate) const FOLLOWERS: TableDefinition<&str, &[u8]> = TableDefinition::new("followers-v1");
pub(crate) const PARTIAL: TableDefinition<[u8; 32], ()> = TableDefinition::new("partial-v1");

/// How long a command waits for a store another codexport process holds.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Names of refs. A ref names a revision id.
pub mod refs {
    /// The master's newest revision.
    pub const MASTER_HEAD: &str = "master/head";
}

/// Keys of the `meta-v1` table.
pub mod meta {
    /// One byte: the store format version.
    pub const FORMAT: &str = "format";
    /// The encoded signed head the master serves.
    pub const HEAD: &str = "head";
    /// One byte 1 when `fsck` set damaged objects aside: revisions may lack objects until
    /// they are stored again (a follower's next sync fetches them); empty otherwise.
    pub const REPAIR: &str = "repair";
}

/// What went wrong in the store.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the store at {} is in use by another codexport process", path.display())]
    #[diagnostic(
        code(codexport::store::busy),
        help(
            "wait for the other codexport command (or `master serve`) to finish, or stop it, then retry"
        )
    )]
    Busy { path: PathBuf },
    #[error("no store at {}", path.display())]
    #[diagnostic(
        code(codexport::store::missing),
        help(
            "run `codexport master init` on the master (or `codexport follower join` on a follower) first"
        )
    )]
    NotInitialized { path: PathBuf },
    #[error("the store at {} was written by a newer codexport (format {found}, this one reads {supported})", path.display())]
    #[diagnostic(
        code(codexport::store::upgrade),
        help("upgrade codexport; nothing was changed")
    )]
    UpgradeRequired {
        path: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("store database error: {0}")]
    #[diagnostic(
        code(codexport::store::db),
        help(
            "run `codexport fsck`; if the database itself is damaged, move ~/.codexport/store.redb aside and re-initialise"
        )
    )]
    Db(#[from] redb::Error),
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::store::io),
        help("check permissions and free space of the codexport state directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("object {id} is missing from the store")]
    #[diagnostic(
        code(codexport::store::missing_object),
        help(
            "the store is incomplete; run `codexport fsck` (a follower can `codexport sync` to fetch it again)"
        )
    )]
    MissingObject { id: ObjectId },
    #[error("object {id} is a {found}, expected a {expected}")]
    #[diagnostic(
        code(codexport::store::kind),
        help("the store is corrupt; run `codexport fsck`")
    )]
    WrongKind {
        id: ObjectId,
        expected: &'static str,
        found: &'static str,
    },
    #[error("stored {kind} {id} is damaged: its bytes no longer hash to its id")]
    #[diagnostic(
        code(codexport::store::damaged),
        help(
            "nothing was written from it; run `codexport fsck` (it sets damaged objects aside), then `codexport sync` on a follower (it fetches them again) or `codexport master rebuild` on a master"
        )
    )]
    Damaged { id: ObjectId, kind: &'static str },
    #[error("object {id} is corrupt: {source}")]
    #[diagnostic(
        code(codexport::store::corrupt_object),
        help("run `codexport fsck` to list every damaged object")
    )]
    BadObject { id: ObjectId, source: DecodeError },
    #[error("store is corrupt: {what}")]
    #[diagnostic(
        code(codexport::store::corrupt),
        help("run `codexport fsck` to list every damaged object")
    )]
    Corrupt { what: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

macro_rules! db_from {
    ($($t:ty),*) => {$(impl From<$t> for StoreError { fn from(e: $t) -> Self { StoreError::Db(e.into()) } })*};
}
db_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError
);

/// The size of a store.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StoreStats {
    pub objects: u64,
    /// Bytes of the objects themselves.
    pub content_bytes: u64,
    /// The database and packs on disk.
    pub disk_bytes: u64,
}

/// One machine's store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
    packs: Packs,
}

impl Store {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent read view.
    pub fn read(&self) -> Result<Reader<'_>, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(Reader {
            partial: txn.open_table(PARTIAL)?,
            applies: txn.open_table(applies::APPLIES)?,
            objects: txn.open_table(OBJECTS)?,
            refs: txn.open_table(REFS)?,
            meta: txn.open_table(META)?,
            revlog: txn.open_table(REVLOG)?,
            statcache: txn.open_table(STATCACHE)?,
            tokens: txn.open_table(TOKENS)?,
            followers: txn.open_table(FOLLOWERS)?,
            packs: &self.packs,
        })
    }

    /// A write transaction that is not flushed to disk at commit (a later durable commit
    /// persists it): for bookkeeping such as the last sync's result, which must not cost an
    /// fsync on every session start.
    pub fn write_lazy(&self) -> Result<Writer<'_>, StoreError> {
        let mut w = self.write()?;
        w.txn
            .set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Corrupt {
                what: format!("durability: {e}"),
            })?;
        Ok(w)
    }

    /// A write transaction; nothing is visible to readers until [`Writer::commit`].
    pub fn write(&self) -> Result<Writer<'_>, StoreError> {
        let mut txn = self.db.begin_write()?;
        // The pack is synced before commit; redb's own commit makes the index durable.
        txn.set_quick_repair(true);
        Ok(Writer {
            txn,
            packs: &self.packs,
            appender: std::cell::RefCell::new(None),
        })
    }

    /// Bytes on disk: the database plus every pack.
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        let mut total = std::fs::metadata(&self.path)
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        for n in self.packs.list()? {
            let p = self.packs.path(n);
            total += std::fs::metadata(&p)
                .map_err(|e| StoreError::io(&p, e))?
                .len();
        }
        Ok(total)
    }

    /// How many objects the store holds, their bytes, and the bytes on disk.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let objects = self.read()?.objects()?;
        Ok(StoreStats {
            objects: objects.len() as u64,
            content_bytes: objects.iter().map(|(_, l)| l.len).sum(),
            disk_bytes: self.disk_bytes()?,
        })
    }

    pub(crate) fn packs(&self) -> &Packs {
        &self.packs
    }

    pub(crate) fn compact(&mut self) -> Result<(), StoreError> {
        self.db.compact()?;
        Ok(())
    }
}

/// A consistent read view of the store.
pub struct Reader<'s> {
    partial: ReadOnlyTable<[u8; 32], ()>,
    applies: ReadOnlyTable<u64, &'static [u8]>,
    objects: ReadOnlyTable<[u8; 32], [u8; Location::ENCODED_LEN]>,
    refs: ReadOnlyTable<&'static str, [u8; 32]>,
    meta: ReadOnlyTable<&'static str, &'static [u8]>,
    revlog: ReadOnlyTable<u64, &'static [u8]>,
    statcache: ReadOnlyTable<&'static str, &'static [u8]>,
    tokens: ReadOnlyTable<[u8; 32], &'static [u8]>,
    followers: ReadOnlyTable<&'static str, &'static [u8]>,
    packs: &'s Packs,
}

impl ObjectSource for Reader<'_> {
    fn locate(&self, id: &ObjectId) -> Result<Option<Location>, StoreError> {
        locate_in(&self.objects, id)
    }
    fn read_at(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        self.packs.read(loc)
    }
    fn pack_file(
        &self,
        loc: &Location,
    ) -> Result<Option<std::sync::Arc<std::fs::File>>, StoreError> {
        self.packs.file(loc.pack).map(Some)
    }
}

impl Reader<'_> {
    pub fn get_ref(&self, name: &str) -> Result<Option<ObjectId>, StoreError> {
        Ok(self
            .refs
            .get(name)?
            .map(|v| ObjectId::from_bytes(v.value())))
    }

    /// Every ref, by name.
    pub fn refs(&self) -> Result<Vec<(String, ObjectId)>, StoreError> {
        let mut out = Vec::new();
        for item in self.refs.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_owned(), ObjectId::from_bytes(v.value())));
        }
        Ok(out)
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.value().to_vec()))
    }

    /// The signed head the master serves, if one was published.
    pub fn head(&self) -> Result<Option<SignedHead>, StoreError> {
        self.meta(meta::HEAD)?
            .map(|b| {
                SignedHead::decode(&b).map_err(|e| StoreError::Corrupt {
                    what: format!("stored head: {e}"),
                })
            })
            .transpose()
    }

    /// The revision log, oldest first.
    pub fn log(&self) -> Result<Vec<LogEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.revlog.iter()? {
            let (_, v) = item?;
            out.push(LogEntry::decode(v.value())?);
        }
        Ok(out)
    }

    pub fn log_entry(&self, number: u64) -> Result<Option<LogEntry>, StoreError> {
        self.revlog
            .get(number)?
            .map(|v| LogEntry::decode(v.value()))
            .transpose()
    }

    /// The newest log entry.
    pub fn last_log_entry(&self) -> Result<Option<LogEntry>, StoreError> {
        self.revlog
            .last()?
            .map(|(_, v)| LogEntry::decode(v.value()))
            .transpose()
    }

    /// All stat cache entries, by path.
    pub fn stat_cache(&self) -> Result<std::collections::HashMap<String, StatEntry>, StoreError> {
        let mut out = std::collections::HashMap::new();
        for item in self.statcache.iter()? {
            let (k, v) = item?;
            if let Some(entry) = StatEntry::decode(v.value()) {
                out.insert(k.value().to_owned(), entry);
            }
        }
        Ok(out)
    }

    /// Open handles of the packs holding `locations`, to read those objects after this
    /// reader and the store are gone (see [`pack::PackFiles`]).
    pub fn pack_files<'l>(
        &self,
        locations: impl IntoIterator<Item = &'l Location>,
    ) -> Result<pack::PackFiles, StoreError> {
        self.packs.files(locations.into_iter().map(|l| l.pack))
    }

    /// Every object id with its location.
    pub fn objects(&self) -> Result<Vec<(ObjectId, Location)>, StoreError> {
        let mut out = Vec::new();
        for item in self.objects.iter()? {
            let (k, v) = item?;
            let id = ObjectId::from_bytes(k.value());
            let loc = Location::decode(&v.value()).ok_or_else(|| StoreError::Corrupt {
                what: format!("index entry of {id}"),
            })?;
            out.push((id, loc));
        }
        Ok(out)
    }
}

/// A write transaction. Objects are appended to a pack; the index, refs and tables become
/// visible together at [`Writer::commit`], after the pack is synced.
pub struct Writer<'s> {
    txn: redb::WriteTransaction,
    packs: &'s Packs,
    /// In a `RefCell` so that reads through `&self` can flush what they need to see.
    appender: std::cell::RefCell<Option<Appender>>,
}

impl ObjectSource for Writer<'_> {
    fn locate(&self, id: &ObjectId) -> Result<Option<Location>, StoreError> {
        locate_in(&self.txn.open_table(OBJECTS)?, id)
    }
    fn read_at(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        if let Some(appender) = self.appender.borrow_mut().as_mut() {
            appender.flush_for(loc)?;
        }
        self.packs.read(loc)
    }
}

impl Writer<'_> {
    /// Stores an object unless present; returns its id. The caller vouches that `bytes` is a
    /// valid object of `kind` (decoded or built by codexport).
    pub fn put(&mut self, kind: ObjectKind, bytes: &[u8]) -> Result<ObjectId, StoreError> {
        let id = kind.id_of(bytes);
        self.put_with_id(kind, id, bytes)?;
        Ok(id)
    }

    /// Stores an object whose id the caller already computed (e.g. while hashing in
    /// parallel). Returns whether it was new.
    pub fn put_with_id(
        &mut self,
        kind: ObjectKind,
        id: ObjectId,
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        if self.has(&id)? {
            return Ok(false);
        }
        let (compression, stored) = pack::compress(bytes);
        self.put_stored(kind, id, compression, &stored, bytes.len() as u64)
    }

    /// Stores an object's bytes as they are to be stored (already compressed, or not, as
    /// `compression` says; `size` is the object's own length), unless present: what a
    /// fetch received, or what a caller compressed itself (in parallel). The caller vouches
    /// that the bytes are the object `id`. Returns whether it was new.
    pub fn put_stored(
        &mut self,
        kind: ObjectKind,
        id: ObjectId,
        compression: Compression,
        stored: &[u8],
        size: u64,
    ) -> Result<bool, StoreError> {
        let mut table = self.txn.open_table(OBJECTS)?;
        if table.get(id.to_bytes())?.is_some() {
            return Ok(false);
        }
        let appender = self.appender.get_mut();
        if appender.is_none() {
            *appender = Some(self.packs.appender()?);
        }
        let appender = appender.as_mut().expect("set just above");
        let loc = appender.append(kind, id.as_bytes(), compression, stored, size)?;
        table.insert(id.to_bytes(), loc.encode())?;
        Ok(true)
    }

    /// Stores a file's content held in memory as a tree entry names it: one blob, or, above
    /// the chunking threshold, its chunks and chunk list (so the same content gets the same
    /// id however it reached the store). Returns the id and whether it is chunked.
    pub fn put_content(&mut self, bytes: &[u8]) -> Result<(ObjectId, bool), StoreError> {
        let mut failed = None;
        let content = crate::object::chunks::read_file(bytes, |id, chunk| {
            if failed.is_none() {
                if let Err(e) = self.put_with_id(ObjectKind::Blob, id, &chunk) {
                    failed = Some(e);
                }
            }
            Ok(())
        })
        .map_err(|e| StoreError::Corrupt {
            what: format!("cutting content held in memory: {e}"),
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(match content {
            crate::object::chunks::FileContent::Blob { id, bytes } => {
                self.put_with_id(ObjectKind::Blob, id, &bytes)?;
                (id, false)
            }
            crate::object::chunks::FileContent::Chunked { list } => {
                (self.put(ObjectKind::Chunks, &list.encode())?, true)
            }
        })
    }

    pub fn put_tree(&mut self, tree: &Tree) -> Result<ObjectId, StoreError> {
        self.put(ObjectKind::Tree, &tree.encode())
    }

    pub fn put_revision(&mut self, rev: &Revision) -> Result<ObjectId, StoreError> {
        self.put(ObjectKind::Revision, &rev.encode())
    }

    pub fn get_ref(&self, name: &str) -> Result<Option<ObjectId>, StoreError> {
        Ok(self
            .txn
            .open_table(REFS)?
            .get(name)?
            .map(|v| ObjectId::from_bytes(v.value())))
    }

    pub fn set_ref(&mut self, name: &str, id: ObjectId) -> Result<(), StoreError> {
        self.txn.open_table(REFS)?.insert(name, id.to_bytes())?;
        Ok(())
    }

    pub fn remove_ref(&mut self, name: &str) -> Result<(), StoreError> {
        self.txn.open_table(REFS)?.remove(name)?;
        Ok(())
    }

    /// A `meta-v1` value as this transaction sees it (for a read-modify-write that must not
    /// lose a concurrent writer's change).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .txn
            .open_table(META)?
            .get(key)?
            .map(|v| v.value().to_vec()))
    }

    pub fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.txn.open_table(META)?.insert(key, value)?;
        Ok(())
    }

    pub fn set_head(&mut self, head: &SignedHead) -> Result<(), StoreError> {
        self.set_meta(meta::HEAD, &head.encode())
    }

    pub fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.txn
            .open_table(REVLOG)?
            .insert(entry.number, entry.encode().as_slice())?;
        Ok(())
    }

    pub fn remove_log(&mut self, number: u64) -> Result<(), StoreError> {
        self.txn.open_table(REVLOG)?.remove(number)?;
        Ok(())
    }

    pub fn last_log_entry(&self) -> Result<Option<LogEntry>, StoreError> {
        self.txn
            .open_table(REVLOG)?
            .last()?
            .map(|(_, v)| LogEntry::decode(v.value()))
            .transpose()
    }

    /// Brings the stat cache from `old` to `new`, writing only entries that differ (a
    /// one-file change rewrites one entry, not ten thousand).
    pub fn update_stat_cache(
        &mut self,
        old: &std::collections::HashMap<String, StatEntry>,
        new: &std::collections::HashMap<&str, StatEntry>,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(STATCACHE)?;
        for path in old.keys().filter(|p| !new.contains_key(p.as_str())) {
            table.remove(path.as_str())?;
        }
        for (path, entry) in new {
            if old.get(*path) != Some(entry) {
                table.insert(*path, entry.encode().as_slice())?;
            }
        }
        Ok(())
    }

    /// Drops stat-cache entries, so those files are hashed again.
    pub fn forget_stat_entries<'p>(
        &mut self,
        paths: impl Iterator<Item = &'p str>,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(STATCACHE)?;
        for p in paths {
            table.remove(p)?;
        }
        Ok(())
    }

    pub(crate) fn remove_object(&mut self, id: &ObjectId) -> Result<(), StoreError> {
        self.txn.open_table(OBJECTS)?.remove(id.to_bytes())?;
        Ok(())
    }

    pub(crate) fn relocate(&mut self, id: &ObjectId, loc: Location) -> Result<(), StoreError> {
        self.txn
            .open_table(OBJECTS)?
            .insert(id.to_bytes(), loc.encode())?;
        Ok(())
    }

    /// Makes everything written visible and durable: pack first, then the index.
    pub fn commit(mut self) -> Result<(), StoreError> {
        if let Some(appender) = self.appender.get_mut().take() {
            appender.finish()?;
        }
        self.txn.commit()?;
        Ok(())
    }
}
