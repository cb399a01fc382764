//! `apply`, `rollback` and `diff` on a follower: merge a fetched revision with the overlay,
//! plan from the tree applied last, and check it out through the crash-safe executor into
//! every root's folder.

use super::state::Mirror;
use super::{FETCHED, FollowerError, meta};
use crate::checkout::plan::{Plan, plan};
use crate::checkout::{ExecOptions, ExecReport, Index, execute, recover};
use crate::fsutil::StateLock;
use crate::object::{ObjectId, RelPath, Revision};
use crate::overlay::{self, MergeFacts, Overlay};
use crate::paths::Paths;
use crate::store::applies::ApplyRecord;
use crate::store::{ObjectSource, Store};

/// Which merged tree to check out.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The newest fetched revision (clears a rollback hold).
    Fetched,
    /// A revision of the log, for `rollback` (holds the follower there).
    Revision(ObjectId),
}

/// What an apply ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// The codex dir was changed.
    Applied,
    /// The codex dir already held the merged tree.
    Unchanged,
    /// A dry run: the plan only.
    Planned,
}

/// What an apply did (or, with `dry_run`, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyReport {
    pub result: ApplyOutcome,
    pub number: u64,
    pub revision: ObjectId,
    pub merged: ObjectId,
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Files the tree did not change that were put back (deleted, edited or replaced here).
    pub restored: u64,
    /// Paths that held local edits (or something in the way), backed up before they were
    /// replaced.
    pub drift: Vec<String>,
    pub backup_dir: Option<String>,
    pub unknown_variables: Vec<String>,
    /// Files taken as the master has them because they could not be merged, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub plan: Option<Plan>,
    /// Set when an interrupted apply was finished first.
    pub recovered: bool,
}

/// Takes the state lock and opens the store: what every apply, diff and rollback holds.
pub fn open_locked(paths: &Paths) -> Result<(StateLock, Store), FollowerError> {
    let lock = StateLock::acquire(&paths.state_dir, crate::store::WAIT)?;
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    Ok((lock, store))
}

/// `codexport apply`: merges the newest fetched revision with the overlay and writes it
/// (or with `dry_run`, only plans it). Also releases a rollback hold.
pub fn apply(paths: &Paths, dry_run: bool) -> Result<ApplyReport, FollowerError> {
    let (_lock, store) = open_locked(paths)?;
    apply_locked(
        paths,
        &store,
        Target::Fetched,
        dry_run,
        &ExecOptions::default(),
    )
}

/// Finishes an apply a crash interrupted, recording it. Call with the state lock held.
pub fn recover_interrupted(paths: &Paths, store: &Store) -> Result<bool, FollowerError> {
    let Some(recovered) = recover(&paths.roots(), &paths.state_dir)? else {
        return Ok(false);
    };
    let mut record: ApplyRecord =
        serde_json::from_value(recovered.record).map_err(|e| FollowerError::BadJournalRecord {
            path: crate::checkout::journal::path(&paths.state_dir),
            what: e.to_string(),
        })?;
    let mut w = store.write()?;
    if recovered.legacy {
        // An apply an older codexport started: its trees are Codex dirs, the history's are
        // trees of roots.
        record.merged = crate::store::roots::wrap_codex_tree(&mut w, record.merged)?;
        record.canonical = crate::store::roots::wrap_codex_tree(&mut w, record.canonical)?;
    }
    if w.last_apply()?
        .is_none_or(|last| last.merged != record.merged || last.time_ms != record.time_ms)
    {
        w.append_apply(record)?;
    }
    w.commit()?;
    Ok(true)
}

/// The master's host as this follower reaches it.
fn master_host(paths: &Paths) -> Option<String> {
    let cfg = super::FollowerConfig::load(paths).ok()?;
    reqwest::Url::parse(&cfg.master_url)
        .ok()?
        .host_str()
        .map(str::to_owned)
}

/// Merges `revision` with the overlay and stores the merged tree.
pub fn merge_revision(
    paths: &Paths,
    store: &Store,
    rev_id: ObjectId,
) -> Result<(Revision, overlay::Merged), FollowerError> {
    let overlay = Overlay::load(&paths.state_dir)?;
    let previous = store.read()?.last_apply()?.map(|a| a.revision);
    let dirs = paths.roots();
    let current = |p: &RelPath| dirs.abs(p).and_then(|f| std::fs::read(f).ok());
    let revision = store.read()?.revision(&rev_id)?;
    let launcher = revision.mcp.and_then(|_| std::env::current_exe().ok());
    let mut w = store.write()?;
    // The master's tree of roots applied last (stored, for a revision made before roots).
    let previous_canonical = match previous {
        Some(id) if w.has(&id)? => {
            let rev = w.revision(&id)?;
            Some(crate::store::roots::roots_tree(&mut w, &rev)?)
        }
        _ => None,
    };
    let facts = MergeFacts {
        home: &paths.home,
        dirs: &dirs,
        master_host: master_host(paths),
        current: &current,
        previous_canonical,
        launcher: launcher.as_deref(),
    };
    let merged = overlay::merge(&mut w, &revision, &overlay, &facts)?;
    w.commit()?;
    Ok((revision, merged))
}

