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

/// Header at the start of every pack file this version writes (records of section 10.2).
pub const PACK_MAGIC: &[u8; 8] = b"CXPACK\x00\x02";
/// Header of the packs of format 1 (records without compression); read through the index.
pub const PACK_MAGIC_V1: &[u8; 8] = b"CXPACK\x00\x01";
/// A pack is closed for appends once it passes this size.
const PACK_ROTATE_BYTES: u64 = 256 << 20;
/// Bytes of a record header: kind, compression, stored length, size, id.
pub const RECORD_HEADER: u64 = 1 + 1 + 8 + 8 + 32;

/// How an object's bytes are stored (and sent): as they are, or zstd-compressed. Decided
/// once, when the object is first stored; nothing is compressed again per follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Raw,
    Zstd,
}

impl Compression {
    pub fn tag(self) -> u8 {
        match self {
            Compression::Raw => 0,
            Compression::Zstd => 1,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Compression::Raw),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Raw => "raw",
            Compression::Zstd => "zstd",
        }
    }

    /// An object's own bytes from its stored bytes (`size` long), refusing anything else.
    pub fn expand(self, stored: &[u8], size: u64) -> Result<std::borrow::Cow<'_, [u8]>, String> {
        match self {
            Compression::Raw if stored.len() as u64 == size => {
                Ok(std::borrow::Cow::Borrowed(stored))
            }
            Compression::Raw => Err(format!(
                "{} raw bytes stored for an object of {size}",
                stored.len()
            )),
            Compression::Zstd => decompress(stored, size).map(std::borrow::Cow::Owned),
        }
    }
}

/// Where one object lives. Encoded as 30 fixed bytes in the `objects-v2` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub kind: ObjectKind,
    pub compression: Compression,
    pub pack: u32,
    /// Offset of the object's stored bytes (after its record header).
    pub offset: u64,
    /// Stored bytes (compressed, or the object itself).
    pub len: u64,
    /// The object's own length (what its id hashes).
    pub size: u64,
}

impl Location {
    pub const ENCODED_LEN: usize = 30;
    /// The 21-byte form of format 1 (`objects-v1`): kind, pack, offset, length; raw.
    pub const ENCODED_LEN_V1: usize = 21;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = self.kind.tag();
        out[1] = self.compression.tag();
        out[2..6].copy_from_slice(&self.pack.to_le_bytes());
        out[6..14].copy_from_slice(&self.offset.to_le_bytes());
        out[14..22].copy_from_slice(&self.len.to_le_bytes());
        out[22..30].copy_from_slice(&self.size.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let loc = Self {
            kind: ObjectKind::from_tag(bytes[0]).ok()?,
            compression: Compression::from_tag(bytes[1])?,
            pack: u32::from_le_bytes(bytes[2..6].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[6..14].try_into().ok()?),
            len: u64::from_le_bytes(bytes[14..22].try_into().ok()?),
            size: u64::from_le_bytes(bytes[22..30].try_into().ok()?),
        };
        // Raw bytes are the object: one length. (Any other pair is a corrupt entry.)
        (loc.compression != Compression::Raw || loc.len == loc.size).then_some(loc)
    }

