//! Wire encodings of protocol v2: the fetch request and the object stream.
//!
//! The object stream is the 5-byte header `CXST` + version, then frames
//! `[kind u8][compression u8][stored u32 LE][size u32 LE][id 32][stored bytes]`, then an end
//! frame `[0][objects u64 LE][bytes u64 LE]`. Each object travels as the master stored it
//! (compressed once, at snapshot time, or raw when that did not pay), so serving costs no
//! compression. Objects come in post-order (children before the tree, chunk list or revision
//! naming them), so any prefix a follower stored is closed under "children present" and an
//! interrupted fetch can resume from what it kept.

use crate::object::{DecodeError, ObjectId, ObjectKind, codec};
use crate::store::Compression;
use std::io::{self, Read, Write};

const REQUEST_MAGIC: &[u8; 4] = b"CXFR";
/// The fetch request's encoding version.
const REQUEST_VERSION: u8 = 1;
const STREAM_MAGIC: &[u8; 4] = b"CXST";
/// The object stream's format version.
const STREAM_VERSION: u8 = 2;
/// Revisions a follower may name as complete.
pub const MAX_HAVE: usize = 256;
/// Loose objects a follower may name (kept from an interrupted fetch).
pub const MAX_PARTIAL: usize = 400_000;
/// Largest fetch request body the server reads: what a request naming [`MAX_HAVE`] and
/// [`MAX_PARTIAL`] ids takes (at most 34 bytes per id, postcard), with room for the header.
/// Read only after the credential was checked.
pub const MAX_REQUEST_BYTES: usize = 64 + (MAX_HAVE + MAX_PARTIAL + 1) * 34;
/// Largest single object on the wire (its own size). Files above the chunking threshold
/// travel as chunks of at most 2 MiB; this bound is for blobs of stores written before
/// chunking existed.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// `POST /v2/fetch`: send me `want` and what it needs, I have these complete revisions and
/// these loose objects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchRequest {
    pub want: ObjectId,
    pub have: Vec<ObjectId>,
    pub partial: Vec<ObjectId>,
}

impl FetchRequest {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(REQUEST_MAGIC, REQUEST_VERSION, self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let req: Self = codec::decode(
            REQUEST_MAGIC,
            "fetch request (CXFR)",
            REQUEST_VERSION,
            bytes,
        )?;
        if req.have.len() > MAX_HAVE {
            return Err(DecodeError::TooLarge {
                what: "have list",
                limit: MAX_HAVE as u64,
            });
        }
        if req.partial.len() > MAX_PARTIAL {
            return Err(DecodeError::TooLarge {
                what: "partial list",
                limit: MAX_PARTIAL as u64,
            });
        }
        Ok(req)
    }
}

/// Totals of a stream, as sent in its end frame: objects, and their own (uncompressed)
/// sizes added, the figures a signed head declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamTotals {
    pub objects: u64,
    pub bytes: u64,
}

/// One object as it travels: its kind, id, own size, and the bytes as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireObject {
    pub kind: ObjectKind,
    pub id: ObjectId,
    pub compression: Compression,
    /// The object's own length.
    pub size: u64,
    /// Its bytes as stored: zstd-compressed or raw, as `compression` says.
    pub stored: Vec<u8>,
}

/// Bytes of a frame header: kind, compression, stored length, size, id.
const FRAME_HEADER: usize = 1 + 1 + 4 + 4 + 32;

/// Writes frames of one stream.
pub struct FrameWriter<W: Write> {
    out: W,
    totals: StreamTotals,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(STREAM_MAGIC)?;
        out.write_all(&[STREAM_VERSION])?;
        Ok(Self {
            out,
            totals: StreamTotals::default(),
        })
    }

    /// Writes one object as stored: `stored` is its bytes compressed as `compression` says,
    /// `size` its own length.
    pub fn object(
        &mut self,
        kind: ObjectKind,
        id: &ObjectId,
        compression: Compression,
        stored: &[u8],
        size: u64,
    ) -> io::Result<()> {
        let too_large = |_| io::Error::other("object larger than 4 GiB");
        let stored_len = u32::try_from(stored.len()).map_err(too_large)?;
        let size32 = u32::try_from(size).map_err(too_large)?;
        let mut header = [0u8; FRAME_HEADER];
        header[0] = kind.tag();
        header[1] = compression.tag();
        header[2..6].copy_from_slice(&stored_len.to_le_bytes());
        header[6..10].copy_from_slice(&size32.to_le_bytes());
        header[10..].copy_from_slice(id.as_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(stored)?;
        self.totals.objects += 1;
        self.totals.bytes += size;
        Ok(())
    }

    /// Writes the end frame and returns the inner writer.
    pub fn finish(mut self) -> io::Result<(W, StreamTotals)> {
        self.out.write_all(&[0])?;
        self.out.write_all(&self.totals.objects.to_le_bytes())?;
        self.out.write_all(&self.totals.bytes.to_le_bytes())?;
        Ok((self.out, self.totals))
    }
}

