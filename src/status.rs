//! `status`: what this machine is to codexport, its newest revision, the follower's view of
//! its master, and the store's size, in one report.

use crate::follower::status::FollowerStatus;
use crate::master::MasterKey;
use crate::object::ObjectId;
use crate::paths::{Paths, Role};
use crate::store::{Store, StoreStats};
use std::path::PathBuf;
use std::time::Duration;

/// The newest revision in the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevisionStatus {
    pub number: u64,
    pub id: ObjectId,
    pub time: String,
    pub files: u64,
    pub bytes: u64,
}

/// Everything `status` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    pub role: Role,
    pub codex_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The master's own key fingerprint (on a follower, the pinned one is in `follower`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionStatus>,
    /// When the stored signed head expires (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_expires: Option<String>,
    /// On a master: each mirror and what was last published there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<crate::master::mirror::MirrorStatus>,
    #[serde(flatten)]
    pub follower: Option<FollowerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreStats>,
    /// On a master: top-level entries of `~/.codex` that are neither taken nor known
    /// runtime state (`foo/` for a folder).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_synced: Vec<String>,
}

/// `fsck`: re-hashes every object and checks every revision is complete. Damaged objects are
/// set aside (see [`crate::store::fsck::set_aside`]); on a follower the next sync then
/// fetches them again. Returns the report and how many were set aside.
pub fn fsck(paths: &Paths) -> Result<(crate::store::fsck::FsckReport, u64), StatusError> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let report = crate::store::fsck::fsck(&store)?;
    if report.is_clean() {
        return Ok((report, 0));
    }
    let set_aside = crate::store::fsck::set_aside(&store, &report.bad)?;
    if paths.role() == Role::Follower {
        // The no-change fast path must not take the fetched revision for whole.
        crate::follower::state::Mirror::refresh(paths, &store)?;
    }
    Ok((report, set_aside))
}

/// Why `status` could not be gathered.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum StatusError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Master(#[from] crate::master::MasterError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Follower(#[from] crate::follower::FollowerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// Gathers the status; a follower asks its master within `timeout`.
pub fn status(paths: &Paths, timeout: Duration) -> Result<StatusReport, StatusError> {
    let role = paths.role();
    let mut report = StatusReport {
        role,
        codex_dir: paths.codex_dir.clone(),
        state_dir: paths.state_dir.clone(),
        fingerprint: None,
        revision: None,
        head_expires: None,
        mirrors: Vec::new(),
        follower: None,
        store: None,
        not_synced: Vec::new(),
    };
    if role == Role::Master {
        report.mirrors = crate::master::mirror::status(paths);
        report.fingerprint = Some(
            MasterKey::load(&paths.master_key())?
                .fingerprint()
                .to_string(),
        );
        let extra = crate::master::settings::load(&paths.state(crate::paths::state::MASTER_TOML))?;
        let roots = paths.roots();
        let selections = crate::snapshot::selections(&roots, &extra);
        report.not_synced =
            crate::snapshot::not_synced(&crate::snapshot::walk::left_out(&selections)?);
    }
    if !paths.store_db().exists() {
        return Ok(report);
    }
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    if role == Role::Follower {
        report.follower = Some(crate::follower::status::status(paths, &store, timeout)?);
    }
    let reader = store.read()?;
    report.revision = reader.last_log_entry()?.map(|e| RevisionStatus {
        number: e.number,
        id: e.id,
        time: crate::time::format_ms(e.time_ms),
        files: e.files,
        bytes: e.bytes,
    });
    report.head_expires = reader
        .head()?
        .map(|h| crate::time::Utc::from_secs(h.body.expires_at).to_string());
    drop(reader);
    report.store = Some(store.stats()?);
    Ok(report)
}
