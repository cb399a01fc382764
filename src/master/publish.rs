//! Publishing: `master init` and `master rebuild` snapshot the roots (`~/.codex`,
//! `~/.agents/skills`) into a new revision, and the head that followers trust is signed (and
//! re-signed before it expires).

use super::{MasterError, MasterKey};
use crate::object::{ObjectId, SignedHead};
use crate::paths::Paths;
use crate::snapshot::{self, SnapshotOptions, SnapshotReport};
use crate::store::{ObjectSource, Store, StoreError, Writer};
use std::time::Duration;

/// Builds a revision's MCP tree (manifest and copied sources) from config.toml's bytes. The
/// MCP layer provides it (`crate::mcp::infer::export_for`); it is handed in so publishing
/// does not depend on that layer.
pub type McpExport =
    dyn Fn(&mut Writer<'_>, &[u8], &Paths) -> Result<Option<ObjectId>, StoreError> + Send + Sync;

/// How long a signed head is valid. A running server re-signs well before expiry; a follower
/// refuses a head past it (a frozen or replayed master cannot pin followers to old content).
pub const HEAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What `master init` did.
#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub role: crate::paths::Role,
    pub codex_dir: std::path::PathBuf,
    pub fingerprint: String,
    pub snapshot: SnapshotReport,
}

/// Creates the key and the store and records the first revision. If the codex dir is
/// missing, nothing is created.
pub fn init(paths: &Paths, mcp: Option<&McpExport>) -> Result<InitReport, MasterError> {
    if paths.master_key().exists() {
        return Err(MasterError::AlreadyInitialised {
            path: paths.master_key(),
        });
    }
    // Walk first so a missing or unreadable codex dir (or bad settings) leaves no key and no
    // store behind.
    let extra = super::settings::load(&paths.state(crate::paths::state::MASTER_TOML))?;
    let roots = paths.roots();
    snapshot::walk::walk(&snapshot::selections(&roots, &extra))?;
    let store = Store::open_or_create(&paths.state_dir)?;
    let key = MasterKey::create(&paths.master_key())?;
    let snapshot = match rebuild_with(&store, paths, &key, mcp) {
        Ok(s) => s,
        Err(e) => {
            // Undo the half-made identity so `init` can simply be run again.
            let _ = std::fs::remove_file(paths.master_key());
            return Err(e);
        }
    };
    Ok(InitReport {
        role: crate::paths::Role::Master,
        codex_dir: paths.codex_dir.clone(),
        fingerprint: key.fingerprint().to_string(),
        snapshot,
    })
}

/// What `master include` / `master exclude` did: the settings edited, then a snapshot.
#[derive(Debug, serde::Serialize)]
pub struct SettingsChange {
    pub settings: super::settings::Edited,
    pub snapshot: SnapshotReport,
}

/// Adds top-level names of `~/.codex` to the master's `include` or `exclude` list (see
/// [`super::settings`]) and snapshots again, so the change is published at once.
pub fn change_settings(
    paths: &Paths,
    list: super::settings::List,
    names: &[String],
    mcp: Option<&McpExport>,
) -> Result<SettingsChange, MasterError> {
    let key = MasterKey::load(&paths.master_key())?;
    let settings =
        super::settings::edit(&paths.state(crate::paths::state::MASTER_TOML), list, names)?;
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let snapshot = rebuild_with(&store, paths, &key, mcp)?;
    Ok(SettingsChange { settings, snapshot })
}

/// Snapshots again; a new revision only if something changed. Also re-signs a head that is
/// past half its validity.
pub fn rebuild(paths: &Paths, mcp: Option<&McpExport>) -> Result<SnapshotReport, MasterError> {
    let key = MasterKey::load(&paths.master_key())?;
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    rebuild_with(&store, paths, &key, mcp)
}

/// Snapshot with an open store and loaded key (what the server's watcher calls).
pub fn rebuild_with(
    store: &Store,
    paths: &Paths,
    key: &MasterKey,
    mcp: Option<&McpExport>,
) -> Result<SnapshotReport, MasterError> {
    let export = mcp.map(|export| {
        move |w: &mut Writer<'_>, config: &[u8]| -> Result<Option<ObjectId>, StoreError> {
            export(w, config, paths)
        }
    });
    let extra = super::settings::load(&paths.state(crate::paths::state::MASTER_TOML))?;
    let report = snapshot::snapshot(
        store,
        &SnapshotOptions {
            roots: paths.roots(),
            extra,
            stamp_dir: paths.state_dir.clone(),
            host: crate::paths::host_name(),
            home: paths.home.clone(),
            signer: Some(key.signing_key()),
            head_ttl: HEAD_TTL,
            mcp: export.as_ref().map(|e| e as &snapshot::McpExporter<'_>),
        },
    )?;
    refresh_head(store, key, false)?;
    Ok(report)
}

/// Re-signs the head for the current revision if it is missing, signed by another key, past
/// half its validity, or `force` is set. Returns the head served now.
pub fn refresh_head(
    store: &Store,
    key: &MasterKey,
    force: bool,
) -> Result<Option<SignedHead>, MasterError> {
    let (head, current) = {
        let r = store.read()?;
        (r.head()?, r.get_ref(crate::store::refs::MASTER_HEAD)?)
    };
    let Some(rev_id) = current else {
        return Ok(head);
    };
    let now = crate::time::now_secs();
    let fresh = head.as_ref().is_some_and(|h| {
        h.body.revision == rev_id
            && h.body.master_key == key.public_key()
            && h.body.expires_at - now > (HEAD_TTL.as_secs() / 2) as i64
    });
    if fresh && !force {
        return Ok(head);
    }
    let mut w = store.write()?;
    let rev = w.revision(&rev_id)?;
    let (objects, bytes) = crate::store::fsck::closure(&w, rev_id)?;
    let signed = snapshot::head_body(
        key.signing_key(),
        rev_id,
        rev.number,
        objects,
        bytes,
        HEAD_TTL,
    )
    .sign(key.signing_key());
    w.set_head(&signed)?;
    w.commit()?;
    Ok(Some(signed))
}
