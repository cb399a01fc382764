//! `FetchRequest::decode` on arbitrary bytes (a `POST /v2/fetch` body from anyone who can
//! reach the master): never panics, stays within its list limits, and whatever it accepts is
//! canonical.
#![no_main]

use codexport::transport::wire::{FetchRequest, MAX_HAVE, MAX_PARTIAL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = FetchRequest::decode(data) {
        assert!(req.have.len() <= MAX_HAVE && req.partial.len() <= MAX_PARTIAL);
        assert_eq!(
            req.encode(),
            data,
            "accepted a request that re-encodes differently"
        );
    }
});
