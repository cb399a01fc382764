//! Pack files: append-only files holding object bytes; the redb index says where each is.
//!
//! Many small objects in redb grew its file 1.7–3.4× the content in our trials, and each
//! insert copies pages; appending to a pack and indexing (pack, offset, length) keeps the
//! store close to the content size and a cold snapshot close to the speed of the disk.

use super::StoreError;
use crate::object::ObjectKind;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Header at the start of every pack file.
pub const PACK_MAGIC: &[u8; 8] = b"CXPACK\x00\x01";
/// A pack is closed for appends once it passes this size.
const PACK_ROTATE_BYTES: u64 = 256 << 20;

/// Where one object lives. Encoded as 21 fixed bytes in the `objects-v1` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub kind: ObjectKind,
    pub pack: u32,
    /// Offset of the object's bytes (after its record header).
    pub offset: u64,
    pub len: u64,
}

impl Location {
    pub const ENCODED_LEN: usize = 21;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = self.kind.tag();
        out[1..5].copy_from_slice(&self.pack.to_le_bytes());
        out[5..13].copy_from_slice(&self.offset.to_le_bytes());
        out[13..21].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(Self {
            kind: ObjectKind::from_tag(bytes[0]).ok()?,
            pack: u32::from_le_bytes(bytes[1..5].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[5..13].try_into().ok()?),
            len: u64::from_le_bytes(bytes[13..21].try_into().ok()?),
        })
    }
}

/// Open read handles of some pack files, detached from the store: the master streams a
/// fetch from these after it has closed the store, so a follower that reads slowly never
/// keeps the database open (other master commands, `followers revoke` among them, would
/// wait on it). Packs are append-only and gc writes live objects into new packs before it
/// removes old ones, so an open handle keeps reading the bytes it was opened for.
#[derive(Debug)]
pub struct PackFiles {
    dir: PathBuf,
    files: HashMap<u32, Arc<File>>,
}

impl PackFiles {
    /// Reads the bytes at `loc`, whose pack must be among those opened.
    pub fn read(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let path = self.dir.join(format!("{:08}.pack", loc.pack));
        let file = self
            .files
            .get(&loc.pack)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("pack {} was not opened for this read", loc.pack),
            })?;
        read_at(file, loc, &path)
    }
}

fn read_at(file: &File, loc: &Location, path: &Path) -> Result<Vec<u8>, StoreError> {
    let len = usize::try_from(loc.len).map_err(|_| StoreError::Corrupt {
        what: format!("object length {} in pack {}", loc.len, loc.pack),
    })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, loc.offset)
        .map_err(|e| StoreError::io(path, e))?;
    Ok(buf)
}

/// The pack directory: shared read handles and the file names.
#[derive(Debug)]
pub struct Packs {
    dir: PathBuf,
    open: Mutex<HashMap<u32, Arc<File>>>,
}

impl Packs {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, pack: u32) -> PathBuf {
        self.dir.join(format!("{pack:08}.pack"))
    }

    /// Numbers of the pack files present, ascending.
    pub fn list(&self) -> Result<Vec<u32>, StoreError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StoreError::io(&self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.dir, e))?;
            let name = entry.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pack"))
                .and_then(|n| n.parse().ok())
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Reads the bytes at `loc`.
    pub fn read(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let file = self.handle(loc.pack)?;
        read_at(&file, loc, &self.path(loc.pack))
    }

    fn handle(&self, pack: u32) -> Result<Arc<File>, StoreError> {
        let mut open = self
            .open
            .lock()
            .expect("pack handle map is never poisoned by a panic while held");
        if let Some(f) = open.get(&pack) {
            return Ok(f.clone());
        }
        let path = self.path(pack);
        let file = Arc::new(File::open(&path).map_err(|e| StoreError::io(&path, e))?);
        open.insert(pack, file.clone());
        Ok(file)
    }

    /// Open read handles of `packs`, usable after the store is closed (see [`PackFiles`]).
    pub fn files(&self, packs: impl IntoIterator<Item = u32>) -> Result<PackFiles, StoreError> {
        let mut files = HashMap::new();
        for pack in packs {
            if let std::collections::hash_map::Entry::Vacant(e) = files.entry(pack) {
                e.insert(self.handle(pack)?);
            }
        }
        Ok(PackFiles {
            dir: self.dir.clone(),
            files,
        })
    }

    /// Forgets cached handles, e.g. after gc removed packs.
    pub fn forget(&self) {
        self.open
            .lock()
            .expect("pack handle map is never poisoned by a panic while held")
            .clear();
    }

    /// Opens the newest pack for appending, or starts a new one when it is full.
    pub fn appender(&self) -> Result<Appender, StoreError> {
        crate::fsutil::create_private_dir_all(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))?;
        let last = self.list()?.last().copied();
        let (pack, fresh) = match last {
            Some(n)
                if fs::metadata(self.path(n))
                    .map(|m| m.len())
                    .unwrap_or(u64::MAX)
                    < PACK_ROTATE_BYTES =>
            {
                (n, false)
            }
            Some(n) => (n + 1, true),
            None => (1, true),
        };
        self.appender_for(pack, fresh)
    }

    /// Starts a new pack after every existing one (used by gc to rewrite live objects).
    pub fn fresh_appender(&self) -> Result<Appender, StoreError> {
        crate::fsutil::create_private_dir_all(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))?;
        let next = self.list()?.last().map_or(1, |n| n + 1);
        self.appender_for(next, true)
    }

    fn appender_for(&self, pack: u32, fresh: bool) -> Result<Appender, StoreError> {
        let path = self.path(pack);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let mut offset = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        let mut out = BufWriter::with_capacity(1 << 20, file);
        if fresh || offset == 0 {
            out.write_all(PACK_MAGIC)
                .map_err(|e| StoreError::io(&path, e))?;
            offset = PACK_MAGIC.len() as u64;
        }
        Ok(Appender {
            pack,
            path,
            out,
            offset,
            written: false,
        })
    }
}

/// Appends object records to one pack. Records are `[kind u8][len u64 LE][id 32][bytes]`,
/// so a pack can be scanned without its index.
pub struct Appender {
    pack: u32,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    written: bool,
}

impl Appender {
    pub fn append(
        &mut self,
        kind: ObjectKind,
        id: &[u8; 32],
        bytes: &[u8],
    ) -> Result<Location, StoreError> {
        let mut header = [0u8; 41];
        header[0] = kind.tag();
        header[1..9].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
        header[9..41].copy_from_slice(id);
        self.out
            .write_all(&header)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.out
            .write_all(bytes)
            .map_err(|e| StoreError::io(&self.path, e))?;
        let loc = Location {
            kind,
            pack: self.pack,
            offset: self.offset + 41,
            len: bytes.len() as u64,
        };
        self.offset += 41 + bytes.len() as u64;
        self.written = true;
        Ok(loc)
    }

    /// Flushes buffered records if `loc` lies in them, so a read of it sees its bytes.
    pub fn flush_for(&mut self, loc: &Location) -> Result<(), StoreError> {
        if loc.pack == self.pack && !self.out.buffer().is_empty() {
            self.out
                .flush()
                .map_err(|e| StoreError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Flushes and syncs the pack so the index may point into it.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.out
            .flush()
            .map_err(|e| StoreError::io(&self.path, e))?;
        if self.written {
            self.out
                .get_ref()
                .sync_data()
                .map_err(|e| StoreError::io(&self.path, e))?;
        }
        Ok(())
    }
}
