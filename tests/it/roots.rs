//! Several roots: `~/.agents/skills` travels next to `~/.codex`, into its own place on each
//! follower, with the same convergence, backups and rollback; a follower's own skills there
//! are left alone; `CODEX_HOME` places the Codex root on both sides.

use crate::util::{
    Home, Master, enroll, join_apply, link, master_home, pair_with, run_env, settle,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `~/.agents/skills` of a home.
fn agents(h: &Home) -> PathBuf {
    h.home.join(".agents/skills")
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn skill(name: &str, body: &str) -> String {
    format!("---\nname: {name}\ndescription: {body}\n---\n{body}\n")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn paths_of(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn agent_skills_travel_alone_and_a_followers_own_skill_is_left_alone() {
    let (m, _master, f) = pair_with(|f| {
        write(
            &agents(f).join("mine/SKILL.md"),
            &skill("mine", "the follower's own"),
        );
    });
    // The master had no ~/.agents: nothing there is managed, the follower's skill stays.
    assert_eq!(
        read(&agents(&f).join("mine/SKILL.md")),
        skill("mine", "the follower's own")
    );

    // A change under ~/.agents/skills alone makes a new revision…
    write(&agents(&m).join("review/SKILL.md"), &skill("review", "v1"));
    write(&agents(&m).join("review/scripts/check.sh"), "#!/bin/sh\n");
    settle();
    let r = m.json(&["master", "rebuild"]);
    assert_eq!(
        (r["created"].as_bool(), r["number"].as_u64()),
        (Some(true), Some(2)),
        "{r}"
    );
    assert_eq!(r["changes"]["added"], 2, "{r}");
    // …which reaches the follower in one sync, in its own place.
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied", "{s}");
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "v1")
    );
    assert_eq!(
        read(&agents(&f).join("mine/SKILL.md")),
        skill("mine", "the follower's own")
    );
    assert!(f.run(&["verify"]).ok());
    let shown = f.json(&["show", "HEAD", "agents-skills/review/SKILL.md"]);
    assert_eq!(shown["content"], skill("review", "v1"));

    // An edit there is drift like any other: listed, backed up, repaired.
    fs::write(agents(&f).join("review/SKILL.md"), "my edit").unwrap();
    let v = f.run(&["--json", "verify"]);
    assert_eq!(v.code, 1);
    let v: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(
        paths_of(&v["differences"]),
        ["agents-skills/review/SKILL.md"]
    );
    let a = f.json(&["apply"]);
    assert_eq!(
        a["drift"],
        serde_json::json!(["agents-skills/review/SKILL.md"]),
        "{a}"
    );
    let backup = Path::new(a["backup_dir"].as_str().unwrap());
    assert_eq!(
        read(&backup.join("agents-skills/review/SKILL.md")),
        "my edit"
    );
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "v1")
    );

    // The master drops its skill: the follower's copy goes, its own stays.
    fs::remove_dir_all(agents(&m).join("review")).unwrap();
    settle();
    assert_eq!(m.json(&["master", "rebuild"])["number"], 3);
    f.json(&["sync", "--apply"]);
    assert!(!agents(&f).join("review").exists());
    assert_eq!(
        read(&agents(&f).join("mine/SKILL.md")),
        skill("mine", "the follower's own")
    );
    assert!(f.run(&["verify"]).ok());

    // Rollback to revision 2 puts it back, with the same journal and index as ~/.codex.
    let r = f.json(&["rollback", "2"]);
    assert_eq!(r["result"], "applied", "{r}");
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "v1")
    );
    f.json(&["apply"]);
    assert!(!agents(&f).join("review").exists());
    assert!(f.run(&["fsck"]).ok());
}

