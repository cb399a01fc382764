//! config.toml on a follower: the master's file, edited with toml_edit so its comments and
//! layout survive, with paths mapped to this machine (table keys, MCP servers, and the fields
//! that hold paths, [`PATH_FIELDS`]), URL servers cleaned, local MCP servers added, and the
//! entries Codex wrote on this machine kept (trust decisions, plugins and marketplaces it
//! installed). Other config layers (custom agents) get the same path mapping
//! ([`merge_layer`]).

mod fields;

pub use fields::PATH_FIELDS;

use super::OverlayError;
use fields::map_path_fields;
use std::collections::{BTreeMap, BTreeSet};
use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

/// Everything the config merge depends on.
#[derive(Debug, Clone, Default)]
pub struct ConfigContext {
    /// The master's home and codex dir, as recorded in the revision.
    pub master_home: String,
    pub master_codex_dir: String,
    /// This machine's.
    pub home: String,
    pub codex_dir: String,
    pub path_variables: BTreeMap<String, String>,
    /// Host that replaces loopback hosts in URL servers (the master as this follower reaches it).
    pub master_host: Option<String>,
    /// `mcps.local.toml`, if the follower has one.
    pub local_mcps: Option<String>,
    pub allow_mcp_overrides: Vec<String>,
    /// The follower's config.toml as it is now, and the master's config.toml as last applied
    /// (after this same merge), to tell which `[projects]`/`[hooks.state]` entries the
    /// follower added itself.
    pub current: Option<String>,
    pub previous_master: Option<String>,
    /// When set, every canonical command server runs through `<launcher> mcp run <name>`.
    pub launcher: Option<String>,
    /// The follower's hooks.json path and the hook trust keys that move because codexport's
    /// session-start group goes first in the merged hooks.json.
    pub hooks_json_path: String,
    pub trust_moves: Vec<super::hooks::TrustMove>,
}

/// The merged text and the `${names}` that no variable defines.
#[derive(Debug, Clone)]
pub struct MergedConfig {
    pub text: String,
    pub unknown_variables: Vec<String>,
}

/// Tables whose entries the follower's Codex writes (trust decisions, plugins and
/// marketplaces added with `codex plugin add` on this machine): kept across syncs.
const FOLLOWER_OWNED: &[&[&str]] = &[
    &["projects"],
    &["hooks", "state"],
    &["plugins"],
    &["marketplaces"],
];

pub fn merge_config(master_text: &str, ctx: &ConfigContext) -> Result<MergedConfig, OverlayError> {
    let mut doc = crate::toml_doc::parse(master_text).map_err(|what| OverlayError::BadConfig {
        which: "the master's config.toml",
        what,
    })?;
    let mut unknown = BTreeSet::new();
    let vars = variables(ctx);
    rewrite_keys(doc.as_table_mut(), ctx, &vars, &mut unknown);
    map_path_fields(&mut doc, ctx, &vars, &mut unknown);
    super::hooks::move_trust_state(&mut doc, &ctx.hooks_json_path, &ctx.trust_moves);

    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut) {
        for (name, server) in servers.iter_mut() {
            if let Some(t) = server.as_table_like_mut() {
                fix_server(t, ctx, &vars, &mut unknown);
                if let Some(launcher) = ctx.launcher.as_deref().filter(|_| !t.contains_key("url")) {
                    point_at_launcher(t, launcher, name.get());
                }
            }
        }
    }
    add_local_mcps(&mut doc, ctx, &vars, &mut unknown)?;
    keep_follower_entries(&mut doc, ctx);
    Ok(MergedConfig {
        text: doc.to_string(),
        unknown_variables: unknown.into_iter().collect(),
    })
}

/// Another config layer (a custom agent's `agents/<name>.toml`): the master's text with its
/// paths mapped as in config.toml (table keys, MCP servers, [`PATH_FIELDS`]); nothing added
/// or kept. Invalid TOML is returned as the parser's message.
pub fn merge_layer(master_text: &str, ctx: &ConfigContext) -> Result<MergedConfig, String> {
    let mut doc = crate::toml_doc::parse(master_text)?;
    let mut unknown = BTreeSet::new();
    let vars = variables(ctx);
    rewrite_keys(doc.as_table_mut(), ctx, &vars, &mut unknown);
    map_path_fields(&mut doc, ctx, &vars, &mut unknown);
    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Item::as_table_like_mut) {
        for (_, server) in servers.iter_mut() {
            if let Some(t) = server.as_table_like_mut() {
                fix_server(t, ctx, &vars, &mut unknown);
            }
        }
    }
    Ok(MergedConfig {
        text: doc.to_string(),
        unknown_variables: unknown.into_iter().collect(),
    })
}

