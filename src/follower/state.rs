//! What a follower knows about its master besides objects: the facts kept in the store
//! (the highest revision number accepted, a rollback hold), and two small files beside it:
//! `follower-state.json` (those facts mirrored, so a no-change sync need not open the store)
//! and `last-sync.json` (the last sync's result, for `status`).

use super::{FETCHED, FollowerError, meta};
use crate::object::ObjectId;
use crate::paths::{Paths, state};
use crate::store::{Reader, Store};

/// The highest revision number accepted so far.
pub fn accepted_number(r: &Reader<'_>) -> Result<Option<u64>, FollowerError> {
    Ok(r.meta(meta::ACCEPTED)?
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes))
}

/// The revision number a rollback holds the follower at, if any.
pub fn hold(store: &Store) -> Result<Option<u64>, FollowerError> {
    Ok(store
        .read()?
        .meta(meta::HOLD)?
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes))
}

/// Whether `fsck` set damaged objects aside since the last complete fetch.
pub fn needs_repair(r: &Reader<'_>) -> Result<bool, FollowerError> {
    Ok(r.meta(meta::REPAIR)?.is_some_and(|b| b == [1]))
}

/// The fetched revision is whole again.
pub fn clear_repair(store: &Store) -> Result<(), FollowerError> {
    let mut w = store.write()?;
    w.set_meta(meta::REPAIR, &[])?;
    w.commit()?;
    Ok(())
}

/// What the store says about the master and the last apply, mirrored in
/// `~/.codexport/follower-state.json` after every accepted fetch and apply, so a no-change
/// sync need not open the store. A cache: whenever it disagrees with the master's head, the
/// store decides, and the mirror is rewritten from it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Mirror {
    pub fetched: Option<ObjectId>,
    pub accepted: Option<u64>,
    /// The revision applied last.
    pub applied: Option<ObjectId>,
    /// The merged tree applied last (what the checkout index describes).
    #[serde(default)]
    pub merged: Option<ObjectId>,
    /// The overlay's stamp when it was applied (see `crate::overlay::stamp`).
    #[serde(default)]
    pub overlay: Option<ObjectId>,
    /// Damaged objects were set aside: the next sync must fetch.
    #[serde(default)]
    pub repair: bool,
}

impl Mirror {
    pub fn path(paths: &Paths) -> std::path::PathBuf {
        paths.state(state::FOLLOWER_STATE)
    }

    pub fn load(paths: &Paths) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(Self::path(paths)).ok()?).ok()
    }

    /// Rewrites the mirror from the store (call after committing a change to it).
    pub fn refresh(paths: &Paths, store: &Store) -> Result<(), FollowerError> {
        let r = store.read()?;
        let last = r.last_apply()?;
        let m = Mirror {
            fetched: r.get_ref(FETCHED)?,
            accepted: accepted_number(&r)?,
            applied: last.as_ref().map(|a| a.revision),
            merged: last.as_ref().map(|a| a.merged),
            overlay: Some(crate::overlay::stamp(&paths.state_dir)),
            repair: needs_repair(&r)?,
        };
        let path = Self::path(paths);
        crate::fsutil::write_atomic(
            &path,
            &serde_json::to_vec(&m).expect("mirrors serialise"),
            0o600,
        )
        .map_err(|e| FollowerError::Io { path, source: e })
    }
}

/// How the last sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastOutcome {
    Current,
    Fetched,
    Error,
}

impl LastOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LastOutcome::Current => "current",
            LastOutcome::Fetched => "fetched",
            LastOutcome::Error => "error",
        }
    }
}

/// The last sync's time and result, in `~/.codexport/last-sync.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LastSync {
    pub time_ms: i64,
    pub result: LastOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the head came from: `master` or a mirror's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl LastSync {
    /// Records it, best effort: `status` shows it, nothing depends on it.
    pub fn record(&self, paths: &Paths) {
        let json = serde_json::to_vec(self).expect("records serialise");
        let _ = crate::fsutil::write_atomic_unsynced(&paths.state(state::LAST_SYNC), &json, 0o600);
    }

    /// The last sync's record, if any.
    pub fn load(paths: &Paths) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(paths.state(state::LAST_SYNC)).ok()?).ok()
    }
}
