//! On the master: export every `[mcp_servers.*]` definition of config.toml and infer how a
//! follower can run it (see [`Artifact`]). What cannot be inferred is still exported and run
//! as written; nothing is dropped.

use super::manifest::{Artifact, MANIFEST_FILE, MANIFEST_VERSION, Manifest, SOURCES_DIR, Server};
use crate::object::{EntryKind, EntryName, ObjectId, ObjectKind, Tree, TreeEntry};
use crate::store::{StoreError, Writer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest file copied from a local MCP source.
pub const MAX_SOURCE_FILE: u64 = 10 << 20;
/// Largest copied source in total.
pub const MAX_SOURCE_TOTAL: u64 = 75 << 20;
/// Names never copied from a local source.
const SKIP_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    "dist-newstyle",
];
const SKIP_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "mp4", "mov", "mp3", "wav", "zip", "tar", "gz", "tgz",
    "xz", "bz2", "7z", "dmg", "iso", "pdf",
];

/// What the export needs to know about the master.
pub struct ExportContext<'a> {
    pub home: &'a Path,
    pub codex_dir: &'a Path,
    /// `PATH` of the master process, for resolving bare commands.
    pub path: Option<std::ffi::OsString>,
    /// Reads a variable of the master's environment (`CODEXPORT_EXPORT_ENV` and the names it lists).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The master's MCP export as publishing takes it (`crate::master::McpExport`): this
/// process's `PATH` and environment, the master's home and codex dir.
pub fn export_for(
    w: &mut Writer<'_>,
    config: &[u8],
    paths: &crate::paths::Paths,
) -> Result<Option<ObjectId>, StoreError> {
    let ctx = ExportContext {
        home: &paths.home,
        codex_dir: &paths.codex_dir,
        path: std::env::var_os("PATH"),
        env: &|name| std::env::var(name).ok(),
    };
    export(w, &String::from_utf8_lossy(config), &ctx)
}

/// Builds the manifest tree for a config.toml; `None` if it defines no MCP server.
pub fn export(
    w: &mut Writer<'_>,
    config: &str,
    ctx: &ExportContext<'_>,
) -> Result<Option<ObjectId>, StoreError> {
    let Ok(doc) = crate::toml_doc::parse(config) else {
        return Ok(None);
    };
    let Some(servers) = doc
        .get("mcp_servers")
        .and_then(toml_edit::Item::as_table_like)
    else {
        return Ok(None);
    };
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        source_home: ctx.home.display().to_string(),
        source_codex_dir: ctx.codex_dir.display().to_string(),
        export_env: BTreeMap::new(),
        servers: BTreeMap::new(),
    };
    manifest.export_env = exported_env(w, ctx)?;
    let mut sources = Vec::new();
    for (name, item) in servers.iter() {
        let Some(table) = item.as_table_like() else {
            continue;
        };
        let (server, source) = infer(table, ctx);
        if let (Some(dir), Ok(entry_name)) = (source, EntryName::new(name)) {
            match copy_tree(w, &dir, &mut 0) {
                Ok(Some((id, size))) => sources.push(TreeEntry {
                    name: entry_name,
                    kind: EntryKind::Tree,
                    id,
                    size,
                    private: false,
                    chunked: false,
                }),
                Ok(None) | Err(_) => {
                    let mut s = server;
                    s.note = format!(
                        "source {} could not be copied (too large or unreadable); run as written",
                        dir.display()
                    );
                    s.artifact = Artifact::Command;
                    manifest.servers.insert(name.to_owned(), s);
                    continue;
                }
            }
        }
        manifest.servers.insert(name.to_owned(), server);
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    let blob = w.put(ObjectKind::Blob, &json)?;
    // The manifest holds the servers' exported environment (tokens, keys): owner-only.
    let mut entries = vec![TreeEntry {
        name: EntryName::new(MANIFEST_FILE).expect("valid name"),
        kind: EntryKind::File,
        id: blob,
        size: json.len() as u64,
        private: true,
        chunked: false,
    }];
    if !sources.is_empty() {
        let tree = Tree::new(sources).map_err(|e| StoreError::Corrupt {
            what: format!("mcp sources tree: {e}"),
        })?;
        entries.push(TreeEntry {
            name: EntryName::new(SOURCES_DIR).expect("valid name"),
            kind: EntryKind::Tree,
            size: tree.size(),
            id: w.put_tree(&tree)?,
            private: false,
            chunked: false,
        });
    }
    let tree = Tree::new(entries).map_err(|e| StoreError::Corrupt {
        what: format!("mcp tree: {e}"),
    })?;
    Ok(Some(w.put_tree(&tree)?))
}

