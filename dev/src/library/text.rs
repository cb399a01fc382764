//! The generated files' contents: Markdown, shell, Python, JSON and TOML made of words from
//! a fixed list. Draws from `rng.rs`, which never looks back here.

use super::rng::Rng;

pub(super) enum Content {
    Config,
    Agents,
    Prompt { title: String },
    Skill { name: String, title: String },
    Markdown { title: String },
    Shell,
    Python,
    Json,
}

impl Content {
    pub(super) fn mode(&self) -> u32 {
        match self {
            Content::Shell | Content::Python => 0o755,
            _ => 0o644,
        }
    }

    pub(super) fn render(&self, rng: &mut Rng, size: usize, out: &mut String) {
        match self {
            Content::Config => config_toml(rng, size, out),
            Content::Agents => markdown(rng, size, "Global agent instructions", out),
            Content::Prompt { title } => {
                out.push_str("---\ndescription: ");
                sentence(rng, out);
                out.push_str("\nargument-hint: [");
                out.push_str(word(rng));
                out.push_str("]\n---\n\n");
                markdown(rng, size, title, out);
            }
            Content::Skill { name, title } => {
                out.push_str("---\nname: ");
                out.push_str(name);
                out.push_str("\ndescription: Use when the user asks to ");
                words(rng, 8, 18, out);
                out.push_str(". ");
                sentence(rng, out);
                out.push_str("\n---\n\n");
                markdown(rng, size, title, out);
            }
            Content::Markdown { title } => markdown(rng, size, title, out),
            Content::Shell => shell(rng, size, out),
            Content::Python => python(rng, size, out),
            Content::Json => json(rng, size, out),
        }
    }
}

fn markdown(rng: &mut Rng, size: usize, title: &str, out: &mut String) {
    out.push_str("# ");
    out.push_str(title);
    out.push_str("\n\n");
    while out.len() < size {
        match rng.below(10) {
            0..4 => {
                for _ in 0..2 + rng.below(4) {
                    sentence(rng, out);
                    out.push(' ');
                }
                out.pop();
                out.push_str("\n\n");
            }
            4..6 => {
                for _ in 0..3 + rng.below(4) {
                    out.push_str("- ");
                    words(rng, 3, 12, out);
                    out.push('\n');
                }
                out.push('\n');
            }
            6 => {
                out.push_str("## ");
                out.push_str(&capitalized(word(rng)));
                out.push(' ');
                words(rng, 1, 4, out);
                out.push_str("\n\n");
            }
            7 => {
                for k in 1..=2 + rng.below(4) {
                    out.push_str(&format!("{k}. "));
                    words(rng, 4, 14, out);
                    out.push_str(".\n");
                }
                out.push('\n');
            }
            _ => {
                out.push_str("```bash\n");
                for _ in 0..1 + rng.below(4) {
                    command(rng, out);
                }
                out.push_str("```\n\n");
            }
        }
    }
}

fn shell(rng: &mut Rng, size: usize, out: &mut String) {
    out.push_str("#!/usr/bin/env bash\n# ");
    sentence(rng, out);
    out.push_str("\nset -euo pipefail\n\n");
    while out.len() < size {
        let name = format!("{}_{}", word(rng), word(rng));
        out.push_str("# ");
        sentence(rng, out);
        out.push('\n');
        out.push_str(&name);
        out.push_str("() {\n  local target=\"${1:-");
        out.push_str(word(rng));
        out.push_str("}\"\n");
        for _ in 0..1 + rng.below(5) {
            out.push_str("  ");
            command(rng, out);
        }
        out.push_str("  echo \"");
        words(rng, 2, 8, out);
        out.push_str(": $target\"\n}\n\n");
    }
    out.push_str("main \"$@\"\n");
}

fn python(rng: &mut Rng, size: usize, out: &mut String) {
    out.push_str("#!/usr/bin/env python3\n\"\"\"");
    sentence(rng, out);
    out.push_str("\"\"\"\n\nimport json\nimport sys\nfrom pathlib import Path\n\n");
    while out.len() < size {
        let (a, b) = (word(rng), word(rng));
        out.push_str(&format!(
            "\ndef {a}_{b}(path: Path, limit: int = {}) -> dict:\n",
            rng.below(100)
        ));
        out.push_str("    \"\"\"");
        sentence(rng, out);
        out.push_str("\"\"\"\n    result = {}\n");
        for _ in 0..1 + rng.below(4) {
            let key = word(rng);
            out.push_str(&format!("    result[\"{key}\"] = \""));
            words(rng, 1, 6, out);
            out.push_str("\"\n");
        }
        out.push_str("    return result\n\n");
    }
    out.push_str("\nif __name__ == \"__main__\":\n    json.dump({}, sys.stdout)\n");
}

fn json(rng: &mut Rng, size: usize, out: &mut String) {
    out.push_str("{\n  \"name\": \"");
    out.push_str(word(rng));
    out.push_str("\",\n  \"examples\": [\n");
    let mut first = true;
    while out.len() < size {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str("    {\"input\": \"");
        words(rng, 3, 12, out);
        out.push_str("\", \"output\": \"");
        words(rng, 5, 20, out);
        out.push_str(&format!("\", \"score\": {}}}", rng.below(100)));
    }
    out.push_str("\n  ]\n}\n");
}

