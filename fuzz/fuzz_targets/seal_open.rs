//! A sealed file (CXE1) as a mirror serves it, opened with a fixed content key: `Opener`
//! must never panic, and must refuse every input that is not exactly what `seal` makes of
//! some plaintext under that key — so whatever it opens seals back to the same bytes.
#![no_main]

use codexport::seal::{ContentKey, Opener, seal_bytes};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let key = ContentKey::from_bytes([7; 32]);
    let Ok(mut opener) = Opener::new(&key, data) else {
        return;
    };
    let mut plain = Vec::new();
    if opener.read_to_end(&mut plain).is_ok() {
        assert_eq!(seal_bytes(&key, &plain), data, "opened what seal would not make");
    }
});
