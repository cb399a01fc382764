//! Adversarial answers, faults and load against real master processes on 127.0.0.1.
//!
//! Every refusal is checked the same way: the follower's command fails with a clear error,
//! its fetched ref and its `~/.codex` are unchanged, and `codexport fsck` is clean.

use crate::load::{check_runs, finish, spawn_sync};
use crate::mitm::{Mitm, Mode};
use crate::util::{Home, Master, Run, enroll, master_home, settle};
use codexport::object::{HeadBody, ObjectId, SignedHead};
use codexport::store::Store;
use codexport::transport::wire::{FetchRequest, MAX_HAVE, MAX_PARTIAL, MAX_REQUEST_BYTES};
use codexport_dev::library::{LibrarySpec, generate};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Points the follower at another URL (as `sync.rs` does for its proxy).
pub(crate) fn point_at(follower: &Home, url: &str) {
    let path = follower.state().join("follower.toml");
    let mut doc: toml_edit::DocumentMut = fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["master_url"] = toml_edit::value(url);
    fs::write(path, doc.to_string()).unwrap();
}

fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

pub(crate) fn fetched(follower: &Home) -> Option<String> {
    let store = Store::open(&follower.state()).unwrap();
    let r = store.read().unwrap();
    r.get_ref(codexport::follower::FETCHED)
        .unwrap()
        .map(|id| id.to_string())
}

/// Loose objects a follower kept from fetches that did not finish.
fn kept(follower: &Home) -> u64 {
    let store = Store::open(&follower.state()).unwrap();
    let r = store.read().unwrap();
    r.partial(usize::MAX).unwrap().len() as u64
}

pub(crate) fn credential(follower: &Home) -> String {
    fs::read_to_string(follower.state().join("credential"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The master's current signed head, fetched and verified.
pub(crate) fn head_of(master: &Master, follower: &Home) -> SignedHead {
    let bytes = reqwest::blocking::Client::new()
        .get(format!("{}/v2/head", master.url))
        .bearer_auth(credential(follower))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    SignedHead::decode(&bytes).unwrap()
}

/// Every entry below `dir`: kind, mode, size, mtime and content hash (or link target).
pub(crate) fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let mode = md.permissions().mode();
            let what = if md.file_type().is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if md.is_dir() {
                stack.push(p.clone());
                format!("dir {mode:o}")
            } else {
                let hash = blake3::hash(&fs::read(&p).unwrap());
                format!(
                    "file {mode:o} {} {}.{} {hash}",
                    md.len(),
                    md.mtime(),
                    md.mtime_nsec()
                )
            };
            out.insert(rel, what);
        }
    }
    out
}

pub(crate) fn assert_fsck_clean(home: &Home, what: &str) {
    let r = home.run(&["fsck"]);
    assert!(
        r.ok(),
        "fsck of {what} is not clean: {}{}",
        r.stdout,
        r.stderr
    );
}

/// Runs `sync --apply` and checks it is refused with `expect` and changes nothing.
fn assert_refused(f: &Home, case: &str, expect: &str) {
    let (before_ref, before_codex) = (fetched(f), listing(&f.codex()));
    let started = Instant::now();
    let r = f.run(&["sync", "--apply", "--timeout-ms", "30000"]);
    let took = started.elapsed();
    assert_ne!(r.code, 0, "{case}: accepted\n{}", r.stdout);
    assert!(
        r.stderr.contains(expect),
        "{case}: expected {expect:?} in\n{}",
        r.stderr
    );
    assert_eq!(fetched(f), before_ref, "{case}: the fetched ref moved");
    assert!(
        listing(&f.codex()) == before_codex,
        "{case}: ~/.codex changed"
    );
    assert_fsck_clean(f, case);
    let first = r
        .stderr
        .lines()
        .find(|l| l.contains('×'))
        .unwrap_or_default();
    eprintln!(
        "refused in {:>4} ms: {case}\n    {}",
        took.as_millis(),
        first.trim()
    );
}

/// Enrolls `follower` through a proxy that refuses the first fetch, then points it at the
/// master: the follower holds a credential and nothing else, so its first `sync` is cold.
pub(crate) fn enroll_cold(m: &Home, master: &Master, proxy: &Mitm, follower: &Home) {
    let link = m.json(&[
        "master",
        "link",
        "--host",
        "127.0.0.1",
        "--port",
        &master.port(),
    ]);
    let proxied = link["link"].as_str().unwrap().replace(
        &format!("port={}", master.port()),
        &format!("port={}", port_of(&proxy.url)),
    );
    let r = follower.run(&["follower", "join", &proxied]);
    assert!(!r.ok() && r.stderr.contains("503"), "{}", r.stderr);
    point_at(follower, &master.url);
}

