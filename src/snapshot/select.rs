//! What is taken from a root: its selection table (see [`crate::roots`]), plus the extra
//! top-level entries the master's own settings take or leave (`~/.codexport/master.toml`).

use crate::roots::{Action, Root, Rule};

/// Why a path is left out when the master's settings exclude it.
pub const EXCLUDED_BY_SETTINGS: &str =
    "excluded in the master's settings (~/.codexport/master.toml)";
/// Why an unlisted top-level name is left out.
pub const UNLISTED: &str = "not in the selection";

/// The master's extra top-level patterns (same syntax as a rule without `/`). Its excludes
/// win over everything; its includes win over the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// The selection of one root: its table and, for the Codex root, the master's extras.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub root: &'static Root,
    pub extra: Option<&'a Extra>,
}

/// What the selection says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: an include matches it, or it lies below a taken top-level name.
    Taken,
    /// Left out, for this reason: a rule of the table, or the master's settings.
    Excluded(&'static str),
    /// A top-level name no rule lists: left alone.
    Unlisted,
}

impl Selection<'_> {
    /// A root's table alone.
    pub fn of(root: &'static Root) -> Self {
        Self { root, extra: None }
    }

    /// The verdict on a path (relative to the root, `/`-separated), given that its parent
    /// was taken.
    pub fn verdict(&self, rel: &str) -> Verdict {
        let top_level = !rel.contains('/');
        if let Some(extra) = self.extra.filter(|_| top_level) {
            if extra.exclude.iter().any(|p| glob(p, rel)) {
                return Verdict::Excluded(EXCLUDED_BY_SETTINGS);
            }
            if extra.include.iter().any(|p| glob(p, rel)) {
                return Verdict::Taken;
            }
        }
        let matches = |r: &&Rule| {
            if r.pattern.contains('/') {
                r.pattern == rel
            } else {
                top_level && glob(r.pattern, rel)
            }
        };
        let rules = self.root.selection;
        if let Some(rule) = rules
            .iter()
            .filter(|r| r.action == Action::Exclude)
            .find(|r| matches(r))
        {
            return Verdict::Excluded(rule.why);
        }
        let included = !top_level
            || rules
                .iter()
                .filter(|r| r.action == Action::Include)
                .any(|r| matches(&r));
        if included {
            Verdict::Taken
        } else {
            Verdict::Unlisted
        }
    }

    /// Whether the path (relative to the root, `/`-separated) is selected, given that its
    /// parent was.
    pub fn is_selected(&self, rel: &str) -> bool {
        self.verdict(rel) == Verdict::Taken
    }

    /// Whether the path and every folder above it are selected.
    pub fn is_selected_path(&self, rel: &str) -> bool {
        let mut prefix = String::new();
        rel.split('/').filter(|c| !c.is_empty()).all(|c| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            self.is_selected(&prefix)
        })
    }
}

