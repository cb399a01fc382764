//! `apply`, `diff`, `rollback` on a follower.

use super::output::Output;
use super::rev;
use crate::checkout::apply::ExecOptions;
use crate::checkout::plan::{Op, Plan};
use crate::follower::apply::{ApplyReport, Target, apply_locked};
use crate::fsutil::StateLock;
use crate::paths::Paths;
use crate::store::{ObjectSource, Store};
use std::fmt::Write;

fn open(paths: &Paths) -> miette::Result<(StateLock, Store)> {
    let lock = StateLock::acquire(&paths.state_dir, std::time::Duration::from_secs(10))?;
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    Ok((lock, store))
}

/// Text lines of an apply report.
pub fn describe(r: &ApplyReport) -> String {
    let mut s = String::new();
    if r.recovered {
        s.push_str("finished an apply that was interrupted\n");
    }
    let what = match r.result {
        "applied" => "applied",
        "unchanged" => "unchanged",
        "planned" => "would apply",
        other => other,
    };
    writeln!(
        s,
        "{what}: revision {} ({}): +{} ~{} -{}",
        r.number,
        &r.revision[..12],
        r.added,
        r.updated,
        r.deleted
    )
    .ok();
    for d in &r.drift {
        writeln!(s, "  local edit backed up: {d}").ok();
    }
    if let Some(dir) = &r.backup_dir {
        writeln!(s, "  backups in {dir}").ok();
    }
    if !r.unknown_variables.is_empty() {
        writeln!(s, "  unknown ${{variables}} left as written: {} (define them under [pathVariables] in ~/.codexport/local.toml)", r.unknown_variables.join(", ")).ok();
    }
    s
}

fn plan_lines(plan: &Plan) -> String {
    let mut s = String::new();
    for op in &plan.ops {
        let (sign, path, kind) = match op {
            Op::Put {
                path,
                kind,
                old: None,
                ..
            } => ("+", path, kind.as_str()),
            Op::Put {
                path,
                kind,
                old: Some(_),
                ..
            } => ("~", path, kind.as_str()),
            Op::Delete { path, old } => ("-", path, old.0.as_str()),
        };
        writeln!(
            s,
            "  {sign} {path}{}",
            if kind == "file" {
                String::new()
            } else {
                format!(" ({kind})")
            }
        )
        .ok();
    }
    s
}

pub fn apply(paths: &Paths, dry_run: bool) -> miette::Result<Output> {
    let (_lock, store) = open(paths)?;
    let r = apply_locked(
        paths,
        &store,
        Target::Fetched,
        dry_run,
        &ExecOptions::default(),
    )?;
    let mut human = describe(&r);
    if dry_run {
        if let Some(plan) = &r.plan {
            human.push_str(&plan_lines(plan));
        }
    }
    Ok(Output::new(&r, human))
}

pub fn diff(paths: &Paths, spec: Option<&str>, with_patch: bool) -> miette::Result<Output> {
    let (_lock, store) = open(paths)?;
    let target = match spec {
        None => Target::Fetched,
        Some(s) => Target::Revision(resolve_with_applies(&store, s)?.id),
    };
    let r = apply_locked(paths, &store, target, true, &ExecOptions::default())?;
    let plan = r.plan.clone().expect("a dry run returns its plan");
    let mut human = describe(&r);
    human.push_str(&plan_lines(&plan));
    let mut patches = Vec::new();
    if with_patch {
        let reader = store.read()?;
        for op in &plan.ops {
            let (path, before, after) = match op {
                Op::Put { path, id, old, .. } => (path, old.map(|o| o.1), Some(*id)),
                Op::Delete { path, old } => (path, Some(old.1), None),
            };
            let text = |id: Option<crate::object::ObjectId>| -> miette::Result<Option<String>> {
                Ok(match id {
                    Some(id) => String::from_utf8(reader.blob(&id)?).ok(),
                    None => Some(String::new()),
                })
            };
            let (Some(a), Some(b)) = (text(before)?, text(after)?) else {
                writeln!(human, "Binary file {path} differs").ok();
                continue;
            };
            let d = similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .header(&format!("a/{path}"), &format!("b/{path}"))
                .to_string();
            human.push_str(&d);
            patches.push(serde_json::json!({"path": path.as_str(), "patch": d}));
        }
    }
    let mut json = serde_json::to_value(&r).expect("reports serialise");
    json["plan"] = serde_json::to_value(&plan).expect("plans serialise");
    if with_patch {
        json["patches"] = serde_json::Value::Array(patches);
    }
    Ok(Output { json, human })
}

pub fn rollback(paths: &Paths, spec: &str) -> miette::Result<Output> {
    let (_lock, store) = open(paths)?;
    let entry = resolve_with_applies(&store, spec)?;
    let r = apply_locked(
        paths,
        &store,
        Target::Revision(entry.id),
        false,
        &ExecOptions::default(),
    )?;
    let mut human = describe(&r);
    writeln!(
        human,
        "held at revision {}: `codexport sync --apply` keeps it until the master publishes a newer revision; `codexport apply` returns to the newest fetched one now",
        entry.number
    )
    .ok();
    Ok(Output::new(&r, human))
}

/// Resolves a `<rev>` among fetched revisions and rollback points (whose log entries `gc`
/// may have dropped).
fn resolve_with_applies(store: &Store, spec: &str) -> miette::Result<crate::store::LogEntry> {
    let r = store.read()?;
    let mut log = r.log()?;
    for a in r.applies()? {
        if !log.iter().any(|e| e.id == a.revision) {
            let rev = r.revision(&a.revision)?;
            log.push(crate::store::LogEntry {
                number: rev.number,
                id: a.revision,
                time_ms: rev.time_ms,
                files: rev.files,
                bytes: rev.bytes,
                objects: 0,
                object_bytes: 0,
                changes: crate::store::log::ChangeCounts::default(),
            });
        }
    }
    log.sort_by_key(|e| e.number);
    Ok(rev::resolve(&log, spec)?)
}
