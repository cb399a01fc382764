//! The real Codex CLI (pinned in `tools.rs`) on a follower after `join --apply`: it lists
//! the master's user skills from both roots (`~/.codex/skills` and `~/.agents/skills`), the
//! custom agent is there and parses, and the plugins the master enabled are installed, from
//! a local marketplace folder and from a Git marketplace served on loopback.

use crate::util::{Home, Master, join_apply, link, run_env, settle};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A skill folder's SKILL.md, with what Codex requires of one.
fn skill(name: &str) -> String {
    format!("---\nname: {name}\ndescription: the {name} skill\n---\nDo {name}.\n")
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A marketplace folder as Codex reads one: `.agents/plugins/marketplace.json` naming one
/// plugin, which carries one skill.
fn marketplace(root: &Path, name: &str, plugin: &str, version: &str) {
    write(
        &root.join(".agents/plugins/marketplace.json"),
        &format!(
            r#"{{"name":"{name}","plugins":[{{"name":"{plugin}","source":{{"source":"local","path":"./plugins/{plugin}"}}}}]}}"#
        ),
    );
    let dir = root.join("plugins").join(plugin);
    write(
        &dir.join(".codex-plugin/plugin.json"),
        &format!(
            r#"{{"name":"{plugin}","version":"{version}","description":"{plugin}","skills":"./skills/"}}"#
        ),
    );
    write(
        &dir.join(format!("skills/{plugin}-skill/SKILL.md")),
        &skill(&format!("{plugin}-skill")),
    );
}

/// Serves the files below a folder over HTTP on 127.0.0.1 (GET only, one request per
/// connection): enough for git's dumb HTTP protocol. Stops when dropped.
struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let root = root.clone();
                    std::thread::spawn(move || serve_one(&root, conn));
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(root: &Path, mut conn: TcpStream) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // The rest of the request head.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/");
    let file = (!path.contains(".."))
        .then(|| root.join(path.trim_start_matches('/')))
        .filter(|f| f.is_file());
    let body = file.and_then(|f| fs::read(f).ok());
    let status = if body.is_some() {
        "200 OK"
    } else {
        "404 Not Found"
    };
    let body = body.unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

/// A bare Git repository of `work` below `served`, ready for dumb HTTP.
fn git_repository(work: &Path, served: &Path, name: &str) -> Result<(), String> {
    let git = |dir: &Path, args: &[&str]| {
        crate::tools::succeed(
            Command::new("git")
                .args(["-c", "user.email=m@example.com", "-c", "user.name=m"])
                .args(args)
                .current_dir(dir),
            &format!("git {}", args.join(" ")),
        )
    };
    git(work, &["init", "-q", "-b", "main"])?;
    git(work, &["add", "-A"])?;
    git(work, &["commit", "-q", "-m", "marketplace"])?;
    let bare = served.join(name);
    fs::create_dir_all(served).unwrap();
    git(
        served,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    )?;
    git(&bare, &["update-server-info"])
}

/// `codex …` for a home (its own HOME and CODEX_HOME, nothing from the caller's).
fn codex_in(codex: &Path, h: &Home) -> Command {
    let mut cmd = Command::new(codex);
    cmd.env("HOME", &h.home)
        .env("CODEX_HOME", h.codex())
        .env("OPENAI_API_KEY", "sk-test")
        .current_dir(&h.home);
    cmd
}

fn run_codex(codex: &Path, h: &Home, args: &[&str]) -> String {
    let out = codex_in(codex, h).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "codex {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the app-server's `skills/list` reports for `cwd` = the home: (name, scope, plugin).
fn listed_skills(codex: &Path, h: &Home) -> BTreeSet<(String, String, Option<String>)> {
    let mut child = codex_in(codex, h)
        .arg("app-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let cwd = h.home.display().to_string();
    for r in [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "codexport-test", "version": "1"}}}),
        serde_json::json!({"jsonrpc": "2.0", "method": "initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "skills/list", "params": {"cwds": [cwd]}}),
    ] {
        writeln!(stdin, "{r}").unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("skills/list answered within 60 s");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["id"] == 2 {
            break v;
        }
    };
    drop(stdin);
    crate::tools::stop_codex(&mut child);
    answer["result"]["data"][0]["skills"]
        .as_array()
        .unwrap_or_else(|| panic!("no skills in {answer}"))
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["scope"].as_str().unwrap().to_owned(),
                s["pluginId"].as_str().map(str::to_owned),
            )
        })
        .filter(|(_, scope, _)| scope != "system")
        .collect()
}

