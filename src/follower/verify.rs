//! `verify`: whether the codex dir holds exactly what `apply` would write now (chezmoi's
//! `verify`), and if not, which paths differ and how. Changes nothing in the codex dir.

use super::FollowerError;
use super::apply::{Target, apply_locked, open_locked};
use crate::checkout::ExecOptions;
use crate::object::{ObjectId, RelPath};
use crate::paths::Paths;
use crate::store::Store;

/// One managed path that differs from the merged tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Difference {
    pub path: RelPath,
    /// What is wrong with it.
    pub what: &'static str,
}

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// The codex dir equals the merged tree.
    pub equal: bool,
    /// The revision the merged tree is of.
    pub number: u64,
    pub merged: ObjectId,
    pub differences: Vec<Difference>,
}

/// Compares the codex dir with the newest fetched revision merged with the overlay as it is
/// now (what `apply` would write), taking the state lock.
pub fn verify(paths: &Paths) -> Result<VerifyReport, FollowerError> {
    let (_lock, store) = open_locked(paths)?;
    verify_locked(paths, &store)
}

/// [`verify`] with the lock held and the store open.
pub fn verify_locked(paths: &Paths, store: &Store) -> Result<VerifyReport, FollowerError> {
    let report = apply_locked(paths, store, Target::Fetched, true, &ExecOptions::default())?;
    let plan = report.plan.expect("a dry run returns its plan");
    let differences: Vec<Difference> = plan
        .differences()
        .into_iter()
        .map(|(path, what)| Difference { path, what })
        .collect();
    Ok(VerifyReport {
        equal: differences.is_empty(),
        number: report.number,
        merged: report.merged,
        differences,
    })
}
