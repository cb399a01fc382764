//! `codexport bench sync`: the whole benchmark on a small generated library, and its
//! large-content cases on small sizes.

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
    // The cold headline compares like with like: join --apply against rsync + sync.
    let cold = &v["cold_apply"];
    assert!(
        cold["join_apply"]["median_ms"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(
        cold["rsync"].is_object() || cold["rsync_skipped"].is_string(),
        "{v}"
    );
    assert!(v["apply"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    // Without a previous release the comparison says it was skipped, and its targets are n/a.
    let skipped = v["followers"]["skipped"].as_str().unwrap();
    assert!(skipped.contains("--baseline-bin"), "{skipped}");
    let cpu = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with("master CPU"))
        .unwrap();
    assert!(cpu["met"].is_null(), "{cpu}");
    assert!(v["large_file"].is_null(), "{v}");
}

#[test]
fn bench_sync_large_content_reports_peaks_and_the_edit() {
    let h = Home::new();
    let v = h.json(&[
        "bench",
        "sync",
        "--files",
        "50",
        "--runs",
        "1",
        "--large-content",
        "--content-mib",
        "4",
    ]);
    let file = &v["large_file"];
    assert_eq!(file["file_bytes"], 4 << 20, "{v}");
    // A one-byte edit in the middle moves about one chunk, not the file.
    let edit = file["edit"]["sync"]["wire_bytes"].as_u64().unwrap();
    assert!(edit > 0 && edit < 3 << 20, "{edit}");
    assert_eq!(v["large_library"]["files"], 4, "{v}");
    let names: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("peak memory of apply")),
        "{names:?}"
    );
    if codexport_dev::measure::Meter::new(h.home.as_path()).measures_usage() {
        for kind in [
            "master_init",
            "master_rebuild",
            "master_serve",
            "join_apply",
            "apply",
        ] {
            assert!(
                file["peak_rss_kib"][kind].as_u64().unwrap() > 0,
                "{kind}: {v}"
            );
        }
    }
}

#[test]
fn bench_sync_refuses_zero_content() {
    let h = Home::new();
    let r = h.run(&["bench", "sync", "--large-content", "--content-mib", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--content-mib"), "{}", r.stderr);
}

#[test]
fn bench_sync_refuses_zero_files() {
    let h = Home::new();
    let r = h.run(&["bench", "sync", "--files", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--files"), "{}", r.stderr);
}