/// `codex plugin list --json`'s installed plugins: (id, enabled).
fn installed_plugins(codex: &Path, h: &Home) -> BTreeSet<(String, bool)> {
    let list: serde_json::Value =
        serde_json::from_str(&run_codex(codex, h, &["plugin", "list", "--json"])).unwrap();
    list["installed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["installed"] == true)
        .map(|p| {
            (
                p["pluginId"].as_str().unwrap().to_owned(),
                p["enabled"] == true,
            )
        })
        .collect()
}

/// The team's marketplace: a folder every machine keeps at `~/team-plugins`, with the plugin
/// `hello`.
fn team_marketplace(h: &Home) {
    marketplace(&h.home.join("team-plugins"), "team", "hello", "1.2.3");
}

/// Adds the team's marketplace to `m`'s Codex and installs `hello@team` from it, with Codex.
fn add_team_plugin(codex: &Path, m: &Home) {
    team_marketplace(m);
    let team = m.home.join("team-plugins");
    run_codex(
        codex,
        m,
        &["plugin", "marketplace", "add", team.to_str().unwrap()],
    );
    run_codex(codex, m, &["plugin", "add", "hello@team"]);
}

/// A master set up the way a user does, with Codex itself: a skill in each root, a custom
/// agent, and two plugins, from a marketplace folder in the home and from a Git marketplace
/// served on loopback. Returns it with what its Codex lists, and the server.
struct Setup {
    master: Home,
    plugins: BTreeSet<(String, bool)>,
    skills: BTreeSet<(String, String, Option<String>)>,
    _server: FileServer,
    _git_dir: tempfile::TempDir,
}

fn master_set_up_with_codex(codex: &Path) -> Setup {
    let m = Home::new();
    m.write("config.toml", "model = \"gpt-5-codex\"\n");
    m.write("skills/deploy/SKILL.md", skill("deploy"));
    write(
        &m.home.join(".agents/skills/review/SKILL.md"),
        &skill("review"),
    );
    m.write(
        "agents/reviewer.toml",
        format!(
            "name = \"reviewer\"\ndescription = \"Reviews changes\"\ndeveloper_instructions = \"Review carefully.\"\n\n[mcp_servers.docs]\ncommand = \"{h}/bin/docs\"\n\n[[skills.config]]\npath = \"{h}/.agents/skills/review/SKILL.md\"\nenabled = true\n",
            h = m.home.display()
        ),
    );
    add_team_plugin(codex, &m);
    // A Git marketplace, served on loopback.
    let git_dir = tempfile::tempdir().unwrap();
    marketplace(&git_dir.path().join("work"), "remote", "greet", "0.4.0");
    git_repository(
        &git_dir.path().join("work"),
        &git_dir.path().join("served"),
        "remote.git",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let server = FileServer::start(git_dir.path().join("served"));
    let git_url = format!("http://127.0.0.1:{}/remote.git", server.port);
    run_codex(codex, &m, &["plugin", "marketplace", "add", &git_url]);
    run_codex(codex, &m, &["plugin", "add", "greet@remote"]);
    let plugins = installed_plugins(codex, &m);
    assert_eq!(
        plugins,
        [
            ("greet@remote".to_owned(), true),
            ("hello@team".to_owned(), true)
        ]
        .into()
    );
    let skills = listed_skills(codex, &m);
    Setup {
        master: m,
        plugins,
        skills,
        _server: server,
        _git_dir: git_dir,
    }
}

#[test]
fn real_codex_sees_the_masters_skills_agents_and_plugins_on_a_follower() {
    let codex = match crate::tools::codex_cli() {
        Ok(codex) => codex,
        Err(why) => codexport_dev::skip!(
            "real_codex_sees_the_masters_skills_agents_and_plugins_on_a_follower",
            why
        ),
    };
    if let Err(why) = crate::tools::succeed(Command::new("git").arg("--version"), "git") {
        codexport_dev::skip!("the Git marketplace on loopback", why);
    }
    let setup = master_set_up_with_codex(&codex);
    let m = &setup.master;
    settle();
    let init = m.json(&["master", "init"]);
    // Codex's plugin cache and marketplace snapshots are its own runtime state.
    assert!(
        init["snapshot"]["not_synced"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{init}"
    );
    let master = Master::start(m, false);

    let f = Home::new();
    team_marketplace(&f);
    let bin = [("CODEXPORT_CODEX_BIN", codex.to_str().unwrap())];
    let joined = join_apply(&f, &link(m, &master), &bin);
    assert!(joined.ok(), "{}\n{}", joined.stdout, joined.stderr);
    let joined: serde_json::Value = serde_json::from_str(&joined.stdout).unwrap();
    let installed: BTreeSet<&str> = joined["plugins"]["installed"]
        .as_array()
        .unwrap_or_else(|| panic!("{joined}"))
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(installed, ["greet@remote", "hello@team"].into(), "{joined}");

    // Codex on the follower: the same plugins installed and enabled…
    assert_eq!(installed_plugins(&codex, &f), setup.plugins);
    // …the same user skills, from both roots, and the plugins' skills.
    let follower_skills = listed_skills(&codex, &f);
    assert_eq!(follower_skills, setup.skills);
    for want in ["deploy", "review"] {
        assert!(
            follower_skills.contains(&(want.to_owned(), "user".to_owned(), None)),
            "{want} missing from {follower_skills:?}"
        );
    }
    assert!(
        follower_skills
            .iter()
            .any(|(_, _, p)| p.as_deref() == Some("greet@remote")),
        "{follower_skills:?}"
    );
    // The custom agent is there, parses, and points at the follower's paths.
    let agent: toml_edit::DocumentMut = fs::read_to_string(f.codex().join("agents/reviewer.toml"))
        .unwrap()
        .parse()
        .expect("the custom agent parses");
    assert_eq!(agent["name"].as_str(), Some("reviewer"));
    let review = f.home.join(".agents/skills/review/SKILL.md");
    assert_eq!(
        agent["skills"]["config"][0]["path"].as_str(),
        review.to_str()
    );
    // Installing changed nothing codexport manages, and nothing is left to install.
    assert!(f.run(&["verify"]).ok());
    let status = f.json(&["status"]);
    assert!(status["plugins"].is_null(), "{status}");
    drop(master);
}

/// `codexport --json ARGS` on `f` with the Codex CLI given, parsed.
fn json_with(f: &Home, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let r = run_env(&f.home, &all, env);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", r.stderr))
}

#[test]
fn a_plugin_that_cannot_be_installed_is_listed_by_status_and_repaired_later() {
    let codex = match crate::tools::codex_cli() {
        Ok(codex) => codex,
        Err(why) => codexport_dev::skip!(
            "a_plugin_that_cannot_be_installed_is_listed_by_status_and_repaired_later",
            why
        ),
    };
    let m = Home::new();
    m.write("config.toml", "model = \"gpt-5-codex\"\n");
    add_team_plugin(&codex, &m);
    settle();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    let f = Home::new();
    let bin = [("CODEXPORT_CODEX_BIN", codex.to_str().unwrap())];
    // The follower has no copy of the team's marketplace folder.
    let joined = run_env(
        &f.home,
        &["follower", "join", "--apply", &link(&m, &master)],
        &bin,
    );
    assert!(
        joined.ok(),
        "a plugin that cannot be installed fails no sync: {}",
        joined.stderr
    );
    assert!(
        joined.stdout.contains("hello@team could not be installed"),
        "{}",
        joined.stdout
    );
    let status = json_with(&f, &["status"], &bin);
    let plugin = &status["plugins"][0];
    assert_eq!(plugin["id"], "hello@team", "{status}");
    assert_eq!(plugin["state"], "failed", "{status}");
    let error = plugin["error"].as_str().unwrap();
    assert!(
        error.contains(&f.home.join("team-plugins").display().to_string())
            && error.contains("codexport plugins repair"),
        "{error}"
    );
    let text = run_env(&f.home, &["status"], &bin);
    assert!(
        text.stdout
            .contains("plugin       hello@team could not be installed"),
        "{}",
        text.stdout
    );
    // Not tried again at every sync for the same config.toml…
    let again = json_with(&f, &["sync", "--apply"], &bin);
    let log = fs::read_to_string(f.state().join("logs/plugins/hello@team.log")).unwrap();
    assert_eq!(
        log.matches("could not be installed").count(),
        1,
        "{log}\n{again}"
    );
    // …until the user fixes it and asks.
    team_marketplace(&f);
    let repaired = run_env(&f.home, &["--json", "plugins", "repair"], &bin);
    assert!(repaired.ok(), "{}\n{}", repaired.stdout, repaired.stderr);
    assert_eq!(
        installed_plugins(&codex, &f),
        [("hello@team".to_owned(), true)].into()
    );
    assert!(json_with(&f, &["status"], &bin)["plugins"].is_null());
    drop(master);
}

#[test]
fn the_session_start_hook_installs_a_new_plugin_in_the_background() {
    let codex = match crate::tools::codex_cli() {
        Ok(codex) => codex,
        Err(why) => codexport_dev::skip!(
            "the_session_start_hook_installs_a_new_plugin_in_the_background",
            why
        ),
    };
    let m = Home::new();
    m.write("config.toml", "model = \"gpt-5-codex\"\n");
    settle();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    let f = Home::new();
    crate::util::enroll(&m, &master, &f);
    f.json(&["sync", "--apply"]);
    // Later the master enables a plugin of the team's marketplace, which both machines have.
    team_marketplace(&f);
    add_team_plugin(&codex, &m);
    settle();
    assert_eq!(m.json(&["master", "rebuild"])["number"], 2);
    // The hook applies it within its deadline and leaves the install to a process of its own.
    let hook = run_env(
        &f.home,
        &["hook", "run"],
        &[("CODEXPORT_CODEX_BIN", codex.to_str().unwrap())],
    );
    assert_eq!(
        (hook.code, hook.stdout.as_str()),
        (0, ""),
        "{}",
        hook.stderr
    );
    let log = fs::read_to_string(f.state().join("logs/hook.log")).unwrap();
    assert!(
        log.contains("installing plugins in the background"),
        "{log}"
    );
    let cache = f.codex().join("plugins/cache/team/hello/1.2.3");
    let started = Instant::now();
    while !cache.is_dir() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the background install did not finish: {}",
            fs::read_to_string(f.state().join("logs/plugins/hello@team.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        installed_plugins(&codex, &f),
        [("hello@team".to_owned(), true)].into()
    );
    drop(master);
}
