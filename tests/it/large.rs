//! Large files: chunked by content, sent as stored, written piece by piece; an edit inside a
//! large file costs about the edit on the wire.

use crate::util::*;
use codexport_dev::library::noise;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const BIG: &str = "skills/models/weights.bin";
const BIG_LEN: usize = 24 << 20;

fn same_file(m: &Home, f: &Home, rel: &str) {
    let (a, b) = (
        fs::read(m.codex().join(rel)).unwrap(),
        fs::read(f.codex().join(rel)).unwrap(),
    );
    assert!(a == b, "{rel} differs between master and follower");
}

#[test]
fn a_large_file_travels_in_chunks_and_an_edit_inside_it_costs_the_edit() {
    let (m, master, f) = pair_with(|_| {});
    let mut big = noise(BIG_LEN, 1);
    m.write(BIG, &big);
    // Compressible text above the threshold: stored and sent compressed.
    m.write(
        "skills/notes/log.md",
        "a line of notes that repeats\n".repeat(150_000),
    );
    settle();
    let built = m.json(&["master", "rebuild"]);
    assert_eq!(built["created"], true, "{built}");

    let first = f.json(&["sync", "--apply"]);
    assert_eq!(first["result"], "fetched", "{first}");
    same_file(&m, &f, BIG);
    same_file(&m, &f, "skills/notes/log.md");
    let wire = first["wire_bytes"].as_u64().unwrap();
    assert!(
        wire < (BIG_LEN as u64) + (2 << 20),
        "the compressible file went compressed: {wire} bytes on the wire"
    );

    // One byte in the middle: only the chunks around it travel.
    big[BIG_LEN / 2] ^= 0xff;
    m.write(BIG, &big);
    settle();
    assert_eq!(m.json(&["master", "rebuild"])["created"], true);
    let edit = f.json(&["sync", "--apply"]);
    assert_eq!(edit["result"], "fetched", "{edit}");
    let wire = edit["wire_bytes"].as_u64().unwrap();
    assert!(
        wire <= 2 << 20 << 1,
        "a one-byte edit of a 24 MiB file sent {wire} bytes"
    );
    same_file(&m, &f, BIG);

    // The same content under another name: nothing new to send but the trees.
    fs::copy(
        m.codex().join(BIG),
        m.codex().join("skills/models/copy.bin"),
    )
    .unwrap();
    settle();
    m.json(&["master", "rebuild"]);
    let copy = f.json(&["sync", "--apply"]);
    assert!(
        copy["wire_bytes"].as_u64().unwrap() < 64 << 10,
        "identical chunks were sent again: {copy}"
    );
    same_file(&m, &f, "skills/models/copy.bin");

    // Drift inside a large file is seen and repaired.
    let path = f.codex().join(BIG);
    let mut local = fs::read(&path).unwrap();
    local[100] ^= 1;
    fs::write(&path, &local).unwrap();
    let v = f.run(&["verify"]);
    assert_eq!(v.code, 1, "{}", v.stdout);
    assert!(v.stdout.contains("weights.bin"), "{}", v.stdout);
    f.json(&["apply"]);
    same_file(&m, &f, BIG);
    assert!(f.run(&["verify"]).ok());

    // `show` names the chunks instead of printing a large file; diff calls it binary.
    let shown = f.json(&["show", "HEAD", BIG]);
    let chunks = shown["chunks"]
        .as_array()
        .expect("a chunked file lists chunks");
    assert!(chunks.len() > 10, "{shown}");
    let total: u64 = chunks.iter().map(|c| c["size"].as_u64().unwrap()).sum();
    assert_eq!(total, BIG_LEN as u64);
    assert!(shown.get("content_hex").is_none());

    big[7] ^= 1;
    m.write(BIG, &big);
    settle();
    m.json(&["master", "rebuild"]);
    f.json(&["sync"]);
    let diff = f.json(&["diff", "--patch"]);
    assert!(diff["binary"].to_string().contains("weights.bin"), "{diff}");

    for home in [&m, &f] {
        assert!(home.run(&["fsck"]).ok());
    }
    master.stop();
}

#[test]
fn a_large_private_file_arrives_owner_only() {
    let (m, master, f) = pair_with(|_| {});
    let p = m.write("skills/private/key.bin", noise(5 << 20, 3));
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    settle();
    m.json(&["master", "rebuild"]);
    f.json(&["sync", "--apply"]);
    let mode = fs::metadata(f.codex().join("skills/private/key.bin"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    same_file(&m, &f, "skills/private/key.bin");
    master.stop();
}
