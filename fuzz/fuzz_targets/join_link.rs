//! `JoinLink` parsing on arbitrary text (a link pasted by a user): never panics, and a
//! link that parses prints as text that parses back to the same link.
#![no_main]

use codexport::transport::link::JoinLink;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(link) = text.parse::<JoinLink>() else {
        return;
    };
    let printed = link.to_string();
    match printed.parse::<JoinLink>() {
        Ok(again) => assert_eq!(
            again, link,
            "{text:?} printed as {printed:?}, which parses differently"
        ),
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    }
    let _ = link.master_url();
});
