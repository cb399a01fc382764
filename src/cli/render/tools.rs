//! `hook install|uninstall`, `mcp list|repair`, `plugins list|install|repair`,
//! `master service …`.

use super::super::output::Render;
use super::{fact, home_relative};
use crate::hook::{InstallReport, Trust, UninstallReport};
use crate::mcp::repair::{McpList, RepairReport};
use crate::service::{ServiceReport, Status, Step};
use std::fmt::Write;

impl Render for InstallReport {
    fn render(&self) -> String {
        let mut out = String::new();
        fact(
            &mut out,
            "installed",
            format!(
                "codexport's SessionStart hook in {}",
                home_relative(std::path::Path::new(&self.hooks_json))
            ),
        );
        fact(&mut out, "command", &self.entry.command);
        fact(
            &mut out,
            "timeout",
            format!(
                "{} ms (Codex allows {} s)",
                self.timeout_ms, self.entry.timeout
            ),
        );
        if self.trust == Trust::Trusted {
            fact(&mut out, "trusted", self.trust_key.as_deref().unwrap_or(""));
        }
        out
    }
}

impl Render for UninstallReport {
    fn render(&self) -> String {
        if self.removed == 0 && !self.hook_toml_removed {
            "codexport's hook was not installed; nothing changed\n".to_owned()
        } else {
            format!(
                "removed codexport's hook ({} handler(s)); other hooks are untouched\n",
                self.removed
            )
        }
    }
}

impl Render for McpList {
    fn render(&self) -> String {
        let mut out = format!("{:<20} {:<14} {:<9} artifact\n", "name", "kind", "ready");
        for s in &self.servers {
            writeln!(
                out,
                "{:<20} {:<14} {:<9} {}",
                s.name,
                s.kind,
                if s.hydrated { "yes" } else { "no" },
                s.note
            )
            .ok();
        }
        out
    }
}

impl Render for RepairReport {
    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.ready {
            writeln!(out, "{name}: ready").ok();
        }
        for f in &self.failed {
            writeln!(out, "{}: {}", f.name, f.error).ok();
        }
        out
    }
}

impl Render for ServiceReport {
    fn render(&self) -> String {
        let mut out = String::new();
        if self.dry_run {
            writeln!(out, "dry run: nothing was changed. The steps:").ok();
            for step in &self.plan.steps {
                writeln!(out, "  {}", crate::service::describe(step)).ok();
                if let Step::Write { content, .. } = step {
                    for line in content.lines() {
                        writeln!(out, "    | {line}").ok();
                    }
                }
            }
        } else {
            let what = match self.action {
                crate::service::ServiceAction::Install => "installed and started",
                crate::service::ServiceAction::Uninstall => "stopped and removed",
            };
            writeln!(out, "service {what}:").ok();
            for d in &self.done {
                writeln!(out, "  {d}").ok();
            }
        }
        for note in &self.plan.notes {
            writeln!(out, "note: {note}").ok();
        }
        out
    }
}

impl Render for Status {
    fn render(&self) -> String {
        format!(
            "service      {}\ninstalled    {}\nstate        {}\n",
            self.location,
            if self.installed { "yes" } else { "no" },
            self.state
        )
    }
}

impl Render for crate::follower::plugins::PluginsReport {
    fn render(&self) -> String {
        use crate::follower::plugins::State;
        let mut out = String::new();
        if self.plugins.is_empty() {
            return "no plugin is enabled in the applied config.toml\n".to_owned();
        }
        for p in &self.plugins {
            let state = match &p.state {
                State::Installed if self.installed.contains(&p.id) => "installed now".to_owned(),
                State::Installed => "installed".to_owned(),
                State::Missing => {
                    "not installed yet (`codexport plugins install` installs it)".to_owned()
                }
                State::Failed { error, .. } => format!(
                    "could not be installed: {error} (log: {})",
                    self.logs.join(format!("{}.log", p.id)).display()
                ),
            };
            writeln!(out, "plugin       {} {state}", p.id).ok();
        }
        out
    }
}
