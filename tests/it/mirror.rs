//! Static mirrors against real servers: nginx over a folder and moto's S3-compatible server.
//! Followers sync from them while the master is offline, with every check they make
//! against the master: a tampered, truncated or missing pack or keyring, a replayed or
//! expired head, a revoked follower and a publish killed before its head are all refused or
//! repaired.

use crate::util::*;
use codexport_dev::static_server::{Moto, Nginx};
use std::fs;
use std::path::PathBuf;

/// A master, a follower that joined it, a folder mirror behind nginx that the follower
/// knows of (its key registered), and the master stopped.
struct Offline {
    m: Home,
    f: Home,
    root: tempfile::TempDir,
    nginx: Nginx,
}

impl Offline {
    fn mirror(&self) -> PathBuf {
        self.root.path().join("mirror")
    }

    /// A new revision on the master, published to the mirror with the master still offline.
    fn revise(&self, agents: &str) -> serde_json::Value {
        self.m.write("AGENTS.md", agents);
        settle();
        assert_eq!(self.m.json(&["master", "rebuild"])["created"], true);
        let published = self.m.json(&["master", "publish"]);
        assert!(
            published["mirrors"][0]["report"]["number"].is_u64(),
            "{published}"
        );
        published
    }

    fn packs(&self) -> Vec<PathBuf> {
        let mut p: Vec<PathBuf> = fs::read_dir(self.mirror().join("packs"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        p.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
        p
    }
}

fn offline_with_nginx(what: &str) -> Option<Offline> {
    let root = tempfile::tempdir().unwrap();
    let mirror = root.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    let nginx = match Nginx::start(&mirror) {
        Ok(n) => n,
        Err(e) => {
            codexport_dev::skip::skipped(what, &format!("nginx: {e}"));
            return None;
        }
    };
    let (m, master, f) = pair_with(|_| {});
    let added = m.json(&[
        "master",
        "mirror",
        "add",
        mirror.to_str().unwrap(),
        "--url",
        &nginx.url(),
    ]);
    assert_eq!(added["mirrors"][0]["url"], nginx.url(), "{added}");
    // The follower learns of the mirror, and gives its key, at its next sync.
    let synced = f.json(&["sync"]);
    assert!(synced.get("mirrors_error").is_none(), "{synced}");
    let listed = f.json(&["follower", "mirror", "list"]);
    assert_eq!(listed["learned"][0], nginx.url(), "{listed}");
    master.stop();
    // The running master published in the background; publishing again now is idempotent
    // and makes sure the mirror holds the follower's key.
    let published = m.json(&["master", "publish"]);
    assert_eq!(
        published["mirrors"][0]["report"]["recipients"], 1,
        "{published}"
    );
    let status = m.json(&["status"]);
    assert_eq!(status["mirrors"][0]["published"], 1, "{status}");
    Some(Offline { m, f, root, nginx })
}

fn agents(h: &Home) -> String {
    fs::read_to_string(h.codex().join("AGENTS.md")).unwrap()
}

#[test]
fn a_follower_syncs_from_nginx_while_the_master_is_offline() {
    let Some(o) = offline_with_nginx("a_follower_syncs_from_nginx_while_the_master_is_offline")
    else {
        return;
    };
    o.revise("# Agents\nFrom the mirror.\n");
    let before = o.nginx.requests().len();
    let synced = o.f.json(&["sync", "--apply"]);
    assert_eq!(synced["result"], "fetched", "{synced}");
    assert_eq!(synced["source"], o.nginx.url(), "{synced}");
    assert_eq!(agents(&o.f), "# Agents\nFrom the mirror.\n");
    // The head file, the keyring (read once: the content key is remembered), then the one
    // delta pack this follower lacks.
    let requests = &o.nginx.requests()[before..];
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[0].contains("GET /head "), "{requests:#?}");
    assert!(requests[1].contains("GET /keys/"), "{requests:#?}");
    assert!(requests[2].contains("GET /packs/"), "{requests:#?}");
    // Nothing on the mirror is readable without the key: no plaintext of the revision.
    for p in o.packs() {
        let bytes = fs::read(&p).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"From the mi"),
            "{} holds plaintext",
            p.display()
        );
    }
    let head = fs::read(o.mirror().join("head")).unwrap();
    assert!(!head.windows(6).any(|w| w == b"Agents"));

    let status = o.f.json(&["status", "--timeout-ms", "3000"]);
    let s = &status;
    assert_eq!(s["fetched_from"], o.nginx.url(), "{status}");
    assert_eq!(s["mirrors"][0]["reachable"], true, "{status}");
    assert_eq!(s["mirrors"][0]["number"], 2, "{status}");
    assert_eq!(s["remote"]["reachable"], false, "{status}");
    // Nothing new: one request, the head.
    let before = o.nginx.requests().len();
    assert_eq!(o.f.json(&["sync", "--apply"])["result"], "current");
    assert_eq!(o.nginx.requests().len() - before, 1);
    // The next revision: two round trips, the head file then the delta pack.
    o.revise("# Agents\nFrom the mirror, again.\n");
    let before = o.nginx.requests().len();
    assert_eq!(o.f.json(&["sync", "--apply"])["result"], "fetched");
    let requests = &o.nginx.requests()[before..];
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].contains("GET /head "), "{requests:#?}");
    assert!(requests[1].contains("GET /packs/"), "{requests:#?}");
    assert_eq!(agents(&o.f), "# Agents\nFrom the mirror, again.\n");
    assert!(o.f.run(&["fsck"]).ok());
}

