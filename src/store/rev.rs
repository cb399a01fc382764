//! `<rev>` arguments: a revision number, an id prefix, or `HEAD`, resolved against the
//! revision log.

use super::{LogEntry, StoreError};
use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum RevError {
    #[error("no revision matches {0:?}")]
    #[diagnostic(
        code(codexport::usage::unknown_rev),
        help("use a number or an id prefix from `codexport log`, or HEAD")
    )]
    Unknown(String),
    #[error("{spec:?} matches {count} revisions")]
    #[diagnostic(
        code(codexport::usage::ambiguous_rev),
        help("give more hex digits of the id")
    )]
    Ambiguous { spec: String, count: usize },
    #[error("there are no revisions yet")]
    #[diagnostic(
        code(codexport::usage::no_revisions),
        help("run `codexport master init` (master) or `codexport sync` (follower) first")
    )]
    Empty,
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// Finds the log entry `spec` names.
pub fn resolve(log: &[LogEntry], spec: &str) -> Result<LogEntry, RevError> {
    let spec = spec.trim();
    if log.is_empty() {
        return Err(RevError::Empty);
    }
    if spec.eq_ignore_ascii_case("HEAD") {
        return Ok(log.last().expect("checked non-empty").clone());
    }
    if let Some(n) = spec
        .strip_prefix('#')
        .unwrap_or(spec)
        .parse::<u64>()
        .ok()
        .filter(|_| spec.len() < 12)
    {
        if let Some(e) = log.iter().find(|e| e.number == n) {
            return Ok(e.clone());
        }
    }
    if spec.len() >= 4 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
        let hits: Vec<&LogEntry> = log.iter().filter(|e| e.id.has_prefix(spec)).collect();
        match hits.len() {
            1 => return Ok(hits[0].clone()),
            0 => {}
            count => {
                return Err(RevError::Ambiguous {
                    spec: spec.to_owned(),
                    count,
                });
            }
        }
    }
    Err(RevError::Unknown(spec.to_owned()))
}
