//! The object stream as a follower receives it: zstd-compressed bytes from the network,
//! decompressed through `wire::stream_decoder` (the very decoder `transport::client` uses,
//! window capped at 2^MAX_WINDOW_LOG) into a `FrameReader` with a small budget. Reading frames until an error must never panic, and a
//! decompression bomb must be stopped by the budget: the reader pulls only a bounded number
//! of decompressed bytes and never allocates a buffer beyond the budget.
#![no_main]

use codexport::transport::wire::{Frame, FrameReader, MAX_WINDOW_LOG, stream_decoder};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, noting the largest single request while `TRACK` is set. zstd's
/// own (C) buffers do not come through here; its Rust-side buffer is made before tracking.
struct Tracking;

static TRACK: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if TRACK.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

const MAX_OBJECTS: u64 = 16;
const MAX_BYTES: u64 = 4096;
/// Error messages and the like: allowed whatever the budget.
const SMALL: usize = 4096;
/// Most decompressed bytes a budgeted reader may consume: the header, every object frame's
/// head and bytes, and an end frame, plus one more frame head (the one refused).
const MAX_PULLED: u64 = 5 + (MAX_OBJECTS + 1) * 37 + MAX_BYTES + 17;

/// Counts the decompressed bytes the frame reader pulls.
struct Counting<R> {
    inner: R,
    pulled: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pulled += n as u64;
        Ok(n)
    }
}

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
    let Ok(decoder) = stream_decoder(data) else {
        return;
    };
    let oversized = declared_window(data).is_some_and(|w| w > 1 << MAX_WINDOW_LOG);
    let mut input = Counting {
        inner: decoder,
        pulled: 0,
    };
    LARGEST.store(0, Ordering::Relaxed);
    TRACK.store(true, Ordering::Relaxed);
    if let Ok(mut reader) = FrameReader::new(&mut input, MAX_OBJECTS, MAX_BYTES) {
        let mut seen = (0u64, 0u64);
        loop {
            match reader.next_frame() {
                Ok(Frame::Object { bytes, .. }) => {
                    seen.0 += 1;
                    seen.1 += bytes.len() as u64;
                    assert!(
                        seen.0 <= MAX_OBJECTS && seen.1 <= MAX_BYTES,
                        "over budget: {seen:?}"
                    );
                }
                Ok(Frame::End(totals)) => {
                    assert_eq!(
                        (totals.objects, totals.bytes),
                        seen,
                        "end frame disagrees with the stream"
                    );
                    break;
                }
                Err(_) => break,
            }
        }
    }
    TRACK.store(false, Ordering::Relaxed);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= SMALL.max(MAX_BYTES as usize),
        "allocated {largest} bytes at once"
    );
    assert!(
        !oversized || input.pulled == 0,
        "a frame asking for a window over 2^{MAX_WINDOW_LOG} was decompressed"
    );
    assert!(
        input.pulled <= MAX_PULLED,
        "pulled {} decompressed bytes past a budget of {MAX_BYTES}",
        input.pulled
    );
});
