//! `log`, `show`, `fsck`, `gc`.

use super::super::output::{Render, bytes};
use crate::object::EntryKind;
use crate::store::fsck::{FsckReport, GcReport};
use crate::store::history::{LogReport, ShowReport};
use std::fmt::Write;

impl Render for LogReport {
    fn render(&self) -> String {
        let mut out = String::new();
        writeln!(
            out,
            "{:>5}  {:<12}  {:<19}  {:>7}  {:>10}  changes",
            "rev", "id", "time (UTC)", "files", "bytes"
        )
        .ok();
        for e in &self.revisions {
            writeln!(
                out,
                "{:>5}  {:<12}  {:<19}  {:>7}  {:>10}  +{} ~{} -{}",
                e.number,
                e.id.short(),
                e.time,
                e.files,
                bytes(e.bytes),
                e.added,
                e.modified,
                e.removed
            )
            .ok();
        }
        if self.applies.is_empty() {
            return out;
        }
        writeln!(out, "\napplied (newest first; each is a rollback point):").ok();
        writeln!(
            out,
            "{:>5}  {:<8}  {:<19}  {:>5}  {:<12}  changes     drift",
            "#", "kind", "time (UTC)", "rev", "merged"
        )
        .ok();
        for a in &self.applies {
            let r = &a.record;
            let drift = if r.drift == 0 {
                "-".to_owned()
            } else {
                format!("{} backed up", r.drift)
            };
            writeln!(
                out,
                "{:>5}  {:<8}  {:<19}  {:>5}  {:<12}  +{} ~{} -{}  {drift}",
                r.seq,
                r.kind,
                a.time,
                r.number,
                r.merged.short(),
                r.added,
                r.updated,
                r.deleted,
            )
            .ok();
        }
        out
    }
}

impl Render for ShowReport {
    fn render(&self) -> String {
        if let Some(entries) = &self.entries {
            let mut out = String::new();
            for e in entries {
                let suffix = if e.kind == EntryKind::Tree { "/" } else { "" };
                writeln!(
                    out,
                    "{:<10}  {:>10}  {}  {}{suffix}",
                    e.kind.as_str(),
                    bytes(e.size),
                    e.id.short(),
                    e.name
                )
                .ok();
            }
            return out;
        }
        if let Some(chunks) = &self.chunks {
            let mut out = format!(
                "(large file, {} in {} chunks; its content is not printed)\n",
                bytes(self.size),
                chunks.len()
            );
            for c in chunks {
                writeln!(out, "chunk  {:>10}  {}", bytes(c.size), c.id.short()).ok();
            }
            return out;
        }
        match (&self.content, &self.content_hex) {
            (Some(text), _) if self.kind == EntryKind::Symlink => format!("-> {text}\n"),
            (Some(text), _) => text.clone(),
            (None, hex) => format!(
                "(binary file, {} bytes; use --json for its hex)\n",
                hex.as_ref().map_or(0, |h| h.len() / 2)
            ),
        }
    }
}

impl Render for FsckReport {
    fn render(&self) -> String {
        format!(
            "ok: {} objects ({}) verified, {} reachable, {} unreachable\n",
            self.objects,
            bytes(self.bytes),
            self.reachable,
            self.unreachable
        )
    }
}

impl Render for GcReport {
    fn render(&self) -> String {
        format!(
            "dropped {} revisions and {} objects; store {} → {}\n",
            self.revisions_dropped,
            self.objects_removed,
            bytes(self.bytes_before),
            bytes(self.bytes_after)
        )
    }
}
