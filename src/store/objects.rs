//! Reading objects: the typed access readers and writers share. Typed reads check what
//! they read against its id; raw reads (serving, copying) hand out stored bytes as they are.

use super::StoreError;
use super::pack::{Compression, Location};
use crate::object::{ChunkList, DecodeError, ObjectId, ObjectKind, Revision, Tree, TreeEntry};
use redb::ReadableTable;
use std::fs::File;
use std::io::Write;

/// Checks a stored object on its way out, by kind and by hash, then decodes it. Every typed
/// read goes through here, so rotted pack bytes never reach the codex dir or the screen.
fn decode_kind<T>(
    id: ObjectId,
    kind: ObjectKind,
    expected: ObjectKind,
    bytes: &[u8],
    f: fn(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, StoreError> {
    if kind != expected {
        return Err(StoreError::WrongKind {
            id,
            expected: expected.as_str(),
            found: kind.as_str(),
        });
    }
    if kind.id_of(bytes) != id {
        return Err(StoreError::Damaged {
            id,
            kind: kind.as_str(),
        });
    }
    f(bytes).map_err(|source| StoreError::BadObject { id, source })
}

/// Typed object access shared by readers and writers.
pub trait ObjectSource {
    /// Where an object lives, if present.
    fn locate(&self, id: &ObjectId) -> Result<Option<Location>, StoreError>;
    /// Reads an object's stored bytes (compressed when stored compressed).
    fn read_at(&self, loc: &Location) -> Result<Vec<u8>, StoreError>;

    /// Reads an object's own bytes (decompressed).
    fn read_object_at(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let stored = self.read_at(loc)?;
        match loc.compression {
            super::Compression::Raw => Ok(stored),
            super::Compression::Zstd => {
                super::pack::decompress(&stored, loc.size).map_err(|what| StoreError::Corrupt {
                    what: format!("object at {}:{}: {what}", loc.pack, loc.offset),
                })
            }
        }
    }

    fn has(&self, id: &ObjectId) -> Result<bool, StoreError> {
        Ok(self.locate(id)?.is_some())
    }

    /// Kind and own (decompressed) bytes, or `None` if absent. Not checked against the id:
    /// for callers that check (or hand the bytes to one that does).
    fn get_raw(&self, id: &ObjectId) -> Result<Option<(ObjectKind, Vec<u8>)>, StoreError> {
        match self.locate(id)? {
            Some(loc) => Ok(Some((loc.kind, self.read_object_at(&loc)?))),
            None => Ok(None),
        }
    }

    fn get_required(&self, id: &ObjectId) -> Result<(ObjectKind, Vec<u8>), StoreError> {
        self.get_raw(id)?
            .ok_or(StoreError::MissingObject { id: *id })
    }

    /// Where an object lives and its stored bytes, as they are (served to followers as
    /// stored: nothing is compressed again).
    fn get_stored(&self, id: &ObjectId) -> Result<(Location, Vec<u8>), StoreError> {
        let loc = self
            .locate(id)?
            .ok_or(StoreError::MissingObject { id: *id })?;
        Ok((loc, self.read_at(&loc)?))
    }

    fn tree(&self, id: &ObjectId) -> Result<Tree, StoreError> {
        let (kind, bytes) = self.get_required(id)?;
        decode_kind(*id, kind, ObjectKind::Tree, &bytes, Tree::decode)
    }

    fn revision(&self, id: &ObjectId) -> Result<Revision, StoreError> {
        let (kind, bytes) = self.get_required(id)?;
        decode_kind(*id, kind, ObjectKind::Revision, &bytes, Revision::decode)
    }

    fn chunk_list(&self, id: &ObjectId) -> Result<ChunkList, StoreError> {
        let (kind, bytes) = self.get_required(id)?;
        decode_kind(*id, kind, ObjectKind::Chunks, &bytes, ChunkList::decode)
    }

    /// The objects `id` (of `kind`) names directly, each with the kind it must have.
    fn children(
        &self,
        kind: ObjectKind,
        id: &ObjectId,
    ) -> Result<Vec<(ObjectKind, ObjectId)>, StoreError> {
        Ok(match kind {
            ObjectKind::Blob => Vec::new(),
            ObjectKind::Revision => self.revision(id)?.children().collect(),
            ObjectKind::Tree => self
                .tree(id)?
                .entries()
                .iter()
                .map(|e| (e.object_kind(), e.id))
                .collect(),
            ObjectKind::Chunks => self
                .chunk_list(id)?
                .chunks()
                .iter()
                .map(|c| (ObjectKind::Blob, c.id))
                .collect(),
        })
    }

    fn blob(&self, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
        let (kind, bytes) = self.get_required(id)?;
        decode_kind(*id, kind, ObjectKind::Blob, &bytes, |b| Ok(b.to_vec()))
    }

    /// A whole file's content, whether one blob or a chunk list (checked piece by piece):
    /// for the few files read whole (config.toml, hooks.json, …). Large files are streamed
    /// with [`ObjectSource::write_content`] or [`ObjectSource::copy_to_file`].
    fn file(&self, entry: &TreeEntry) -> Result<Vec<u8>, StoreError> {
        self.content(&entry.id)
    }

    /// [`ObjectSource::file`] by id: a blob's bytes, or a chunk list's chunks joined.
    fn content(&self, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.write_content(id, &mut out).map_err(|e| match e {
            WriteError::Store(e) => e,
            WriteError::Io(e) => StoreError::Corrupt {
                what: format!("writing to memory: {e}"),
            },
        })?;
        Ok(out)
    }

    /// Writes a file's content (the blob `id`, or the chunks of the chunk list `id`) to
    /// `out`, each piece checked against its id before it is written: memory holds one
    /// chunk, whatever the file size.
    fn write_content(&self, id: &ObjectId, out: &mut dyn Write) -> Result<(), WriteError> {
        for piece in self.pieces(id)? {
            out.write_all(&self.blob(&piece)?)?;
        }
        Ok(())
    }

    /// The blobs a file's content is made of: itself, or the chunks its chunk list names.
    fn pieces(&self, id: &ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        match self.locate(id)? {
            Some(loc) if loc.kind == ObjectKind::Chunks => {
                Ok(self.chunk_list(id)?.chunks().iter().map(|c| c.id).collect())
            }
            Some(_) => Ok(vec![*id]),
            None => Err(StoreError::MissingObject { id: *id }),
        }
    }

    /// The open pack file holding the object at `loc`, for callers that copy raw stored
    /// bytes without reading them; `None` where this source cannot lend one.
    fn pack_file(&self, _loc: &Location) -> Result<Option<std::sync::Arc<File>>, StoreError> {
        Ok(None)
    }

    /// Writes a file's content into `file` at its current offset, piece by piece. A large
    /// piece stored raw is copied inside the kernel (`copy_file_range`, which shares the
    /// blocks on filesystems that can) and then checked by reading the copy back, so what
    /// lands in `file` is verified either way.
    fn copy_to_file(&self, id: &ObjectId, file: &File) -> Result<(), WriteError> {
        for piece in self.pieces(id)? {
            let loc = self
                .locate(&piece)?
                .ok_or(StoreError::MissingObject { id: piece })?;
            let pack = match loc.compression {
                Compression::Raw if loc.size >= COPY_RANGE_FROM && loc.kind == ObjectKind::Blob => {
                    self.pack_file(&loc)?
                }
                _ => None,
            };
            match pack {
                Some(pack) => copy_range(&pack, &loc, piece, file)?,
                None => (&*file).write_all(&self.blob(&piece)?)?,
            }
        }
        Ok(())
    }
}

/// Why writing an object's content out failed: the store, or the destination.
#[derive(Debug)]
pub enum WriteError {
    Store(StoreError),
    Io(std::io::Error),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Raw pieces at least this large are copied with `copy_file_range`; smaller ones cost less
/// read and written than the extra read-back.
const COPY_RANGE_FROM: u64 = 256 << 10;

/// Copies the raw object at `loc` from `pack` to `file` (at its offset) in the kernel, then
/// reads the copy back and checks it hashes to `id`.
fn copy_range(pack: &File, loc: &Location, id: ObjectId, file: &File) -> Result<(), WriteError> {
    use std::os::unix::fs::FileExt;
    let start =
        rustix::fs::seek(file, rustix::fs::SeekFrom::Current(0)).map_err(std::io::Error::from)?;
    let mut from = loc.offset;
    let mut left = loc.len;
    while left > 0 {
        let n = rustix::fs::copy_file_range(pack, Some(&mut from), file, None, left as usize)
            .map_err(std::io::Error::from)?;
        if n == 0 {
            return Err(StoreError::Corrupt {
                what: format!("pack {} ends inside object {id}", loc.pack),
            }
            .into());
        }
        left -= n as u64;
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut at = start;
    let end = start + loc.len;
    while at < end {
        let want = usize::try_from(end - at).map_or(buf.len(), |n| n.min(buf.len()));
        file.read_exact_at(&mut buf[..want], at)?;
        hasher.update(&buf[..want]);
        at += want as u64;
    }
    if ObjectId::from(hasher.finalize()) != id {
        return Err(StoreError::Damaged {
            id,
            kind: ObjectKind::Blob.as_str(),
        }
        .into());
    }
    Ok(())
}

pub(super) fn locate_in(
    table: &impl ReadableTable<[u8; 32], [u8; Location::ENCODED_LEN]>,
    id: &ObjectId,
) -> Result<Option<Location>, StoreError> {
    match table.get(id.to_bytes())? {
        Some(v) => Location::decode(&v.value())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("index entry of {id}"),
            }),
        None => Ok(None),
    }
}
