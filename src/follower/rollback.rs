//! `rollback <rev>`, and resolving `<rev>` on a follower: among fetched revisions and the
//! rollback points of the apply history (whose log entries `gc` may have dropped).

use super::FollowerError;
use super::apply::{ApplyReport, Target, apply_locked, open_locked};
use super::state::hold;
use crate::checkout::ExecOptions;
use crate::paths::Paths;
use crate::store::log::ChangeCounts;
use crate::store::{LogEntry, ObjectSource, Store, rev};

/// What `rollback` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackReport {
    #[serde(flatten)]
    pub apply: ApplyReport,
    /// The revision number the follower is now held at (`sync --apply` does not move it
    /// until the master publishes a newer one); `None` when the rollback went to the newest
    /// fetched revision, which holds nothing.
    pub held_at: Option<u64>,
}

/// The log entry `spec` names among fetched revisions and rollback points.
pub fn resolve(store: &Store, spec: &str) -> Result<LogEntry, FollowerError> {
    let r = store.read()?;
    let mut log = r.log()?;
    for a in r.applies()? {
        if !log.iter().any(|e| e.id == a.revision) {
            let rev = r.revision(&a.revision)?;
            log.push(LogEntry {
                number: rev.number,
                id: a.revision,
                time_ms: rev.time_ms,
                files: rev.files,
                bytes: rev.bytes,
                objects: 0,
                object_bytes: 0,
                changes: ChangeCounts::default(),
            });
        }
    }
    log.sort_by_key(|e| e.number);
    Ok(rev::resolve(&log, spec)?)
}

/// Checks out the merged tree of the revision `spec` names and holds the follower there.
pub fn rollback(paths: &Paths, spec: &str) -> Result<RollbackReport, FollowerError> {
    let (_lock, store) = open_locked(paths)?;
    let entry = resolve(&store, spec)?;
    let apply = apply_locked(
        paths,
        &store,
        Target::Revision(entry.id),
        false,
        &ExecOptions::default(),
    )?;
    Ok(RollbackReport {
        apply,
        held_at: hold(&store)?.map(|_| entry.number),
    })
}
