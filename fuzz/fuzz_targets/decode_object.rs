//! An object as the store and the wire carry it: the first byte is the kind tag, the rest
//! the encoded object. `ObjectKind::from_tag` then `validate` must never panic.
#![no_main]

use codexport::object::{ChunkList, ObjectKind, Revision, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, bytes)) = data.split_first() else {
        return;
    };
    let Ok(kind) = ObjectKind::from_tag(tag) else {
        return;
    };
    assert_eq!(kind.tag(), tag);
    if kind.validate(bytes).is_ok() {
        match kind {
            ObjectKind::Blob => {}
            ObjectKind::Tree => assert_eq!(Tree::decode(bytes).expect("validated").encode(), bytes),
            ObjectKind::Revision => {
                assert_eq!(Revision::decode(bytes).expect("validated").encode(), bytes)
            }
            ObjectKind::Chunks => {
                assert_eq!(ChunkList::decode(bytes).expect("validated").encode(), bytes)
            }
        }
    }
});