#[test]
fn master_serve_publishes_a_new_agent_skills_root_and_its_changes() {
    let m = master_home();
    let master = Master::start(&m, true);
    let f = Home::new();
    enroll(&m, &master, &f);
    f.json(&["sync", "--apply"]);
    // ~/.agents does not exist yet: the watcher waits for it.
    write(&agents(&m).join("new/SKILL.md"), &skill("new", "first"));
    let landed = agents(&f).join("new/SKILL.md");
    wait_for(&f, "the new root's first skill", || {
        fs::read_to_string(&landed).ok() == Some(skill("new", "first"))
    });
    write(&agents(&m).join("new/SKILL.md"), &skill("new", "second"));
    wait_for(&f, "an edit in the new root", || {
        fs::read_to_string(&landed).ok() == Some(skill("new", "second"))
    });
    drop(master);
}

/// Syncs `f` until `done`, for at most 20 s.
fn wait_for(f: &Home, what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} never reached the follower"
        );
        std::thread::sleep(Duration::from_millis(200));
        f.run(&["sync", "--apply"]);
    }
}

#[test]
fn local_skills_of_the_overlay_land_in_either_root() {
    let (m, _master, f) = pair_with(|_| {});
    write(
        &agents(&m).join("review/SKILL.md"),
        &skill("review", "master"),
    );
    settle();
    m.json(&["master", "rebuild"]);
    write(
        &f.state().join("agent-skills/notes/SKILL.md"),
        &skill("notes", "local"),
    );
    write(
        &f.state().join("skills/mine/SKILL.md"),
        &skill("mine", "local"),
    );
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied", "{s}");
    assert_eq!(
        read(&agents(&f).join("notes/SKILL.md")),
        skill("notes", "local")
    );
    assert_eq!(
        read(&f.codex().join("skills/mine/SKILL.md")),
        skill("mine", "local")
    );
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "master")
    );

    // A local skill named like one of the master's in the same root is refused…
    write(
        &f.state().join("agent-skills/review/SKILL.md"),
        &skill("review", "mine"),
    );
    let r = f.run(&["apply"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("review") && r.stderr.contains("agent-skills"),
        "{}",
        r.stderr
    );
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "master")
    );
    // …unless allowed.
    fs::write(
        f.state().join("local.toml"),
        "allowSkillOverrides = [\"review\"]\n",
    )
    .unwrap();
    f.json(&["apply"]);
    assert_eq!(
        read(&agents(&f).join("review/SKILL.md")),
        skill("review", "mine")
    );

    // Declared in the overlay, a local skill is managed: taken out of it, it goes.
    fs::remove_dir_all(f.state().join("agent-skills/notes")).unwrap();
    f.json(&["apply"]);
    assert!(!agents(&f).join("notes").exists());
    assert!(f.run(&["verify"]).ok());
}

#[test]
fn codex_home_places_the_codex_root_on_master_and_follower() {
    let m = Home::new();
    let master_codex = m.home.join("elsewhere/codex");
    write(&master_codex.join("AGENTS.md"), "# from CODEX_HOME\n");
    write(
        &master_codex.join("config.toml"),
        &format!(
            "[agents.reviewer]\nconfig_file = \"{}/agents/reviewer.toml\"\n",
            master_codex.display()
        ),
    );
    write(
        &master_codex.join("agents/reviewer.toml"),
        "name = \"reviewer\"\ndescription = \"reviews\"\ndeveloper_instructions = \"Review.\"\n",
    );
    let env = [("CODEX_HOME", master_codex.to_str().unwrap())];
    let init = run_env(&m.home, &["--json", "master", "init"], &env);
    assert!(init.ok(), "{}", init.stderr);
    assert!(!m.codex().exists(), "~/.codex was not used");
    let master = Master::spawn(
        &m,
        &codexport_dev::serve::ServeOptions::new()
            .env("CODEX_HOME", master_codex.to_str().unwrap()),
    );
    let f = Home::new();
    let follower_codex = f.home.join("other/place");
    let fenv = [("CODEX_HOME", follower_codex.to_str().unwrap())];
    let joined = join_apply(&f, &link(&m, &master), &fenv);
    assert!(joined.ok(), "{}", joined.stderr);
    assert_eq!(
        read(&follower_codex.join("AGENTS.md")),
        "# from CODEX_HOME\n"
    );
    assert!(!f.codex().exists(), "the follower's ~/.codex was not used");
    let config = read(&follower_codex.join("config.toml"));
    assert!(
        config.contains(&format!(
            "config_file = \"{}/agents/reviewer.toml\"",
            follower_codex.display()
        )),
        "the master's codex dir is mapped to the follower's: {config}"
    );
    assert!(run_env(&f.home, &["verify"], &fenv).ok());
    // --codex-dir wins over CODEX_HOME.
    let flag = f.home.join("flag-codex");
    let r = run_env(
        &f.home,
        &["--codex-dir", flag.to_str().unwrap(), "apply"],
        &fenv,
    );
    assert!(r.ok(), "{}", r.stderr);
    assert_eq!(read(&flag.join("AGENTS.md")), "# from CODEX_HOME\n");
    drop(master);
}

