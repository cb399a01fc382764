//! `master init`, `master rebuild`, `master link`, `master followers`.

use super::super::output::{Render, bytes, time};
use super::{fact, not_synced};
use crate::master::InitReport;
use crate::master::link::{FollowersReport, LinkReport, RevokeReport};
use crate::snapshot::SnapshotReport;
use std::fmt::Write;

fn short(id: Option<crate::object::ObjectId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.short())
}

impl Render for InitReport {
    fn render(&self) -> String {
        let s = &self.snapshot;
        let mut out = String::new();
        fact(&mut out, "role", "master");
        fact(&mut out, "codex dir", super::home_relative(&self.codex_dir));
        fact(&mut out, "fingerprint", &self.fingerprint);
        fact(
            &mut out,
            "revision",
            format!("{} ({})", s.number.unwrap_or(0), short(s.revision)),
        );
        fact(
            &mut out,
            "files",
            format!("{} ({})", s.files, bytes(s.bytes)),
        );
        warnings(&mut out, s);
        out
    }
}

impl Render for SnapshotReport {
    fn render(&self) -> String {
        let mut out = String::new();
        let id = short(self.revision);
        if self.created {
            let c = self.changes;
            writeln!(
                out,
                "new revision {} ({id}): +{} ~{} -{}, {} files, {}",
                self.number.unwrap_or(0),
                c.added,
                c.modified,
                c.removed,
                self.files,
                bytes(self.bytes)
            )
            .ok();
        } else {
            writeln!(
                out,
                "no change: revision {} ({id}) is current",
                self.number.unwrap_or(0)
            )
            .ok();
        }
        warnings(&mut out, self);
        out
    }
}

/// Warnings go to stderr, so scripts reading stdout are not disturbed; followed links are
/// named once, with what became of them, and so is every entry of `~/.codex` left unknown.
fn warnings(out: &mut String, s: &SnapshotReport) {
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    for f in &s.followed {
        let shown = crate::roots::by_name(f.root).map_or(f.root, |r| r.shown);
        writeln!(
            out,
            "followed     {} -> {} (a link out of {shown}: its content travels as files)",
            f.name,
            super::home_relative(&f.target)
        )
        .ok();
    }
    not_synced(out, &s.not_synced);
}

impl Render for crate::master::SettingsChange {
    fn render(&self) -> String {
        let e = &self.settings;
        let mut out = String::new();
        let list = match e.list {
            crate::master::settings::List::Include => "include",
            crate::master::settings::List::Exclude => "exclude",
        };
        if e.added.is_empty() {
            writeln!(out, "{list}: nothing new (already listed)").ok();
        } else {
            writeln!(out, "{list}: added {}", e.added.join(", ")).ok();
        }
        if !e.moved.is_empty() {
            writeln!(out, "taken off the other list: {}", e.moved.join(", ")).ok();
        }
        out.push_str(&self.snapshot.render());
        out
    }
}

impl Render for LinkReport {
    fn render(&self) -> String {
        format!(
            "{link}\n\nOn the follower:\n  codexport follower join \"{link}\"\nor:\n  {fallback}\n\nThe token works once and expires in {h} h.\n",
            link = self.link,
            fallback = self.fallback,
            h = self.expires_hours
        )
    }
}

impl Render for FollowersReport {
    fn render(&self) -> String {
        if self.followers.is_empty() {
            return "no followers yet; create a join link with `codexport master link`\n"
                .to_owned();
        }
        let mut out = format!(
            "{:<24} {:<19} {:<19} {:>8}  state\n",
            "name", "enrolled (UTC)", "last seen (UTC)", "revision"
        );
        for f in &self.followers {
            let seen = f.last_seen_ms.map_or_else(|| "never".to_owned(), time);
            let rev = f
                .last_revision
                .map_or_else(|| "-".to_owned(), |n| n.to_string());
            let state = if f.revoked { "revoked" } else { "active" };
            writeln!(
                out,
                "{:<24} {:<19} {:<19} {:>8}  {state}",
                f.name,
                time(f.enrolled_ms),
                seen,
                rev
            )
            .ok();
        }
        out
    }
}

impl Render for RevokeReport {
    fn render(&self) -> String {
        format!(
            "revoked {}: its credential is refused from now on\n",
            self.revoked
        )
    }
}
