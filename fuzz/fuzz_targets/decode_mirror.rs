//! What a follower reads from a mirror before any key is involved: the head file (CXMH, with
//! its signed head, binding and keyring), the index (CXMI) and the signed mirror list
//! (CXML). The first input byte picks the decoder. None may panic; what each accepts
//! re-encodes to the same bytes, and an accepted head file's binding names its head and
//! hashes its keyring and index.
#![no_main]

use codexport::object::mirror::{HeadFile, Index, MirrorList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, bytes)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(file) = HeadFile::decode(bytes) {
                assert_eq!(file.encode(), bytes);
                let b = &file.binding.body;
                assert_eq!(b.revision, file.head.body.revision);
                assert_eq!(b.index, *blake3::hash(&file.index).as_bytes());
            }
        }
        1 => {
            if let Ok(index) = Index::decode(bytes) {
                assert_eq!(index.encode(), bytes);
                assert_eq!(index.packs.last().map(|p| p.to), Some(index.number));
                // Whatever a follower holds, what it needs is a tail of the chain.
                let all = index.needed(|_| false);
                assert_eq!(all.len(), index.packs.len());
                assert!(index.needed(|n| n == index.number).is_empty());
            }
        }
        _ => {
            if let Ok(list) = MirrorList::decode_signed(bytes) {
                assert_eq!(list.encode(), bytes);
            }
        }
    }
});