/// The variables to export. `CODEXPORT_EXPORT_ENV` (comma, space or colon separated) names
/// them; when it is unset, the names the previous revision exported are kept. A named
/// variable missing from this process's environment keeps its previous value, so a rebuild
/// from a shell or service without it (the watcher, `master serve` at start) does not
/// silently drop a secret followers need. `CODEXPORT_EXPORT_ENV=""` stops exporting.
fn exported_env(
    w: &Writer<'_>,
    ctx: &ExportContext<'_>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let previous = previous_export_env(w)?;
    let names: Vec<String> = match (ctx.env)("CODEXPORT_EXPORT_ENV") {
        Some(list) => list
            .split([',', ' ', ':'])
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
        None => previous.keys().cloned().collect(),
    };
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let value = (ctx.env)(&name).or_else(|| previous.get(&name).cloned())?;
            Some((name, value))
        })
        .collect())
}

/// `export_env` of the master's current revision, if it has a manifest.
fn previous_export_env(w: &Writer<'_>) -> Result<BTreeMap<String, String>, StoreError> {
    use crate::store::ObjectSource;
    let Some(head) = w.get_ref(crate::store::refs::MASTER_HEAD)? else {
        return Ok(BTreeMap::new());
    };
    let Some(mcp) = w.revision(&head)?.mcp else {
        return Ok(BTreeMap::new());
    };
    let Some(entry) = w.tree(&mcp)?.get(MANIFEST_FILE).cloned() else {
        return Ok(BTreeMap::new());
    };
    Ok(serde_json::from_slice::<Manifest>(&w.file(&entry)?)
        .map(|m| m.export_env)
        .unwrap_or_default())
}

/// Converts a TOML item to JSON (dates become strings).
pub fn to_json(item: &toml_edit::Item) -> serde_json::Value {
    match item {
        toml_edit::Item::Value(v) => value_json(v),
        toml_edit::Item::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.to_owned(), to_json(v))).collect())
        }
        toml_edit::Item::ArrayOfTables(a) => serde_json::Value::Array(
            a.iter()
                .map(|t| to_json(&toml_edit::Item::Table(t.clone())))
                .collect(),
        ),
        toml_edit::Item::None => serde_json::Value::Null,
    }
}

fn value_json(v: &toml_edit::Value) -> serde_json::Value {
    use toml_edit::Value as V;
    match v {
        V::String(s) => s.value().clone().into(),
        V::Integer(i) => (*i.value()).into(),
        V::Float(f) => serde_json::Number::from_f64(*f.value())
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        V::Boolean(b) => (*b.value()).into(),
        V::Datetime(d) => d.value().to_string().into(),
        V::Array(a) => serde_json::Value::Array(a.iter().map(value_json).collect()),
        V::InlineTable(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), value_json(v)))
                .collect(),
        ),
    }
}

fn str_of(table: &dyn toml_edit::TableLike, key: &str) -> Option<String> {
    table
        .get(key)
        .and_then(toml_edit::Item::as_str)
        .map(str::to_owned)
}

