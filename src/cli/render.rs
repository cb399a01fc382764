//! The text form of every report: what people read. Nothing here decides or does anything;
//! each `render` only lays out a value the library returned.

mod follower;
mod history;
mod master;
mod mirror;
mod status;
mod tools;

use std::fmt::Write;

/// `name         value` lines, as every report writes its facts.
pub(super) fn fact(out: &mut String, name: &str, value: impl std::fmt::Display) {
    writeln!(out, "{name:<12} {value}").ok();
}

/// The master's notice for each top-level entry of `~/.codex` it does not take and does not
/// know (`status`, `master init`, `master rebuild`).
pub(super) fn not_synced(out: &mut String, names: &[String]) {
    for name in names {
        let bare = name.trim_end_matches('/');
        writeln!(
            out,
            "not synced: {name} — add it with `include = [\"{bare}\"]` in the master's settings (~/.codexport/master.toml, or `codexport master include {bare}`) if it is part of your setup"
        )
        .ok();
    }
}

/// A path with the user's home shown as `~`.
pub(super) fn home_relative(path: &std::path::Path) -> String {
    crate::paths::tilde(path, &crate::paths::Paths::default_home())
}