/// `*`-only glob match.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .any(|i| glob(rest, &text[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roots::{CODEX, ROOTS};

    fn verdict(rel: &str) -> Verdict {
        Selection::of(CODEX).verdict(rel)
    }

    fn is_selected(rel: &str) -> bool {
        Selection::of(CODEX).is_selected(rel)
    }

    #[test]
    fn top_level_selection() {
        for yes in [
            "config.toml",
            "skills",
            "auth.json",
            "rules",
            ".credentials.json",
            "agents",
        ] {
            assert!(is_selected(yes), "{yes}");
        }
        for no in [
            "sessions",
            "history.jsonl",
            "history-2.jsonl",
            "state_5.sqlite",
            "logs_1.sqlite-wal",
            "goals_1.sqlite",
            "installation_id",
            "version.json",
            "random.txt",
            "cache",
            "skills-locks",
            "thread-writer-locks",
            ".tmp",
            ".sandbox_migration",
            "plugins",
        ] {
            assert!(!is_selected(no), "{no}");
        }
    }

    #[test]
    fn exclusions_only_at_top_level() {
        assert!(is_selected("skills/foo/cache"));
        assert!(is_selected("skills/foo/logs/x.log"));
        assert!(is_selected("skills/foo/data.sqlite"));
        assert!(!is_selected("skills/.system"));
        assert!(is_selected("skills/.hidden"));
        assert!(Selection::of(CODEX).is_selected_path("skills/a/cache/x"));
        assert!(!Selection::of(CODEX).is_selected_path("skills/.system/x"));
        assert!(!Selection::of(CODEX).is_selected_path("sessions/x"));
    }

    /// Each exclusion rule, by a name only it matches and the reason it gives: removing or
    /// changing any rule fails this test (an unlisted name would read "not in the selection").
    #[test]
    fn every_exclusion_rule_leaves_out_what_it_names() {
        let cases = [
            (
                "skills/.system",
                "Codex installs its own bundled skills on every machine",
            ),
            (
                "plugins",
                "Codex's plugin cache: each follower installs the enabled plugins with `codex plugin add`",
            ),
            ("sessions", "Codex runtime state"),
            ("archived_sessions", "Codex runtime state"),
            ("history.jsonl", "per-machine history"),
            ("history-2.jsonl", "per-machine history"),
            ("session_index.jsonl", "Codex runtime state"),
            ("log", "logs"),
            ("logs", "logs"),
            ("cache", "caches"),
            ("caches", "caches"),
            ("tmp", "temporary files"),
            ("temp", "temporary files"),
            (".tmp", "Codex's marketplace snapshots and staging"),
            (".sandbox_migration", "Codex runtime state"),
            ("shell_snapshots", "Codex runtime state"),
            ("compact-handoffs", "Codex runtime state"),
            ("state_5.sqlite", "Codex databases"),
            ("logs_1.sqlite-wal", "Codex databases"),
            ("installation_id", "identifies this machine"),
            ("version.json", "Codex version state"),
            ("skills-locks", "lock files"),
        ];
        for (name, why) in cases {
            match verdict(name) {
                Verdict::Excluded(reason) => assert_eq!(reason, why, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let exclusions = CODEX
            .selection
            .iter()
            .filter(|r| r.action == Action::Exclude)
            .count();
        let matched: std::collections::BTreeSet<&str> = cases
            .iter()
            .filter_map(|(name, _)| {
                CODEX
                    .selection
                    .iter()
                    .filter(|r| r.action == Action::Exclude)
                    .find(|r| {
                        if r.pattern.contains('/') {
                            r.pattern == *name
                        } else {
                            !name.contains('/') && glob(r.pattern, name)
                        }
                    })
                    .map(|r| r.pattern)
            })
            .collect();
        assert_eq!(
            matched.len(),
            exclusions,
            "a rule without a case: {matched:?}"
        );
        assert_eq!(verdict("unlisted.txt"), Verdict::Unlisted);
        assert_eq!(verdict("skills/x/cache"), Verdict::Taken);
    }

    #[test]
    fn the_masters_settings_take_and_leave_top_level_names() {
        let extra = Extra {
            include: vec!["notes".into(), "themes-*".into(), "cache".into()],
            exclude: vec!["RTK.md".into(), "themes-old".into()],
        };
        let s = Selection {
            root: CODEX,
            extra: Some(&extra),
        };
        assert_eq!(s.verdict("notes"), Verdict::Taken);
        assert_eq!(s.verdict("themes-dark"), Verdict::Taken);
        assert_eq!(
            s.verdict("themes-old"),
            Verdict::Excluded(EXCLUDED_BY_SETTINGS)
        );
        assert_eq!(s.verdict("RTK.md"), Verdict::Excluded(EXCLUDED_BY_SETTINGS));
        // An include of the master wins over the table's exclusion.
        assert_eq!(s.verdict("cache"), Verdict::Taken);
        // Only top-level names: below a taken folder everything is taken.
        assert_eq!(s.verdict("notes/RTK.md"), Verdict::Taken);
        assert_eq!(s.verdict("other"), Verdict::Unlisted);
    }

    #[test]
    fn the_agent_skills_root_takes_everything() {
        let s = Selection::of(&ROOTS[1]);
        for name in ["review", ".hidden", "cache", "x.sqlite", "a/b/c"] {
            assert!(s.is_selected(name), "{name}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob("history*.jsonl", "history.jsonl"));
        assert!(glob("*.sqlite*", "a.sqlite"));
        assert!(!glob("*.sqlite*", "a.sql"));
        assert!(glob("*-locks", "x-locks"));
        assert!(glob("*", "anything"));
    }
}