fn variables(ctx: &ConfigContext) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        ("home".to_owned(), ctx.home.clone()),
        ("codexDir".to_owned(), ctx.codex_dir.clone()),
    ]);
    vars.extend(ctx.path_variables.clone());
    vars
}

/// Maps master paths to `${codexDir}`/`${home}`, then expands every `${name}` it knows.
fn localise(
    s: &str,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) -> String {
    let mut out = s.to_owned();
    for (from, var) in [
        (&ctx.master_codex_dir, "${codexDir}"),
        (&ctx.master_home, "${home}"),
    ] {
        if !from.is_empty() {
            out = crate::pathmap::replace_path_prefix(&out, from, var);
        }
    }
    expand(&out, vars, unknown)
}

/// Expands `${name}`; unknown names stay as written and are reported.
pub fn expand(s: &str, vars: &BTreeMap<String, String>, unknown: &mut BTreeSet<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 2..];
        match tail.find('}') {
            Some(end) => {
                let name = &tail[..end];
                match vars.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        unknown.insert(name.to_owned());
                        out.push_str(&rest[start..start + 2 + end + 1]);
                    }
                }
                rest = &tail[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites table keys (e.g. `[projects."/home/m/src"]`) recursively, keeping order.
fn rewrite_keys(
    table: &mut Table,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for key in keys {
        let new_key = localise(&key, ctx, vars, unknown);
        if new_key != key {
            if let Some((old_key, item)) = table.remove_entry(&key) {
                let mut k = toml_edit::Key::new(new_key.clone());
                *k.leaf_decor_mut() = old_key.leaf_decor().clone();
                table.insert_formatted(&k, item);
            }
        }
        match table.get_mut(&new_key) {
            Some(Item::Table(sub)) => rewrite_keys(sub, ctx, vars, unknown),
            Some(Item::Value(Value::InlineTable(sub))) => {
                rewrite_inline_keys(sub, ctx, vars, unknown);
            }
            _ => {}
        }
    }
}

/// The same for inline tables (`projects = { "/home/m/src" = { … } }`).
fn rewrite_inline_keys(
    table: &mut toml_edit::InlineTable,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for key in keys {
        let new_key = localise(&key, ctx, vars, unknown);
        if new_key != key {
            if let Some(value) = table.remove(&key) {
                table.insert(&new_key, value);
            }
        }
        if let Some(Value::InlineTable(sub)) = table.get_mut(&new_key) {
            rewrite_inline_keys(sub, ctx, vars, unknown);
        }
    }
}

fn localise_value(
    v: &mut Value,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) {
    match v {
        Value::String(s) => {
            let new = localise(s.value(), ctx, vars, unknown);
            if new != *s.value() {
                let decor = s.decor().clone();
                *s = toml_edit::Formatted::new(new);
                *s.decor_mut() = decor;
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|v| localise_value(v, ctx, vars, unknown)),
        Value::InlineTable(t) => t
            .iter_mut()
            .for_each(|(_, v)| localise_value(v, ctx, vars, unknown)),
        _ => {}
    }
}

/// Paths in a server's command, args, cwd and env; a URL server loses `env` and a loopback
/// host becomes the master's.
fn fix_server(
    t: &mut dyn toml_edit::TableLike,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) {
    let is_url = t.contains_key("url");
    for (_, item) in t.iter_mut() {
        match item {
            Item::Value(v) => localise_value(v, ctx, vars, unknown),
            Item::Table(sub) => sub.iter_mut().for_each(|(_, i)| {
                if let Item::Value(v) = i {
                    localise_value(v, ctx, vars, unknown);
                }
            }),
            _ => {}
        }
    }
    if is_url {
        // Codex refuses env on URL servers ("env is not supported for streamable_http").
        t.remove("env");
        t.remove("env_vars");
        if let (Some(host), Some(Item::Value(Value::String(url)))) =
            (&ctx.master_host, t.get_mut("url"))
        {
            if let Some(new) = loopback_to(url.value(), host) {
                let decor = url.decor().clone();
                *url = toml_edit::Formatted::new(new);
                *url.decor_mut() = decor;
            }
        }
    }
}

/// Makes a command server start through `codexport mcp run <name>`, which restores its
/// environment, maps paths and hydrates its artifact; other keys (timeouts, enabled, tool
/// filters) stay.
fn point_at_launcher(t: &mut dyn toml_edit::TableLike, launcher: &str, name: &str) {
    let set = |t: &mut dyn toml_edit::TableLike, key: &str, v: Value| match t.get_mut(key) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = v;
            *old.decor_mut() = decor;
        }
        _ => {
            t.insert(key, Item::Value(v));
        }
    };
    set(t, "command", Value::from(launcher));
    set(
        t,
        "args",
        Value::Array(["mcp", "run", name].into_iter().collect()),
    );
    // The launcher restores env and cwd from the manifest.
    t.remove("env");
    t.remove("cwd");
}

