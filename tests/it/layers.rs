//! The architecture's invariants, checked on the source: modules import only lower layers
//! (ARCHITECTURE.md), and no two files import each other, directly or around a cycle.
//!
//! A small reader of `use crate::…`, `use super::…` and inline `crate::…` paths is enough:
//! each path is resolved to the file that defines it. A child file naming its own module's
//! root (errors, shared types) is the sanctioned direction and is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only; the
/// foundations may also import each other (without a cycle).
const LAYERS: &[&[&str]] = &[
    &[
        "object", "time", "paths", "roots", "fsutil", "toml_doc", "pathmap", "progress", "seal",
    ],
    &["store"],
    &["snapshot", "checkout"],
    &["overlay"],
    &["transport"],
    &["master", "follower"],
    &["mcp", "hook", "service", "status"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as a module path (`store/pack` for `src/store/pack.rs`).
fn files() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src()).unwrap().with_extension("");
                out.insert(rel.to_string_lossy().replace('\\', "/"), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &mut out);
    out
}

/// The source without comments (line comments only: block comments are not used).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.split_whitespace().collect();
    let Some(open) = path.find('{') else {
        return vec![path];
    };
    let (prefix, rest) = path.split_at(open);
    let inner = &rest[1..rest.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// The module paths (from the crate root) that a file names.
fn imports(module: &str, text: &str) -> BTreeSet<String> {
    let code = code(text);
    let parent = match module.rsplit_once('/') {
        Some((p, _)) => p.replace('/', "::"),
        None => String::new(),
    };
    let mut out = BTreeSet::new();
    let mut add = |path: &str| {
        let path = path.split(" as ").next().unwrap_or(path);
        let full = if let Some(rest) = path.strip_prefix("crate::") {
            rest.to_owned()
        } else if let Some(rest) = path.strip_prefix("super::") {
            if parent.is_empty() {
                rest.to_owned()
            } else {
                format!("{parent}::{rest}")
            }
        } else {
            return;
        };
        out.insert(full.replace("::", "/"));
    };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("use ") {
        rest = &rest[i + 4..];
        let end = rest.find(';').unwrap_or(rest.len());
        let stmt = &rest[..end];
        if stmt.starts_with("crate::") || stmt.starts_with("super::") {
            for p in expand(stmt) {
                add(&p);
            }
        }
        rest = &rest[end..];
    }
    for (i, _) in code.match_indices("crate::") {
        let tail: String = code[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        add(tail.trim_end_matches(':'));
    }
    out
}

/// The file a module path lives in: the longest prefix of it that is a file.
fn resolve(path: &str, files: &BTreeMap<String, PathBuf>) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("/"))
        .find(|p| files.contains_key(p))
}

/// Edges between files: `from` names something defined in `to`.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = files();
    let mut graph = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let mut edges = BTreeSet::new();
        for import in imports(module, &text) {
            let Some(to) = resolve(&import, &files) else {
                continue;
            };
            // Itself, or an ancestor's root file (a module's errors and shared types).
            let ancestor = module.starts_with(&format!("{to}/"));
            if to != *module && !ancestor {
                edges.insert(to);
            }
        }
        graph.insert(module.clone(), edges);
    }
    graph
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap_or(module)
}

#[test]
fn modules_import_only_lower_layers() {
    let mut wrong = Vec::new();
    for (from, edges) in file_graph() {
        let (a, Some(la)) = (top(&from), layer_of(top(&from))) else {
            if !["lib", "main"].contains(&top(&from)) {
                wrong.push(format!("{from}: module {} has no layer", top(&from)));
            }
            continue;
        };
        for to in edges {
            let b = top(&to);
            if a == b {
                continue;
            }
            match layer_of(b) {
                Some(lb) if lb < la || (lb == 0 && la == 0) => {}
                Some(lb) => wrong.push(format!(
                    "{from} (layer {la}) imports {to} (layer {lb}, not below)"
                )),
                None => wrong.push(format!("{from} imports {to}, which has no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

/// Depth-first search with colours; any back edge is a cycle.
fn visit(
    n: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    state: &mut BTreeMap<String, u8>,
    stack: &mut Vec<String>,
    cycles: &mut Vec<String>,
) {
    state.insert(n.to_owned(), 1);
    stack.push(n.to_owned());
    for m in graph.get(n).into_iter().flatten() {
        match state.get(m.as_str()).copied().unwrap_or(0) {
            0 => visit(m, graph, state, stack, cycles),
            1 => {
                let at = stack.iter().position(|s| s == m).unwrap();
                cycles.push(format!("{} -> {m}", stack[at..].join(" -> ")));
            }
            _ => {}
        }
    }
    stack.pop();
    state.insert(n.to_owned(), 2);
}

#[test]
fn no_import_cycles_between_files() {
    let graph = file_graph();
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            visit(n, &graph, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The reader itself: a check that cannot see imports would pass on anything.
#[test]
fn the_import_reader_sees_what_it_must() {
    let text = "use crate::store::{Store, pack::Location};\nuse super::sync::{self, X};\n// crate::cli::y\nfn f() { crate::time::now_ms(); }\n";
    let got = imports("follower/apply", text);
    let want: BTreeSet<String> = [
        "store",
        "store/Store",
        "store/pack/Location",
        "follower/sync/self",
        "follower/sync/X",
        "time/now_ms",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(got, want);
    let graph = file_graph();
    assert!(
        graph["follower/sync"].contains("store"),
        "{:?}",
        graph["follower/sync"]
    );
    assert!(
        !graph["checkout/apply"].contains("checkout"),
        "a child naming its root is no edge"
    );
}