/// The revision `target` names, the last apply, and the newest fetched revision.
fn resolve_target(
    store: &Store,
    target: Target,
) -> Result<(ObjectId, Option<ApplyRecord>, ObjectId), FollowerError> {
    let r = store.read()?;
    let fetched = r.get_ref(FETCHED)?.ok_or(FollowerError::NothingFetched)?;
    let rev_id = match target {
        Target::Fetched => fetched,
        Target::Revision(id) => id,
    };
    Ok((rev_id, r.last_apply()?, fetched))
}

/// The merged tree to check out: a rollback point's recorded tree (exact), else the revision
/// merged with the overlay as it is now. Returns the revision, the tree, the unknown
/// `${names}` of its config.toml and the merge's warnings.
fn merged_tree(
    paths: &Paths,
    store: &Store,
    target: Target,
    rev_id: ObjectId,
) -> Result<(Revision, ObjectId, Vec<String>, Vec<String>), FollowerError> {
    let recorded = match target {
        Target::Revision(id) => store
            .read()?
            .applies()?
            .into_iter()
            .rev()
            .find(|a| a.revision == id)
            .map(|a| a.merged),
        Target::Fetched => None,
    };
    Ok(match recorded {
        Some(tree) => (
            store.read()?.revision(&rev_id)?,
            tree,
            Vec::new(),
            Vec::new(),
        ),
        None => {
            let (rev, m) = merge_revision(paths, store, rev_id)?;
            (rev, m.tree, m.unknown_variables, m.warnings)
        }
    })
}

/// Plans (and unless `dry_run`, applies) `target`: afterwards every managed path of the
/// codex dir holds the merged tree. Call with the state lock held.
pub fn apply_locked(
    paths: &Paths,
    store: &Store,
    target: Target,
    dry_run: bool,
    exec: &ExecOptions,
) -> Result<ApplyReport, FollowerError> {
    let recovered = recover_interrupted(paths, store)?;
    let (rev_id, last, fetched) = resolve_target(store, target)?;
    let (revision, merged, unknown_variables, warnings) =
        merged_tree(paths, store, target, rev_id)?;
    let dirs = paths.roots();
    let old = last.as_ref().map(|a| a.merged);
    let index = old.and_then(|t| Index::load(&paths.state_dir, &dirs, t));
    let plan = plan(&store.read()?, &dirs, old, merged, index.as_ref())?;
    let counts = plan.counts();
    let mut report = ApplyReport {
        result: ApplyOutcome::Planned,
        number: revision.number,
        revision: rev_id,
        merged,
        added: counts.added,
        updated: counts.updated,
        deleted: counts.deleted,
        restored: counts.restored,
        drift: Vec::new(),
        backup_dir: None,
        unknown_variables,
        warnings,
        plan: Some(plan.clone()),
        recovered,
    };
    if dry_run {
        return Ok(report);
    }
    let unchanged = plan.is_empty()
        && last
            .as_ref()
            .is_some_and(|a| a.merged == merged && a.revision == rev_id);
    if unchanged {
        // Nothing to write; the index learns the stats of files it had to hash.
        if index
            .as_ref()
            .is_none_or(|i| i.entries.iter().any(|e| e.racy))
        {
            Index::after(&plan, &dirs)?.save(&paths.state_dir)?;
        }
        write_mcp_manifest(paths, store, &revision)?;
        Mirror::refresh(paths, store)?;
        report.result = ApplyOutcome::Unchanged;
        clear_hold_if(store, target)?;
        return Ok(report);
    }
    let record = ApplyRecord {
        seq: 0,
        time_ms: crate::time::now_ms(),
        kind: if matches!(target, Target::Revision(_)) {
            "rollback"
        } else {
            "apply"
        }
        .to_owned(),
        number: revision.number,
        revision: rev_id,
        canonical: crate::store::roots::roots_id(&revision),
        merged,
        added: counts.added,
        // The record's layout predates restores; they are updates of a file's content.
        updated: counts.updated + counts.restored,
        deleted: counts.deleted,
        drift: 0,
        backup_dir: None,
    };
    let done: ExecReport = execute(
        &store.read()?,
        &dirs,
        &paths.state_dir,
        &plan,
        &serde_json::to_value(&record).expect("records serialise"),
        exec,
    )?;
    Index::after(&plan, &dirs)?.save(&paths.state_dir)?;
    record_apply(paths, store, target, fetched, record, &done, &mut report)?;
    write_mcp_manifest(paths, store, &revision)?;
    Mirror::refresh(paths, store)?;
    report.result = ApplyOutcome::Applied;
    Ok(report)
}

