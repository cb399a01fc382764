//! `status`, `fsck`, `gc`.

use super::output::{Output, bytes, time};
use crate::paths::{Paths, tilde};
use crate::store::{Store, fsck};
use std::fmt::Write;

pub fn status(paths: &Paths) -> miette::Result<Output> {
    let role = if paths.master_key().exists() {
        "master"
    } else {
        "none"
    };
    let mut json = serde_json::json!({
        "role": role,
        "codex_dir": paths.codex_dir.display().to_string(),
        "state_dir": paths.state_dir.display().to_string(),
    });
    let mut human = String::new();
    writeln!(human, "role         {role}").ok();
    writeln!(
        human,
        "codex dir    {}",
        tilde(&paths.codex_dir, &paths.home)
    )
    .ok();
    writeln!(
        human,
        "state dir    {}",
        tilde(&paths.state_dir, &paths.home)
    )
    .ok();
    if role == "master" {
        let key = crate::master::MasterKey::load(&paths.master_key())?;
        json["fingerprint"] = key.fingerprint().to_string().into();
        writeln!(human, "fingerprint  {}", key.fingerprint()).ok();
    }
    if paths.store_db().exists() {
        let store = Store::open(&paths.state_dir)?;
        let reader = store.read()?;
        if let Some(e) = reader.last_log_entry()? {
            json["revision"] = serde_json::json!({"number": e.number, "id": e.id.to_string(), "time": time(e.time_ms), "files": e.files, "bytes": e.bytes});
            writeln!(
                human,
                "revision     {} ({}) at {} UTC, {} files, {}",
                e.number,
                e.id.short(),
                time(e.time_ms),
                e.files,
                bytes(e.bytes)
            )
            .ok();
        }
        if let Some(h) = reader.head()? {
            json["head_expires"] = time(h.body.expires_at * 1000).into();
            writeln!(
                human,
                "head         signed, expires {} UTC",
                time(h.body.expires_at * 1000)
            )
            .ok();
        }
        let objects = reader.objects()?;
        let content: u64 = objects.iter().map(|(_, l)| l.len).sum();
        let disk = store.disk_bytes()?;
        json["store"] = serde_json::json!({"objects": objects.len(), "content_bytes": content, "disk_bytes": disk});
        let ratio = if content == 0 {
            0.0
        } else {
            disk as f64 / content as f64
        };
        writeln!(
            human,
            "store        {} objects, {} content, {} on disk ({ratio:.2}×)",
            objects.len(),
            bytes(content),
            bytes(disk)
        )
        .ok();
    }
    Ok(Output::new(&json, human))
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("fsck found {count} damaged or missing object(s):\n{list}")]
#[diagnostic(
    code(codexport::fsck::damaged),
    help(
        "on a master, `codexport master rebuild` stores changed files again; on a follower, `codexport sync` fetches missing objects again"
    )
)]
struct FsckFailed {
    count: usize,
    list: String,
}

pub fn fsck(paths: &Paths) -> miette::Result<Output> {
    let store = Store::open(&paths.state_dir)?;
    let report = fsck::fsck(&store)?;
    if !report.is_clean() {
        let mut list = String::new();
        for b in &report.bad {
            writeln!(list, "  {}  {}", b.id, b.problem).ok();
        }
        return Err(FsckFailed {
            count: report.bad.len(),
            list: list.trim_end().to_owned(),
        }
        .into());
    }
    let human = format!(
        "ok: {} objects ({}) verified, {} reachable, {} unreachable\n",
        report.objects,
        bytes(report.bytes),
        report.reachable,
        report.unreachable
    );
    Ok(Output::new(&report, human))
}

pub fn gc(paths: &Paths, keep: usize) -> miette::Result<Output> {
    let mut store = Store::open(&paths.state_dir)?;
    let r = fsck::gc(&mut store, keep, &[])?;
    let human = format!(
        "dropped {} revisions and {} objects; store {} → {}\n",
        r.revisions_dropped,
        r.objects_removed,
        bytes(r.bytes_before),
        bytes(r.bytes_after)
    );
    Ok(Output::new(&r, human))
}
