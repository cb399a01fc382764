//! Tests of the config merge.

use super::*;

fn ctx() -> ConfigContext {
    ConfigContext {
        master_home: "/home/m".into(),
        master_codex_dir: "/home/m/.codex".into(),
        home: "/Users/f".into(),
        codex_dir: "/Users/f/.codex".into(),
        master_host: Some("master.tailnet.ts.net".into()),
        ..ConfigContext::default()
    }
}

const MASTER: &str = r#"# The master's config
model = "gpt-5"   # inline comment

[projects."/home/m/src/app"]
trust_level = "trusted"

[projects."/home/mx/other"]
trust_level = "trusted"

# Filesystem server
[mcp_servers.fs]
command = "/home/m/.codex/bin/fs"
args = ["/home/m/docs", "${data}/x", "${nope}"]
env = { ROOT = "/home/m/work" }
startup_timeout_sec = 20

[mcp_servers.web]
url = "http://127.0.0.1:9000/mcp"
env = { TOKEN = "x" }
"#;

#[test]
fn paths_comments_urls() {
    let mut c = ctx();
    c.path_variables.insert("data".into(), "/data".into());
    let m = merge_config(MASTER, &c).unwrap();
    let t = &m.text;
    assert!(
        t.contains("# The master's config")
            && t.contains("# inline comment")
            && t.contains("# Filesystem server"),
        "{t}"
    );
    assert!(t.contains("[projects.\"/Users/f/src/app\"]"), "{t}");
    assert!(
        t.contains("[projects.\"/home/mx/other\"]"),
        "a path that merely starts alike is not rewritten: {t}"
    );
    assert!(t.contains("command = \"/Users/f/.codex/bin/fs\""), "{t}");
    assert!(
        t.contains("\"/Users/f/docs\", \"/data/x\", \"${nope}\""),
        "{t}"
    );
    assert!(t.contains("ROOT = \"/Users/f/work\""), "{t}");
    assert!(
        t.contains("url = \"http://master.tailnet.ts.net:9000/mcp\""),
        "{t}"
    );
    assert_eq!(
        t.matches("env =").count(),
        1,
        "the URL server lost env: {t}"
    );
    assert_eq!(m.unknown_variables, ["nope"]);
    let doc: DocumentMut = t.parse().unwrap();
    assert_eq!(
        doc["mcp_servers"]["fs"]["startup_timeout_sec"].as_integer(),
        Some(20)
    );
}

#[test]
fn inline_table_keys_are_rewritten() {
    let m = merge_config(
        "projects = { \"/home/m/src\" = { trust_level = \"trusted\" } }\n",
        &ctx(),
    )
    .unwrap();
    let doc: DocumentMut = m.text.parse().unwrap();
    assert!(doc["projects"].get("/Users/f/src").is_some(), "{}", m.text);
    assert!(!m.text.contains("/home/m"), "{}", m.text);
}

#[test]
fn windows_style_paths() {
    let c = ConfigContext {
        master_home: "C:\\Users\\m".into(),
        master_codex_dir: "C:\\Users\\m\\.codex".into(),
        ..ctx()
    };
    let m = merge_config("[projects.'C:\\Users\\m\\src']\ntrust_level = \"trusted\"\n[mcp_servers.a]\ncommand = 'C:\\Users\\m\\.codex\\run.cmd'\n", &c).unwrap();
    assert!(m.text.contains("/Users/f/src"), "{}", m.text);
    assert!(
        m.text.contains("command = \"/Users/f/.codex/run.cmd\""),
        "separators follow the follower: {}",
        m.text
    );
}

#[test]
fn local_mcps_conflicts_and_overrides() {
    let mut c = ctx();
    c.local_mcps = Some("[mcp_servers.fs]\ncommand = \"local-fs\"\n[mcp_servers.mine]\ncommand = \"${home}/bin/mine\"\n".into());
    let err = merge_config(MASTER, &c).unwrap_err();
    assert!(err.to_string().contains("fs"), "{err}");
    c.allow_mcp_overrides = vec!["fs".into()];
    let m = merge_config(MASTER, &c).unwrap();
    let doc: DocumentMut = m.text.parse().unwrap();
    assert_eq!(
        doc["mcp_servers"]["fs"]["command"].as_str(),
        Some("local-fs")
    );
    assert!(
        doc["mcp_servers"]["fs"]
            .get("startup_timeout_sec")
            .is_none(),
        "the local table replaces the canonical one"
    );
    assert_eq!(
        doc["mcp_servers"]["mine"]["command"].as_str(),
        Some("/Users/f/bin/mine")
    );
    assert_eq!(m.text.matches("[mcp_servers.fs]").count(), 1, "{}", m.text);
}

