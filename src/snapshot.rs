//! The master's snapshot of its roots (`~/.codex`, `~/.agents/skills`, see [`crate::roots`])
//! into the store: one tree of roots per revision.
//!
//! Reads the selected files (never follows symlinks, never writes inside a root), skips
//! unchanged files through the stat cache, hashes changed ones in parallel, and writes the
//! whole snapshot (objects, revision, log entry, stat cache, ref, signed head) in one store
//! transaction. No change on disk means no new revision.

pub mod select;
pub mod walk;

use crate::object::chunks::{self, CHUNK_THRESHOLD};
use crate::object::{EntryKind, HeadBody, ObjectId, ObjectKind, Revision, Tree, TreeEntry};
use crate::store::diff::{count, tree_diff};
use crate::store::log::ChangeCounts;
use crate::store::pack::compress;
use crate::store::{Compression, LogEntry, ObjectSource, StatEntry, Store, StoreError, refs};
use crate::time::now_ms;
use ed25519_dalek::SigningKey;
use miette::Diagnostic;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use walk::{Dir, Found, Node};

/// Why a snapshot could not be taken. Nothing is written to the store in any of these cases.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("the codex dir {} does not exist", path.display())]
    #[diagnostic(
        code(codexport::snapshot::missing),
        help(
            "run Codex once on this machine, or point --codex-dir (or --home) at the folder to export"
        )
    )]
    CodexDirMissing { path: PathBuf },
    #[error("the codex dir {} is not a directory", path.display())]
    #[diagnostic(
        code(codexport::snapshot::not_dir),
        help("point --codex-dir at the folder that holds config.toml")
    )]
    NotADirectory { path: PathBuf },
    #[error("{root} ({}) is not a directory", path.display())]
    #[diagnostic(
        code(codexport::snapshot::root_not_dir),
        help(
            "move it aside (or make it a folder) and run the command again; nothing was recorded"
        )
    )]
    RootNotADirectory { root: &'static str, path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::snapshot::unreadable),
        help(
            "fix the file's permissions (or remove it) and run the command again; nothing was recorded"
        )
    )]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

impl SnapshotError {
    pub(crate) fn unreadable(path: &Path, source: std::io::Error) -> Self {
        SnapshotError::Unreadable {
            path: path.to_owned(),
            source,
        }
    }
}

/// How to take a snapshot.
pub struct SnapshotOptions<'a> {
    /// Where each root lies on the master.
    pub roots: crate::roots::RootDirs,
    /// The master's extra top-level entries of the Codex root (its settings file).
    pub extra: select::Extra,
    /// Where the snapshot's time stamp file lives (the state dir, normally).
    pub stamp_dir: PathBuf,
    /// Recorded in the revision.
    pub host: String,
    /// The master's home, recorded so followers can map paths under it to theirs.
    pub home: PathBuf,
    /// Signs a new head for a new revision when given.
    pub signer: Option<&'a SigningKey>,
    /// How long a signed head stays valid.
    pub head_ttl: Duration,
    /// Builds the revision's MCP tree from config.toml's bytes (the master's MCP export).
    pub mcp: Option<&'a McpExporter<'a>>,
}

/// Builds an MCP manifest tree from config.toml; kept abstract so the snapshot does not
/// depend on the MCP layer.
pub type McpExporter<'a> =
    dyn Fn(&mut crate::store::Writer<'_>, &[u8]) -> Result<Option<ObjectId>, StoreError> + 'a;

/// What a snapshot did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotReport {
    /// Whether a new revision was recorded.
    pub created: bool,
    /// The current revision (new or unchanged); `None` only if the store is empty.
    pub number: Option<u64>,
    pub revision: Option<ObjectId>,
    pub files: u64,
    pub bytes: u64,
    /// Files read and hashed this time (the rest came from the stat cache).
    pub hashed: u64,
    pub changes: ChangeCounts,
    pub warnings: Vec<String>,
    /// Top-level symlinks that leave their root, whose targets were taken in their place.
    pub followed: Vec<walk::Followed>,
    /// Top-level names of each root that were not taken, each with the reason (sorted by
    /// root, then name).
    pub left_out: Vec<walk::LeftOut>,
    /// Top-level entries of `~/.codex` that are neither taken nor known runtime state
    /// (`foo/` for a folder): a new setup folder must not go unnoticed.
    pub not_synced: Vec<String>,
    pub elapsed_ms: f64,
}

