//! `POST /v2/enroll`, the one route a stranger reaches without a credential: its body as the
//! server decodes it (JSON of a join token and a name), then the token and name as the master
//! reads them. Never panics; a name that decodes always becomes a valid follower name.
#![no_main]

use codexport::master::access::{is_valid_name, sanitize_name};
use codexport::transport::link::{TOKEN_PREFIX, parse_secret};
use codexport::transport::server::{MAX_ENROLL_BYTES, parse_enroll};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_ENROLL_BYTES {
        return;
    }
    let Ok(req) = parse_enroll(data) else {
        return;
    };
    let _ = parse_secret(&req.token, TOKEN_PREFIX);
    let name = sanitize_name(&req.name);
    assert!(
        is_valid_name(&name),
        "{:?} was sanitized to the invalid {name:?}",
        req.name
    );
});
