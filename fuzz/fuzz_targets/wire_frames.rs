//! A `FrameReader` over an arbitrary (decompressed) object stream, with an object and byte
//! budget taken from the first two input bytes (at most 64 objects, 64 KiB). Reading frames
//! until an error or the end frame must never panic, never hand out more than the budget,
//! and never allocate more than the budget: an object's length is checked before its buffer
//! is allocated.
#![no_main]

use codexport::transport::wire::{Frame, FrameReader};
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, noting the largest single request while `TRACK` is set.
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

/// Error messages and the like: allowed whatever the budget.
const SMALL: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let [objects, kib, stream @ ..] = data else {
        return;
    };
    let max_objects = u64::from(*objects % 65);
    let max_bytes = (u64::from(*kib) + 1) * 256;
    LARGEST.store(0, Ordering::Relaxed);
    TRACK.store(true, Ordering::Relaxed);
    let mut seen = (0u64, 0u64);
    if let Ok(mut reader) = FrameReader::new(stream, max_objects, max_bytes) {
        loop {
            match reader.next_frame() {
                Ok(Frame::Object { bytes, .. }) => {
                    seen.0 += 1;
                    seen.1 += bytes.len() as u64;
                    assert!(
                        seen.0 <= max_objects && seen.1 <= max_bytes,
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
        largest <= SMALL.max(usize::try_from(max_bytes).unwrap()),
        "allocated {largest} bytes at once with a budget of {max_bytes}"
    );
});
