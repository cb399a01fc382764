//! The Codex dir (`~/.codex`, or `$CODEX_HOME`): what is taken from it and how a follower
//! merges it.

use super::{LocalSkills, MergeRules, Place, Policy, Root, Rule, exclude, include};

/// The Codex root.
pub const ROOT: Root = Root {
    name: "codex",
    place: Place::CodexHome,
    shown: "~/.codex",
    about: "Codex's own folder (`$CODEX_HOME`, or `--codex-dir`)",
    required: true,
    selection: SELECTION,
    notice_unlisted: true,
    secrets: &["auth.json", ".credentials.json", "multi-auth"],
    merge: MergeRules {
        config: Some("config.toml"),
        hooks: Some("hooks.json"),
        config_layers: Some("agents"),
        local_skills: Some(LocalSkills {
            overlay: crate::paths::state::LOCAL_SKILLS,
            into: "skills",
        }),
        overrides: Some(crate::paths::state::OVERRIDES),
        policies: &[("rules/default.rules", Policy::AppendLocal)],
    },
};

/// The selection. Top-level names not listed are left alone, and named by the master.
pub const SELECTION: &[Rule] = &[
    include("AGENTS.md", "global agent instructions"),
    include("RTK.md", "RTK instructions"),
    include(
        "config.toml",
        "Codex configuration, MCP servers, plugins and marketplaces",
    ),
    include("auth.json", "Codex credentials"),
    include(".credentials.json", "credentials of Codex tools"),
    include("multi-auth", "multi-account credentials"),
    include("hooks.json", "hook definitions"),
    include("hooks", "hook scripts"),
    include("prompts", "custom prompts"),
    include("rules", "command approval rules"),
    include("skills", "skills"),
    include("skill-libraries", "skill libraries"),
    include("agents", "custom agents (`agents/<name>.toml`)"),
    include("mise.toml", "tool versions"),
    exclude(
        "skills/.system",
        "Codex installs its own bundled skills on every machine",
    ),
    exclude(
        "plugins",
        "Codex's plugin cache: each follower installs the enabled plugins with `codex plugin add`",
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
    exclude(".tmp", "Codex's marketplace snapshots and staging"),
    exclude(".sandbox_migration", "Codex runtime state"),
    exclude("shell_snapshots", "Codex runtime state"),
    exclude("compact-handoffs", "Codex runtime state"),
    exclude("*.sqlite*", "Codex databases"),
    exclude("installation_id", "identifies this machine"),
    exclude("version.json", "Codex version state"),
    exclude("*-locks", "lock files"),
];
