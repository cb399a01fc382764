//! `log` and `show`: what a store holds, revision by revision, for people and scripts.

use super::applies::ApplyRecord;
use super::rev::{self, RevError};
use super::{LogEntry, ObjectSource, Store, StoreError};
use crate::object::{EntryKind, ObjectId, RelPath};

/// One revision of the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogRow {
    pub number: u64,
    pub id: ObjectId,
    pub time_ms: i64,
    /// `time_ms` as UTC text.
    pub time: String,
    pub files: u64,
    pub bytes: u64,
    pub objects: u64,
    pub object_bytes: u64,
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
}

impl From<&LogEntry> for LogRow {
    fn from(e: &LogEntry) -> Self {
        Self {
            number: e.number,
            id: e.id,
            time_ms: e.time_ms,
            time: crate::time::format_ms(e.time_ms),
            files: e.files,
            bytes: e.bytes,
            objects: e.objects,
            object_bytes: e.object_bytes,
            added: e.changes.added,
            modified: e.changes.modified,
            removed: e.changes.removed,
        }
    }
}

/// One apply (a rollback point) of a follower.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyRow {
    #[serde(flatten)]
    pub record: ApplyRecord,
    /// `time_ms` as UTC text.
    pub time: String,
}

/// Revisions and applies, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogReport {
    pub revisions: Vec<LogRow>,
    pub applies: Vec<ApplyRow>,
}

/// The newest `limit` revisions and applies (all without a limit), newest first.
pub fn log(store: &Store, limit: Option<usize>) -> Result<LogReport, StoreError> {
    let r = store.read()?;
    let newest = |n: usize| limit.map_or(n, |l| l.min(n));
    let log = r.log()?;
    let applies = r.applies()?;
    Ok(LogReport {
        revisions: log
            .iter()
            .rev()
            .take(newest(log.len()))
            .map(LogRow::from)
            .collect(),
        applies: applies
            .into_iter()
            .rev()
            .take(newest(usize::MAX))
            .map(|record| ApplyRow {
                time: crate::time::format_ms(record.time_ms),
                record,
            })
            .collect(),
    })
}

/// Why `show` could not show a path.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ShowError {
    #[error("{path:?} is not in revision {number}")]
    #[diagnostic(
        code(codexport::usage::no_such_path),
        help("run `codexport show {number}` to list the top level")
    )]
    NoSuchPath { path: String, number: u64 },
    #[error("{0:?} is not a valid path inside a revision")]
    #[diagnostic(
        code(codexport::usage::bad_path),
        help("use a relative path such as skills/foo/SKILL.md")
    )]
    BadPath(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rev(#[from] RevError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// One entry of a listed tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShowEntry {
    pub name: String,
    pub kind: EntryKind,
    pub id: ObjectId,
    pub size: u64,
}

/// A tree listing or a file of one revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShowReport {
    pub revision: u64,
    pub path: RelPath,
    pub kind: EntryKind,
    pub id: ObjectId,
    pub size: u64,
    /// A tree's entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<ShowEntry>>,
    /// A file's (or a symlink's target's) text, when it is UTF-8…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// …else its bytes in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hex: Option<String>,
    /// A large file's chunks (its content is not printed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<crate::object::Chunk>>,
}

/// The tree or file at `path` (the top level without one) of the revision `spec` names.
/// Paths are paths of the revision's tree of roots (`codex/config.toml`); a path whose first
/// name is no root is taken to be in the Codex root (`config.toml`).
pub fn show(store: &Store, spec: &str, path: Option<&str>) -> Result<ShowReport, ShowError> {
    let reader = store.read()?;
    let entry = rev::resolve(&reader.log()?, spec)?;
    let revision = reader.revision(&entry.id)?;
    let given = RelPath::new(path.unwrap_or(""))
        .map_err(|_| ShowError::BadPath(path.unwrap_or("").to_owned()))?;
    let rel = match given.first() {
        Some(first) if crate::roots::by_name(first).is_none() => {
            given.under(&crate::roots::CODEX.path(""))
        }
        _ => given,
    };
    let found =
        super::roots::lookup(&reader, &revision, &rel)?.ok_or_else(|| ShowError::NoSuchPath {
            path: rel.to_string(),
            number: entry.number,
        })?;
    let (kind, id, size) = (found.kind, found.id, found.size);
    let mut report = ShowReport {
        revision: entry.number,
        path: rel,
        kind,
        id,
        size,
        entries: None,
        content: None,
        content_hex: None,
        chunks: None,
    };
    if kind == EntryKind::Tree {
        let entries = if report.path.is_root() {
            super::roots::top_entries(&reader, &revision)?
        } else {
            reader.tree(&id)?.entries().to_vec()
        };
        report.entries = Some(
            entries
                .iter()
                .map(|e| ShowEntry {
                    name: e.name.to_string(),
                    kind: e.kind,
                    id: e.id,
                    size: e.size,
                })
                .collect(),
        );
    } else if reader
        .locate(&id)?
        .is_some_and(|l| l.kind == crate::object::ObjectKind::Chunks)
    {
        report.chunks = Some(reader.chunk_list(&id)?.chunks().to_vec());
    } else {
        match String::from_utf8(reader.blob(&id)?) {
            Ok(text) => report.content = Some(text),
            Err(e) => report.content_hex = Some(crate::object::id::hex(e.as_bytes())),
        }
    }
    Ok(report)
}
