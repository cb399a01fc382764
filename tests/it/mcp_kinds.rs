//! The MCP server kinds of the README's table that `mcp.rs` does not run: a plain command
//! (run as written, paths mapped), an npm shim on the master's `PATH`, and a uv tool
//! installed from a local Python project (copied to the follower); and
//! `CODEXPORT_EXPORT_ENV=""`, which stops exporting variables.

use crate::mcp::initialize_and_list;
use crate::util::{Home, Master, enroll, settle};
use codexport_dev::serve::ServeOptions;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// A master home with `config` as its config.toml (`HOME` standing for the master's home),
/// `prepare`d first (`true`: the master's home), initialised and served with `PATH` = `path`
/// (and `env`); and a follower joined and applied, `prepare`d too (`false`).
fn pair(
    config: &str,
    path: &str,
    env: &[(&str, &str)],
    prepare: impl Fn(&Path, bool),
) -> (Home, Master, Home) {
    let m = Home::new();
    prepare(&m.home, true);
    m.write(
        "config.toml",
        config.replace("HOME", &m.home.display().to_string()),
    );
    settle();
    let path = path.replace("HOME", &m.home.display().to_string());
    let init = crate::util::codexport()
        .arg("--home")
        .arg(&m.home)
        .args(["master", "init"])
        .env_remove("CODEXPORT_HOME")
        .env_remove("CODEXPORT_EXPORT_ENV")
        .env("PATH", &path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let options = env.iter().fold(
        ServeOptions::new()
            .env("PATH", &path)
            .env_remove("CODEXPORT_EXPORT_ENV"),
        |o, (k, v)| o.env(k, v),
    );
    let master = Master::spawn(&m, &options);
    let f = Home::new();
    prepare(&f.home, false);
    enroll(&m, &master, &f);
    f.json(&["apply"]);
    (m, master, f)
}

/// The follower's `mcp list` entry of `name`.
fn listed(f: &Home, name: &str) -> serde_json::Value {
    let list = f.json(&["mcp", "list"]);
    list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
        .clone()
}

fn write_exe(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// An MCP server in POSIX sh: answers initialize (its version is the path it runs from) and
/// tools/list.
const SH_SERVER: &str = r#"#!/bin/sh
while IFS= read -r line; do
  case "$line" in
    *'"method":"initialize"'*) printf '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"shell","version":"%s"}}}\n' "$0" ;;
    *'"method":"tools/list"'*) echo '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}' ;;
  esac
done
"#;

/// A command that is neither an npm nor a uv tool runs as written, its paths mapped from the
/// master's home to the follower's.
#[test]
fn a_plain_command_runs_as_written_with_paths_mapped() {
    let config = "[mcp_servers.shell]\ncommand = \"sh\"\nargs = [\"HOME/srv/shell.sh\"]\n";
    let (_m, _master, f) = pair(config, "/usr/bin:/bin", &[], |home, _| {
        write_exe(&home.join("srv/shell.sh"), SH_SERVER);
    });
    let entry = listed(&f, "shell");
    assert_eq!(entry["kind"], "command", "{entry}");
    let (init, tools) = initialize_and_list(&f, "shell", None).unwrap();
    let script = f.home.join("srv/shell.sh").display().to_string();
    assert_eq!(init["result"]["serverInfo"]["version"], script.as_str());
    assert_eq!(tools["result"]["tools"][0]["name"], "echo", "{tools}");
}

/// A command on the master's `PATH` that is an npm shim (a link into
/// `…/lib/node_modules/<pkg>/`, as `npm install -g` makes) is exported as that package at its
/// exact version, to be installed on the follower.
#[test]
fn an_npm_shim_on_path_is_exported_as_its_package() {
    let config = "[mcp_servers.shim]\ncommand = \"tiny-shim\"\nargs = [\"--flag\"]\n";
    let (_m, _master, f) = pair(
        config,
        "HOME/npm-global/bin:/usr/bin:/bin",
        &[],
        |home, _| {
            let pkg = home.join("npm-global/lib/node_modules/@tiny/shim-pkg");
            fs::create_dir_all(pkg.join("bin")).unwrap();
            fs::write(
                pkg.join("package.json"),
                r#"{"name":"@tiny/shim-pkg","version":"1.2.3","bin":{"tiny-shim":"bin/cli.js"}}"#,
            )
            .unwrap();
            write_exe(&pkg.join("bin/cli.js"), "#!/usr/bin/env node\n");
            fs::create_dir_all(home.join("npm-global/bin")).unwrap();
            symlink(
                "../lib/node_modules/@tiny/shim-pkg/bin/cli.js",
                home.join("npm-global/bin/tiny-shim"),
            )
            .unwrap();
        },
    );
    let entry = listed(&f, "shim");
    assert_eq!(entry["kind"], "npm", "{entry}");
    let artifact = &entry["artifact"];
    assert_eq!(
        (
            &artifact["package"],
            &artifact["version"],
            &artifact["entry"]
        ),
        (
            &serde_json::json!("@tiny/shim-pkg"),
            &serde_json::json!("1.2.3"),
            &serde_json::json!("bin/cli.js")
        ),
        "{entry}"
    );
    let config = fs::read_to_string(f.codex().join("config.toml")).unwrap();
    assert!(config.contains("\"mcp\", \"run\", \"shim\""), "{config}");
}

