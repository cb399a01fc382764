//! Serve, join and sync against a real master process on 127.0.0.1.

use crate::mitm::{Mitm, Mode};
use crate::util::{Home, Master, enroll, master_home, settle};
use codexport::store::{ObjectSource, Store};

/// Points the follower at another URL (a proxy in front of the master).
fn point_at(follower: &Home, url: &str) {
    let path = follower.state().join("follower.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["master_url"] = toml_edit::value(url);
    std::fs::write(path, doc.to_string()).unwrap();
}

fn fetched(follower: &Home) -> Option<String> {
    let store = Store::open(&follower.state()).unwrap();
    store
        .read()
        .unwrap()
        .get_ref(codexport::follower::FETCHED)
        .unwrap()
        .map(|id| id.to_string())
}

#[test]
fn join_sync_one_file_change_and_no_change() {
    let m = master_home();
    let master = Master::start(&m, false);
    let f = Home::new();
    let joined = enroll(&m, &master, &f);
    assert_eq!(joined["role"], "follower");
    assert_eq!(joined["sync"]["result"], "fetched");
    assert_eq!(joined["sync"]["number"], 1);
    let cold_objects = joined["sync"]["objects"].as_u64().unwrap();
    assert!(cold_objects > 14, "all blobs, trees and the revision");

    // The follower's store holds the same files the master snapshotted.
    {
        let store = Store::open(&f.state()).unwrap();
        let r = store.read().unwrap();
        let rev = r
            .revision(&r.get_ref(codexport::follower::FETCHED).unwrap().unwrap())
            .unwrap();
        let files = codexport::store::diff::walk_files(&r, rev.root).unwrap();
        assert_eq!(files.len(), 14);
    }
    assert!(f.run(&["fsck"]).ok());

    let none = f.json(&["sync"]);
    assert_eq!(none["result"], "current");
    assert_eq!(none["objects"], 0);

    // One file changes on the master; `master rebuild` runs while serve holds the store.
    let new_content = "Fix it, with a test.\n";
    m.write("prompts/fix.md", new_content);
    let rebuilt = m.json(&["master", "rebuild"]);
    assert_eq!(rebuilt["number"], 2);
    let s = f.json(&["sync"]);
    assert_eq!(s["result"], "fetched");
    assert_eq!(s["number"], 2);
    assert_eq!(
        s["objects"], 5,
        "the blob, the prompts tree, the codex tree, the tree of roots and the revision"
    );
    let blob = new_content.len() as u64;
    let bytes = s["object_bytes"].as_u64().unwrap();
    assert!(
        bytes > blob && bytes < blob + 2_000,
        "only the blob and small trees: {bytes}"
    );
    assert_eq!(
        f.json(&["show", "HEAD", "prompts/fix.md"])["content"],
        new_content
    );
    let log = f.json(&["log"]);
    assert_eq!(log["revisions"][0]["modified"], 1);

    let status = f.json(&["status"]);
    assert_eq!(status["role"], "follower");
    assert_eq!(status["remote"]["reachable"], true);
    assert_eq!(status["remote"]["pending_update"], false);
    assert_eq!(status["last_sync"]["result"], "fetched");
    master.stop();

    let listed = m.json(&["master", "followers"]);
    assert_eq!(listed["followers"][0]["last_revision"], 2, "{listed}");
}

#[test]
fn watcher_publishes_changes_and_new_roots() {
    let m = master_home();
    std::fs::remove_dir_all(m.codex().join("prompts")).unwrap();
    settle();
    let master = Master::start(&m, true);
    let f = Home::new();
    enroll(&m, &master, &f);
    let first = f.json(&["sync"])["number"].as_u64().unwrap();
    m.write("prompts/new.md", "a root created after start\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = f.json(&["sync"]);
        if s["number"].as_u64().unwrap() > first {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never published the change"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        f.json(&["show", "HEAD", "prompts/new.md"])["content"],
        "a root created after start\n"
    );
}

#[test]
fn wrong_fingerprint_is_refused_and_nothing_is_stored() {
    let m = master_home();
    let master = Master::start(&m, false);
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let f = Home::new();
    let r = f.run(&[
        "follower",
        "join",
        "--master",
        &master.url,
        "--fingerprint",
        "00112233445566778899aabbccddeeff00112233",
        "--token",
        link["token"].as_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Master fingerprint mismatch. Expected 00112233"),
        "{}",
        r.stderr
    );
    assert!(!f.state().join("follower.toml").exists());
    assert!(!f.state().join("credential").exists());
    // The token was not spent: the right fingerprint still enrolls with it.
    let ok = f.json(&["follower", "join", link["link"].as_str().unwrap()]);
    assert_eq!(ok["sync"]["result"], "fetched");
}

#[test]
fn tokens_are_single_use_expire_and_revocation_cuts_off() {
    let m = master_home();
    let master = Master::start(&m, false);
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let a = Home::new();
    a.json(&["follower", "join", link["link"].as_str().unwrap()]);
    let b = Home::new();
    let reused = b.run(&["follower", "join", link["link"].as_str().unwrap()]);
    assert_eq!(reused.code, 2, "{}", reused.stderr);
    assert!(reused.stderr.contains("token"), "{}", reused.stderr);

    let expired = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
        "--expires-hours",
        "1",
    ]);
    // Two hours later (on the master's clock) the token has expired.
    master.stop();
    let master = Master::spawn(
        &m,
        &codexport_dev::serve::ServeOptions::new().env(codexport::time::CLOCK_OFFSET_ENV, "7200"),
    );
    let late = b.run(&[
        "follower",
        "join",
        expired["link"].as_str().unwrap(),
        "--master",
        &master.url,
    ]);
    assert_eq!(late.code, 2, "{}", late.stderr);
    assert!(late.stderr.contains("expired"), "{}", late.stderr);

    let name = m.json(&["master", "followers"])["followers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    m.json(&["master", "followers", "revoke", &name]);
    crate::sync_point_at(&a, &master.url);
    let cut = a.run(&["sync"]);
    assert_eq!(cut.code, 2, "{}", cut.stderr);
    assert!(cut.stderr.contains("revoked"), "{}", cut.stderr);

    // No credential at all.
    let resp = reqwest::blocking::get(format!("{}/v2/head", master.url)).unwrap();
    assert_eq!(resp.status(), 401);
    let health = reqwest::blocking::get(format!("{}/v2/health", master.url)).unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn tampered_replayed_and_corrupted_answers_are_refused() {
    let m = master_home();
    let master = Master::start(&m, false);
    let f = Home::new();
    enroll(&m, &master, &f);
    let old_head = {
        let v = reqwest::blocking::Client::new()
            .get(format!("{}/v2/head", master.url))
            .bearer_auth(
                std::fs::read_to_string(f.state().join("credential"))
                    .unwrap()
                    .trim(),
            )
            .send()
            .unwrap();
        v.bytes().unwrap().to_vec()
    };
    m.write("AGENTS.md", "# changed\n");
    m.json(&["master", "rebuild"]);
    let mitm = Mitm::start(&master.url, Mode::FlipHead(40));
    point_at(&f, &mitm.url);
    let before = fetched(&f);

    let r = f.run(&["sync"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not validly signed"), "{}", r.stderr);
    assert_eq!(fetched(&f), before);

    mitm.set(Mode::CorruptBlob);
    let r = f.run(&["sync"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not match its id"), "{}", r.stderr);
    assert_eq!(fetched(&f), before);

    mitm.set(Mode::Pass);
    assert_eq!(f.json(&["sync"])["number"], 2);
    mitm.set(Mode::ReplaceHead(old_head));
    let r = f.run(&["sync"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("replayed older head"), "{}", r.stderr);
    assert_eq!(f.json(&["log"])["revisions"][0]["number"], 2);
}

#[test]
fn truncated_stream_keeps_verified_objects_and_resumes() {
    let m = Home::new();
    m.realistic();
    for i in 0..200 {
        m.write(
            &format!("skills/many/file-{i:03}.md"),
            format!("content {i} {}\n", "x".repeat(i * 10)),
        );
    }
    settle();
    m.json(&["master", "init"]);
    let master = Master::start(&m, false);
    let f = Home::new();
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    // Enroll through a proxy that cuts the first stream in the middle.
    let mitm = Mitm::start(&master.url, Mode::Truncate(6_000));
    let proxied = link["link"].as_str().unwrap().replace(
        &format!("port={}", master.port()),
        &format!("port={}", mitm.url.rsplit(':').next().unwrap()),
    );
    let r = f.run(&["follower", "join", &proxied]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("stream"), "{}", r.stderr);
    let kept = {
        let store = Store::open(&f.state()).unwrap();
        let r = store.read().unwrap();
        assert!(
            r.get_ref(codexport::follower::FETCHED).unwrap().is_none(),
            "no ref moves on a cut stream"
        );
        r.partial(usize::MAX).unwrap().len() as u64
    };
    assert!(kept > 0, "verified objects are kept");

    mitm.set(Mode::Pass);
    let s = f.json(&["sync"]);
    assert_eq!(s["result"], "fetched");
    let total = {
        let store = Store::open(&m.state()).unwrap();
        let r = store.read().unwrap();
        r.head().unwrap().unwrap().body.objects
    };
    assert_eq!(
        s["objects"].as_u64().unwrap() + kept,
        total,
        "the second sync fetched exactly the remainder"
    );
    assert!(f.run(&["fsck"]).ok());
}