/// Records a finished apply (a rollback point), prunes old ones, and sets or clears the
/// rollback hold.
fn record_apply(
    paths: &Paths,
    store: &Store,
    target: Target,
    fetched: ObjectId,
    record: ApplyRecord,
    done: &ExecReport,
    report: &mut ApplyReport,
) -> Result<(), FollowerError> {
    let keep = Overlay::load(&paths.state_dir)
        .map(|o| o.local.keep_applies)
        .unwrap_or(crate::overlay::local::DEFAULT_KEEP_APPLIES);
    let backup_dir = done.backup_dir.as_ref().map(|p| p.display().to_string());
    let drift = only_replaced(paths, done.drift.clone());
    let mut w = store.write()?;
    w.append_apply(ApplyRecord {
        drift: drift.len() as u64,
        backup_dir: backup_dir.clone(),
        ..record
    })?;
    w.prune_applies(keep)?;
    w.set_meta(
        meta::UNKNOWN_VARIABLES,
        serde_json::to_string(&report.unknown_variables)
            .expect("strings serialise")
            .as_bytes(),
    )?;
    match target {
        // Back at the newest fetched revision: nothing to hold.
        Target::Revision(id) if id != fetched => {
            w.set_meta(meta::HOLD, &store_number(store, fetched)?.to_le_bytes())?;
        }
        _ => w.set_meta(meta::HOLD, &[])?,
    }
    w.commit()?;
    report.drift = drift;
    report.backup_dir = backup_dir;
    Ok(())
}

fn store_number(store: &Store, rev: ObjectId) -> Result<u64, FollowerError> {
    Ok(store.read()?.revision(&rev)?.number)
}

fn clear_hold_if(store: &Store, target: Target) -> Result<(), FollowerError> {
    if matches!(target, Target::Fetched) {
        let mut w = store.write()?;
        w.set_meta(meta::HOLD, &[])?;
        w.commit()?;
    }
    Ok(())
}

/// Drops co-owned paths (keep-local, append-local): edits there are expected, not drift.
fn only_replaced(paths: &Paths, drift: Vec<String>) -> Vec<String> {
    let local = Overlay::load(&paths.state_dir)
        .map(|o| o.local)
        .unwrap_or_default();
    drift
        .into_iter()
        .filter(|p| {
            RelPath::new(p).is_ok_and(|p| local.policy_of(&p) == crate::overlay::Policy::Replace)
        })
        .collect()
}

/// Writes the applied revision's MCP manifest (and the tree ids of copied sources) where
/// `codexport mcp run` reads it without opening the store; 0600, as it holds env secrets.
/// The manifest is kept as the JSON the master wrote: its meaning is the MCP layer's.
fn write_mcp_manifest(
    paths: &Paths,
    store: &Store,
    revision: &Revision,
) -> Result<(), FollowerError> {
    use crate::object::revision::{MCP_MANIFEST, MCP_SOURCES};
    let path = paths.state(crate::paths::state::MCP_APPLIED);
    let Some(tree_id) = revision.mcp else {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    };
    let r = store.read()?;
    let tree = r.tree(&tree_id)?;
    let Some(entry) = tree.get(MCP_MANIFEST) else {
        return Ok(());
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&r.file(entry)?).map_err(|e| FollowerError::BadMcpManifest {
            number: revision.number,
            what: e.to_string(),
        })?;
    let sources: std::collections::BTreeMap<String, ObjectId> = match tree.get(MCP_SOURCES) {
        Some(s) => r
            .tree(&s.id)?
            .entries()
            .iter()
            .map(|e| (e.name.to_string(), e.id))
            .collect(),
        None => std::collections::BTreeMap::new(),
    };
    let applied = serde_json::json!({"manifest": manifest, "sources": sources});
    let bytes = serde_json::to_vec_pretty(&applied).expect("manifests serialise");
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir_all(dir).map_err(|e| FollowerError::Io {
            path: dir.to_owned(),
            source: e,
        })?;
    }
    crate::fsutil::write_atomic(&path, &bytes, 0o600)
        .map_err(|e| FollowerError::Io { path, source: e })
}
