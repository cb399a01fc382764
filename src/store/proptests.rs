//! Property tests of the store's own encodings: object locations, log entries and stat
//! cache entries round-trip, and damaged bytes never make their decoders panic.

use super::log::ChangeCounts;
use super::pack::{Compression, Location};
use super::{LogEntry, StatEntry};
use crate::object::proptests::{
    bytes, config, entry_kind, mutate, mutation, object_id, object_kind,
};
use proptest::prelude::*;

fn stat_entry() -> impl Strategy<Value = StatEntry> {
    (
        any::<u64>(),
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        entry_kind(),
        object_id(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(size, mtime_ns, ctime_ns, inode, kind, id, racy, chunked)| StatEntry {
                size,
                mtime_ns,
                ctime_ns,
                inode,
                kind,
                id,
                racy,
                chunked,
            },
        )
}

fn log_entry() -> impl Strategy<Value = LogEntry> {
    (
        (
            any::<u64>(),
            object_id(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
        ),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (number, id, time_ms, files, bytes),
                (objects, object_bytes, added, modified, removed),
            )| LogEntry {
                number,
                id,
                time_ms,
                files,
                bytes,
                objects,
                object_bytes,
                changes: ChangeCounts {
                    added,
                    modified,
                    removed,
                },
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn location_round_trips(kind in object_kind(), zstd in any::<bool>(), pack in any::<u32>(), offset in any::<u64>(), len in any::<u64>(), size in any::<u64>()) {
        let (compression, size) = if zstd { (Compression::Zstd, size) } else { (Compression::Raw, len) };
        let loc = Location { kind, compression, pack, offset, len, size };
        let encoded = loc.encode();
        prop_assert_eq!(encoded.len(), Location::ENCODED_LEN);
        prop_assert_eq!(Location::decode(&encoded), Some(loc));
    }

    #[test]
    fn log_entry_round_trips(entry in log_entry()) {
        prop_assert_eq!(LogEntry::decode(&entry.encode()).unwrap(), entry);
    }

    #[test]
    fn stat_entry_round_trips(entry in stat_entry()) {
        prop_assert_eq!(StatEntry::decode(&entry.encode()), Some(entry));
    }
    /// Every 30-byte string either is refused or is a location that encodes back to it.
    #[test]
    fn location_decode_is_exact(data in prop::collection::vec(any::<u8>(), 30)) {
        let data: [u8; 30] = data.try_into().unwrap();
        match Location::decode(&data) {
            Some(loc) => prop_assert_eq!(loc.encode(), data),
            None => prop_assert!(
                !(1..=4).contains(&data[0]) || data[1] > 1 || (data[1] == 0 && data[14..22] != data[22..30])
            ),
        }
    }

    #[test]
    fn log_and_stat_decoders_survive_damaged_entries(entry in log_entry(), stat in stat_entry(), m in mutation()) {
        let _ = LogEntry::decode(&mutate(entry.encode(), &m));
        let _ = StatEntry::decode(&mutate(stat.encode(), &m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(512)) {
        let _ = Location::decode(&data);
        let _ = LogEntry::decode(&data);
        let _ = StatEntry::decode(&data);
    }
}
