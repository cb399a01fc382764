//! `SignedHead::decode` on arbitrary bytes: never panics, and an accepted head re-encodes to
//! exactly the bytes it came from.
#![no_main]

use codexport::object::SignedHead;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = SignedHead::decode(data) {
        assert_eq!(
            head.encode(),
            data,
            "accepted a head that re-encodes differently"
        );
    }
});
