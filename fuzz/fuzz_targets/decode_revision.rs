//! `Revision::decode` on arbitrary bytes: never panics, and whatever it accepts is canonical.
#![no_main]

use codexport::object::{ObjectKind, Revision};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rev) = Revision::decode(data) {
        assert_eq!(
            rev.encode(),
            data,
            "accepted a revision that re-encodes differently"
        );
        assert_eq!(rev.id(), ObjectKind::Revision.id_of(data));
    }
});