/// Found by the `config_merge` fuzz target: inputs on which toml_edit 0.23's parser
/// panics are refused as bad config, wherever they come from.
#[test]
fn parser_panics_are_parse_errors() {
    for bad in ["==\n[.", "={=<=u=="] {
        assert!(crate::toml_doc::parse(bad).is_err(), "{bad:?}");
        let err = merge_config(bad, &ctx()).unwrap_err();
        assert!(
            matches!(
                err,
                OverlayError::BadConfig {
                    which: "the master's config.toml",
                    ..
                }
            ),
            "{err}"
        );
        let c = ConfigContext {
            local_mcps: Some(bad.into()),
            ..ctx()
        };
        let err = merge_config(MASTER, &c).unwrap_err();
        assert!(
            matches!(
                err,
                OverlayError::BadConfig {
                    which: "~/.codexport/mcps.local.toml",
                    ..
                }
            ),
            "{err}"
        );
        // A bad current or previous config only means no follower entries are kept.
        let c = ConfigContext {
            current: Some(bad.into()),
            previous_master: Some(bad.into()),
            ..ctx()
        };
        merge_config(MASTER, &c).unwrap();
    }
}

/// Found while seeding the `config_merge` fuzz target: with the master's projects (or
/// hooks) written as inline tables, keeping the follower's own trust entries replaced
/// the master's whole table.
#[test]
fn follower_entries_join_inline_tables() {
    let master = "projects = { \"/srv/shared\" = { trust_level = \"trusted\" } }\nhooks = { enabled = true, state = { a = { trusted_hash = \"x\" } } }\n";
    let mut c = ctx();
    c.current = Some("[projects.\"/Users/f/mine\"]\ntrust_level = \"trusted\"\n[hooks.state.b]\ntrusted_hash = \"y\"\n".into());
    let m = merge_config(master, &c).unwrap();
    let doc: DocumentMut = m.text.parse().unwrap();
    assert_eq!(
        doc["projects"]["/srv/shared"]["trust_level"].as_str(),
        Some("trusted"),
        "{}",
        m.text
    );
    assert_eq!(
        doc["projects"]["/Users/f/mine"]["trust_level"].as_str(),
        Some("trusted"),
        "{}",
        m.text
    );
    assert_eq!(doc["hooks"]["enabled"].as_bool(), Some(true), "{}", m.text);
    assert_eq!(
        doc["hooks"]["state"]["a"]["trusted_hash"].as_str(),
        Some("x"),
        "{}",
        m.text
    );
    assert_eq!(
        doc["hooks"]["state"]["b"]["trusted_hash"].as_str(),
        Some("y"),
        "{}",
        m.text
    );
}

#[test]
fn follower_trust_entries_survive() {
    let mut c = ctx();
    c.previous_master = Some(merge_config(MASTER, &ctx()).unwrap().text);
    c.current = Some(format!(
        "{}\n[projects.\"/Users/f/mine\"]\ntrust_level = \"trusted\"\n[hooks.state.\"/Users/f/.codex/hooks.json:session_start:0:0\"]\ntrusted_hash = \"sha256:ab\"\n",
        c.previous_master.clone().unwrap()
    ));
    // The master drops its app project; the follower's own entries stay, the dropped one goes.
    let next = MASTER.replace(
        "[projects.\"/home/m/src/app\"]\ntrust_level = \"trusted\"\n",
        "",
    );
    let m = merge_config(&next, &c).unwrap();
    let doc: DocumentMut = m.text.parse().unwrap();
    assert!(doc["projects"].get("/Users/f/mine").is_some(), "{}", m.text);
    assert!(
        doc["projects"].get("/Users/f/src/app").is_none(),
        "{}",
        m.text
    );
    assert!(
        doc["hooks"]["state"]
            .get("/Users/f/.codex/hooks.json:session_start:0:0")
            .is_some(),
        "{}",
        m.text
    );
}
