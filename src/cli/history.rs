//! `log` and `show`: what the store holds, revision by revision.

use super::output::{Output, bytes, time};
use super::rev;
use crate::object::EntryKind;
use crate::paths::Paths;
use crate::store::{ObjectSource, Store};
use miette::Diagnostic;
use std::fmt::Write;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
enum ShowError {
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
}

pub fn log(paths: &Paths, limit: Option<usize>) -> miette::Result<Output> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let mut entries = store.read()?.log()?;
    entries.reverse();
    if let Some(n) = limit {
        entries.truncate(n);
    }
    let mut human = String::new();
    writeln!(
        human,
        "{:>5}  {:<12}  {:<19}  {:>7}  {:>10}  changes",
        "rev", "id", "time (UTC)", "files", "bytes"
    )
    .ok();
    for e in &entries {
        let c = e.changes;
        writeln!(
            human,
            "{:>5}  {:<12}  {:<19}  {:>7}  {:>10}  +{} ~{} -{}",
            e.number,
            e.id.short(),
            time(e.time_ms),
            e.files,
            bytes(e.bytes),
            c.added,
            c.modified,
            c.removed
        )
        .ok();
    }
    let json: Vec<_> = entries
        .iter()
        .map(|e| serde_json::json!({
            "number": e.number, "id": e.id.to_string(), "time_ms": e.time_ms, "time": time(e.time_ms),
            "files": e.files, "bytes": e.bytes, "objects": e.objects, "object_bytes": e.object_bytes,
            "added": e.changes.added, "modified": e.changes.modified, "removed": e.changes.removed,
        }))
        .collect();
    let mut applies = store.read()?.applies()?;
    applies.reverse();
    if let Some(n) = limit {
        applies.truncate(n);
    }
    if !applies.is_empty() {
        writeln!(human, "\napplied (newest first; each is a rollback point):").ok();
        writeln!(
            human,
            "{:>5}  {:<8}  {:<19}  {:>5}  {:<12}  changes     drift",
            "#", "kind", "time (UTC)", "rev", "merged"
        )
        .ok();
        for a in &applies {
            writeln!(
                human,
                "{:>5}  {:<8}  {:<19}  {:>5}  {:<12}  +{} ~{} -{}  {}",
                a.seq,
                a.kind,
                time(a.time_ms),
                a.number,
                a.merged.short(),
                a.added,
                a.updated,
                a.deleted,
                if a.drift == 0 {
                    "-".to_owned()
                } else {
                    format!("{} backed up", a.drift)
                }
            )
            .ok();
        }
    }
    let applies_json: Vec<_> = applies
        .iter()
        .map(|a| serde_json::json!({
            "seq": a.seq, "kind": a.kind, "time_ms": a.time_ms, "time": time(a.time_ms), "number": a.number,
            "revision": a.revision.to_string(), "merged": a.merged.to_string(), "added": a.added,
            "updated": a.updated, "deleted": a.deleted, "drift": a.drift, "backup_dir": a.backup_dir,
        }))
        .collect();
    Ok(Output::new(
        &serde_json::json!({ "revisions": json, "applies": applies_json }),
        human,
    ))
}

pub fn show(paths: &Paths, spec: &str, path: Option<&str>) -> miette::Result<Output> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let reader = store.read()?;
    let entry = rev::resolve(&reader.log()?, spec)?;
    let revision = reader.revision(&entry.id)?;
    let rel = crate::object::RelPath::new(path.unwrap_or(""))
        .map_err(|_| ShowError::BadPath(path.unwrap_or("").to_owned()))?;
    let mut kind = EntryKind::Tree;
    let mut id = revision.root;
    let mut size = revision.bytes;
    for part in rel.components() {
        let tree = if kind == EntryKind::Tree {
            Some(reader.tree(&id)?)
        } else {
            None
        };
        let e = tree
            .as_ref()
            .and_then(|t| t.get(part))
            .ok_or_else(|| ShowError::NoSuchPath {
                path: rel.to_string(),
                number: entry.number,
            })?;
        (kind, id, size) = (e.kind, e.id, e.size);
    }
    let base = serde_json::json!({ "revision": entry.number, "path": rel.as_str(), "kind": kind.as_str(), "id": id.to_string(), "size": size });
    if kind == EntryKind::Tree {
        let tree = reader.tree(&id)?;
        let mut human = String::new();
        for e in tree.entries() {
            let suffix = if e.kind == EntryKind::Tree { "/" } else { "" };
            writeln!(
                human,
                "{:<10}  {:>10}  {}  {}{suffix}",
                e.kind.as_str(),
                bytes(e.size),
                e.id.short(),
                e.name
            )
            .ok();
        }
        let entries: Vec<_> = tree.entries().iter().map(|e| serde_json::json!({"name": e.name.as_str(), "kind": e.kind.as_str(), "id": e.id.to_string(), "size": e.size})).collect();
        let mut json = base;
        json["entries"] = serde_json::Value::Array(entries);
        return Ok(Output::new(&json, human));
    }
    let content = reader.blob(&id)?;
    let mut json = base;
    match String::from_utf8(content) {
        Ok(text) => {
            json["content"] = text.clone().into();
            let human = if kind == EntryKind::Symlink {
                format!("-> {text}\n")
            } else {
                text
            };
            Ok(Output::new(&json, human))
        }
        Err(e) => {
            json["content_hex"] = crate::object::id::hex(e.as_bytes()).into();
            Ok(Output::new(
                &json,
                format!(
                    "(binary file, {} bytes; use --json for its hex)\n",
                    e.as_bytes().len()
                ),
            ))
        }
    }
}