/// Infers one server's artifact; returns the source dir to copy, if any.
#[allow(clippy::too_many_lines)] // one decision list, in the order the README documents it
fn infer(table: &dyn toml_edit::TableLike, ctx: &ExportContext<'_>) -> (Server, Option<PathBuf>) {
    let json = serde_json::Value::Object(
        table
            .iter()
            .map(|(k, v)| (k.to_owned(), to_json(v)))
            .collect(),
    );
    let args: Vec<String> = table
        .get("args")
        .and_then(toml_edit::Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let env: BTreeMap<String, String> = table
        .get("env")
        .and_then(toml_edit::Item::as_table_like)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.to_owned(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let mut server = Server {
        table: json,
        command: str_of(table, "command"),
        args,
        cwd: str_of(table, "cwd"),
        env,
        artifact: Artifact::Command,
        note: String::new(),
    };
    if table.contains_key("url") {
        server.artifact = Artifact::Url;
        server.note = "URL server: Codex connects to it directly".into();
        return (server, None);
    }
    let Some(command) = server.command.clone() else {
        server.note = "no command".into();
        return (server, None);
    };
    let base = Path::new(&command)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(&command)
        .to_owned();
    if matches!(base.as_str(), "npx" | "bunx" | "uvx" | "pnpx" | "pipx") {
        server.note = format!("{base} fetches the server itself");
        return (server, None);
    }
    if matches!(base.as_str(), "node" | "bun" | "nodejs") {
        if let Some(entry) = server
            .args
            .first()
            .cloned()
            .filter(|a| Path::new(a).is_absolute())
        {
            if let Some((pkg_root, package, rel)) = in_node_modules(Path::new(&entry)) {
                if let Some(version) = package_version(&pkg_root) {
                    server.args.remove(0);
                    server.note = format!("{package}@{version} from node_modules");
                    server.artifact = Artifact::Npm {
                        package,
                        version,
                        entry: rel,
                        node: true,
                    };
                    return (server, None);
                }
            }
            if let Some(root) = package_root(Path::new(&entry), ctx.home) {
                let rel = Path::new(&entry)
                    .strip_prefix(&root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                server.args.remove(0);
                server.note = format!("local node package {} (copied)", root.display());
                server.artifact = Artifact::NodeSource { entry: rel };
                return (server, Some(root));
            }
        }
        server.note = "node script outside a package: run as written".into();
        return (server, None);
    }
    let Some(resolved) = resolve(&command, ctx.path.as_deref()) else {
        server.note = format!("{command} not found on the master's PATH: run as written");
        return (server, None);
    };
    let real = std::fs::canonicalize(&resolved).unwrap_or(resolved.clone());
    if let Some((pkg_root, package, rel)) = in_node_modules(&real) {
        if let Some(version) = package_version(&pkg_root) {
            server.note = format!("npm shim {} → {package}@{version}", resolved.display());
            let node = is_node_script(&real);
            server.artifact = Artifact::Npm {
                package,
                version,
                entry: rel,
                node,
            };
            return (server, None);
        }
    }
    if let Some((artifact, source, note)) = uv_tool(&real, ctx.home, &base) {
        server.note = note;
        server.artifact = artifact;
        return (server, source);
    }
    server.note = format!(
        "{} is not an npm or uv tool: run as written",
        resolved.display()
    );
    (server, None)
}

/// Finds a command on `PATH` (or takes a path as is).
pub fn resolve(command: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let p = PathBuf::from(command);
        return is_exe(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|d| d.join(command))
        .find(|p| is_exe(p))
}

/// For a file inside `…/node_modules/<pkg>/…`: the package root, its name, and the file's
/// path relative to the root.
fn in_node_modules(file: &Path) -> Option<(PathBuf, String, String)> {
    let text = file.to_str()?;
    let i = text.rfind("/node_modules/")? + "/node_modules/".len();
    let rest = &text[i..];
    let mut parts = rest.splitn(3, '/');
    let first = parts.next()?;
    let (package, tail) = if first.starts_with('@') {
        let second = parts.next()?;
        (format!("{first}/{second}"), parts.next().unwrap_or(""))
    } else {
        let tail = &rest[first.len()..].trim_start_matches('/');
        (first.to_owned(), *tail)
    };
    let root = PathBuf::from(&text[..i]).join(&package);
    Some((root, package, tail.to_owned()))
}

fn package_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"].as_str().map(str::to_owned)
}

/// The nearest directory above `file` holding a package.json, staying inside `home`.
fn package_root(file: &Path, home: &Path) -> Option<PathBuf> {
    let mut dir = file.parent()?;
    while dir.starts_with(home) && dir != home {
        if dir.join("package.json").is_file() {
            return Some(dir.to_owned());
        }
        dir = dir.parent()?;
    }
    None
}

fn is_node_script(file: &Path) -> bool {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "js" | "mjs" | "cjs") {
        return true;
    }
    let mut head = [0u8; 128];
    let n = std::fs::File::open(file)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    String::from_utf8_lossy(&head[..n])
        .lines()
        .next()
        .is_some_and(|l| l.starts_with("#!") && l.contains("node"))
}

/// A command installed by `uv tool install` (under `~/.local/share/uv/tools/<tool>`).
fn uv_tool(real: &Path, home: &Path, bin: &str) -> Option<(Artifact, Option<PathBuf>, String)> {
    let tools_root = home.join(".local/share/uv/tools");
    let inside = real.strip_prefix(&tools_root).ok()?;
    let tool = inside.components().next()?.as_os_str().to_str()?.to_owned();
    let tool_dir = tools_root.join(&tool);
    let (name, version, url) = dist_info(&tool_dir, &tool)?;
    if let Some(dir) = url
        .as_deref()
        .and_then(|u| u.strip_prefix("file://"))
        .map(PathBuf::from)
    {
        if dir.join("pyproject.toml").is_file() {
            let note = format!(
                "uv tool {tool} from local project {} (copied)",
                dir.display()
            );
            return Some((
                Artifact::PythonSource {
                    bin: bin.to_owned(),
                },
                Some(dir),
                note,
            ));
        }
    }
    let from = match (&url, &version) {
        (Some(u), _) if !u.starts_with("file://") => u.clone(),
        (_, Some(v)) => format!("{name}=={v}"),
        _ => name.clone(),
    };
    let note = format!("uv tool {tool} → uvx --from {from} {bin}");
    Some((
        Artifact::Uv {
            from,
            bin: bin.to_owned(),
        },
        None,
        note,
    ))
}

/// Name, version and direct URL of the tool's main distribution, from its `.dist-info`.
fn dist_info(tool_dir: &Path, tool: &str) -> Option<(String, Option<String>, Option<String>)> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
    for lib in std::fs::read_dir(tool_dir.join("lib")).ok()?.flatten() {
        let site = lib.path().join("site-packages");
        for entry in std::fs::read_dir(&site).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".dist-info") else {
                continue;
            };
            let (name, version) = stem.rsplit_once('-').unwrap_or((stem, ""));
            if norm(name) != norm(tool) {
                continue;
            }
            let meta = std::fs::read_to_string(entry.path().join("METADATA")).unwrap_or_default();
            let real_name = meta
                .lines()
                .find_map(|l| l.strip_prefix("Name: "))
                .map_or_else(|| name.to_owned(), str::to_owned);
            let url = std::fs::read_to_string(entry.path().join("direct_url.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["url"].as_str().map(str::to_owned));
            return Some((
                real_name,
                (!version.is_empty()).then(|| version.to_owned()),
                url,
            ));
        }
    }
    None
}

