//! `mcp run`, `mcp list`, `mcp repair`.

use super::output::Output;
use crate::mcp::run::{self, hydrated};
use crate::paths::Paths;
use std::fmt::Write;

pub fn run_server(paths: &Paths, name: &str) -> miette::Result<Output> {
    match run::run(paths, name)? {}
}

pub fn list(paths: &Paths) -> miette::Result<Output> {
    let applied = run::load(paths)?;
    let mut human = format!("{:<20} {:<14} {:<9} artifact\n", "name", "kind", "ready");
    let mut rows = Vec::new();
    for (name, s) in &applied.manifest.servers {
        let ready = hydrated(paths, &applied, name, s);
        writeln!(
            human,
            "{name:<20} {:<14} {:<9} {}",
            s.artifact.kind(),
            if ready { "yes" } else { "no" },
            s.note
        )
        .ok();
        rows.push(serde_json::json!({"name": name, "kind": s.artifact.kind(), "artifact": s.artifact, "hydrated": ready, "note": s.note}));
    }
    Ok(Output::new(&serde_json::json!({"servers": rows}), human))
}

pub fn repair(paths: &Paths, only: Option<&str>) -> miette::Result<Output> {
    let applied = run::load(paths)?;
    if let Some(name) = only {
        if !applied.manifest.servers.contains_key(name) {
            return Err(crate::mcp::McpError::Unknown {
                name: name.to_owned(),
            }
            .into());
        }
    }
    let mut human = String::new();
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (name, s) in applied
        .manifest
        .servers
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o == n.as_str()))
    {
        if matches!(s.artifact, crate::mcp::manifest::Artifact::Url) {
            continue;
        }
        match run::hydrate(paths, &applied, name, s) {
            Ok(()) => {
                writeln!(human, "{name}: ready").ok();
                done.push(name.clone());
            }
            Err(e) => {
                writeln!(human, "{name}: {e}").ok();
                failed.push(serde_json::json!({"name": name, "error": e.to_string()}));
            }
        }
    }
    if !failed.is_empty() {
        eprint!("{human}");
        return Err(miette::miette!(
            code = "codexport::mcp::repair",
            help = "see ~/.codexport/logs/mcp/<name>.log for each failure",
            "{} MCP server(s) could not be prepared",
            failed.len()
        ));
    }
    Ok(Output::new(&serde_json::json!({"ready": done}), human))
}