#[test]
fn custom_agents_travel_with_their_paths_mapped() {
    let m = Home::new();
    m.write(
        "config.toml",
        format!(
            "model = \"gpt-5\"\n[agents.reviewer]\ndescription = \"reviews\"\nconfig_file = \"{c}/agents/reviewer.toml\"\n[marketplaces.team]\nsource_type = \"local\"\nsource = \"{h}/src/team-plugins\"\n",
            c = m.codex().display(),
            h = m.home.display()
        ),
    );
    m.write(
        "agents/reviewer.toml",
        format!(
            "# the reviewer\nname = \"reviewer\"\ndescription = \"reviews\"\ndeveloper_instructions = \"\"\"\nRead {h}/docs/style.md first.\n\"\"\"\nmodel_instructions_file = \"{h}/prompts/review.md\"\n\n[mcp_servers.docs]\ncommand = \"{h}/bin/docs\"\nargs = [\"--root\", \"{c}/skills\"]\n\n[[skills.config]]\npath = \"{h}/.agents/skills/review/SKILL.md\"\nenabled = true\n",
            h = m.home.display(),
            c = m.codex().display()
        ),
    );
    m.write("agents/broken.toml", "name = \n");
    settle();
    assert!(m.run(&["master", "init"]).ok());
    let master = Master::start(&m, false);
    let f = Home::new();
    enroll(&m, &master, &f);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["apply"]["result"], "applied", "{s}");
    let warnings = s["apply"]["warnings"].to_string();
    assert!(
        warnings.contains("codex/agents/broken.toml") && warnings.contains("not mapped"),
        "{s}"
    );
    let text = read(&f.codex().join("agents/reviewer.toml"));
    let doc: toml_edit::DocumentMut = text.parse().expect("the agent file parses");
    let (h, c) = (
        f.home.display().to_string(),
        f.codex().display().to_string(),
    );
    assert_eq!(
        doc["mcp_servers"]["docs"]["command"].as_str(),
        Some(format!("{h}/bin/docs").as_str())
    );
    assert_eq!(
        doc["mcp_servers"]["docs"]["args"][1].as_str(),
        Some(format!("{c}/skills").as_str())
    );
    assert_eq!(
        doc["skills"]["config"][0]["path"].as_str(),
        Some(format!("{h}/.agents/skills/review/SKILL.md").as_str())
    );
    assert_eq!(
        doc["model_instructions_file"].as_str(),
        Some(format!("{h}/prompts/review.md").as_str())
    );
    assert!(
        text.starts_with("# the reviewer\n"),
        "comments stay: {text}"
    );
    // Prose is not a path field: the master's text stays as written.
    assert!(
        doc["developer_instructions"]
            .as_str()
            .unwrap()
            .contains(&format!("{}/docs/style.md", m.home.display())),
        "{text}"
    );
    // The broken one is the master's, as is.
    assert_eq!(read(&f.codex().join("agents/broken.toml")), "name = \n");
    let config: toml_edit::DocumentMut = read(&f.codex().join("config.toml")).parse().unwrap();
    assert_eq!(
        config["agents"]["reviewer"]["config_file"].as_str(),
        Some(format!("{c}/agents/reviewer.toml").as_str())
    );
    assert_eq!(
        config["marketplaces"]["team"]["source"].as_str(),
        Some(format!("{h}/src/team-plugins").as_str())
    );
    assert!(f.run(&["verify"]).ok());
}