#[test]
fn a_new_checkpoint_still_sends_a_current_follower_only_the_change() {
    let Some(o) = offline_with_nginx("a_new_checkpoint_still_sends_only_the_change") else {
        return;
    };
    // A change as large as the rest of the closure: the next publish starts a new chain.
    let big = (0..40_000).fold(String::new(), |mut s, i| {
        s.push_str(&format!("line {i}\n"));
        s
    });
    o.revise(&big);
    assert_eq!(o.f.json(&["sync", "--apply"])["number"], 2);
    let old = o.packs();
    // A small change: the checkpoint holds the large file, the delta only the change.
    o.m.write("prompts/note.md", "A small note.\n");
    settle();
    assert_eq!(o.m.json(&["master", "rebuild"])["created"], true);
    let published = o.m.json(&["master", "publish"]);
    let report = &published["mirrors"][0]["report"];
    // A new chain: a checkpoint of revision 2, then the delta to 3.
    assert_eq!(report["packs"], 2, "{published}");
    assert_eq!(report["packs_uploaded"], 2, "{published}");
    let mut new: Vec<(u64, PathBuf)> = o
        .packs()
        .into_iter()
        .filter(|p| !old.contains(p))
        .map(|p| (fs::metadata(&p).unwrap().len(), p))
        .collect();
    new.sort();
    let [(delta_size, delta), (checkpoint_size, _)] = &new[..] else {
        panic!("{new:?}");
    };
    assert!(*checkpoint_size > 10 * delta_size, "{new:?}");
    // The follower at revision 2 downloads the delta alone.
    let before = o.nginx.served().len();
    let synced = o.f.json(&["sync", "--apply"]);
    assert_eq!(synced["number"], 3, "{synced}");
    let served = o.nginx.served().split_off(before);
    let name = delta.file_name().unwrap().to_str().unwrap();
    assert_eq!(served.len(), 2, "{served:#?}");
    assert!(served[1].path().ends_with(name), "{served:#?}");
    assert_eq!(synced["wire_bytes"], *delta_size, "{synced}");
    assert_eq!(
        fs::read_to_string(o.f.codex().join("prompts/note.md")).unwrap(),
        "A small note.\n"
    );
    assert!(o.f.run(&["fsck"]).ok());
}

#[test]
fn damaged_truncated_and_missing_packs_are_refused_then_repaired_by_publish() {
    let Some(o) = offline_with_nginx("damaged_truncated_and_missing_packs_are_refused") else {
        return;
    };
    o.revise("# Agents\nRevision 2.\n");
    let delta = o.packs().pop().expect("a delta pack");
    let good = fs::read(&delta).unwrap();

    // A flipped byte: refused before anything is opened.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(&delta, &bad).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("codexport::mirror::damaged"),
        "{}",
        r.stdout
    );
    assert!(agents(&o.f).starts_with("# Agents\n") && !agents(&o.f).contains("Revision 2"));

    // Cut short: refused too.
    fs::write(&delta, &good[..good.len() - 100]).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert!(
        r.stdout.contains("codexport::mirror::damaged"),
        "{}",
        r.stdout
    );

    // Missing: `master publish` puts exactly that pack back (the same bytes).
    fs::remove_file(&delta).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert!(
        r.stdout.contains("codexport::mirror::missing"),
        "{}",
        r.stdout
    );
    let again = o.m.json(&["master", "publish"]);
    assert_eq!(
        again["mirrors"][0]["report"]["packs_uploaded"], 1,
        "{again}"
    );
    assert_eq!(fs::read(&delta).unwrap(), good, "remade byte for byte");
    // A download cut half-way resumes where it stopped, with a Range request.
    let name = delta.file_stem().unwrap().to_str().unwrap().to_owned();
    let downloads = o.f.state().join("mirror-downloads");
    fs::create_dir_all(&downloads).unwrap();
    fs::write(
        downloads.join(format!("{name}.part")),
        &good[..good.len() / 2],
    )
    .unwrap();
    let before = o.nginx.requests().len();
    let resumed = o.f.json(&["sync", "--apply"]);
    assert_eq!(resumed["result"], "fetched");
    assert_eq!(
        resumed["wire_bytes"].as_u64().unwrap(),
        (good.len() - good.len() / 2) as u64,
        "{resumed}"
    );
    let requests = &o.nginx.requests()[before..];
    assert!(
        requests
            .iter()
            .any(|l| l.contains(&name) && l.contains("\" 206 ")),
        "{requests:#?}"
    );
    assert_eq!(agents(&o.f), "# Agents\nRevision 2.\n");
    assert!(o.f.run(&["fsck"]).ok());
}

