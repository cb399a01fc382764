//! `status`.

use super::super::output::{Render, bytes};
use super::{fact, home_relative, not_synced};
use crate::follower::status::FollowerStatus;
use crate::status::StatusReport;

impl Render for StatusReport {
    fn render(&self) -> String {
        let mut out = String::new();
        let role = match self.role {
            crate::paths::Role::Master => "master",
            crate::paths::Role::Follower => "follower",
            crate::paths::Role::None => "none",
        };
        fact(&mut out, "role", role);
        fact(&mut out, "codex dir", home_relative(&self.codex_dir));
        fact(&mut out, "state dir", home_relative(&self.state_dir));
        if let Some(fp) = &self.fingerprint {
            fact(&mut out, "fingerprint", fp);
        }
        if self.follower.as_ref().is_some_and(|f| f.recovered) {
            fact(
                &mut out,
                "recovered",
                "finished an apply that was interrupted",
            );
        }
        if let Some(e) = &self.revision {
            fact(
                &mut out,
                "revision",
                format!(
                    "{} ({}) at {} UTC, {} files, {}",
                    e.number,
                    e.id.short(),
                    e.time,
                    e.files,
                    bytes(e.bytes)
                ),
            );
        }
        if let Some(t) = &self.head_expires {
            fact(&mut out, "head", format!("signed, expires {t} UTC"));
        }
        for m in &self.mirrors {
            let what = match (m.published, &m.expires) {
                (Some(n), Some(e)) => format!("revision {n}, head expires {e} UTC"),
                _ => "nothing published yet (`codexport master publish`)".to_owned(),
            };
            fact(
                &mut out,
                "mirror",
                format!("{} ({}): {what}", m.name, m.url),
            );
        }
        if let Some(f) = &self.follower {
            follower(&mut out, f);
        }
        if let Some(s) = &self.store {
            let ratio = if s.content_bytes == 0 {
                0.0
            } else {
                s.disk_bytes as f64 / s.content_bytes as f64
            };
            fact(
                &mut out,
                "store",
                format!(
                    "{} objects, {} content, {} on disk ({ratio:.2}×)",
                    s.objects,
                    bytes(s.content_bytes),
                    bytes(s.disk_bytes)
                ),
            );
        }
        not_synced(&mut out, &self.not_synced);
        out
    }
}

fn follower(out: &mut String, f: &FollowerStatus) {
    fact(out, "name", &f.name);
    fact(out, "master", &f.master_url);
    fact(out, "fingerprint", &f.fingerprint);
    match &f.applied {
        Some(a) => {
            fact(
                out,
                "applied",
                format!("revision {} at {} UTC ({})", a.number, a.time, a.kind),
            );
            match (&f.drift, &f.drift_error) {
                (Some(d), _) if d.is_empty() => {
                    fact(out, "drift", "none: every root holds the merged tree");
                }
                (Some(d), _) => {
                    let list: Vec<String> = d
                        .iter()
                        .map(|d| format!("{} ({})", d.path, d.what))
                        .collect();
                    fact(
                        out,
                        "drift",
                        format!(
                            "{} path(s) differ from the merged tree: {}; `codexport apply` (or `sync --apply`) repairs them, backing up local edits first",
                            d.len(),
                            list.join(", ")
                        ),
                    );
                }
                (None, why) => fact(
                    out,
                    "drift",
                    format!("not checked: {}", why.as_deref().unwrap_or("")),
                ),
            }
        }
        None => fact(
            out,
            "applied",
            "nothing yet (run `codexport apply` or `codexport sync --apply`)",
        ),
    }
    if !f.unknown_variables.is_empty() {
        fact(
            out,
            "variables",
            format!(
                "undefined in config.toml: {} (add them under [pathVariables] in ~/.codexport/local.toml)",
                f.unknown_variables.join(", ")
            ),
        );
    }
    for p in &f.plugins {
        let why = match &p.state {
            crate::follower::plugins::State::Failed { error, .. } => {
                format!("could not be installed: {error}")
            }
            _ => "not installed yet (`codexport plugins repair` installs it now)".to_owned(),
        };
        fact(out, "plugin", format!("{} {why}", p.id));
    }
    if let Some(n) = f.held_below {
        fact(
            out,
            "held",
            format!(
                "by a rollback until the master publishes revision {n} (`codexport apply` releases it)"
            ),
        );
    }
    if let Some(last) = &f.last_sync {
        let what = match &last.error {
            Some(e) => format!("error: {e}"),
            None => last.result.as_str().to_owned(),
        };
        fact(
            out,
            "last sync",
            format!("{} UTC, {what}", crate::time::format_ms(last.time_ms)),
        );
    }
    sources(out, f);
}

/// What the master answered, where the fetched revision came from, and what each mirror
/// answered.
fn sources(out: &mut String, f: &FollowerStatus) {
    let r = &f.remote;
    if r.reachable {
        let pending = if r.pending_update == Some(true) {
            " (update pending: run `codexport sync`)"
        } else {
            " (up to date)"
        };
        fact(
            out,
            "remote",
            format!("reachable, revision {}{pending}", r.number.unwrap_or(0)),
        );
    } else {
        fact(
            out,
            "remote",
            format!("not reachable: {}", r.error.as_deref().unwrap_or("")),
        );
    }
    if let Some(source) = &f.fetched_from {
        fact(out, "fetched from", source);
    }
    for m in &f.mirrors {
        let what = if m.reachable {
            format!(
                "revision {}, head valid until {} UTC",
                m.number.unwrap_or(0),
                crate::time::Utc::from_secs(m.expires_at.unwrap_or(0))
            )
        } else {
            format!("not reachable: {}", m.error.as_deref().unwrap_or(""))
        };
        fact(out, "mirror", format!("{}: {what}", m.url));
    }
}
