//! On a follower: `mcp run` (hydrate once, then exec the server so stdio is its own),
//! `mcp list` and `mcp repair`. Hydration output goes to stderr and the server's log, never
//! to stdout, which carries the MCP stream.

use super::McpError;
use super::manifest::{Artifact, Manifest, Server};
use crate::object::{EntryKind, ObjectId};
use crate::paths::Paths;
use crate::store::{ObjectSource, Store};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The manifest of the applied revision, with the ids of copied sources, as `mcp apply`
/// writes it to `~/.codexport/mcp/manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub manifest: Manifest,
    /// Tree id of each server's copied source.
    pub sources: BTreeMap<String, ObjectId>,
}

pub fn applied_path(paths: &Paths) -> PathBuf {
    paths.state(crate::paths::state::MCP_APPLIED)
}

/// Reads the applied manifest.
pub fn load(paths: &Paths) -> Result<Applied, McpError> {
    let path = applied_path(paths);
    let text = std::fs::read(&path).map_err(|_| McpError::NoManifest)?;
    serde_json::from_slice(&text).map_err(|e| McpError::BadManifest {
        what: e.to_string(),
    })
}

fn server<'a>(applied: &'a Applied, name: &str) -> Result<&'a Server, McpError> {
    applied
        .manifest
        .servers
        .get(name)
        .ok_or_else(|| McpError::Unknown {
            name: name.to_owned(),
        })
}

/// Where an artifact is hydrated: named by a hash of what defines it.
pub fn artifact_dir(paths: &Paths, applied: &Applied, name: &str, server: &Server) -> PathBuf {
    let key = serde_json::json!({"artifact": server.artifact, "source": applied.sources.get(name)});
    let id = blake3::hash(key.to_string().as_bytes()).to_hex();
    paths
        .state(crate::paths::state::MCP_ARTIFACTS)
        .join(&id.as_str()[..32])
}

fn needs_hydration(a: &Artifact) -> bool {
    matches!(
        a,
        Artifact::Npm { .. } | Artifact::NodeSource { .. } | Artifact::PythonSource { .. }
    )
}

/// Whether the artifact is ready to run without installing anything.
pub fn hydrated(paths: &Paths, applied: &Applied, name: &str, server: &Server) -> bool {
    !needs_hydration(&server.artifact)
        || artifact_dir(paths, applied, name, server)
            .join(".ready")
            .exists()
}

/// Maps the master's home and codex dir in `s` to this machine's.
fn map(s: &str, applied: &Applied, paths: &Paths) -> String {
    crate::pathmap::rewrite_paths(
        s,
        &applied.manifest.source_home,
        &applied.manifest.source_codex_dir,
        &paths.home.display().to_string(),
        &paths.codex_dir.display().to_string(),
    )
}

/// The program and arguments that start the server (after hydration).
fn program(
    paths: &Paths,
    applied: &Applied,
    name: &str,
    s: &Server,
) -> Result<(PathBuf, Vec<String>), McpError> {
    let args: Vec<String> = s.args.iter().map(|a| map(a, applied, paths)).collect();
    let dir = artifact_dir(paths, applied, name, s);
    let with = |first: Vec<String>| {
        first
            .into_iter()
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
    };
    Ok(match &s.artifact {
        Artifact::Url => {
            return Err(McpError::UrlServer {
                name: name.to_owned(),
            });
        }
        Artifact::Npm {
            package,
            entry,
            node,
            ..
        } => {
            let file = dir.join("node_modules").join(package).join(entry);
            if *node {
                (need("node")?, with(vec![file.display().to_string()]))
            } else {
                (file, args)
            }
        }
        Artifact::NodeSource { entry } => (
            need("node")?,
            with(vec![dir.join("src").join(entry).display().to_string()]),
        ),
        Artifact::Uv { from, bin } => (
            need("uvx")?,
            with(vec!["--from".into(), from.clone(), bin.clone()]),
        ),
        Artifact::PythonSource { bin } => (
            need("uvx")?,
            with(vec![
                "--from".into(),
                dir.join("src").display().to_string(),
                bin.clone(),
            ]),
        ),
        Artifact::Command => {
            let command = s.command.as_deref().ok_or_else(|| McpError::BadManifest {
                what: format!("{name} has no command"),
            })?;
            let command = map(command, applied, paths);
            let resolved = super::infer::resolve(&command, std::env::var_os("PATH").as_deref())
                .ok_or(McpError::ProgramMissing {
                    program: command.clone(),
                    name: name.to_owned(),
                })?;
            (resolved, args)
        }
    })
}

