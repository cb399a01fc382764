//! A stored object compressed with zstd, as a follower receives it in a frame and as the
//! store reads it back: the first two input bytes give the size the frame declares (at most
//! 64 KiB), the rest are the stored bytes. `Compression::expand` (the one decompressor every
//! reader uses, its window capped at 2^MAX_WINDOW_LOG) must never panic, must return exactly
//! the declared size or an error, must refuse a frame asking for a window over the cap, and
//! must never allocate beyond the declared size: a decompression bomb gets no further.
#![no_main]

use codexport::store::Compression;
use codexport::store::pack::MAX_WINDOW_LOG;
use libfuzzer_sys::fuzz_target;

#[path = "../common/tracking.rs"]
mod tracking;

#[global_allocator]
static ALLOC: tracking::Tracking = tracking::Tracking;

/// Error messages and the like: allowed whatever the size.
const SMALL: usize = 4096;

/// The window a zstd frame header asks for, if `data` starts with one (RFC 8878 §3.1.1.1).
fn declared_window(data: &[u8]) -> Option<u64> {
    let rest = data.strip_prefix(&[0x28, 0xB5, 0x2F, 0xFD][..])?;
    let (fhd, rest) = rest.split_first()?;
    if fhd & 0x20 != 0 {
        return None; // single segment: the window is the content size
    }
    let wd = *rest.first()?;
    let base = 1u64 << (10 + (wd >> 3));
    Some(base + base / 8 * u64::from(wd & 7))
}

fuzz_target!(|data: &[u8]| {
    let [lo, hi, stored @ ..] = data else {
        return;
    };
    let size = u64::from(u16::from_le_bytes([*lo, *hi]));
    let oversized = declared_window(stored).is_some_and(|w| w > 1 << MAX_WINDOW_LOG);
    let (expanded, largest) =
        tracking::largest_allocation(|| Compression::Zstd.expand(stored, size));
    if let Ok(bytes) = &expanded {
        assert_eq!(
            bytes.len() as u64,
            size,
            "expanded to another size than declared"
        );
        assert!(
            !oversized,
            "a frame asking for a window over 2^{MAX_WINDOW_LOG} was expanded"
        );
    }
    assert!(
        largest <= SMALL.max(size as usize),
        "allocated {largest} bytes at once for an object of {size}"
    );
});