/// A Python project (stdlib only, built with setuptools) whose script `pytiny` is an MCP
/// server answering initialize and tools/list.
fn write_python_project(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"pytiny\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\n\n[project.scripts]\npytiny = \"pytiny:main\"\n\n[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n",
    )
    .unwrap();
    fs::write(
        dir.join("pytiny.py"),
        "import json, sys\n\ndef main():\n    for line in sys.stdin:\n        msg = json.loads(line)\n        if 'id' not in msg:\n            continue\n        result = {}\n        if msg['method'] == 'initialize':\n            result = {'protocolVersion': '2025-06-18', 'capabilities': {'tools': {}}, 'serverInfo': {'name': 'pytiny', 'version': '0.1.0'}}\n        elif msg['method'] == 'tools/list':\n            result = {'tools': [{'name': 'now', 'inputSchema': {'type': 'object'}}]}\n        print(json.dumps({'jsonrpc': '2.0', 'id': msg['id'], 'result': result}), flush=True)\n",
    )
    .unwrap();
}

/// A uv tool installed from a local Python project is copied to the follower (as store
/// objects) and run there with `uvx --from <copy>`.
#[test]
fn a_uv_tool_from_a_local_project_is_copied_and_runs() {
    let installed = std::cell::RefCell::new(Ok(()));
    let path = format!("HOME/.local/bin:{}", std::env::var("PATH").unwrap());
    let config = "[mcp_servers.pytiny]\ncommand = \"pytiny\"\n";
    let (m, _master, f) = pair(config, &path, &[], |home, is_master| {
        if is_master {
            let dir = home.join("srv/pytiny");
            write_python_project(&dir);
            let dir = dir.display().to_string();
            *installed.borrow_mut() = crate::tools::uv_tool_install(home, &dir);
        }
    });
    if let Err(why) = installed.into_inner() {
        codexport_dev::skip!("a_uv_tool_from_a_local_project_is_copied_and_runs", why);
    }
    let entry = listed(&f, "pytiny");
    assert_eq!(entry["kind"], "python-source", "{entry}");
    // The project travelled; the master's copy is not used.
    fs::remove_dir_all(m.home.join("srv/pytiny")).unwrap();
    let (init, tools) = initialize_and_list(&f, "pytiny", None).unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "pytiny", "{init}");
    assert_eq!(tools["result"]["tools"][0]["name"], "now", "{tools}");
}

/// `CODEXPORT_EXPORT_ENV=""` on the master stops exporting: the next revision's manifest no
/// longer carries the variable it used to.
#[test]
fn an_empty_export_env_stops_exporting() {
    let config = "[mcp_servers.shell]\ncommand = \"sh\"\nargs = [\"HOME/srv/shell.sh\"]\n";
    let env = [
        ("CODEXPORT_EXPORT_ENV", "SHELL_SECRET"),
        ("SHELL_SECRET", "s3cret"),
    ];
    let (m, _master, f) = pair(config, "/usr/bin:/bin", &env, |home, _| {
        write_exe(&home.join("srv/shell.sh"), SH_SERVER);
    });
    let manifest = f.state().join("mcp/manifest.json");
    assert!(fs::read_to_string(&manifest).unwrap().contains("s3cret"));
    m.write("AGENTS.md", "# a change\n");
    settle();
    let rebuild = crate::util::codexport()
        .arg("--home")
        .arg(&m.home)
        .args(["--json", "master", "rebuild"])
        .env("CODEXPORT_EXPORT_ENV", "")
        .env("SHELL_SECRET", "s3cret")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    assert_eq!(f.json(&["sync", "--apply"])["apply"]["result"], "applied");
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(!text.contains("s3cret"), "still exported:\n{text}");
    assert!(text.contains("shell"), "{text}");
}