fn config_toml(rng: &mut Rng, size: usize, out: &mut String) {
    out.push_str(concat!(
        "model = \"gpt-5-codex\"\n",
        "model_reasoning_effort = \"high\"\n",
        "approval_policy = \"on-request\"\n",
        "sandbox_mode = \"workspace-write\"\n\n",
        "[features]\nweb_search_request = true\n\n",
    ));
    // The counter keeps table names unique, so the file stays valid TOML.
    for k in 1.. {
        if out.len() >= size {
            break;
        }
        let (a, b) = (word(rng), word(rng));
        if rng.below(2) == 0 {
            out.push_str(&format!(
                "[mcp_servers.{a}-{b}-{k}]\ncommand = \"npx\"\nargs = [\"-y\", \"@{a}/{b}-mcp\"]\n\n"
            ));
        } else {
            out.push_str(&format!(
                "[projects.\"/home/dev/src/{a}-{b}-{k}\"]\ntrust_level = \"trusted\"\n\n"
            ));
        }
    }
}

fn command(rng: &mut Rng, out: &mut String) {
    const TOOLS: [&str; 10] = [
        "git", "rg", "jq", "python3", "npm", "cargo", "curl", "sed", "make", "uv",
    ];
    out.push_str(rng.pick(&TOOLS));
    for _ in 0..1 + rng.below(4) {
        out.push(' ');
        if rng.below(3) == 0 {
            out.push_str("--");
        }
        out.push_str(word(rng));
    }
    out.push('\n');
}

/// A capitalised sentence of 6 to 16 words ending in a full stop.
fn sentence(rng: &mut Rng, out: &mut String) {
    let start = out.len();
    words(rng, 6, 16, out);
    out[start..start + 1].make_ascii_uppercase();
    out.push('.');
}

/// `min..max` space-separated words.
fn words(rng: &mut Rng, min: u64, max: u64, out: &mut String) {
    for i in 0..min + rng.below(max - min) {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word(rng));
    }
}

/// One word of [`WORDS`].
pub(super) fn word(rng: &mut Rng) -> &'static str {
    rng.pick(WORDS)
}

pub(super) fn capitalized(word: &str) -> String {
    let mut s = word.to_owned();
    s[..1].make_ascii_uppercase();
    s
}

/// Lower-case ASCII words of the kind found in skill documentation.
const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "for",
    "with",
    "when",
    "if",
    "then",
    "use",
    "run",
    "file",
    "files",
    "skill",
    "agent",
    "codex",
    "prompt",
    "model",
    "context",
    "tool",
    "tools",
    "command",
    "script",
    "check",
    "test",
    "tests",
    "build",
    "release",
    "deploy",
    "review",
    "branch",
    "commit",
    "diff",
    "patch",
    "merge",
    "repository",
    "issue",
    "pull",
    "request",
    "comment",
    "summary",
    "report",
    "table",
    "chart",
    "data",
    "schema",
    "query",
    "database",
    "index",
    "cache",
    "config",
    "setting",
    "option",
    "flag",
    "value",
    "default",
    "path",
    "folder",
    "output",
    "input",
    "format",
    "json",
    "yaml",
    "markdown",
    "toml",
    "csv",
    "pdf",
    "document",
    "section",
    "heading",
    "list",
    "example",
    "template",
    "pattern",
    "rule",
    "policy",
    "sandbox",
    "network",
    "server",
    "client",
    "api",
    "endpoint",
    "token",
    "secret",
    "key",
    "auth",
    "login",
    "user",
    "account",
    "project",
    "workspace",
    "terminal",
    "shell",
    "python",
    "node",
    "rust",
    "cargo",
    "npm",
    "package",
    "dependency",
    "version",
    "upgrade",
    "migration",
    "error",
    "warning",
    "failure",
    "retry",
    "timeout",
    "log",
    "trace",
    "debug",
    "profile",
    "benchmark",
    "latency",
    "memory",
    "thread",
    "async",
    "queue",
    "worker",
    "job",
    "task",
    "step",
    "plan",
    "goal",
    "note",
    "draft",
    "final",
    "answer",
    "question",
    "search",
    "fetch",
    "download",
    "upload",
    "sync",
    "copy",
    "move",
    "rename",
    "delete",
    "create",
    "update",
    "read",
    "write",
    "open",
    "close",
    "parse",
    "render",
    "validate",
    "verify",
    "sign",
    "hash",
    "store",
    "snapshot",
    "revision",
    "history",
    "change",
    "changes",
    "status",
    "state",
    "event",
    "hook",
    "trigger",
    "notify",
    "email",
    "slack",
    "calendar",
    "meeting",
    "invoice",
    "budget",
    "sales",
    "customer",
    "support",
    "ticket",
    "incident",
    "alert",
    "metric",
    "dashboard",
    "design",
    "figma",
    "image",
    "screenshot",
    "browser",
    "page",
    "form",
    "button",
    "layout",
    "style",
    "theme",
    "color",
    "font",
    "component",
    "module",
    "function",
    "class",
    "method",
    "type",
    "interface",
    "struct",
    "field",
    "argument",
    "return",
    "result",
    "always",
    "never",
    "only",
    "first",
    "next",
    "last",
    "before",
    "after",
    "small",
    "large",
    "fast",
    "slow",
    "safe",
    "clean",
    "stale",
    "fresh",
    "local",
    "remote",
    "shared",
    "private",
    "public",
    "careful",
    "exact",
    "short",
    "clear",
    "concise",
    "detailed",
    "is",
    "are",
    "be",
    "should",
    "must",
    "can",
    "may",
    "each",
    "every",
    "all",
    "this",
    "that",
    "from",
    "into",
    "on",
    "by",
    "or",
    "not",
    "no",
    "it",
    "its",
];
