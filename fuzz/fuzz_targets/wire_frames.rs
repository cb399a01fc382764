//! A `FrameReader` over an arbitrary object stream, with an object and byte budget taken
//! from the first two input bytes (at most 64 objects, 64 KiB). Reading frames until an error
//! or the end frame must never panic, never hand out more than the budget (objects' own
//! sizes), never hand out stored bytes that contradict their compression, and never
//! allocate more than the budget: a frame's lengths are checked before its buffer is
//! allocated.
#![no_main]

use codexport::store::Compression;
use codexport::transport::wire::{Frame, FrameReader};
use libfuzzer_sys::fuzz_target;

#[path = "../common/tracking.rs"]
mod tracking;

#[global_allocator]
static ALLOC: tracking::Tracking = tracking::Tracking;

/// Error messages and the like: allowed whatever the budget.
const SMALL: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let [objects, kib, stream @ ..] = data else {
        return;
    };
    let max_objects = u64::from(*objects % 65);
    let max_bytes = (u64::from(*kib) + 1) * 256;
    let ((), largest) = tracking::largest_allocation(|| {
        let mut seen = (0u64, 0u64);
        let Ok(mut reader) = FrameReader::new(stream, max_objects, max_bytes) else {
            return;
        };
        loop {
            match reader.next_frame() {
                Ok(Frame::Object(object)) => {
                    seen.0 += 1;
                    seen.1 += object.size;
                    match object.compression {
                        Compression::Raw => assert_eq!(object.stored.len() as u64, object.size),
                        Compression::Zstd => assert!((object.stored.len() as u64) < object.size),
                    }
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
    });
    assert!(
        largest <= SMALL.max(usize::try_from(max_bytes).unwrap()),
        "allocated {largest} bytes at once with a budget of {max_bytes}"
    );
});
