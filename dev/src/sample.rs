//! A small but realistic sample `~/.codex`, for the demo and for first-time users to try
//! codexport on a temporary home.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// Writes the sample codex dir for a home at `home` (paths inside config.toml point there).
pub fn write_sample_codex(home: &Path) -> io::Result<()> {
    let codex = home.join(".codex");
    let file = |rel: &str, text: &str| -> io::Result<()> {
        let p = codex.join(rel);
        fs::create_dir_all(p.parent().expect("sample paths have a parent"))?;
        fs::write(p, text)
    };
    file(
        "config.toml",
        &format!(
            r#"# Codex configuration of the master
model = "gpt-5-codex"
approval_policy = "on-request"

[projects."{home}/src/app"]
trust_level = "trusted"

# A command MCP server
[mcp_servers.docs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "{home}/docs"]
startup_timeout_sec = 20

[mcp_servers.search]
url = "http://127.0.0.1:8811/mcp"
"#,
            home = home.display()
        ),
    )?;
    file(
        "AGENTS.md",
        "# Global instructions\n\nPrefer small, reviewed changes.\n",
    )?;
    file(
        "auth.json",
        "{\"auth_mode\":\"apikey\",\"OPENAI_API_KEY\":\"sk-demo-not-a-real-key\"}\n",
    )?;
    file(
        "prompts/review.md",
        "Review the diff for correctness first, style second.\n",
    )?;
    file(
        "rules/default.rules",
        "prefix_rule(pattern=[\"git\", \"status\"], decision=\"allow\")\n",
    )?;
    file(
        "skills/release-notes/SKILL.md",
        "---\nname: release-notes\ndescription: Draft release notes from merged changes.\n---\n\nRead the changelog, then summarise.\n",
    )?;
    file(
        "skills/release-notes/scripts/collect.sh",
        "#!/bin/sh\ngit log --oneline \"$1..HEAD\"\n",
    )?;
    fs::set_permissions(
        codex.join("skills/release-notes/scripts/collect.sh"),
        fs::Permissions::from_mode(0o755),
    )?;
    file(
        "skills/release-notes/cache/notes.md",
        "A folder named cache inside a skill is kept.\n",
    )?;
    file(
        "skills/résumé-writer/SKILL.md",
        "---\nname: résumé-writer\ndescription: Unicode names survive.\n---\n",
    )?;
    let link = codex.join("skills/latest");
    if fs::symlink_metadata(&link).is_err() {
        symlink("release-notes", link)?;
    }
    // Runtime state that must never be exported.
    file(
        "sessions/2026/11/25/rollout.jsonl",
        "{\"session\":\"local only\"}\n",
    )?;
    file("history.jsonl", "{\"text\":\"local history\"}\n")?;
    file("state_5.sqlite", "not exported")?;
    file("installation_id", "3f1c0000-demo\n")?;
    Ok(())
}
