//! `diff [<rev>] [--patch]`: what `apply` (or a rollback to `<rev>`) would change in the
//! codex dir, with unified diffs of text files on request.

use super::FollowerError;
use super::apply::{ApplyReport, Target, apply_locked, open_locked};
use super::rollback::resolve;
use crate::checkout::ExecOptions;
use crate::checkout::plan::{Op, Plan};
use crate::object::ObjectKind;
use crate::object::{ObjectId, RelPath};
use crate::paths::Paths;
use crate::store::ObjectSource;

/// The unified diff of one text file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Patch {
    pub path: RelPath,
    pub patch: String,
}

/// What a dry run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffReport {
    #[serde(flatten)]
    pub apply: ApplyReport,
    pub plan: Plan,
    /// With `--patch`: a unified diff per changed text file…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,
    /// …and the paths of changed files that are not text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binary: Vec<RelPath>,
}

/// Plans (without writing) the apply of the newest fetched revision, or of `spec`'s.
pub fn diff(paths: &Paths, spec: Option<&str>, patch: bool) -> Result<DiffReport, FollowerError> {
    let (_lock, store) = open_locked(paths)?;
    let target = match spec {
        None => Target::Fetched,
        Some(s) => Target::Revision(resolve(&store, s)?.id),
    };
    let mut apply = apply_locked(paths, &store, target, true, &ExecOptions::default())?;
    let plan = apply.plan.take().expect("a dry run returns its plan");
    let mut report = DiffReport {
        apply,
        plan,
        patches: None,
        binary: Vec::new(),
    };
    if patch {
        let reader = store.read()?;
        let text = |id: Option<ObjectId>| -> Result<Option<String>, FollowerError> {
            Ok(match id {
                // A large file (a chunk list) is shown as binary, never read whole.
                Some(id)
                    if reader
                        .locate(&id)?
                        .is_some_and(|l| l.kind == ObjectKind::Chunks) =>
                {
                    None
                }
                Some(id) => String::from_utf8(reader.blob(&id)?).ok(),
                None => Some(String::new()),
            })
        };
        let mut patches = Vec::new();
        for op in &report.plan.ops {
            let (file, before, after) = match op {
                Op::Put { path, id, old, .. } => (path, old.map(|o| o.1), Some(*id)),
                Op::Delete { path, old, .. } => (path, old.map(|o| o.1), None),
            };
            if before == after {
                // Put back as it was: no change of content to show.
                continue;
            }
            let (Some(a), Some(b)) = (text(before)?, text(after)?) else {
                report.binary.push(file.clone());
                continue;
            };
            let d = similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .header(&format!("a/{file}"), &format!("b/{file}"))
                .to_string();
            patches.push(Patch {
                path: file.clone(),
                patch: d,
            });
        }
        report.patches = Some(patches);
    }
    Ok(report)
}
