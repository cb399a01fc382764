//! `Tree::decode` on arbitrary bytes: never panics, and whatever it accepts is canonical.
#![no_main]

use codexport::object::{ObjectKind, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data) {
        assert_eq!(
            tree.encode(),
            data,
            "accepted a tree that re-encodes differently"
        );
        assert_eq!(tree.id(), ObjectKind::Tree.id_of(data));
        for pair in tree.entries().windows(2) {
            assert!(pair[0].name.as_str().as_bytes() < pair[1].name.as_str().as_bytes());
        }
    }
});