/// Each root's selection (the master's extras for the Codex root) and folder.
pub fn selections<'a>(
    roots: &'a crate::roots::RootDirs,
    extra: &'a select::Extra,
) -> Vec<(select::Selection<'a>, &'a Path)> {
    roots
        .iter()
        .map(|(root, dir)| {
            let extra = (root.name == crate::roots::CODEX.name).then_some(extra);
            (select::Selection { root, extra }, dir)
        })
        .collect()
}

/// The names the master points out as not synced (see [`walk::LeftOut::is_notice`]).
pub fn not_synced(left_out: &[walk::LeftOut]) -> Vec<String> {
    left_out
        .iter()
        .filter(|l| l.is_notice())
        .map(walk::LeftOut::shown)
        .collect()
}

/// Takes a snapshot of every root in `opts.roots` into `store`.
pub fn snapshot(
    store: &Store,
    opts: &SnapshotOptions<'_>,
) -> Result<SnapshotReport, SnapshotError> {
    let started = Instant::now();
    let stamp_ns = stamp(&opts.stamp_dir)?;
    let mut walked = walk::walk(&selections(&opts.roots, &opts.extra))?;
    let (cache, parent) = {
        let reader = store.read()?;
        let parent = match reader.get_ref(refs::MASTER_HEAD)? {
            Some(id) => Some((id, reader.revision(&id)?)),
            None => None,
        };
        (reader.stat_cache()?, parent)
    };

    let mut to_hash = Vec::new();
    for (i, f) in walked.files.iter_mut().enumerate() {
        match cache.get(&f.rel) {
            Some(old) if old.matches(&f.stat) => {
                f.stat.id = old.id;
                f.stat.chunked = old.chunked;
            }
            _ => to_hash.push(i),
        }
    }

    let mut writer = store.write()?;
    hash_and_store(&mut walked.files, &to_hash, &mut writer)?;

    let mut built = Built::default();
    let root_entry = build_tree(&walked.root, &walked.files, &mut writer, &mut built)?;
    let root = root_entry.id;

    let new_cache: HashMap<&str, StatEntry> = walked
        .files
        .iter()
        .map(|f| {
            (
                f.rel.as_str(),
                StatEntry {
                    racy: f.stat.mtime_ns >= stamp_ns,
                    ..f.stat
                },
            )
        })
        .collect();
    let cache_changed =
        new_cache.len() != cache.len() || new_cache.iter().any(|(k, v)| cache.get(*k) != Some(v));

    let mut report = SnapshotReport {
        created: false,
        number: parent.as_ref().map(|(_, r)| r.number),
        revision: parent.as_ref().map(|(id, _)| *id),
        files: built.files,
        bytes: root_entry.size,
        hashed: to_hash.len() as u64,
        changes: ChangeCounts::default(),
        warnings: std::mem::take(&mut walked.warnings),
        followed: std::mem::take(&mut walked.followed),
        left_out: {
            let mut left = std::mem::take(&mut walked.left_out);
            left.sort_by(|a, b| (a.root, &a.name).cmp(&(b.root, &b.name)));
            left
        },
        not_synced: Vec::new(),
        elapsed_ms: 0.0,
    };
    report.not_synced = not_synced(&report.left_out);

    let mcp = export_mcp(opts, &walked.files, &mut writer, &mut built)?;

    if parent
        .as_ref()
        .is_some_and(|(_, rev)| crate::store::roots::roots_id(rev) == root && rev.mcp == mcp)
    {
        if cache_changed {
            writer.update_stat_cache(&cache, &new_cache)?;
            writer.commit()?;
        }
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        return Ok(report);
    }

    let (number, rev_id, changes) = record_revision(
        writer,
        opts,
        parent.as_ref(),
        (root, root_entry.size, mcp),
        &built,
        (&cache, &new_cache),
    )?;
    report.created = true;
    report.number = Some(number);
    report.revision = Some(rev_id);
    report.changes = changes;
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

/// The revision's MCP tree, exported from the Codex root's config.toml (when the snapshot
/// has an exporter and there is one), counted into the closure figures.
fn export_mcp(
    opts: &SnapshotOptions<'_>,
    files: &[Found],
    writer: &mut crate::store::Writer<'_>,
    built: &mut Built,
) -> Result<Option<ObjectId>, SnapshotError> {
    let codex = crate::roots::CODEX;
    let config = codex
        .merge
        .config
        .map(|c| codex.path(c))
        .and_then(|path| files.iter().find(|f| f.rel == path.as_str()));
    let (Some(export), Some(config)) = (opts.mcp, config) else {
        return Ok(None);
    };
    let bytes = writer.content(&config.stat.id)?;
    let mcp = export(writer, &bytes)?;
    if let Some(id) = mcp {
        count_tree(writer, id, built)?;
    }
    Ok(mcp)
}

/// The unsigned head for a revision, valid from now for `ttl`.
pub fn head_body(
    key: &SigningKey,
    revision: ObjectId,
    number: u64,
    objects: u64,
    bytes: u64,
    ttl: Duration,
) -> HeadBody {
    let now = now_ms() / 1000;
    HeadBody {
        master_key: key.verifying_key().to_bytes(),
        revision,
        number,
        issued_at: now,
        expires_at: now.saturating_add(ttl.as_secs() as i64),
        objects,
        bytes,
    }
}

/// The filesystem's own "now" (see [`crate::fsutil::filesystem_now`]), so that a file
/// written later in the same timestamp tick is recognised as racily clean.
fn stamp(dir: &Path) -> Result<i64, SnapshotError> {
    let path = dir.join(crate::paths::state::SNAPSHOT_STAMP);
    crate::fsutil::filesystem_now(&path).map_err(|e| {
        SnapshotError::Store(StoreError::Io {
            path: path.clone(),
            source: e,
        })
    })
}

/// Bytes read per parallel batch: bounds memory whatever the library size.
const BATCH_BYTES: u64 = 64 << 20;

/// Chunks of one large file compressed in parallel before they are stored.
const CHUNK_WINDOW: usize = 8;

/// A small file read, hashed and compressed on a worker, ready to store.
struct Hashed {
    index: usize,
    id: ObjectId,
    size: u64,
    compression: Compression,
    stored: Vec<u8>,
}

/// Reads and hashes the files at `indexes`, storing their objects: small files batch by
/// batch on all cores (each read whole, compressed once, here), large files one at a time,
/// streamed through the chunker with a few chunks in memory.
fn hash_and_store(
    files: &mut [Found],
    indexes: &[usize],
    writer: &mut crate::store::Writer<'_>,
) -> Result<(), SnapshotError> {
    let large = |f: &Found| f.stat.kind == EntryKind::File && f.stat.size > CHUNK_THRESHOLD;
    let (big, small): (Vec<usize>, Vec<usize>) = indexes.iter().partition(|&&i| large(&files[i]));
    let mut grown = Vec::new();
    let mut start = 0;
    while start < small.len() {
        let mut end = start;
        let mut batch_bytes = 0;
        while end < small.len()
            && (end == start || batch_bytes + files[small[end]].stat.size <= BATCH_BYTES)
        {
            batch_bytes += files[small[end]].stat.size;
            end += 1;
        }
        let hashed: Vec<Option<Hashed>> = small[start..end]
            .par_iter()
            .map(|&i| {
                let bytes = walk::read_content(&files[i])?;
                if files[i].stat.kind == EntryKind::File && bytes.len() as u64 > CHUNK_THRESHOLD {
                    return Ok(None); // grew since lstat: chunked below
                }
                let (compression, stored) = compress(&bytes);
                Ok(Some(Hashed {
                    index: i,
                    id: ObjectId::from(blake3::hash(&bytes)),
                    size: bytes.len() as u64,
                    compression,
                    stored: stored.into_owned(),
                }))
            })
            .collect::<Result<_, SnapshotError>>()?;
        for (h, &i) in hashed.into_iter().zip(&small[start..end]) {
            let Some(h) = h else {
                grown.push(i);
                continue;
            };
            writer.put_stored(ObjectKind::Blob, h.id, h.compression, &h.stored, h.size)?;
            let f = &mut files[h.index];
            f.stat.id = h.id;
            // The size read is the size recorded, even if the file changed after lstat.
            f.stat.size = h.size;
            f.stat.chunked = false;
        }
        start = end;
    }
    for i in big.into_iter().chain(grown) {
        store_large(&mut files[i], writer)?;
    }
    Ok(())
}

/// Streams one large file into the store: chunk blobs (compressed a window at a time on all
/// cores), then its chunk list. A file that shrank below the threshold becomes one blob.
fn store_large(f: &mut Found, writer: &mut crate::store::Writer<'_>) -> Result<(), SnapshotError> {
    let unreadable = |e| SnapshotError::unreadable(&f.abs, e);
    let file = std::fs::File::open(&f.abs).map_err(unreadable)?;
    let mut window: Vec<(ObjectId, Vec<u8>)> = Vec::with_capacity(CHUNK_WINDOW);
    let mut failed = None;
    let flush = |window: &mut Vec<(ObjectId, Vec<u8>)>,
                 writer: &mut crate::store::Writer<'_>|
     -> Result<(), StoreError> {
        let fresh: Vec<_> = window
            .drain(..)
            .filter(|(id, _)| !writer.has(id).unwrap_or(false))
            .collect();
        let packed: Vec<_> = fresh
            .par_iter()
            .map(|(id, raw)| {
                let (c, stored) = compress(raw);
                (*id, c, stored.into_owned(), raw.len() as u64)
            })
            .collect();
        for (id, c, stored, size) in packed {
            writer.put_stored(ObjectKind::Blob, id, c, &stored, size)?;
        }
        Ok(())
    };
    let content = chunks::read_file(
        std::io::BufReader::with_capacity(1 << 20, file),
        |id, data| {
            window.push((id, data));
            if window.len() == CHUNK_WINDOW {
                if let Err(e) = flush(&mut window, writer) {
                    failed = Some(e);
                    return Err(std::io::Error::other("store write failed"));
                }
            }
            Ok(())
        },
    );
    if let Some(e) = failed {
        return Err(e.into());
    }
    let content = content.map_err(unreadable)?;
    flush(&mut window, writer)?;
    f.stat.size = content.size();
    f.stat.chunked = content.chunked();
    f.stat.id = match content {
        chunks::FileContent::Blob { id, bytes } => {
            writer.put_with_id(ObjectKind::Blob, id, &bytes)?;
            id
        }
        chunks::FileContent::Chunked { list } => writer.put(ObjectKind::Chunks, &list.encode())?,
    };
    Ok(())
}

/// Unique objects of the tree being built, for the head's closure figures.
#[derive(Default)]
struct Built {
    objects: HashSet<ObjectId>,
    object_bytes: u64,
    files: u64,
}

impl Built {
    /// Counts a file's objects: its blob, or its chunk list and each chunk.
    fn count_file(&mut self, src: &impl ObjectSource, e: &TreeEntry) -> Result<(), StoreError> {
        if !self.objects.insert(e.id) {
            return Ok(());
        }
        if e.chunked {
            let list = src.chunk_list(&e.id)?;
            self.object_bytes += list.encode().len() as u64;
            for c in list.chunks() {
                if self.objects.insert(c.id) {
                    self.object_bytes += c.size;
                }
            }
        } else {
            self.object_bytes += e.size;
        }
        Ok(())
    }
}

fn build_tree(
    dir: &Dir,
    files: &[Found],
    writer: &mut crate::store::Writer<'_>,
    built: &mut Built,
) -> Result<TreeEntry, SnapshotError> {
    let mut entries = Vec::with_capacity(dir.entries.len());
    for (name, node) in &dir.entries {
        let entry = match node {
            Node::File(i) => {
                let f = &files[*i];
                built.files += 1;
                let entry = TreeEntry {
                    name: name.clone(),
                    kind: f.stat.kind,
                    id: f.stat.id,
                    size: f.stat.size,
                    private: f.private,
                    chunked: f.stat.chunked,
                };
                built.count_file(writer, &entry)?;
                entry
            }
            Node::Dir(sub) => TreeEntry {
                name: name.clone(),
                ..build_tree(sub, files, writer, built)?
            },
        };
        entries.push(entry);
    }
    let tree = Tree::new(entries).map_err(|e| StoreError::Corrupt {
        what: format!("walked tree: {e}"),
    })?;
    let encoded = tree.encode();
    let id = writer.put(ObjectKind::Tree, &encoded)?;
    if built.objects.insert(id) {
        built.object_bytes += encoded.len() as u64;
    }
    Ok(TreeEntry {
        name: crate::object::EntryName::new("root").expect("valid name"),
        kind: EntryKind::Tree,
        id,
        size: tree.size(),
        private: false,
        chunked: false,
    })
}

/// Writes a new revision, its log entry, ref, head and the stat cache, and commits.
fn record_revision(
    mut writer: crate::store::Writer<'_>,
    opts: &SnapshotOptions<'_>,
    parent: Option<&(ObjectId, Revision)>,
    (root, root_size, mcp): (ObjectId, u64, Option<ObjectId>),
    built: &Built,
    (old_cache, new_cache): (&HashMap<String, StatEntry>, &HashMap<&str, StatEntry>),
) -> Result<(u64, ObjectId, ChangeCounts), SnapshotError> {
    let changes = match parent {
        Some((_, p)) => {
            let old = crate::store::roots::roots_tree(&mut writer, p)?;
            count(&tree_diff(&writer, Some(old), Some(root))?)
        }
        // Everything is new: no need to read the trees back.
        None => ChangeCounts {
            added: built.files,
            ..ChangeCounts::default()
        },
    };
    let time_ms = now_ms();
    let revision = Revision {
        number: parent.map_or(1, |(_, r)| r.number + 1),
        root,
        parents: parent.map(|(id, _)| vec![*id]).unwrap_or_default(),
        time_ms,
        host: opts.host.clone(),
        home: opts.home.display().to_string(),
        codex_dir: opts.roots.codex().display().to_string(),
        files: built.files,
        bytes: root_size,
        mcp,
        layout: crate::object::revision::Layout::Roots,
    };
    let encoded = revision.encode();
    let rev_id = writer.put(ObjectKind::Revision, &encoded)?;
    let (objects, object_bytes) = (
        built.objects.len() as u64 + 1,
        built.object_bytes + encoded.len() as u64,
    );
    writer.append_log(&LogEntry {
        number: revision.number,
        id: rev_id,
        time_ms,
        files: revision.files,
        bytes: revision.bytes,
        objects,
        object_bytes,
        changes,
    })?;
    writer.set_ref(refs::MASTER_HEAD, rev_id)?;
    if let Some(key) = opts.signer {
        writer.set_head(
            &head_body(
                key,
                rev_id,
                revision.number,
                objects,
                object_bytes,
                opts.head_ttl,
            )
            .sign(key),
        )?;
    }
    writer.update_stat_cache(old_cache, new_cache)?;
    writer.commit()?;

    Ok((revision.number, rev_id, changes))
}

/// Adds the objects of a tree (the MCP tree) to the closure figures.
fn count_tree(src: &impl ObjectSource, id: ObjectId, built: &mut Built) -> Result<(), StoreError> {
    let tree = src.tree(&id)?;
    if built.objects.insert(id) {
        built.object_bytes += tree.encode().len() as u64;
    }
    for e in tree.entries() {
        if e.kind == EntryKind::Tree {
            count_tree(src, e.id, built)?;
        } else {
            built.count_file(src, e)?;
        }
    }
    Ok(())
}