/// One item read from a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Object(WireObject),
    End(StreamTotals),
}

/// Why a stream was refused.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the stream ended before its end frame (connection cut or master stopped)")]
    Truncated,
    #[error("the stream is malformed: {0}")]
    Malformed(String),
    #[error("the stream exceeds what the signed head declares ({0})")]
    OverBudget(String),
    #[error("I/O error reading the stream: {0}")]
    Io(io::Error),
}

fn read_exact_or_truncated(r: &mut impl Read, buf: &mut [u8]) -> Result<(), StreamError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            StreamError::Truncated
        } else {
            StreamError::Io(e)
        }
    })
}

/// Reads frames, refusing anything beyond the object and byte budget before allocating it.
pub struct FrameReader<R: Read> {
    input: R,
    max_objects: u64,
    max_bytes: u64,
    seen: StreamTotals,
}

impl<R: Read> FrameReader<R> {
    /// Checks the stream header. `max_objects`/`max_bytes` come from the signed head.
    pub fn new(mut input: R, max_objects: u64, max_bytes: u64) -> Result<Self, StreamError> {
        let mut header = [0u8; 5];
        read_exact_or_truncated(&mut input, &mut header)?;
        if &header[..4] != STREAM_MAGIC || header[4] != STREAM_VERSION {
            return Err(StreamError::Malformed("bad stream header".into()));
        }
        Ok(Self {
            input,
            max_objects,
            max_bytes,
            seen: StreamTotals::default(),
        })
    }