#[test]
fn the_keyring_is_checked_and_read_once_per_content_key() {
    let Some(o) = offline_with_nginx("the_keyring_is_checked_and_read_once") else {
        return;
    };
    o.revise("# Agents\nRevision 2.\n");
    let keyrings: Vec<PathBuf> = fs::read_dir(o.mirror().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [keyring] = &keyrings[..] else {
        panic!("{keyrings:?}");
    };
    let good = fs::read(keyring).unwrap();
    // Another keyring in its place: refused before any key is taken from it.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    fs::write(keyring, &bad).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert!(
        r.stdout.contains("codexport::mirror::damaged"),
        "{}",
        r.stdout
    );
    // Missing: `master publish` puts it back, the same bytes.
    fs::remove_file(keyring).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert!(
        r.stdout.contains("codexport::mirror::missing"),
        "{}",
        r.stdout
    );
    o.m.json(&["master", "publish"]);
    assert_eq!(fs::read(keyring).unwrap(), good, "made again byte for byte");
    assert_eq!(o.f.json(&["sync", "--apply"])["number"], 2);
    // The content key is remembered: the next revision is read without the keyring.
    o.revise("# Agents\nRevision 3.\n");
    fs::remove_file(keyring).unwrap();
    assert_eq!(o.f.json(&["sync", "--apply"])["number"], 3);
    assert_eq!(agents(&o.f), "# Agents\nRevision 3.\n");
}

