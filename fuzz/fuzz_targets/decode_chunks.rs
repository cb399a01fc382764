//! A chunk list (CXCL) as the store and the wire carry it. `ChunkList::decode` must never
//! panic, and whatever it accepts re-encodes to the same bytes, names at least one chunk and
//! no chunk outside 1 byte to MAX_CHUNK.
#![no_main]

use codexport::object::ChunkList;
use codexport::object::chunks::{MAX_CHUNK, MAX_CHUNKS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = ChunkList::decode(data) {
        assert_eq!(list.encode(), data);
        assert!(!list.chunks().is_empty() && list.chunks().len() <= MAX_CHUNKS);
        assert!(
            list.chunks()
                .iter()
                .all(|c| c.size >= 1 && c.size <= u64::from(MAX_CHUNK))
        );
    }
});
