//! Codex config layers other than config.toml: the custom agents in `~/.codex/agents/*.toml`
//! (a role file is a config layer: `developer_instructions`, `model`, `mcp_servers`,
//! `skills.config`, …). On a follower their master paths are mapped in the fields that hold
//! paths, exactly as config.toml's are (see [`super::config::merge_layer`]); everything else,
//! comments and layout included, stays as the master wrote it.

use super::config::{ConfigContext, merge_layer};
use super::{OverlayError, put};
use crate::object::{EntryKind, ObjectId};
use crate::roots::Root;
use crate::store::edit::lookup;
use crate::store::{ObjectSource, Writer};

/// What mapping a root's config layers found.
#[derive(Debug, Default)]
pub struct Layers {
    pub unknown_variables: Vec<String>,
    /// Layers taken as the master has them (not valid TOML), with why.
    pub warnings: Vec<String>,
}

/// Maps paths in every `*.toml` file directly in the root's config-layer folder.
pub fn merge(
    w: &mut Writer<'_>,
    root: &mut ObjectId,
    r: &Root,
    ctx: &ConfigContext,
) -> Result<Layers, OverlayError> {
    let mut out = Layers::default();
    let Some(folder) = r.merge.config_layers else {
        return Ok(out);
    };
    let dir = r.path(folder);
    let Some(entry) = lookup(w, *root, &dir)?.filter(|e| e.kind == EntryKind::Tree) else {
        return Ok(out);
    };
    let files: Vec<_> = w
        .tree(&entry.id)?
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::File || e.kind == EntryKind::Executable)
        .filter(|e| e.name.as_str().ends_with(".toml"))
        .cloned()
        .collect();
    for e in files {
        let path = dir.join(&e.name);
        let bytes = w.file(&e)?;
        let Ok(text) = String::from_utf8(bytes) else {
            out.warnings.push(format!(
                "{path}: not UTF-8 text; taken as the master has it, paths not mapped"
            ));
            continue;
        };
        match merge_layer(&text, ctx) {
            Ok(merged) => {
                out.unknown_variables.extend(merged.unknown_variables);
                if merged.text != text {
                    *root = put(w, *root, &path, (e.kind, e.private), merged.text.as_bytes())?;
                }
            }
            Err(what) => out.warnings.push(format!(
                "{path}: {what}; taken as the master has it, paths not mapped"
            )),
        }
    }
    Ok(out)
}
