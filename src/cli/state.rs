//! `status`, `fsck`, `gc`.

use super::output::{Output, bytes, time};
use crate::paths::{Paths, tilde};
use crate::store::{Store, fsck};
use std::fmt::Write;

pub fn status(paths: &Paths, timeout_ms: u64) -> miette::Result<Output> {
    let role = if paths.master_key().exists() {
        "master"
    } else if crate::follower::config::config_path(paths).exists() {
        "follower"
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
        let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
        if role == "follower" {
            // Finish an apply a crash interrupted, unless a sync or apply is running now.
            if let Ok(_lock) = crate::fsutil::StateLock::acquire(
                &paths.state_dir,
                std::time::Duration::from_millis(200),
            ) {
                if crate::follower::apply::recover_interrupted(paths, &store)? {
                    writeln!(human, "recovered    finished an apply that was interrupted").ok();
                }
            }
        }
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
        if role == "follower" {
            follower_status(paths, &store, &reader, timeout_ms, &mut json, &mut human)?;
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
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
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
    let mut store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
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

/// The follower's part of `status`: its master, what it accepted, and whether the master is
/// reachable with a newer head.
fn follower_status(
    paths: &Paths,
    store: &Store,
    reader: &crate::store::Reader<'_>,
    timeout_ms: u64,
    json: &mut serde_json::Value,
    human: &mut String,
) -> miette::Result<()> {
    use crate::follower::{FETCHED, FollowerConfig, config, meta, sync};
    let cfg = FollowerConfig::load(paths)?;
    json["master_url"] = cfg.master_url.clone().into();
    json["fingerprint"] = cfg.fingerprint.to_string().into();
    json["name"] = cfg.name.clone().into();
    writeln!(human, "name         {}", cfg.name).ok();
    writeln!(human, "master       {}", cfg.master_url).ok();
    writeln!(human, "fingerprint  {}", cfg.fingerprint).ok();
    let fetched = reader.get_ref(FETCHED)?;
    if let Some(a) = reader.last_apply()? {
        json["applied"] = serde_json::json!({"number": a.number, "revision": a.revision.to_string(), "merged": a.merged.to_string(), "time": time(a.time_ms), "kind": a.kind});
        writeln!(
            human,
            "applied      revision {} at {} UTC ({})",
            a.number,
            time(a.time_ms),
            a.kind
        )
        .ok();
        let drift = crate::follower::apply::local_drift(paths, store)?;
        if !drift.is_empty() {
            writeln!(human, "drift        {} managed file(s) edited here since the last apply (backed up before the next one): {}", drift.len(), drift.join(", ")).ok();
        }
        json["drift"] = drift.into();
    } else {
        writeln!(
            human,
            "applied      nothing yet (run `codexport apply` or `codexport sync --apply`)"
        )
        .ok();
    }
    let unknown: Vec<String> = reader
        .meta(meta::UNKNOWN_VARIABLES)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if !unknown.is_empty() {
        writeln!(human, "variables    undefined in config.toml: {} (add them under [pathVariables] in ~/.codexport/local.toml)", unknown.join(", ")).ok();
    }
    json["unknown_variables"] = unknown.into();
    if let Some(held) = crate::follower::apply::hold(store)? {
        json["held_below"] = (held + 1).into();
        writeln!(human, "held         by a rollback until the master publishes revision {} (`codexport apply` releases it)", held + 1).ok();
    }
    let accepted = sync::accepted_number(reader)?;
    json["fetched"] = fetched.map(|id| id.to_string()).into();
    json["accepted_number"] = accepted.into();
    if let Some(last) = sync::last_result(paths) {
        let when = last["time_ms"].as_i64().map(time).unwrap_or_default();
        let what = last["error"].as_str().map_or_else(
            || last["result"].as_str().unwrap_or("").to_owned(),
            |e| format!("error: {e}"),
        );
        writeln!(human, "last sync    {when} UTC, {what}").ok();
        json["last_sync"] = last;
    }
    let client = crate::transport::client::Client::new(
        &cfg.master_url,
        config::load_credential(paths).ok(),
        std::time::Duration::from_millis(timeout_ms),
    );
    let remote = client
        .map_err(crate::follower::FollowerError::from)
        .and_then(|c| sync::fetch_head(store, &cfg, &c));
    match remote {
        Ok(head) => {
            let pending = fetched != Some(head.body.revision);
            json["remote"] = serde_json::json!({"reachable": true, "number": head.body.number, "revision": head.body.revision.to_string(), "pending_update": pending});
            writeln!(
                human,
                "remote       reachable, revision {}{}",
                head.body.number,
                if pending {
                    " (update pending: run `codexport sync`)"
                } else {
                    " (up to date)"
                }
            )
            .ok();
        }
        Err(e) => {
            json["remote"] = serde_json::json!({"reachable": false, "error": e.to_string()});
            writeln!(human, "remote       not reachable: {e}").ok();
        }
    }
    Ok(())
}
