//! Wire encodings of protocol v1: the fetch request and the object stream.
//!
//! The object stream is zstd-compressed. Decompressed, it is the 5-byte header `CXST` +
//! version, then frames `[kind u8][len u32 LE][id 32][bytes]`, then an end frame
//! `[0][objects u64 LE][bytes u64 LE]`. Objects come in post-order (children before the tree
//! or revision naming them), so any prefix a follower stored is closed under "children
//! present" and an interrupted fetch can resume from what it kept.

use crate::object::{DecodeError, ObjectId, ObjectKind, codec};
use std::io::{self, Read, Write};

const REQUEST_MAGIC: &[u8; 4] = b"CXFR";
/// The fetch request's encoding version.
const REQUEST_VERSION: u8 = 1;
const STREAM_MAGIC: &[u8; 4] = b"CXST";
/// The object stream's format version.
const STREAM_VERSION: u8 = 1;
/// Revisions a follower may name as complete.
pub const MAX_HAVE: usize = 256;
/// Loose objects a follower may name (kept from an interrupted fetch).
pub const MAX_PARTIAL: usize = 400_000;
/// Largest fetch request body the server reads: what a request naming [`MAX_HAVE`] and
/// [`MAX_PARTIAL`] ids takes (at most 34 bytes per id, postcard), with room for the header.
/// Read only after the credential was checked.
pub const MAX_REQUEST_BYTES: usize = 64 + (MAX_HAVE + MAX_PARTIAL + 1) * 34;
/// Largest single object on the wire.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;
/// Largest zstd window a follower accepts (2^24 = 16 MiB); the master's level-3 streams use
/// 2 MiB or less, and zstd's default would let a stream make the follower allocate 128 MiB.
pub const MAX_WINDOW_LOG: u32 = 24;

/// The decompressor of an object stream, as every follower reads one: zstd with the window
/// capped at [`MAX_WINDOW_LOG`]. The fuzz target of the stream uses it too.
pub fn stream_decoder<R: Read>(inner: R) -> io::Result<zstd::Decoder<'static, io::BufReader<R>>> {
    let mut decoder = zstd::Decoder::new(inner)?;
    decoder.window_log_max(MAX_WINDOW_LOG)?;
    Ok(decoder)
}

/// `POST /v1/fetch`: send me `want` and what it needs, I have these complete revisions and
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

/// Totals of a stream, as sent in its end frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamTotals {
    pub objects: u64,
    pub bytes: u64,
}

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

    pub fn object(&mut self, kind: ObjectKind, id: &ObjectId, bytes: &[u8]) -> io::Result<()> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| io::Error::other("object larger than 4 GiB"))?;
        self.out.write_all(&[kind.tag()])?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(id.as_bytes())?;
        self.out.write_all(bytes)?;
        self.totals.objects += 1;
        self.totals.bytes += bytes.len() as u64;
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
    Object {
        kind: ObjectKind,
        id: ObjectId,
        bytes: Vec<u8>,
    },
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
        let mut head = [0u8; 36];
        read_exact_or_truncated(&mut self.input, &mut head)?;
        let len = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
        let id = ObjectId::from_bytes(head[4..].try_into().expect("32 bytes"));
        if self.seen.objects + 1 > self.max_objects {
            return Err(StreamError::OverBudget(format!(
                "more than {} objects",
                self.max_objects
            )));
        }
        if self.seen.bytes + len > self.max_bytes || len > MAX_OBJECT_BYTES {
            return Err(StreamError::OverBudget(format!(
                "more than {} bytes",
                self.max_bytes
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        read_exact_or_truncated(&mut self.input, &mut bytes)?;
        self.seen.objects += 1;
        self.seen.bytes += len;
        Ok(Frame::Object { kind, id, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd frame of one raw block holding `payload`, declaring a window of 2^`log`.
    fn frame_with_window(log: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (log - 10) << 3];
        let header = 1 | ((payload.len() as u32) << 3);
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_stream_decoder_refuses_windows_over_the_cap() {
        let read = |log: u8| {
            let mut out = Vec::new();
            stream_decoder(&frame_with_window(log, b"CXST\x01")[..])
                .unwrap()
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read(24).unwrap(), b"CXST\x01");
        let err = read(27).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }

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
        w.object(ObjectKind::Blob, &id, b"abc").unwrap();
        let (bytes, totals) = w.finish().unwrap();
        assert_eq!(
            totals,
            StreamTotals {
                objects: 1,
                bytes: 3
            }
        );
        let mut r = FrameReader::new(&bytes[..], 10, 100).unwrap();
        assert_eq!(
            r.next_frame().unwrap(),
            Frame::Object {
                kind: ObjectKind::Blob,
                id,
                bytes: b"abc".to_vec()
            }
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
