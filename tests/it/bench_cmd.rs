//! `codexport bench sync`: the whole benchmark on a small generated library.

use crate::util::Home;

#[test]
fn bench_sync_reports_every_phase() {
    let h = Home::new();
    let v = h.json(&["bench", "sync", "--files", "200", "--runs", "1"]);
    assert_eq!(v["library"]["source"], "generated");
    assert_eq!(v["library"]["files"], 200);
    assert_eq!(v["runs"], 1);
    for phase in ["cold", "no_change", "one_file_change"] {
        for field in ["median_ms", "objects", "object_bytes", "wire_bytes"] {
            assert!(v[phase][field].is_number(), "{phase}.{field} missing: {v}");
        }
        assert_eq!(v[phase]["runs_ms"].as_array().map(Vec::len), Some(1), "{v}");
    }
    for field in [
        "lstat_baseline_ms",
        "read_hash_baseline_ms",
        "master_rebuild_ms",
        "one_file_ideal_bytes",
    ] {
        assert!(v[field].is_number(), "{field} missing: {v}");
    }
    // The cold fetch moved the whole library; nothing moved when nothing changed.
    assert!(v["cold"]["objects"].as_u64().unwrap() >= 200, "{v}");
    assert_eq!(v["no_change"]["objects"], 0, "{v}");
    assert_eq!(v["no_change"]["wire_bytes"], 0, "{v}");
    // One changed file: its blob, the trees on its path and the revision.
    let one = v["one_file_change"]["objects"].as_u64().unwrap();
    assert!(
        (1..=10).contains(&one),
        "one-file change fetched {one} objects: {v}"
    );
    assert!(
        v["one_file_change"]["wire_bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
}

#[test]
fn bench_sync_refuses_zero_files() {
    let h = Home::new();
    let r = h.run(&["bench", "sync", "--files", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--files"), "{}", r.stderr);
}