    /// A location of format 1's index (an object stored raw).
    pub fn decode_v1(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::ENCODED_LEN_V1 {
            return None;
        }
        let len = u64::from_le_bytes(bytes[13..21].try_into().ok()?);
        Some(Self {
            kind: ObjectKind::from_tag(bytes[0]).ok()?,
            compression: Compression::Raw,
            pack: u32::from_le_bytes(bytes[1..5].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[5..13].try_into().ok()?),
            len,
            size: len,
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

    /// The object's own bytes at `loc` (decompressed when stored compressed), never more
    /// than the length the index records.
    pub fn read_object(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let stored = self.read(loc)?;
        match loc.compression {
            Compression::Raw => Ok(stored),
            Compression::Zstd => {
                decompress(&stored, loc.size).map_err(|what| StoreError::Corrupt {
                    what: format!("object at {}:{}: {what}", loc.pack, loc.offset),
                })
            }
        }
    }

    /// The open pack file numbered `pack` (to copy raw bytes without reading them).
    pub fn file(&self, pack: u32) -> Result<Arc<File>, StoreError> {
        self.handle(pack)
    }

    /// Reads the stored bytes at `loc` (compressed when stored compressed).
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
            // Only a pack of this version with room left is appended to (a pack of format 1
            // keeps its own record layout).
            Some(n) if self.current(n) => (n, false),
            Some(n) => (n + 1, true),
            None => (1, true),
        };
        self.appender_for(pack, fresh)
    }

    /// Whether pack `n` is of this version and below the rotation size.
    fn current(&self, n: u32) -> bool {
        use std::io::Read;
        let path = self.path(n);
        let mut magic = [0u8; 8];
        let Ok(mut f) = File::open(&path) else {
            return false;
        };
        f.read_exact(&mut magic).is_ok()
            && &magic == PACK_MAGIC
            && f.metadata().is_ok_and(|m| m.len() < PACK_ROTATE_BYTES)
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

/// Appends object records to one pack. Records are `[kind u8][compression u8][stored length
/// u64 LE][size u64 LE][id 32][stored bytes]`, so a pack can be scanned without its index.
pub struct Appender {
    pack: u32,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    written: bool,
}

impl Appender {
    /// Appends one object's stored bytes (`size` is the object's own length).
    pub fn append(
        &mut self,
        kind: ObjectKind,
        id: &[u8; 32],
        compression: Compression,
        stored: &[u8],
        size: u64,
    ) -> Result<Location, StoreError> {
        let mut header = [0u8; RECORD_HEADER as usize];
        header[0] = kind.tag();
        header[1] = compression.tag();
        header[2..10].copy_from_slice(&(stored.len() as u64).to_le_bytes());
        header[10..18].copy_from_slice(&size.to_le_bytes());
        header[18..50].copy_from_slice(id);
        self.out
            .write_all(&header)
            .map_err(|e| StoreError::io(&self.path, e))?;
        self.out
            .write_all(stored)
            .map_err(|e| StoreError::io(&self.path, e))?;
        let loc = Location {
            kind,
            compression,
            pack: self.pack,
            offset: self.offset + RECORD_HEADER,
            len: stored.len() as u64,
            size,
        };
        self.offset += RECORD_HEADER + stored.len() as u64;
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

/// Decompresses a zstd-stored object of `size` bytes, refusing any other outcome (a frame that
/// would grow past `size`, or stop short of it).
pub fn decompress(stored: &[u8], size: u64) -> Result<Vec<u8>, String> {
    let cap = usize::try_from(size).map_err(|_| format!("object size {size} is too large"))?;
    let bytes = with_decompressor(|decoder| {
        decoder
            .decompress(stored, cap)
            .map_err(|e| format!("does not decompress to {size} bytes: {e}"))
    })?;
    if bytes.len() != cap {
        return Err(format!(
            "decompresses to {} bytes, {size} expected",
            bytes.len()
        ));
    }
    Ok(bytes)
}

thread_local! {
    /// One zstd decompression context per thread, made once: making one costs more than
    /// expanding a small object, and a checkout, a fetch and a served stream expand thousands.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// The same for compressing, at the sampling level and at the storing level.
    static COMPRESSORS: std::cell::RefCell<[Option<zstd::bulk::Compressor<'static>>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

/// Runs `f` with this thread's decompressor, made on first use. Each call decompresses one
/// whole frame from a fresh state; only the window limit carries over.
fn with_decompressor<T>(
    f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> Result<T, String>,
) -> Result<T, String> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut decoder = zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?;
            // The stored objects of this version use small windows; refuse frames that would
            // make this process allocate a large one.
            decoder
                .window_log_max(MAX_WINDOW_LOG)
                .map_err(|e| e.to_string())?;
            *slot = Some(decoder);
        }
        f(slot.as_mut().expect("made just above"))
    })
}

/// `raw` compressed whole at `level` (1 or 3) with this thread's compressor for that level;
/// empty when zstd fails (the caller then stores raw).
fn compress_at(raw: &[u8], level: i32) -> Vec<u8> {
    COMPRESSORS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slot = &mut slots[usize::from(level != 1)];
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(level).ok();
        }
        slot.as_mut()
            .and_then(|c| c.compress(raw).ok())
            .unwrap_or_default()
    })
}

/// Largest zstd window read (16 MiB); objects are compressed whole and are at most a chunk
/// (2 MiB) or a small file, so their windows are smaller.
pub const MAX_WINDOW_LOG: u32 = 24;

/// Objects smaller than this are stored raw: compression would save bytes of headers only.
const COMPRESS_FROM: usize = 256;
/// Bytes of a large object compressed first to judge whether compressing it pays.
const SAMPLE: usize = 64 << 10;

/// How to store `raw`: zstd (level 3) when that saves at least a sixteenth, else raw. A large
/// object is judged by its first 64 KiB at the fastest level first, so incompressible data
/// (archives, models, images) costs almost nothing to refuse.
pub fn compress(raw: &[u8]) -> (Compression, std::borrow::Cow<'_, [u8]>) {
    use std::borrow::Cow;
    if raw.len() < COMPRESS_FROM {
        return (Compression::Raw, Cow::Borrowed(raw));
    }
    let pays = |original: usize, compressed: usize| compressed < original - original / 16;
    if raw.len() > SAMPLE {
        let sample = compress_at(&raw[..SAMPLE], 1);
        if sample.is_empty() || !pays(SAMPLE, sample.len()) {
            return (Compression::Raw, Cow::Borrowed(raw));
        }
    }
    let c = compress_at(raw, 3);
    if !c.is_empty() && pays(raw.len(), c.len()) {
        (Compression::Zstd, Cow::Owned(c))
    } else {
        (Compression::Raw, Cow::Borrowed(raw))
    }
}
