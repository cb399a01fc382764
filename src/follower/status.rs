//! The follower's part of `status`: its master, what it fetched, accepted and applied, local
//! drift, and whether the master is reachable with a newer head. Finishes an apply a crash
//! interrupted first, unless a sync or apply runs right now.

use super::state::{LastSync, accepted_number, hold};
use super::{FETCHED, FollowerConfig, FollowerError, config, meta, sync};
use crate::fsutil::StateLock;
use crate::object::ObjectId;
use crate::paths::Paths;
use crate::store::Store;
use crate::transport::client::Client;
use std::time::Duration;

/// The apply the codex dir holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppliedStatus {
    pub number: u64,
    pub revision: ObjectId,
    pub merged: ObjectId,
    pub time_ms: i64,
    pub time: String,
    /// `apply` or `rollback`.
    pub kind: String,
}

/// Whether the master answered, and with what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteStatus {
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<ObjectId>,
    /// The master has a revision this follower has not fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything `status` shows about a follower.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowerStatus {
    pub name: String,
    pub master_url: String,
    /// The pinned master key's fingerprint.
    pub fingerprint: String,
    /// An interrupted apply was finished just now.
    pub recovered: bool,
    pub applied: Option<AppliedStatus>,
    /// Every path of the codex dir that differs from what `apply` would write now; `None`
    /// when it could not be compared (see `drift_error`).
    pub drift: Option<Vec<super::verify::Difference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_error: Option<String>,
    /// `${names}` in the applied config.toml that no variable defines.
    pub unknown_variables: Vec<String>,
    /// After a rollback: the first revision number `sync --apply` applies again.
    pub held_below: Option<u64>,
    pub fetched: Option<ObjectId>,
    pub accepted_number: Option<u64>,
    pub last_sync: Option<LastSync>,
    pub remote: RemoteStatus,
    /// Where the fetched revision came from: `master`, or a mirror's URL.
    pub fetched_from: Option<String>,
    /// Each mirror this follower reads, and what it answered.
    pub mirrors: Vec<MirrorStatus>,
    /// Plugins the applied config.toml enables that Codex has not installed here: not
    /// tried yet, or failed (with why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<super::plugins::PluginStatus>,
}

/// Whether a mirror answered with a valid head, and which.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MirrorStatus {
    pub url: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// Seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks every mirror for its head at once, within `timeout`.
fn mirror_status(paths: &Paths, cfg: &FollowerConfig, timeout: Duration) -> Vec<MirrorStatus> {
    let urls = super::mirrors::urls(paths, cfg);
    std::thread::scope(|scope| {
        let asked: Vec<_> = urls
            .iter()
            .map(|url| {
                scope.spawn(move || {
                    let answer = Client::new(url, None, timeout)
                        .map_err(FollowerError::from)
                        .and_then(|c| super::mirrors::head(&c))
                        .and_then(|f| {
                            if f.head.body.master_key == cfg.master_key {
                                Ok(f)
                            } else {
                                Err(FollowerError::FingerprintMismatch {
                                    expected: cfg.fingerprint.to_string(),
                                    got: f.head.body.fingerprint().to_string(),
                                })
                            }
                        });
                    match answer {
                        Ok(f) => MirrorStatus {
                            url: url.clone(),
                            reachable: true,
                            number: Some(f.head.body.number),
                            expires_at: Some(f.head.body.expires_at),
                            error: None,
                        },
                        Err(e) => MirrorStatus {
                            url: url.clone(),
                            reachable: false,
                            number: None,
                            expires_at: None,
                            error: Some(e.to_string()),
                        },
                    }
                })
            })
            .collect();
        asked
            .into_iter()
            .map(|h| h.join().expect("a head request never panics"))
            .collect()
    })
}

/// Gathers the follower's status, asking the master within `timeout`.
pub fn status(
    paths: &Paths,
    store: &Store,
    timeout: Duration,
) -> Result<FollowerStatus, FollowerError> {
    let cfg = FollowerConfig::load(paths)?;
    // Finish an apply a crash interrupted, and compare the codex dir with the merged tree,
    // unless a sync or apply is running now.
    let (recovered, drift) = match StateLock::acquire(&paths.state_dir, Duration::from_millis(200))
    {
        Ok(_lock) => {
            let recovered = super::apply::recover_interrupted(paths, store)?;
            let drift = match store.read()?.get_ref(FETCHED)? {
                Some(_) => match super::verify::verify_locked(paths, store) {
                    Ok(v) => Ok(v.differences),
                    Err(e) => Err(e.to_string()),
                },
                None => Ok(Vec::new()),
            };
            (recovered, drift)
        }
        Err(_) => (
            false,
            Err("a sync or apply is running; run `codexport status` again".to_owned()),
        ),
    };
    let reader = store.read()?;
    let fetched = reader.get_ref(FETCHED)?;
    let last = reader.last_apply()?;
    let unknown_variables = reader
        .meta(meta::UNKNOWN_VARIABLES)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let remote = Client::new(
        &cfg.master_url,
        config::load_credential(paths).ok(),
        timeout,
    )
    .map_err(FollowerError::from)
    .and_then(|c| sync::fetch_head(store, &cfg, &c));
    let mirrors = mirror_status(paths, &cfg, timeout);
    let fetched_from = reader
        .meta(meta::SOURCE)?
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty());
    let remote = match remote {
        Ok(head) => RemoteStatus {
            reachable: true,
            number: Some(head.body.number),
            revision: Some(head.body.revision),
            pending_update: Some(fetched != Some(head.body.revision)),
            error: None,
        },
        Err(e) => RemoteStatus {
            reachable: false,
            number: None,
            revision: None,
            pending_update: None,
            error: Some(e.to_string()),
        },
    };
    Ok(FollowerStatus {
        name: cfg.name,
        master_url: cfg.master_url,
        fingerprint: cfg.fingerprint.to_string(),
        recovered,
        applied: last.map(|a| AppliedStatus {
            number: a.number,
            revision: a.revision,
            merged: a.merged,
            time_ms: a.time_ms,
            time: crate::time::format_ms(a.time_ms),
            kind: a.kind,
        }),
        drift_error: drift.as_ref().err().cloned(),
        drift: drift.ok(),
        unknown_variables,
        held_below: hold(store)?.map(|h| h + 1),
        fetched,
        accepted_number: accepted_number(&reader)?,
        last_sync: LastSync::load(paths),
        remote,
        fetched_from,
        mirrors,
        plugins: super::plugins::status(paths)
            .not_installed()
            .cloned()
            .collect(),
    })
}