    pub fn next_frame(&mut self) -> Result<Frame, StreamError> {
        let mut tag = [0u8; 1];
        read_exact_or_truncated(&mut self.input, &mut tag)?;
        if tag[0] == 0 {
            let mut end = [0u8; 16];
            read_exact_or_truncated(&mut self.input, &mut end)?;
            let totals = StreamTotals {
                objects: u64::from_le_bytes(end[..8].try_into().expect("8 bytes")),
                bytes: u64::from_le_bytes(end[8..].try_into().expect("8 bytes")),
            };
            if totals != self.seen {
                return Err(StreamError::Malformed(format!(
                    "end frame claims {totals:?}, stream carried {:?}",
                    self.seen
                )));
            }
            return Ok(Frame::End(totals));
        }
        let kind =
            ObjectKind::from_tag(tag[0]).map_err(|e| StreamError::Malformed(e.to_string()))?;
        let mut head = [0u8; FRAME_HEADER - 1];
        read_exact_or_truncated(&mut self.input, &mut head)?;
        let compression = Compression::from_tag(head[0]).ok_or_else(|| {
            StreamError::Malformed(format!("unknown compression tag {}", head[0]))
        })?;
        let u32_at = |at: usize| {
            u64::from(u32::from_le_bytes(
                head[at..at + 4].try_into().expect("4 bytes"),
            ))
        };
        let (stored_len, size) = (u32_at(1), u32_at(5));
        let id = ObjectId::from_bytes(head[9..].try_into().expect("32 bytes"));
        if self.seen.objects + 1 > self.max_objects {
            return Err(StreamError::OverBudget(format!(
                "more than {} objects",
                self.max_objects
            )));
        }
        if self.seen.bytes + size > self.max_bytes || size > MAX_OBJECT_BYTES {
            return Err(StreamError::OverBudget(format!(
                "more than {} bytes",
                self.max_bytes
            )));
        }
        // Compression only ever shrinks what is stored; raw bytes are the object itself.
        let fits = match compression {
            Compression::Raw => stored_len == size,
            Compression::Zstd => stored_len < size,
        };
        if !fits {
            return Err(StreamError::Malformed(format!(
                "object {id}: {stored_len} bytes stored ({}) for {size} bytes",
                compression.as_str()
            )));
        }
        let mut stored = vec![0u8; stored_len as usize];
        read_exact_or_truncated(&mut self.input, &mut stored)?;
        self.seen.objects += 1;
        self.seen.bytes += size;
        Ok(Frame::Object(WireObject {
            kind,
            id,
            compression,
            size,
            stored,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_valid_request_fits_the_body_limit() {
        let req = FetchRequest {
            want: ObjectId::from_bytes([0xff; 32]),
            have: vec![ObjectId::from_bytes([0xff; 32]); MAX_HAVE],
            partial: vec![ObjectId::from_bytes([0xff; 32]); MAX_PARTIAL],
        };
        let len = req.encode().len();
        assert!(len <= MAX_REQUEST_BYTES, "{len} > {MAX_REQUEST_BYTES}");
        // Proportional to what a request may name, not a round ceiling far above it.
        assert!(MAX_REQUEST_BYTES - len < (MAX_HAVE + MAX_PARTIAL) * 2 + 1024);
    }

    #[test]
    fn frames_round_trip_and_budget() {
        let mut w = FrameWriter::new(Vec::new()).unwrap();
        let id = ObjectKind::Blob.id_of(b"abc");
        w.object(ObjectKind::Blob, &id, Compression::Raw, b"abc", 3)
            .unwrap();
        let (bytes, totals) = w.finish().unwrap();
        assert_eq!(
            totals,
            StreamTotals {
                objects: 1,
                bytes: 3
            }
        );
        // Golden: header, then kind 1, raw, stored 3, size 3, id, bytes, then the end frame.
        let mut golden = b"CXST\x02\x01\x00\x03\x00\x00\x00\x03\x00\x00\x00".to_vec();
        golden.extend_from_slice(id.as_bytes());
        golden.extend_from_slice(
            b"abc\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00",
        );
        assert_eq!(bytes, golden);
        let mut r = FrameReader::new(&bytes[..], 10, 100).unwrap();
        assert_eq!(
            r.next_frame().unwrap(),
            Frame::Object(WireObject {
                kind: ObjectKind::Blob,
                id,
                compression: Compression::Raw,
                size: 3,
                stored: b"abc".to_vec()
            })
        );
        assert_eq!(r.next_frame().unwrap(), Frame::End(totals));
        let mut tight = FrameReader::new(&bytes[..], 10, 2).unwrap();
        assert!(matches!(
            tight.next_frame(),
            Err(StreamError::OverBudget(_))
        ));
        let mut cut = FrameReader::new(&bytes[..bytes.len() - 3], 10, 100).unwrap();
        cut.next_frame().unwrap();
        assert!(matches!(cut.next_frame(), Err(StreamError::Truncated)));
    }

    #[test]
    fn frames_whose_stored_length_contradicts_their_compression_are_refused() {
        let id = ObjectKind::Blob.id_of(b"abcd");
        for (compression, stored, size) in [
            (Compression::Raw, &b"abc"[..], 4),
            (Compression::Zstd, &b"abcd"[..], 4),
        ] {
            let mut w = FrameWriter::new(Vec::new()).unwrap();
            w.object(ObjectKind::Blob, &id, compression, stored, size)
                .unwrap();
            let (bytes, _) = w.finish().unwrap();
            let mut r = FrameReader::new(&bytes[..], 10, 100).unwrap();
            assert!(matches!(r.next_frame(), Err(StreamError::Malformed(_))));
        }
    }

    #[test]
    fn request_round_trip_and_limits() {
        let req = FetchRequest {
            want: ObjectId::from_bytes([1; 32]),
            have: vec![ObjectId::from_bytes([2; 32])],
            partial: vec![],
        };
        assert_eq!(FetchRequest::decode(&req.encode()).unwrap(), req);
        let big = FetchRequest {
            have: vec![ObjectId::from_bytes([0; 32]); MAX_HAVE + 1],
            ..req
        };
        assert!(FetchRequest::decode(&big.encode()).is_err());
    }
}