fn need(program: &str) -> Result<PathBuf, McpError> {
    super::infer::resolve(program, std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        McpError::ProgramMissing {
            program: program.to_owned(),
            name: String::new(),
        }
    })
}

/// Hydrates (once; concurrent callers wait on a lock) and execs the server.
pub fn run(paths: &Paths, name: &str) -> Result<std::convert::Infallible, McpError> {
    let applied = load(paths)?;
    let s = server(&applied, name)?;
    hydrate(paths, &applied, name, s)?;
    let (prog, args) = program(paths, &applied, name, s).map_err(|e| e.for_server(name))?;
    let mut cmd = Command::new(&prog);
    cmd.args(&args);
    cmd.envs(&applied.manifest.export_env);
    cmd.envs(
        s.env
            .iter()
            .map(|(k, v)| (k.clone(), map(v, &applied, paths))),
    );
    if let Some(cwd) = &s.cwd {
        cmd.current_dir(map(cwd, &applied, paths));
    }
    let err = std::os::unix::process::CommandExt::exec(&mut cmd);
    Err(McpError::Exec {
        program: prog.display().to_string(),
        source: err,
    })
}

/// Prepares the artifact directory if the artifact needs one.
pub fn hydrate(paths: &Paths, applied: &Applied, name: &str, s: &Server) -> Result<(), McpError> {
    if !needs_hydration(&s.artifact) {
        // Fail early with the repair step if the program is missing.
        program(paths, applied, name, s).map_err(|e| e.for_server(name))?;
        return Ok(());
    }
    let dir = artifact_dir(paths, applied, name, s);
    if dir.join(".ready").exists() {
        return Ok(());
    }
    let io = |p: &Path, e| McpError::Io {
        path: p.to_owned(),
        source: e,
    };
    let parent = dir.parent().expect("artifact dirs have a parent");
    crate::fsutil::create_private_dir_all(parent).map_err(|e| io(parent, e))?;
    let lock_path = dir.with_extension("lock");
    let lock = crate::fsutil::open_log(&lock_path).map_err(|e| io(&lock_path, e))?;
    lock.lock().map_err(|e| io(&lock_path, e))?;
    if dir.join(".ready").exists() {
        return Ok(());
    }
    let mut log = Log::open(paths, name)?;
    log.line(&format!("hydrating {name} ({})", s.artifact.kind()));
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    match &s.artifact {
        Artifact::Npm {
            package, version, ..
        } => {
            let spec = format!("{package}@{version}");
            log.run(
                Command::new(need("npm").map_err(|e| e.for_server(name))?)
                    .args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--save-exact",
                        "--prefix",
                    ])
                    .arg(&tmp)
                    .arg(&spec),
                name,
            )?;
        }
        Artifact::NodeSource { .. } | Artifact::PythonSource { .. } => {
            let tree = applied
                .sources
                .get(name)
                .ok_or_else(|| McpError::BadManifest {
                    what: format!("no copied source for {name}"),
                })?;
            let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)
                .map_err(McpError::Store)?;
            materialise(&store, *tree, &tmp.join("src"))?;
            if matches!(s.artifact, Artifact::NodeSource { .. })
                && tmp.join("src/package.json").exists()
            {
                log.run(
                    Command::new(need("npm").map_err(|e| e.for_server(name))?)
                        .args(["install", "--omit=dev", "--no-audit", "--no-fund"])
                        .current_dir(tmp.join("src")),
                    name,
                )?;
            }
        }
        Artifact::Uv { .. } | Artifact::Command | Artifact::Url => {}
    }
    // Installers write with the user's umask; everything under the state dir is owner-only.
    crate::fsutil::make_private(&tmp).map_err(|e| io(&tmp, e))?;
    std::fs::write(tmp.join(".ready"), b"").map_err(|e| io(&tmp, e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
    log.line(&format!("{name} is ready in {}", dir.display()));
    Ok(())
}

/// Writes a stored tree out as files.
fn materialise(store: &Store, tree: ObjectId, dir: &Path) -> Result<(), McpError> {
    use std::os::unix::fs::PermissionsExt;
    let r = store.read().map_err(McpError::Store)?;
    for (rel, e) in crate::store::diff::walk_files(&r, tree).map_err(McpError::Store)? {
        let path = rel.to_path(dir);
        let io = |e| McpError::Io {
            path: path.clone(),
            source: e,
        };
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).map_err(io)?;
        match e.kind {
            EntryKind::Symlink => {
                let bytes = r.blob(&e.id).map_err(McpError::Store)?;
                std::os::unix::fs::symlink(String::from_utf8_lossy(&bytes).as_ref(), &path)
                    .map_err(io)?;
            }
            kind => {
                // Streamed piece by piece: a large source file is never held whole.
                let file = std::fs::File::create(&path).map_err(io)?;
                r.copy_to_file(&e.id, &file).map_err(|err| match err {
                    crate::store::WriteError::Store(s) => McpError::Store(s),
                    crate::store::WriteError::Io(source) => McpError::Io {
                        path: path.clone(),
                        source,
                    },
                })?;
                let mode = if kind == EntryKind::Executable {
                    0o755
                } else {
                    0o644
                };
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(io)?;
            }
        }
    }
    Ok(())
}

