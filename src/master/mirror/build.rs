//! Building a sealed pack: the frames of the objects a revision adds, written to a local
//! file and sealed, named by the hash of the sealed bytes (see `store-format.md`, static
//! mirrors). The store is read only while the plaintext is written.

use super::MirrorError;
use crate::object::ObjectId;
use crate::seal::{self, ContentKey};
use crate::store::{ObjectSource, Store};
use crate::transport::negotiate;
use crate::transport::wire::{FetchRequest, FrameWriter};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A sealed pack in a local file, ready to upload.
pub(super) struct BuiltPack {
    pub(super) file: PathBuf,
    pub(super) hash: String,
    pub(super) size: u64,
    pub(super) objects: u64,
    pub(super) bytes: u64,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Builds the sealed pack of the objects `to` has that `from` lacks (all of them without
/// `from`), as frames of the wire stream, in a local file. The same objects under the same
/// key make the same bytes. `None` when `to` is not in the store.
pub(super) fn build_pack(
    store: &Store,
    key: &ContentKey,
    from: Option<ObjectId>,
    to: ObjectId,
    tmp: &Path,
) -> Result<Option<BuiltPack>, MirrorError> {
    crate::fsutil::create_private_dir_all(tmp).map_err(io_err(tmp))?;
    let mut plain = tempfile::tempfile_in(tmp).map_err(io_err(tmp))?;
    let totals = {
        let r = store.read()?;
        if !r.has(&to)? {
            return Ok(None);
        }
        let req = FetchRequest {
            want: to,
            have: from.into_iter().collect(),
            partial: Vec::new(),
        };
        let planned = negotiate::plan(&r, &req)?;
        let files = r.pack_files(planned.iter().map(|p| &p.location))?;
        drop(r);
        let mut frames = FrameWriter::new(BufWriter::new(&mut plain)).map_err(io_err(tmp))?;
        negotiate::send_planned(&files, &planned, &mut frames).map_err(|e| match e {
            negotiate::SendError::Store(e) => MirrorError::Store(e),
            negotiate::SendError::Io(e) => MirrorError::Io {
                path: tmp.to_owned(),
                source: e,
            },
        })?;
        let (mut out, totals) = frames.finish().map_err(io_err(tmp))?;
        out.flush().map_err(io_err(tmp))?;
        totals
    };
    let sealed = tempfile::NamedTempFile::new_in(tmp).map_err(io_err(tmp))?;
    let mut out = Hashing {
        inner: BufWriter::new(sealed.as_file()),
        hasher: blake3::Hasher::new(),
        len: 0,
    };
    seal::seal(key, &mut plain, &mut out).map_err(io_err(tmp))?;
    out.inner.flush().map_err(io_err(tmp))?;
    let (hash, size) = (out.hasher.finalize().to_hex().to_string(), out.len);
    drop(out);
    let (_, file) = sealed.keep().map_err(|e| MirrorError::Io {
        path: tmp.to_owned(),
        source: e.error,
    })?;
    Ok(Some(BuiltPack {
        file,
        hash,
        size,
        objects: totals.objects,
        bytes: totals.bytes,
    }))
}

/// A writer that hashes and counts what passes through.
struct Hashing<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
