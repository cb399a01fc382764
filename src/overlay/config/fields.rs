//! The fields of a Codex config layer that hold paths, and their mapping to this machine.

use super::{ConfigContext, localise_value};
use std::collections::{BTreeMap, BTreeSet};
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// The fields of a Codex config layer (config.toml, a custom agent, a profile) that hold
/// paths, dotted, `*` standing for any key or list item. Their strings (and the strings of
/// their lists) are mapped from the master's home and codex dir to this machine's, and
/// `${names}` in them expanded, as in MCP servers' commands.
pub const PATH_FIELDS: &[&str] = &[
    "model_instructions_file",
    "experimental_instructions_file",
    "experimental_compact_prompt_file",
    "js_repl_node_path",
    "js_repl_node_module_dirs",
    "sqlite_home",
    "notify",
    "sandbox_workspace_write.writable_roots",
    "skills.config.*.path",
    "agents.*.config_file",
    "marketplaces.*.source",
];

/// Maps every [`PATH_FIELDS`] value, at the top level and in each `[profiles.*]`.
pub(super) fn map_path_fields(
    doc: &mut DocumentMut,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) {
    let mut map = |v: &mut Value| localise_value(v, ctx, vars, unknown);
    for field in PATH_FIELDS {
        let parts: Vec<&str> = field.split('.').collect();
        in_table(doc.as_table_mut(), &parts, &mut map);
        let profiled: Vec<&str> = ["profiles", "*"].into_iter().chain(parts).collect();
        in_table(doc.as_table_mut(), &profiled, &mut map);
    }
}

/// Calls `f` on the values at `parts` below a table.
fn in_table(t: &mut dyn TableLike, parts: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((key, rest)) = parts.split_first() else {
        return;
    };
    for (k, item) in t.iter_mut() {
        if *key == "*" || k.get() == *key {
            in_item(item, rest, f);
        }
    }
}

fn in_item(item: &mut Item, parts: &[&str], f: &mut dyn FnMut(&mut Value)) {
    match item {
        Item::Value(v) => in_value(v, parts, f),
        Item::Table(t) => in_table(t, parts, f),
        Item::ArrayOfTables(tables) if parts.first() == Some(&"*") => {
            for t in tables.iter_mut() {
                in_table(t, &parts[1..], f);
            }
        }
        _ => {}
    }
}

fn in_value(v: &mut Value, parts: &[&str], f: &mut dyn FnMut(&mut Value)) {
    if parts.is_empty() {
        f(v);
        return;
    }
    match v {
        Value::InlineTable(t) => in_table(t, parts, f),
        Value::Array(a) if parts[0] == "*" => {
            for x in a.iter_mut() {
                in_value(x, &parts[1..], f);
            }
        }
        _ => {}
    }
}