/// `~/.codexport/logs/mcp/<name>.log`, mirrored to stderr.
struct Log {
    file: std::fs::File,
}

impl Log {
    fn open(paths: &Paths, name: &str) -> Result<Self, McpError> {
        let path = paths.logs().join("mcp").join(format!("{name}.log"));
        let file = crate::fsutil::open_log(&path).map_err(|e| McpError::Io { path, source: e })?;
        Ok(Self { file })
    }

    fn line(&mut self, text: &str) {
        let line = format!(
            "{} codexport mcp: {text}\n",
            crate::time::format_ms(crate::time::now_ms())
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        let _ = self.file.write_all(line.as_bytes());
    }

    /// Runs a hydration step with both of its output streams sent to stderr and the log.
    fn run(&mut self, cmd: &mut Command, name: &str) -> Result<(), McpError> {
        let shown = format!("{cmd:?}");
        self.line(&format!("running {shown}"));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| McpError::Step {
                name: name.to_owned(),
                step: shown.clone(),
                why: e.to_string(),
            })?;
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ];
        let handles: Vec<_> = streams
            .into_iter()
            .flatten()
            .map(|s| {
                let mut file = self.file.try_clone().ok();
                std::thread::spawn(move || {
                    for line in std::io::BufReader::new(s).lines().map_while(Result::ok) {
                        let _ = writeln!(std::io::stderr(), "{line}");
                        if let Some(f) = file.as_mut() {
                            let _ = writeln!(f, "{line}");
                        }
                    }
                })
            })
            .collect();
        let status = child.wait().map_err(|e| McpError::Step {
            name: name.to_owned(),
            step: shown.clone(),
            why: e.to_string(),
        })?;
        for h in handles {
            let _ = h.join();
        }
        if !status.success() {
            return Err(McpError::Step {
                name: name.to_owned(),
                step: shown,
                why: format!("exited with {status}"),
            });
        }
        Ok(())
    }
}
