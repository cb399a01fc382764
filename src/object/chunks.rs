//! Large files: content-defined chunks (FastCDC 2020) and the chunk list naming them.
//!
//! A file larger than [`CHUNK_THRESHOLD`] is cut where its content says (not at fixed
//! offsets), so an edit inside it changes the chunks around the edit only: storing, sending
//! and writing it costs about the edit. Each chunk is a blob; the file's tree entry names
//! the chunk list, an object of its own. Identical chunks, across files and revisions, are
//! one object. No step holds more than a few chunks of one file in memory.

use super::{DecodeError, ObjectId, ObjectKind, codec};
use std::io::{self, Read};

pub(crate) const MAGIC: &[u8; 4] = b"CXCL";
/// The chunk list's encoding version.
pub const VERSION: u8 = 1;
pub(crate) const ID_CONTEXT: &str = "codexport 2026-12-01 chunks v1";

/// Smallest chunk (but the last of a file).
pub const MIN_CHUNK: u32 = 128 << 10;
/// The chunk size FastCDC aims at.
pub const AVG_CHUNK: u32 = 512 << 10;
/// Largest chunk.
pub const MAX_CHUNK: u32 = 2 << 20;
/// Files larger than this are chunked; smaller ones are one blob.
pub const CHUNK_THRESHOLD: u64 = MAX_CHUNK as u64;
/// Most chunks one list may name (a file of about 512 GiB at the average chunk size).
pub const MAX_CHUNKS: usize = 1 << 20;

/// One chunk of a file: a blob, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    pub id: ObjectId,
    pub size: u64,
}

/// A large file: its chunks, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkList {
    chunks: Vec<Chunk>,
}

impl ChunkList {
    /// A list of these chunks; refuses what the decoder would refuse.
    pub fn new(chunks: Vec<Chunk>) -> Result<Self, DecodeError> {
        let list = Self { chunks };
        list.check()?;
        Ok(list)
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The file's size: the chunks' sizes added.
    pub fn size(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(MAGIC, VERSION, &self.chunks)
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Chunks.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let list = Self {
            chunks: codec::decode(MAGIC, "chunk list (CXCL)", VERSION, bytes)?,
        };
        list.check()?;
        Ok(list)
    }

    fn check(&self) -> Result<(), DecodeError> {
        if self.chunks.is_empty() {
            return Err(DecodeError::Malformed("a chunk list without chunks".into()));
        }
        if self.chunks.len() > MAX_CHUNKS {
            return Err(DecodeError::TooLarge {
                what: "chunk count",
                limit: MAX_CHUNKS as u64,
            });
        }
        if let Some(c) = self
            .chunks
            .iter()
            .find(|c| c.size == 0 || c.size > u64::from(MAX_CHUNK))
        {
            return Err(DecodeError::Malformed(format!(
                "a chunk of {} bytes (chunks hold 1 to {MAX_CHUNK} bytes)",
                c.size
            )));
        }
        Ok(())
    }
}

/// A file's content as the store names it.
#[derive(Debug)]
pub enum FileContent {
    /// One blob: a file up to [`CHUNK_THRESHOLD`] bytes, held whole.
    Blob { id: ObjectId, bytes: Vec<u8> },
    /// A larger file: its chunks went to the caller one by one.
    Chunked { list: ChunkList },
}

impl FileContent {
    /// The id a tree entry names: the blob's, or the chunk list's.
    pub fn id(&self) -> ObjectId {
        match self {
            FileContent::Blob { id, .. } => *id,
            FileContent::Chunked { list } => list.id(),
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            FileContent::Blob { bytes, .. } => bytes.len() as u64,
            FileContent::Chunked { list } => list.size(),
        }
    }

