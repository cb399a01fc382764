//! `follower join`, `sync`, `apply`, `diff`, `rollback`.

use super::super::output::{Render, bytes};
use super::fact;
use crate::checkout::plan::{Op, Plan, Why};
use crate::follower::apply::{ApplyOutcome, ApplyReport};
use crate::follower::diff::DiffReport;
use crate::follower::join::JoinReport;
use crate::follower::rollback::RollbackReport;
use crate::follower::{SyncOutcome, SyncReport};
use crate::object::EntryKind;
use std::fmt::Write;

impl Render for ApplyReport {
    fn render(&self) -> String {
        let mut s = String::new();
        if self.recovered {
            s.push_str("finished an apply that was interrupted\n");
        }
        let what = match self.result {
            ApplyOutcome::Applied => "applied",
            ApplyOutcome::Unchanged => "unchanged",
            ApplyOutcome::Planned => "would apply",
        };
        write!(
            s,
            "{what}: revision {} ({}): +{} ~{} -{}",
            self.number,
            self.revision.short(),
            self.added,
            self.updated,
            self.deleted
        )
        .ok();
        if self.restored > 0 {
            write!(s, ", {} restored", self.restored).ok();
        }
        s.push('\n');
        for d in &self.drift {
            writeln!(s, "  local edit backed up: {d}").ok();
        }
        if let Some(dir) = &self.backup_dir {
            writeln!(s, "  backups in {dir}").ok();
        }
        if !self.unknown_variables.is_empty() {
            writeln!(s, "  unknown ${{variables}} left as written: {} (define them under [pathVariables] in ~/.codexport/local.toml)", self.unknown_variables.join(", ")).ok();
        }
        for w in &self.warnings {
            writeln!(s, "  warning: {w}").ok();
        }
        if self.result == ApplyOutcome::Planned {
            if let Some(plan) = &self.plan {
                s.push_str(&plan_lines(plan));
            }
        }
        s
    }
}

/// One line per planned change: `+` added, `~` updated, `-` deleted.
/// One line per planned change: `+` added, `~` updated, `!` restored, `-` deleted; a
/// trailing note for what is backed up first.
fn plan_lines(plan: &Plan) -> String {
    let mut s = String::new();
    for op in &plan.ops {
        let (sign, path, kind) = match op {
            Op::Put {
                path,
                kind,
                why: Why::Added,
                ..
            } => ("+", path, Some(*kind)),
            Op::Put {
                path,
                kind,
                why: Why::Updated,
                ..
            } => ("~", path, Some(*kind)),
            Op::Put {
                path,
                kind,
                why: Why::Restored,
                ..
            } => ("!", path, Some(*kind)),
            Op::Delete { path, old, dir, .. } => (
                "-",
                path,
                if *dir {
                    Some(EntryKind::Tree)
                } else {
                    old.map(|o| o.0)
                },
            ),
        };
        let kind = match kind {
            None | Some(EntryKind::File) => String::new(),
            Some(k) => format!(" ({})", k.as_str()),
        };
        let backup = if op.backs_up() {
            "  (backed up first)"
        } else {
            ""
        };
        writeln!(s, "  {sign} {path}{kind}{backup}").ok();
    }
    s
}

impl Render for DiffReport {
    fn render(&self) -> String {
        let mut s = self.apply.render();
        if self.apply.plan.is_none() {
            s.push_str(&plan_lines(&self.plan));
        }
        for p in self.patches.iter().flatten() {
            s.push_str(&p.patch);
        }
        for path in &self.binary {
            writeln!(s, "Binary file {path} differs").ok();
        }
        s
    }
}

impl Render for RollbackReport {
    fn render(&self) -> String {
        let mut s = self.apply.render();
        if let Some(n) = self.held_at {
            writeln!(
                s,
                "held at revision {n}: `codexport sync --apply` keeps it until the master publishes a newer revision; `codexport apply` returns to the newest fetched one now"
            )
            .ok();
        }
        s
    }
}

impl Render for SyncReport {
    fn render(&self) -> String {
        let mut s = match self.result {
            SyncOutcome::Current => {
                format!(
                    "current: revision {} ({})\n",
                    self.number,
                    self.revision.short()
                )
            }
            SyncOutcome::Fetched => format!(
                "fetched: revision {} ({}): {} objects, {} ({} on the wire) in {:.0} ms\n",
                self.number,
                self.revision.short(),
                self.objects,
                bytes(self.object_bytes),
                bytes(self.wire_bytes),
                self.elapsed_ms
            ),
        };
        if self.source != crate::follower::sync::MASTER {
            writeln!(s, "from mirror: {}", self.source).ok();
        }
        if let Some(e) = &self.mirrors_error {
            writeln!(s, "mirror list not updated (retried next sync): {e}").ok();
        }
        if let Some(a) = &self.apply {
            s.push_str(&a.render());
        }
        if let Some(held) = self.held_at {
            writeln!(
                s,
                "held back: a rollback keeps this follower below revision {}; run `codexport apply` to return to the newest revision now",
                held + 1
            )
            .ok();
        }
        s
    }
}

impl Render for JoinReport {
    fn render(&self) -> String {
        let mut s = String::new();
        fact(&mut s, "role", "follower");
        fact(&mut s, "name", &self.name);
        fact(&mut s, "master", &self.master_url);
        fact(&mut s, "fingerprint", &self.fingerprint);
        let what = match self.sync.result {
            SyncOutcome::Current => "current",
            SyncOutcome::Fetched => "fetched",
        };
        fact(
            &mut s,
            "revision",
            format!(
                "{} {what} ({} objects, {})",
                self.sync.number,
                self.sync.objects,
                bytes(self.sync.object_bytes)
            ),
        );
        if let Some(a) = &self.sync.apply {
            s.push_str(&a.render());
        }
        s
    }
}

impl Render for crate::follower::verify::VerifyReport {
    fn render(&self) -> String {
        if self.equal {
            return format!(
                "ok: every root (~/.codex, ~/.agents/skills) holds the merged tree of revision {} ({})\n",
                self.number,
                self.merged.short()
            );
        }
        let mut s = format!(
            "{} path(s) differ from the merged tree of revision {} ({}):\n",
            self.differences.len(),
            self.number,
            self.merged.short()
        );
        for d in &self.differences {
            writeln!(s, "  {}  {}", d.path, d.what).ok();
        }
        s.push_str("run `codexport apply` to repair them (local edits are backed up first)\n");
        s
    }
}