#[test]
fn replayed_and_expired_mirror_heads_are_refused() {
    let Some(o) = offline_with_nginx("replayed_and_expired_mirror_heads_are_refused") else {
        return;
    };
    o.revise("# Agents\nRevision 2.\n");
    let old_head = fs::read(o.mirror().join("head")).unwrap();
    o.revise("# Agents\nRevision 3.\n");
    assert_eq!(o.f.json(&["sync", "--apply"])["number"], 3);
    // The mirror (or someone in front of it) serves the older head again.
    fs::write(o.mirror().join("head"), &old_head).unwrap();
    let r = o.f.run(&["--json", "sync", "--apply"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("codexport::trust::replay"),
        "{}",
        r.stdout
    );
    assert_eq!(agents(&o.f), "# Agents\nRevision 3.\n");

    // A head past its expiry (heads on this mirror last 30 days): refused.
    o.revise("# Agents\nRevision 4.\n");
    let later = (31 * 86_400).to_string();
    let r = run_env(
        &o.f.home,
        &["--json", "sync", "--apply"],
        &[("CODEXPORT_CLOCK_OFFSET_SECS", later.as_str())],
    );
    assert!(
        r.stdout.contains("codexport::trust::expired"),
        "{}",
        r.stdout
    );
    assert_eq!(agents(&o.f), "# Agents\nRevision 3.\n");
    // `master publish --refresh` signs the head again, with a new expiry.
    let refreshed = run_env(
        &o.m.home,
        &["--json", "master", "publish", "--refresh"],
        &[("CODEXPORT_CLOCK_OFFSET_SECS", later.as_str())],
    );
    assert!(refreshed.ok(), "{}", refreshed.stderr);
    let r = run_env(
        &o.f.home,
        &["--json", "sync", "--apply"],
        &[("CODEXPORT_CLOCK_OFFSET_SECS", later.as_str())],
    );
    assert!(r.ok(), "{}", r.stdout);
    assert_eq!(agents(&o.f), "# Agents\nRevision 4.\n");
}

#[test]
fn a_publish_killed_before_its_head_leaves_the_previous_revision_served() {
    let Some(o) = offline_with_nginx("a_publish_killed_before_its_head") else {
        return;
    };
    o.m.write("AGENTS.md", "# Agents\nNot yet.\n");
    settle();
    o.m.json(&["master", "rebuild"]);
    let killed = run_env(
        &o.m.home,
        &["master", "publish"],
        &[("CODEXPORT_CRASH_BEFORE_MIRROR_HEAD", "1")],
    );
    assert_eq!(killed.code, 3, "{}", killed.stderr);
    // The new pack is there, the head is the old one: followers see revision 1, whole.
    assert_eq!(o.f.json(&["sync", "--apply"])["result"], "current");
    assert!(!agents(&o.f).contains("Not yet"));
    // Publishing again uploads nothing but the head.
    let again = o.m.json(&["master", "publish"]);
    assert_eq!(
        again["mirrors"][0]["report"]["packs_uploaded"], 0,
        "{again}"
    );
    assert_eq!(o.f.json(&["sync", "--apply"])["number"], 2);
    assert_eq!(agents(&o.f), "# Agents\nNot yet.\n");
}

#[test]
fn a_revoked_follower_cannot_read_what_is_published_after() {
    let root = tempfile::tempdir().unwrap();
    let mirror = root.path().join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    let nginx = match Nginx::start(&mirror) {
        Ok(n) => n,
        Err(e) => codexport_dev::skip!("a_revoked_follower_cannot_read", format!("nginx: {e}")),
    };
    let (m, master, kept) = pair_with(|_| {});
    let gone = Home::new();
    enroll(&m, &master, &gone);
    m.json(&[
        "master",
        "mirror",
        "add",
        mirror.to_str().unwrap(),
        "--url",
        &nginx.url(),
    ]);
    kept.json(&["sync"]);
    gone.json(&["sync", "--apply"]);
    let name = gone.json(&["status"])["name"].as_str().unwrap().to_owned();
    m.json(&["master", "followers", "revoke", &name]);
    master.stop();
    m.write("AGENTS.md", "# Agents\nAfter the revocation.\n");
    settle();
    m.json(&["master", "rebuild"]);
    let published = m.json(&["master", "publish"]);
    let report = &published["mirrors"][0]["report"];
    assert_eq!(report["new_key"], true, "{published}");
    assert_eq!(report["recipients"], 1, "{published}");
    // The one kept syncs from the mirror; the revoked one cannot open anything.
    assert_eq!(kept.json(&["sync", "--apply"])["number"], 2);
    assert_eq!(agents(&kept), "# Agents\nAfter the revocation.\n");
    let r = gone.run(&["--json", "sync", "--apply"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("codexport::mirror::locked"),
        "{}",
        r.stdout
    );
    assert!(!agents(&gone).contains("After the revocation"));
}

#[test]
fn an_s3_mirror_is_published_with_credentials_and_read_anonymously() {
    let moto = match Moto::start() {
        Ok(m) => m,
        Err(e) => codexport_dev::skip!("an_s3_mirror (moto_server)", e),
    };
    moto.public_bucket("team").unwrap();
    let endpoint = moto.endpoint();
    let aws: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let (m, master, f) = pair_with(|_| {});
    let url = format!("{endpoint}/team/codexport");
    let added = run_env(
        &m.home,
        &[
            "--json",
            "master",
            "mirror",
            "add",
            "s3://team/codexport",
            "--url",
            &url,
        ],
        &aws,
    );
    assert!(added.ok(), "{}", added.stderr);
    f.json(&["sync"]);
    master.stop();
    m.write("AGENTS.md", "# Agents\nFrom S3.\n");
    settle();
    m.json(&["master", "rebuild"]);
    let published = run_env(&m.home, &["--json", "master", "publish"], &aws);
    assert!(published.ok(), "{}\n{}", published.stdout, published.stderr);
    let synced = f.json(&["sync", "--apply"]);
    assert_eq!(synced["source"], url, "{synced}");
    assert_eq!(agents(&f), "# Agents\nFrom S3.\n");
    // gc prunes the packs no index names any more (a checkpoint replaced by deltas stays).
    let gc = run_env(&m.home, &["--json", "gc"], &aws);
    assert!(gc.ok(), "{}", gc.stderr);
    assert!(gc.stdout.contains("\"mirrors\""), "{}", gc.stdout);
    assert!(f.run(&["fsck"]).ok());
}
