//! What is taken from `~/.codex`, as one declarative table.

/// Whether a rule takes or leaves a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Include,
    Exclude,
}

/// One selection rule. A pattern without `/` matches a top-level name (`*` matches any run of
/// characters); a pattern with `/` matches that exact relative path. Exclusions win. Nothing
/// below the top level is excluded by a bare name, so a `cache/` folder inside a skill is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub pattern: &'static str,
    pub action: Action,
    pub why: &'static str,
}

const fn include(pattern: &'static str, why: &'static str) -> Rule {
    Rule {
        pattern,
        action: Action::Include,
        why,
    }
}

const fn exclude(pattern: &'static str, why: &'static str) -> Rule {
    Rule {
        pattern,
        action: Action::Exclude,
        why,
    }
}

/// The selection. Top-level names not listed are left alone.
pub const RULES: &[Rule] = &[
    include("AGENTS.md", "global agent instructions"),
    include("RTK.md", "RTK instructions"),
    include("config.toml", "Codex configuration and MCP servers"),
    include("auth.json", "Codex credentials"),
    include(".credentials.json", "credentials of Codex tools"),
    include("multi-auth", "multi-account credentials"),
    include("hooks.json", "hook definitions"),
    include("hooks", "hook scripts"),
    include("prompts", "custom prompts"),
    include("rules", "command approval rules"),
    include("skills", "skills"),
    include("skill-libraries", "skill libraries"),
    include("mise.toml", "tool versions"),
    exclude(
        "skills/.system",
        "Codex installs its own bundled skills on every machine",
    ),
    exclude("sessions", "Codex runtime state"),
    exclude("archived_sessions", "Codex runtime state"),
    exclude("history*.jsonl", "per-machine history"),
    exclude("session_index.jsonl", "Codex runtime state"),
    exclude("log", "logs"),
    exclude("logs", "logs"),
    exclude("cache", "caches"),
    exclude("caches", "caches"),
    exclude("tmp", "temporary files"),
    exclude("temp", "temporary files"),
    exclude("shell_snapshots", "Codex runtime state"),
    exclude("compact-handoffs", "Codex runtime state"),
    exclude("*.sqlite*", "Codex databases"),
    exclude("installation_id", "identifies this machine"),
    exclude("version.json", "Codex version state"),
    exclude("*-locks", "lock files"),
];

/// What the table says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Taken: an include matches it, or it lies below a taken top-level name.
    Taken,
    /// Left out by this exclusion rule (exclusions win over includes).
    Excluded(&'static Rule),
    /// A top-level name no rule lists: left alone.
    Unlisted,
}

/// The verdict on a path (relative, `/`-separated), given that its parent was taken.
pub fn verdict(rel: &str) -> Verdict {
    let top_level = !rel.contains('/');
    let matches = |r: &&Rule| {
        if r.pattern.contains('/') {
            r.pattern == rel
        } else {
            top_level && glob(r.pattern, rel)
        }
    };
    if let Some(rule) = RULES
        .iter()
        .filter(|r| r.action == Action::Exclude)
        .find(|r| matches(r))
    {
        return Verdict::Excluded(rule);
    }
    let included = !top_level
        || RULES
            .iter()
            .filter(|r| r.action == Action::Include)
            .any(|r| matches(&r));
    if included {
        Verdict::Taken
    } else {
        Verdict::Unlisted
    }
}

/// Whether the path (relative, `/`-separated) is selected, given that its parent was.
pub fn is_selected(rel: &str) -> bool {
    verdict(rel) == Verdict::Taken
}

/// `*`-only glob match.
fn glob(pattern: &str, text: &str) -> bool {
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

    #[test]
    fn top_level_selection() {
        for yes in [
            "config.toml",
            "skills",
            "auth.json",
            "rules",
            ".credentials.json",
        ] {
            assert!(is_selected(yes), "{yes}");
        }
        for no in [
            "sessions",
            "history.jsonl",
            "history-2.jsonl",
            "state_5.sqlite",
            "logs_1.sqlite-wal",
            "installation_id",
            "version.json",
            "random.txt",
            "cache",
            "skills-locks",
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
                Verdict::Excluded(rule) => assert_eq!(rule.why, why, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let exclusions = RULES.iter().filter(|r| r.action == Action::Exclude).count();
        let matched: std::collections::BTreeSet<&str> = cases
            .iter()
            .filter_map(|(name, _)| match verdict(name) {
                Verdict::Excluded(rule) => Some(rule.pattern),
                _ => None,
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
    fn globs() {
        assert!(glob("history*.jsonl", "history.jsonl"));
        assert!(glob("*.sqlite*", "a.sqlite"));
        assert!(!glob("*.sqlite*", "a.sql"));
        assert!(glob("*-locks", "x-locks"));
    }
}