/// Stores a copy of a local source dir as a tree (skipping build output, VCS data, media and
/// archives); `None` past the size limits.
fn copy_tree(
    w: &mut Writer<'_>,
    dir: &Path,
    total: &mut u64,
) -> Result<Option<(ObjectId, u64)>, std::io::Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(entry_name) = EntryName::new(name.clone()) else {
            continue;
        };
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            if SKIP_DIRS.contains(&name.as_str()) || name.ends_with(".egg-info") {
                continue;
            }
            if let Some((id, size)) = copy_tree(w, &entry.path(), total)? {
                entries.push(TreeEntry {
                    name: entry_name,
                    kind: EntryKind::Tree,
                    id,
                    size,
                    private: false,
                    chunked: false,
                });
            } else {
                return Ok(None);
            }
        } else if meta.is_file() {
            let ext = Path::new(&name)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("")
                .to_ascii_lowercase();
            if SKIP_EXTENSIONS.contains(&ext.as_str()) || meta.len() > MAX_SOURCE_FILE {
                continue;
            }
            *total += meta.len();
            if *total > MAX_SOURCE_TOTAL {
                return Ok(None);
            }
            let bytes = std::fs::read(entry.path())?;
            let kind = if meta.permissions().mode() & 0o100 != 0 {
                EntryKind::Executable
            } else {
                EntryKind::File
            };
            let (id, chunked) = w.put_content(&bytes).map_err(std::io::Error::other)?;
            entries.push(TreeEntry {
                name: entry_name,
                kind,
                id,
                size: bytes.len() as u64,
                private: meta.permissions().mode() & 0o044 == 0,
                chunked,
            });
        }
    }
    let tree = Tree::new(entries).map_err(std::io::Error::other)?;
    let size = tree.size();
    Ok(Some((
        w.put_tree(&tree).map_err(std::io::Error::other)?,
        size,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_modules_paths() {
        let (root, pkg, rel) = in_node_modules(Path::new(
            "/h/mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
        ))
        .unwrap();
        assert_eq!(
            root,
            Path::new("/h/mcp/node_modules/@modelcontextprotocol/server-filesystem")
        );
        assert_eq!(pkg, "@modelcontextprotocol/server-filesystem");
        assert_eq!(rel, "dist/index.js");
        let (_, pkg, rel) = in_node_modules(Path::new(
            "/h/node_modules/a/node_modules/left-pad/bin/cli.js",
        ))
        .unwrap();
        assert_eq!((pkg.as_str(), rel.as_str()), ("left-pad", "bin/cli.js"));
        assert!(in_node_modules(Path::new("/h/src/index.js")).is_none());
    }
}