/// A master home holding a generated library of `files` files, initialised.
pub(crate) fn library_master(files: usize) -> Home {
    let m = Home::new();
    generate(&m.codex(), &LibrarySpec { files, seed: 7 }).unwrap();
    settle();
    assert!(m.run(&["master", "init"]).ok());
    m
}

/// Bytes a process has written so far (files and sockets), from /proc/<pid>/io.
fn bytes_written(pid: u32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let line = io.lines().find(|l| l.starts_with("wchar:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Zstd frames of RLE blocks decompressing to `mib` MiB of zeros: 4 bytes per 128 KiB.
fn zeros(mib: usize) -> Vec<u8> {
    // Magic, a header without content size (window 2^17), then RLE blocks of 128 KiB.
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
    let blocks = 8 * 64;
    for i in 0..blocks {
        let last = u32::from(i == blocks - 1);
        let header = last | (1 << 1) | (128 << 10 << 3);
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    // One frame is 64 MiB; concatenated frames are one stream.
    frame.repeat(mib / 64)
}

/// A stream of protocol 2: its header, then `frames`.
fn stream(frames: &[u8]) -> Vec<u8> {
    [&b"CXST\x02"[..], frames].concat()
}

/// A frame head: kind, compression, stored length, declared size, id.
fn frame_head(kind: u8, zstd: bool, stored: u32, size: u32, id: [u8; 32]) -> Vec<u8> {
    let mut head = vec![kind, u8::from(zstd)];
    head.extend_from_slice(&stored.to_le_bytes());
    head.extend_from_slice(&size.to_le_bytes());
    head.extend_from_slice(&id);
    head
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

/// A head for the real revision, signed by a fresh key that names itself.
fn foreign_head(real: &SignedHead) -> Vec<u8> {
    let key = ed25519_dalek::SigningKey::from_bytes(&random_bytes::<32>());
    let body = HeadBody {
        master_key: key.verifying_key().to_bytes(),
        number: real.body.number + 1,
        ..real.body.clone()
    };
    body.sign(&key).encode()
}

// ---------------------------------------------------------------------------------------
// 1. Adversarial answers
// ---------------------------------------------------------------------------------------

#[test]
fn zstd_bomb_frames_are_what_they_claim() {
    let one = zeros(64);
    assert_eq!(one.len(), 6 + 4 * 512, "64 MiB of zeros in about 2 KiB");
    let plain = zstd::decode_all(&one[..]).unwrap();
    assert_eq!(plain.len(), 64 << 20);
    assert!(plain.iter().all(|b| *b == 0));
}

#[test]
fn adversarial_answers_are_refused_and_change_nothing() {
    let m = master_home();
    let master = Master::start(&m, false);
    let f = Home::new();
    enroll(&m, &master, &f);
    f.json(&["apply"]);
    m.write("AGENTS.md", "# changed\n");
    assert_eq!(m.json(&["master", "rebuild"])["number"], 2);
    let head = head_of(&master, &f);
    let mitm = Mitm::start(&master.url, Mode::Pass);
    point_at(&f, &mitm.url);

    let mut huge_frame = frame_head(1, false, u32::MAX, u32::MAX, [0; 32]);
    huge_frame.extend_from_slice(&vec![0; 1 << 20]);
    // 64 MiB of zeros in 2 KiB, declared (within the budget) as a 2 KiB object.
    let bomb = zeros(64);
    let mut bomb_frame = frame_head(1, true, bomb.len() as u32, bomb.len() as u32 + 100, [0; 32]);
    bomb_frame.extend_from_slice(&bomb);
    let over_budget = "exceeds what the signed head declares";
    let cases: Vec<(&str, Mode, &str)> = vec![
        (
            "1 MiB of zeros, no header",
            Mode::ReplaceFetch(vec![0; 1 << 20]),
            "bad stream header",
        ),
        (
            "stream header then 1 MiB of zeros",
            Mode::ReplaceFetch(stream(&[0; 1 << 20])),
            "incomplete after the fetch",
        ),
        (
            "a frame claiming 4 GiB, then 1 MiB of zeros",
            Mode::ReplaceFetch(stream(&huge_frame)),
            over_budget,
        ),
        (
            "an object whose stored bytes expand to 64 MiB, declared as 2 KiB",
            Mode::ReplaceFetch(stream(&bomb_frame)),
            "does not match its id",
        ),
        (
            "an endless stream of random blobs with true ids",
            Mode::Endless,
            over_budget,
        ),
        (
            "a blob framed as a tree under the blob's id",
            Mode::RetagBlob(2),
            "does not match its id",
        ),
        (
            "a blob framed as a revision under the blob's id",
            Mode::RetagBlob(3),
            "does not match its id",
        ),
        (
            "a frame of unknown kind 9",
            Mode::RetagBlob(9),
            "unknown object kind tag 9",
        ),
        (
            "a head signed by another master key",
            Mode::ReplaceHead(foreign_head(&head)),
            "Master fingerprint mismatch",
        ),
    ];
    for (case, mode, expect) in cases {
        mitm.set(mode);
        assert_refused(&f, case, expect);
    }
    eprintln!(
        "the endless stream was dropped after {} KiB (compressed, socket buffers included)",
        mitm.served() >> 10
    );
    assert!(
        mitm.served() < 64 << 20,
        "the follower read on: {}",
        mitm.served()
    );

    // The honest answer still goes through, and lands in ~/.codex.
    mitm.set(Mode::Pass);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["number"], 2, "{s}");
    assert_eq!(
        fs::read_to_string(f.codex().join("AGENTS.md")).unwrap(),
        "# changed\n"
    );
    assert_fsck_clean(&f, "the follower after the honest sync");
    // Random blobs of the endless stream were verified and kept as loose objects; once a
    // fetch completed they are no longer named, and `gc` drops them.
    assert_eq!(kept(&f), 0);
    let gc = f.json(&["gc"]);
    let fsck = f.json(&["fsck"]);
    assert_eq!(fsck["unreachable"], 0, "junk left after gc: {gc} {fsck}");
}

fn post_fetch(
    master: &Master,
    credential: Option<&str>,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{}/v2/fetch", master.url))
        .header("content-type", "application/x-codexport-fetch")
        .body(body);
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    req.send().unwrap()
}

#[test]
fn raw_requests_beyond_limits_or_without_credential_are_refused() {
    let m = master_home();
    let master = Master::start(&m, false);
    let f = Home::new();
    enroll(&m, &master, &f);
    let cred = credential(&f);
    let want = head_of(&master, &f).body.revision;
    let fetch = |have: usize, partial: usize| {
        FetchRequest {
            want,
            have: (0..have)
                .map(|i| ObjectId::from_bytes([(i % 251) as u8; 32]))
                .collect(),
            partial: vec![ObjectId::from_bytes([7; 32]); partial],
        }
        .encode()
    };
    let status = |resp: reqwest::blocking::Response| resp.status().as_u16();

    assert_eq!(status(post_fetch(&master, Some(&cred), fetch(0, 0))), 200);
    assert_eq!(
        status(post_fetch(&master, Some(&cred), fetch(MAX_HAVE, 0))),
        200
    );
    let too_many = post_fetch(&master, Some(&cred), fetch(MAX_HAVE + 1, 0));
    assert_eq!(too_many.status(), 400);
    let body: serde_json::Value = too_many.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("have list"),
        "{body}"
    );
    let partial = post_fetch(&master, Some(&cred), fetch(0, MAX_PARTIAL + 1));
    assert_eq!(status(partial), 400, "over {MAX_PARTIAL} partial ids");
    assert_eq!(
        status(post_fetch(
            &master,
            Some(&cred),
            b"CXFR\x01garbage".to_vec()
        )),
        400
    );
    // A body over the limit is refused from its announced length, before it is read (a
    // client that sends it anyway may meet the closed connection instead of the answer, so
    // this one announces it and waits).
    let huge = {
        use std::io::{Read, Write};
        let addr = master.url.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "POST /v2/fetch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {cred}\r\n\
             Content-Type: application/x-codexport-fetch\r\nContent-Length: {}\r\n\r\n",
            MAX_REQUEST_BYTES + 1
        )
        .unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    };
    assert_eq!(huge, "HTTP/1.1 413", "a body over the limit");

    let forged = format!("cxc1_{}", codexport::object::id::hex(&random_bytes::<32>()));
    for credential in [Some(forged.as_str()), None] {
        assert_eq!(
            status(post_fetch(&master, credential, fetch(0, 0))),
            401,
            "{credential:?}"
        );
        let mut req = reqwest::blocking::Client::new().get(format!("{}/v2/head", master.url));
        if let Some(c) = credential {
            req = req.bearer_auth(c);
        }
        assert_eq!(status(req.send().unwrap()), 401, "{credential:?}");
    }
    // The master still serves its follower, and both stores are sound.
    assert_eq!(f.json(&["sync"])["result"], "current");
    assert_fsck_clean(&f, "the follower");
    master.stop();
    assert_fsck_clean(&m, "the master");
}

// ---------------------------------------------------------------------------------------
// 2. Faults
// ---------------------------------------------------------------------------------------

/// Compressed bytes of the fetch answer the follower would get now (naming what it kept).
fn remaining_wire(master: &Master, f: &Home, want: ObjectId) -> usize {
    let partial = {
        let store = Store::open(&f.state()).unwrap();
        store.read().unwrap().partial(MAX_PARTIAL).unwrap()
    };
    let req = FetchRequest {
        want,
        have: Vec::new(),
        partial,
    };
    let resp = post_fetch(master, Some(&credential(f)), req.encode());
    assert_eq!(resp.status(), 200);
    resp.bytes().unwrap().len()
}

#[test]
fn network_cut_at_many_points_then_a_clean_sync_completes() {
    let m = library_master(600);
    let master = Master::start(&m, false);
    let f = Home::new();
    let mitm = Mitm::start(&master.url, Mode::RefuseFetch);
    enroll_cold(&m, &master, &mitm, &f);
    point_at(&f, &mitm.url);
    let head = head_of(&master, &f).body;
    let (total, mut last) = (head.objects, 0);
    // Fixed offsets (inside the HTTP and zstd headers), then fractions of what is left.
    let cuts: [fn(usize) -> usize; 12] = [
        |_| 0,
        |_| 1,
        |_| 4,
        |_| 13,
        |_| 40,
        |_| 500,
        |_| 4_096,
        |r| r / 8,
        |r| r / 4,
        |r| r / 2,
        |r| r * 3 / 4,
        |r| r - 1,
    ];
    for cut in cuts {
        let remaining = remaining_wire(&master, &f, head.revision);
        let n = cut(remaining);
        mitm.set(Mode::CutAfter(n));
        let r = f.run(&["sync", "--apply"]);
        assert_ne!(r.code, 0, "cut after {n} bytes: accepted");
        // Cut before the answer's headers, the connection failed; after, the stream did.
        let clear = r.stderr.contains("stream") || r.stderr.contains("connection closed");
        assert!(clear, "cut after {n}: {}", r.stderr);
        assert_eq!(fetched(&f), None, "cut after {n}: the ref moved");
        let codex = listing(&f.codex());
        assert!(codex.is_empty(), "cut after {n}: ~/.codex written");
        assert_fsck_clean(&f, &format!("the follower cut after {n} bytes"));
        let now = kept(&f);
        // A cut inside the end frame (17 bytes) comes after every object; the sync still
        // fails without it, and the next one fetches nothing more.
        let inside_end_frame = n + 17 > remaining;
        assert!(
            now >= last && (now < total || inside_end_frame),
            "cut after {n}: kept {now} of {total}"
        );
        eprintln!(
            "cut after {n:>7} of {remaining:>7} wire bytes: {now:>4} of {total} objects kept"
        );
        last = now;
    }
    assert!(
        last > total / 2,
        "the cuts kept too little: {last} of {total}"
    );
    mitm.set(Mode::Pass);
    let s = f.json(&["sync", "--apply"]);
    assert_eq!(s["result"], "fetched");
    let rest = s["objects"].as_u64().unwrap();
    assert_eq!(rest + last, total, "fetched exactly the rest");
    assert_eq!(kept(&f), 0);
    assert_eq!(listing(&f.codex()).len(), listing(&m.codex()).len());
    assert_fsck_clean(&f, "the follower after the clean sync");
}

#[test]
fn master_killed_mid_stream_then_restarted_serves_only_the_rest() {
    let m = library_master(3_000);
    let mut master = Master::start(&m, false);
    let f = Home::new();
    let mitm = Mitm::start(&master.url, Mode::RefuseFetch);
    enroll_cold(&m, &master, &mitm, &f);
    let head = head_of(&master, &f);
    // SIGKILL once the stream is well under way (its first 128 KiB written to the socket).
    let pid = master.pid();
    let before = bytes_written(pid);
    let started = Instant::now();
    let cut = std::thread::scope(|s| {
        let sync = s.spawn(|| f.run(&["sync"]));
        while bytes_written(pid) < before + (128 << 10) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the stream never started"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        master.kill();
        eprintln!(
            "master killed {} ms into the sync",
            started.elapsed().as_millis()
        );
        sync.join().unwrap()
    });
    drop(master);
    assert_ne!(
        cut.code, 0,
        "the sync finished before the kill: {}",
        cut.stdout
    );
    eprintln!(
        "sync cut by SIGKILL: {}",
        cut.stderr
            .lines()
            .find(|l| l.contains('×'))
            .unwrap_or_default()
            .trim()
    );
    assert_eq!(fetched(&f), None);
    let first = kept(&f);
    eprintln!(
        "kept {first} of {} objects from the killed stream",
        head.body.objects
    );
    assert!(
        first > 0,
        "nothing verified was kept from a stream cut mid-way"
    );
    assert_fsck_clean(&f, "the follower after the kill");

    let master = Master::start(&m, false);
    point_at(&f, &master.url);
    let again = head_of(&master, &f);
    assert_eq!(
        again.body.revision, head.body.revision,
        "a restart publishes nothing new"
    );
    let s = f.json(&["sync"]);
    assert_eq!(s["result"], "fetched");
    let second = s["objects"].as_u64().unwrap();
    assert_eq!(
        first + second,
        head.body.objects,
        "the second sync fetched only the rest"
    );
    assert_fsck_clean(&f, "the follower after the resumed sync");
    master.stop();
    assert_fsck_clean(&m, "the master after SIGKILL and restart");
}

#[test]
fn two_followers_follow_a_master_publishing_in_a_loop() {
    let m = master_home();
    let master = Master::start(&m, false);
    let followers = [Home::new(), Home::new()];
    for f in &followers {
        enroll(&m, &master, f);
    }
    let stop = AtomicBool::new(false);
    let mut last = 0;
    let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
        let syncs: Vec<_> = followers
            .iter()
            .map(|f| {
                let stop = &stop;
                s.spawn(move || {
                    let mut numbers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        numbers.push(f.json(&["sync", "--apply"])["number"].as_u64().unwrap());
                    }
                    numbers
                })
            })
            .collect();
        for i in 0..8 {
            m.write("prompts/loop.md", format!("round {i}\n"));
            m.write(&format!("skills/loop/r{i}.md"), format!("new file {i}\n"));
            settle();
            last = m.json(&["master", "rebuild"])["number"].as_u64().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        syncs.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(last, 9);
    for (f, numbers) in followers.iter().zip(&seen) {
        eprintln!("follower saw revisions {numbers:?}");
        assert!(
            numbers.windows(2).all(|w| w[0] <= w[1]),
            "went back: {numbers:?}"
        );
        assert_eq!(f.json(&["sync", "--apply"])["number"], last);
        assert_eq!(
            fs::read_to_string(f.codex().join("prompts/loop.md")).unwrap(),
            "round 7\n"
        );
        assert_fsck_clean(f, "a follower");
    }
}

#[test]
fn twenty_followers_sync_at_once() {
    let m = library_master(400);
    let master = Master::start(&m, false);
    let mitm = Mitm::start(&master.url, Mode::RefuseFetch);
    let followers: Vec<Home> = (0..20).map(|_| Home::new()).collect();
    for f in &followers {
        enroll_cold(&m, &master, &mitm, f);
    }
    let head = head_of(&master, &followers[0]);
    let started = Instant::now();
    let children: Vec<Child> = followers.iter().map(spawn_sync).collect();
    let runs: Vec<Run> = children.into_iter().map(finish).collect();
    eprintln!(
        "20 concurrent cold syncs of 400 files: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    check_runs(&runs, &head);
    for f in &followers {
        assert_eq!(fetched(f), Some(head.body.revision.to_string()));
    }
    for f in followers.iter().step_by(5) {
        assert_fsck_clean(f, "a follower");
    }
}
