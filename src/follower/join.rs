//! `follower join`: pin the master's key from the fingerprint, exchange the one-time token
//! for a credential, then sync.

use super::{FollowerConfig, FollowerError, SyncOptions, SyncReport, config, sync};
use crate::object::Fingerprint;
use crate::paths::Paths;
use crate::transport::client::Client;
use crate::transport::link::JoinLink;
use std::time::Duration;

/// What `follower join` was given.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    pub link: Option<String>,
    pub master: Option<String>,
    pub fingerprint: Option<String>,
    pub token: Option<String>,
    /// Trust a master with a different key than the one pinned before.
    pub reset_trust: bool,
    pub timeout: Duration,
    pub progress: bool,
    /// Apply the first revision into the codex dir right away.
    pub apply: bool,
}

/// What `follower join` did.
#[derive(Debug, serde::Serialize)]
pub struct JoinReport {
    pub role: crate::paths::Role,
    pub name: String,
    pub master_url: String,
    pub fingerprint: String,
    pub sync: SyncReport,
}

/// Enrolls this machine with the master and fetches its newest revision. A master whose key
/// does not match the fingerprint is refused before anything is stored.
pub fn join(paths: &Paths, opts: &JoinOptions) -> Result<JoinReport, FollowerError> {
    if paths.master_key().exists() {
        return Err(FollowerError::IsMaster);
    }
    let link = match &opts.link {
        Some(text) => Some(text.parse::<JoinLink>()?),
        None => None,
    };
    let master_url = opts
        .master
        .clone()
        .or_else(|| link.as_ref().map(JoinLink::master_url))
        .ok_or(FollowerError::MissingJoinArg {
            what: "the master's URL",
        })?;
    let fingerprint: Fingerprint = match (&opts.fingerprint, &link) {
        (Some(fp), _) => fp.parse().map_err(|_| FollowerError::MissingJoinArg {
            what: "a valid --fingerprint (40 hex digits)",
        })?,
        (None, Some(l)) => l.fingerprint,
        (None, None) => {
            return Err(FollowerError::MissingJoinArg {
                what: "the master's fingerprint",
            });
        }
    };
    let token = opts
        .token
        .clone()
        .or_else(|| link.as_ref().and_then(|l| l.token.clone()))
        .ok_or(FollowerError::MissingJoinArg {
            what: "a join token",
        })?;

    let previous = match FollowerConfig::load(paths) {
        Ok(c) => Some(c),
        Err(FollowerError::NotEnrolled) => None,
        Err(e) => return Err(e),
    };
    if let Some(prev) = &previous {
        if prev.fingerprint != fingerprint && !opts.reset_trust {
            return Err(FollowerError::AlreadyEnrolled {
                url: prev.master_url.clone(),
                fingerprint: prev.fingerprint.to_string(),
            });
        }
    }

    if opts.apply {
        // Before the single-use token is spent: a join that cannot apply must not burn it.
        for (root, dir) in paths.roots().iter() {
            usable_root_dir(root, dir)?;
        }
    }
    let client = Client::new(&master_url, None, opts.timeout)?;
    let health = client.health()?;
    let got = crate::object::id::decode_hex::<32>(&health.master_key).ok_or_else(|| {
        FollowerError::Stream("the master's health answer has no valid key".into())
    })?;
    if Fingerprint::of_key(&got) != fingerprint {
        return Err(FollowerError::FingerprintMismatch {
            expected: fingerprint.to_string(),
            got: Fingerprint::of_key(&got).to_string(),
        });
    }
    let (credential, name) = client.enroll(&token, &crate::paths::host_name())?;

    let store = crate::store::Store::open_or_create(&paths.state_dir)?;
    if previous
        .as_ref()
        .is_some_and(|p| p.fingerprint != fingerprint)
    {
        forget_master(&store)?;
        let _ = std::fs::remove_file(super::state::Mirror::path(paths));
    }
    drop(store);
    config::save_credential(paths, &credential)?;
    let cfg = FollowerConfig {
        master_url: master_url.clone(),
        fingerprint,
        master_key: got,
        name: name.clone(),
        enrolled_ms: crate::time::now_ms(),
    };
    cfg.save(paths)?;
    let sync = sync(
        paths,
        &SyncOptions {
            timeout: opts.timeout,
            progress: opts.progress,
            apply: opts.apply,
            drift_check: true,
        },
    )?;
    Ok(JoinReport {
        role: crate::paths::Role::Follower,
        name,
        master_url,
        fingerprint: fingerprint.to_string(),
        sync,
    })
}

/// Whether an apply could write into a root's folder: a folder (or a link to one, written
/// through), or nothing yet.
fn usable_root_dir(
    root: &crate::roots::Root,
    codex_dir: &std::path::Path,
) -> Result<(), FollowerError> {
    let unusable = |why| FollowerError::CodexDirUnusable {
        root: root.shown,
        path: codex_dir.to_owned(),
        why,
    };
    match std::fs::symlink_metadata(codex_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FollowerError::Io {
            path: codex_dir.to_owned(),
            source: e,
        }),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(codex_dir) {
            Ok(target) if target.is_dir() => Ok(()),
            Ok(_) => Err(unusable("it is a link to something that is not a folder")),
            Err(_) => Err(unusable("it is a link to nothing (a dangling symlink)")),
        },
        Ok(_) => Err(unusable("it is a file, not a folder")),
    }
}

/// Drops what was accepted from a previous master: its numbering means nothing for the new
/// one. Objects stay (content-addressed, harmless) until `gc`.
fn forget_master(store: &crate::store::Store) -> Result<(), FollowerError> {
    let mut w = store.write()?;
    w.remove_ref(super::FETCHED)?;
    for key in [super::meta::ACCEPTED, super::meta::HEAD] {
        w.set_meta(key, &[])?;
    }
    while let Some(e) = w.last_log_entry()? {
        w.remove_log(e.number)?;
    }
    w.clear_partial()?;
    w.commit()?;
    Ok(())
}
