//! What a follower reads from a mirror before any key is involved: the head file (CXMH, with
//! its signed head, binding and sealed index), the index (CXMI), the signed mirror list
//! (CXML) and the keyring (CXKR). The first input byte picks the decoder. None may panic;
//! what each accepts re-encodes to the same bytes and an accepted head file's binding names
//! its head and hashes its index.
#![no_main]

use codexport::object::mirror::{HeadFile, Index, Keyring, MirrorList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, bytes)) = data.split_first() else {
        return;
    };
    match which % 4 {
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
        2 => {
            if let Ok(list) = MirrorList::decode_signed(bytes) {
                assert_eq!(list.encode(), bytes);
            }
        }
        _ => {
            if let Ok(keyring) = Keyring::decode(bytes) {
                assert_eq!(keyring.encode(), bytes);
            }
        }
    }
});