/// The URL with a loopback host replaced by `host`, or `None` if it is not loopback.
fn loopback_to(url: &str, host: &str) -> Option<String> {
    let mut parsed = reqwest::Url::parse(url).ok()?;
    let h = parsed
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let loopback = h == "localhost" || h == "0.0.0.0" || h == "::1" || h.starts_with("127.");
    if !loopback {
        return None;
    }
    parsed.set_host(Some(host)).ok()?;
    Some(parsed.to_string())
}

fn add_local_mcps(
    doc: &mut DocumentMut,
    ctx: &ConfigContext,
    vars: &BTreeMap<String, String>,
    unknown: &mut BTreeSet<String>,
) -> Result<(), OverlayError> {
    let Some(text) = &ctx.local_mcps else {
        return Ok(());
    };
    let local = crate::toml_doc::parse(text).map_err(|what| OverlayError::BadConfig {
        which: "~/.codexport/mcps.local.toml",
        what,
    })?;
    let Some(local_servers) = local.get("mcp_servers").and_then(Item::as_table_like) else {
        return Ok(());
    };
    if !doc.contains_key("mcp_servers") {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("mcp_servers", Item::Table(t));
    }
    let servers =
        doc["mcp_servers"]
            .as_table_like_mut()
            .ok_or_else(|| OverlayError::BadConfig {
                which: "the master's config.toml",
                what: "mcp_servers is not a table".into(),
            })?;
    let conflicts: Vec<String> = local_servers
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| servers.contains_key(k) && !ctx.allow_mcp_overrides.contains(k))
        .collect();
    if !conflicts.is_empty() {
        return Err(OverlayError::McpConflict { names: conflicts });
    }
    for (name, item) in local_servers.iter() {
        let mut item = item.clone();
        if let Some(t) = item.as_table_like_mut() {
            fix_server(t, ctx, vars, unknown);
        }
        // An allowed override replaces the canonical table: one table, never a duplicate.
        servers.remove(name);
        servers.insert(name, item);
    }
    Ok(())
}

/// Keeps `[projects.*]` and `[hooks.state.*]` entries that the follower's Codex wrote (in
/// its current config but not in the master's last applied one).
fn keep_follower_entries(doc: &mut DocumentMut, ctx: &ConfigContext) {
    let Some(current) = ctx
        .current
        .as_deref()
        .and_then(|t| crate::toml_doc::parse(t).ok())
    else {
        return;
    };
    let previous = ctx
        .previous_master
        .as_deref()
        .and_then(|t| crate::toml_doc::parse(t).ok());
    for path in FOLLOWER_OWNED {
        let Some(cur) = lookup(current.as_table(), path) else {
            continue;
        };
        let prev = previous.as_ref().and_then(|p| lookup(p.as_table(), path));
        for (key, item) in cur.iter() {
            let from_master = prev.is_some_and(|p| p.contains_key(key));
            let present = lookup(doc.as_table(), path).is_some_and(|t| t.contains_key(key));
            if from_master || present {
                continue;
            }
            let target = ensure_table(doc.as_table_mut(), path);
            target.insert(key, item.clone());
        }
    }
}

/// The table (standard, dotted or inline) at `path`.
fn lookup<'a>(mut table: &'a dyn TableLike, path: &[&str]) -> Option<&'a dyn TableLike> {
    for part in path {
        table = table.get(part)?.as_table_like()?;
    }
    Some(table)
}

/// The table at `path`, created where missing. An existing inline table is kept (and added
/// to), never replaced: `projects = { … }` in the master's file must not lose its entries.
fn ensure_table<'a>(mut table: &'a mut dyn TableLike, path: &[&str]) -> &'a mut dyn TableLike {
    for part in path {
        if !table.get(part).is_some_and(Item::is_table_like) {
            let mut t = Table::new();
            t.set_implicit(true);
            table.insert(part, Item::Table(t));
        }
        table = table
            .get_mut(part)
            .and_then(Item::as_table_like_mut)
            .expect("just ensured a table");
    }
    table
}

#[cfg(test)]
#[path = "config/tests.rs"]
mod tests;