    pub fn chunked(&self) -> bool {
        matches!(self, FileContent::Chunked { .. })
    }
}

/// Reads a file's content: whole if it is small, else chunk by chunk, handing each chunk
/// (its blob id and bytes) to `on_chunk` as soon as it is cut. Holds at most one chunk
/// beyond the chunker's own buffer of [`MAX_CHUNK`] bytes.
pub fn read_file(
    mut reader: impl Read,
    mut on_chunk: impl FnMut(ObjectId, Vec<u8>) -> io::Result<()>,
) -> io::Result<FileContent> {
    let mut head = Vec::new();
    (&mut reader)
        .take(CHUNK_THRESHOLD + 1)
        .read_to_end(&mut head)?;
    if head.len() as u64 <= CHUNK_THRESHOLD {
        return Ok(FileContent::Blob {
            id: blake3::hash(&head).into(),
            bytes: head,
        });
    }
    let cutter = fastcdc::v2020::StreamCDC::new(
        io::Cursor::new(head).chain(reader),
        MIN_CHUNK,
        AVG_CHUNK,
        MAX_CHUNK,
    );
    let mut chunks = Vec::new();
    for cut in cutter {
        let cut = cut.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        let id = ObjectId::from(blake3::hash(&cut.data));
        chunks.push(Chunk {
            id,
            size: cut.data.len() as u64,
        });
        on_chunk(id, cut.data)?;
    }
    let list = ChunkList::new(chunks).map_err(io::Error::other)?;
    Ok(FileContent::Chunked { list })
}

/// The id and size a tree would give this content, without keeping any of it.
pub fn content_id(reader: impl Read) -> io::Result<(ObjectId, u64, bool)> {
    let content = read_file(reader, |_, _| Ok(()))?;
    Ok((content.id(), content.size(), content.chunked()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use codexport_dev::library::noise;

    #[test]
    fn small_files_are_one_blob_named_by_plain_blake3() {
        let bytes = noise(1000, 1);
        let c = read_file(&bytes[..], |_, _| panic!("no chunks")).unwrap();
        assert!(!c.chunked());
        assert_eq!(c.id(), ObjectId::from(blake3::hash(&bytes)));
        let at_threshold = vec![7u8; CHUNK_THRESHOLD as usize];
        assert!(
            !read_file(&at_threshold[..], |_, _| Ok(()))
                .unwrap()
                .chunked()
        );
    }

    #[test]
    fn an_edit_inside_a_large_file_changes_the_chunks_around_it() {
        let mut bytes = noise(12 << 20, 2);
        let cut = |b: &[u8]| {
            let mut chunks = Vec::new();
            let c = read_file(b, |id, data| {
                assert!(data.len() <= MAX_CHUNK as usize);
                chunks.push(id);
                Ok(())
            })
            .unwrap();
            assert!(c.chunked());
            assert_eq!(c.size(), b.len() as u64);
            chunks
        };
        let before = cut(&bytes);
        assert!(before.len() > 6, "{} chunks", before.len());
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let after = cut(&bytes);
        let changed = after.iter().filter(|id| !before.contains(id)).count();
        assert!(changed <= 2, "{changed} chunks changed for one byte");
        assert_eq!(content_id(&bytes[..]).unwrap().0, {
            let FileContent::Chunked { list } = read_file(&bytes[..], |_, _| Ok(())).unwrap()
            else {
                unreachable!()
            };
            list.id()
        });
    }

    #[test]
    fn decoder_refuses_empty_oversized_and_non_canonical_lists() {
        let good = ChunkList::new(vec![
            Chunk {
                id: ObjectId::from_bytes([1; 32]),
                size: 5,
            },
            Chunk {
                id: ObjectId::from_bytes([2; 32]),
                size: 7,
            },
        ])
        .unwrap();
        let bytes = good.encode();
        assert_eq!(ChunkList::decode(&bytes).unwrap(), good);
        assert_eq!(good.size(), 12);
        // Golden: magic, version, count, (id, size) pairs.
        let mut golden = b"CXCL\x01\x02".to_vec();
        golden.extend_from_slice(&[1; 32]);
        golden.push(5);
        golden.extend_from_slice(&[2; 32]);
        golden.push(7);
        assert_eq!(bytes, golden);
        // As store-format.md section 7.4 states it.
        assert_eq!(
            good.id().to_string(),
            "09c4265eb208128f7102e7760baead8a17580f3f0795fc89bee77b907c5251bd"
        );
        assert!(ChunkList::decode(b"CXCL\x01\x00").is_err(), "empty");
        let mut big = b"CXCL\x01\x01".to_vec();
        big.extend_from_slice(&[1; 32]);
        big.extend_from_slice(&[0x81, 0x80, 0x80, 0x01]); // 2 MiB + 1
        assert!(ChunkList::decode(&big).is_err(), "oversized chunk");
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(ChunkList::decode(&padded).is_err());
        assert_ne!(
            good.id(),
            ObjectKind::Tree.id_of(&bytes),
            "kinds never share ids"
        );
    }
}
