//! Property tests of the object encodings and of every decoder that reads untrusted bytes.
//!
//! Two kinds of property: round trips (what codexport encodes, it decodes to the same value)
//! and robustness (no byte string makes a decoder panic, and whatever a decoder accepts
//! re-encodes to exactly the bytes it was given). The fuzz targets under `fuzz/` run the same
//! decoders for longer; these keep a modest case count so `cargo test` stays fast.

use super::{
    DecodeError, EntryKind, EntryName, Fingerprint, HeadBody, ObjectId, ObjectKind, Revision,
    SignedHead, Tree, TreeEntry, codec,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const TREE_MAGIC: &[u8] = b"CXTR\x03";
const REVISION_MAGIC: &[u8] = b"CXRV\x02";
/// Revisions made before roots: still read.
const REVISION_MAGIC_V1: &[u8] = b"CXRV\x01";
const HEAD_MAGIC: &[u8] = b"CXHD\x01";

pub(crate) fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

// ---------------------------------------------------------------------------------------------
// Strategies

pub(crate) fn object_id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 32]>().prop_map(ObjectId::from_bytes)
}

/// A private flag where one has meaning (files), none elsewhere.
fn private_for(kind: EntryKind, private: bool) -> bool {
    private && matches!(kind, EntryKind::File | EntryKind::Executable)
}

pub(crate) fn entry_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        Just(EntryKind::File),
        Just(EntryKind::Executable),
        Just(EntryKind::Symlink),
        Just(EntryKind::Tree)
    ]
}

pub(crate) fn object_kind() -> impl Strategy<Value = ObjectKind> {
    prop_oneof![
        Just(ObjectKind::Blob),
        Just(ObjectKind::Tree),
        Just(ObjectKind::Revision),
        Just(ObjectKind::Chunks)
    ]
}

/// Arbitrary Unicode made into a valid entry name by replacing the forbidden characters
/// rather than filtering, so no case is rejected.
fn unicode_name() -> impl Strategy<Value = String> {
    // At most 24 chars of at most 4 bytes: always under the 255-byte limit.
    prop::collection::vec(any::<char>(), 1..=24).prop_map(|chars| {
        let mut s: String = chars
            .into_iter()
            .map(|c| {
                if matches!(c, '/' | '\\' | '\0') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if s == "." || s == ".." {
            s.push('x');
        }
        s
    })
}

/// Any valid entry name: arbitrary Unicode, short names over a tiny alphabet (so prefixes and
/// near-collisions are common, which exercises the sort order), and names near the length limit.
fn entry_name_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => unicode_name(),
        2 => "[ab.é]{1,4}".prop_map(|mut s| {
            if s == "." || s == ".." {
                s.push('x');
            }
            s
        }),
        1 => "[a-zA-Z0-9_ -]{250,255}",
    ]
}

fn tree_entry_fields() -> impl Strategy<Value = (EntryKind, ObjectId, u64, bool, bool)> {
    (
        entry_kind(),
        object_id(),
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
    )
}

/// Valid, unique entries in an arbitrary (shuffled) order, for `Tree::new` to sort.
fn tree_entries() -> impl Strategy<Value = Vec<TreeEntry>> {
    prop::collection::btree_map(entry_name_string(), tree_entry_fields(), 0..24)
        .prop_map(|map| {
            map.into_iter()
                .map(|(name, (kind, id, size, private, chunked))| TreeEntry {
                    name: EntryName::new(name).expect("strategy makes valid names"),
                    kind,
                    id,
                    size,
                    private: private_for(kind, private),
                    chunked: private_for(kind, chunked),
                })
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn tree() -> impl Strategy<Value = Tree> {
    tree_entries().prop_map(|entries| Tree::new(entries).expect("unique names always build a tree"))
}

/// Entries that may be unsorted or repeat a name: what a forger could put on the wire.
fn raw_tree_entries() -> impl Strategy<Value = Vec<TreeEntry>> {
    prop::collection::vec(("[ab]{1,3}", tree_entry_fields()), 0..8).prop_map(|v| {
        v.into_iter()
            .map(|(name, (kind, id, size, private, chunked))| TreeEntry {
                name: EntryName::new(name).expect("valid"),
                kind,
                id,
                size,
                private: private_for(kind, private),
                chunked: private_for(kind, chunked),
            })
            .collect()
    })
}

/// Host names within the 255-byte limit (63 chars of at most 4 bytes).
fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=63).prop_map(String::from_iter)
}

/// Absolute source paths within the 4096-byte limit (1 + 1023 chars of at most 4 bytes).
fn source_path() -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(any::<char>(), 0..=1023)
        .prop_map(|chars| format!("/{}", String::from_iter(chars)))
}

fn revision_with(
    parents: std::ops::RangeInclusive<usize>,
    host: impl Strategy<Value = String>,
    path: impl Strategy<Value = String> + Clone,
) -> impl Strategy<Value = Revision> {
    (
        (
            any::<u64>(),
            object_id(),
            prop::collection::vec(object_id(), parents),
            any::<i64>(),
        ),
        (host, path.clone(), path),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(object_id()),
            // Both encodings: 2 (a tree of roots) and 1 (a codex dir, still read).
            prop_oneof![
                Just(crate::object::revision::Layout::Roots),
                Just(crate::object::revision::Layout::CodexDir)
            ],
        ),
    )
        .prop_map(
            |(
                (number, root, parents, time_ms),
                (host, home, codex_dir),
                (files, bytes, mcp, layout),
            )| {
                Revision {
                    number,
                    root,
                    parents,
                    time_ms,
                    host,
                    home,
                    codex_dir,
                    files,
                    bytes,
                    mcp,
                    layout,
                }
            },
        )
}

fn revision() -> impl Strategy<Value = Revision> {
    revision_with(0..=16, host(), source_path())
}

fn signed_head() -> impl Strategy<Value = (SigningKey, SignedHead)> {
    (
        any::<[u8; 32]>(),
        object_id(),
        any::<u64>(),
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(seed, revision, number, issued_at, expires_at, objects, bytes)| {
                let key = SigningKey::from_bytes(&seed);
                let body = HeadBody {
                    master_key: key.verifying_key().to_bytes(),
                    revision,
                    number,
                    issued_at,
                    expires_at,
                    objects,
                    bytes,
                };
                let head = body.sign(&key);
                (key, head)
            },
        )
}

pub(crate) fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Arbitrary bytes behind a correct magic and version, so decoding reaches the body.
fn with_header(header: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    bytes(max).prop_map(move |tail| [header, &tail].concat())
}

/// One small edit of a valid encoding: a byte replaced, a byte inserted, a byte removed or
/// the tail cut off. Near-valid input reaches far deeper into a decoder than random bytes.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Remove),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

pub(crate) fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    match m {
        Mutation::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Mutation::Insert(i, b) => bytes.insert(i.index(bytes.len() + 1), *b),
        Mutation::Remove(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
    }
    bytes
}

/// Input for the tree decoder: junk behind the header, or a valid tree slightly damaged.
fn tree_decoder_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        with_header(TREE_MAGIC, 256),
        (tree(), mutation()).prop_map(|(t, m)| mutate(t.encode(), &m)),
    ]
}

fn revision_decoder_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        with_header(REVISION_MAGIC, 256),
        with_header(REVISION_MAGIC_V1, 256),
        (revision(), mutation()).prop_map(|(r, m)| mutate(r.encode(), &m)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Round trips

proptest! {
    #![proptest_config(config())]

    #[test]
    fn tree_round_trips(t in tree()) {
        let encoded = t.encode();
        prop_assert!(encoded.starts_with(TREE_MAGIC));
        let decoded = Tree::decode(&encoded).expect("a tree codexport built must decode");
        prop_assert_eq!(&decoded, &t);
        prop_assert_eq!(decoded.encode(), encoded);
        prop_assert_eq!(ObjectKind::Tree.validate(&t.encode()), Ok(()));
        // Entries come out sorted bytewise and unique, and each one can be found by name.
        for pair in t.entries().windows(2) {
            prop_assert!(pair[0].name.as_str().as_bytes() < pair[1].name.as_str().as_bytes());
        }
        for e in t.entries() {
            prop_assert_eq!(t.get(e.name.as_str()), Some(e));
        }
    }

    /// A tree's id depends only on its entries, not on the order they were given in.
    #[test]
    fn tree_id_ignores_input_order(entries in tree_entries()) {
        let mut reversed = entries.clone();
        reversed.reverse();
        prop_assert_eq!(Tree::new(entries).unwrap().id(), Tree::new(reversed).unwrap().id());
    }

    /// On the wire a tree is a postcard `Vec<TreeEntry>`; the decoder accepts such a list iff
    /// its names are strictly increasing bytewise, and then it equals what `Tree::new` builds.
    #[test]
    fn tree_decoder_accepts_only_sorted_unique(entries in raw_tree_entries()) {
        #[derive(serde::Serialize)]
        struct Raw<'a> {
            entries: &'a [TreeEntry],
        }
        let bytes = codec::encode(super::tree::MAGIC, super::tree::VERSION, &Raw { entries: &entries });
        let sorted_unique = entries.windows(2).all(|p| p[0].name.as_str().as_bytes() < p[1].name.as_str().as_bytes());
        match Tree::decode(&bytes) {
            Ok(t) => {
                prop_assert!(sorted_unique);
                prop_assert_eq!(t, Tree::new(entries).unwrap());
            }
            Err(e) => {
                prop_assert!(!sorted_unique, "sorted unique tree refused: {}", e);
                prop_assert!(matches!(e, DecodeError::Unsorted { .. }), "unexpected error {:?}", e);
            }
        }
    }

    #[test]
    fn revision_round_trips(rev in revision()) {
        let encoded = rev.encode();
        let magic = match rev.layout {
            crate::object::revision::Layout::Roots => REVISION_MAGIC,
            crate::object::revision::Layout::CodexDir => REVISION_MAGIC_V1,
        };
        prop_assert!(encoded.starts_with(magic));
        let decoded = Revision::decode(&encoded).expect("a revision codexport built must decode");
        prop_assert_eq!(&decoded, &rev);
        prop_assert_eq!(decoded.encode(), encoded);
        prop_assert_eq!(decoded.id(), rev.id());
        prop_assert_eq!(ObjectKind::Revision.validate(&rev.encode()), Ok(()));
    }

    /// Past the limits (17+ parents, host over 255 bytes, home or codex dir over 4096 bytes) a
    /// revision is refused as too large.
    #[test]
    fn revision_limits_are_enforced(
        rev in revision_with(
            0..=20,
            prop_oneof![host(), "[a-z]{250,260}"],
            prop_oneof![4 => "/[a-z/]{0,64}", 1 => "/[a-z]{4090,4100}"],
        ),
    ) {
        let within = rev.parents.len() <= 16
            && rev.host.len() <= 255
            && rev.home.len() <= 4096
            && rev.codex_dir.len() <= 4096;
        match Revision::decode(&rev.encode()) {
            Ok(decoded) => {
                prop_assert!(within);
                prop_assert_eq!(decoded, rev);
            }
            Err(e) => {
                prop_assert!(!within, "revision within limits refused: {}", e);
                prop_assert!(matches!(e, DecodeError::TooLarge { .. }), "unexpected error {:?}", e);
            }
        }
    }

    #[test]
    fn signed_head_round_trips((key, head) in signed_head()) {
        let encoded = head.encode();
        prop_assert!(encoded.starts_with(HEAD_MAGIC));
        prop_assert_eq!(&encoded[encoded.len() - 64..], &head.signature[..]);
        let decoded = SignedHead::decode(&encoded).expect("a head codexport signed must verify");
        prop_assert_eq!(&decoded, &head);
        prop_assert_eq!(decoded.encode(), encoded);
        prop_assert_eq!(decoded.body.master_key, key.verifying_key().to_bytes());
    }

    /// Any single-byte change to a signed head is refused (by framing, canonical form or
    /// signature).
    #[test]
    fn signed_head_refuses_any_byte_change(
        (_key, head) in signed_head(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = head.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(SignedHead::decode(&bytes).is_err(), "byte {} changed and still accepted", i);
    }

    #[test]
    fn fingerprint_is_40_hex_digits_and_parses(key in any::<[u8; 32]>()) {
        let fp = Fingerprint::of_key(&key);
        let text = fp.to_string();
        prop_assert_eq!(text.len(), 40);
        prop_assert!(text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        prop_assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        let derived = ObjectId::derived("codexport 2026-11-25 master fingerprint v1", &key);
        prop_assert_eq!(text, super::id::hex(&derived.as_bytes()[..20]));
    }

}

// ---------------------------------------------------------------------------------------------
// Decoding untrusted bytes never panics, and what is accepted is canonical

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(512)) {
        let _ = Tree::decode(&data);
        let _ = Revision::decode(&data);
        let _ = SignedHead::decode(&data);
        for kind in [ObjectKind::Blob, ObjectKind::Tree, ObjectKind::Revision] {
            let _ = kind.validate(&data);
        }
        if let Some((&tag, rest)) = data.split_first() {
            if let Ok(kind) = ObjectKind::from_tag(tag) {
                prop_assert_eq!(kind.tag(), tag);
                let _ = kind.validate(rest);
            }
        }
    }

    #[test]
    fn tree_decoder_is_canonical(data in tree_decoder_input()) {
        if let Ok(t) = Tree::decode(&data) {
            prop_assert_eq!(t.encode(), data, "accepted a tree that re-encodes differently");
            prop_assert_eq!(ObjectKind::Tree.validate(&t.encode()), Ok(()));
        }
    }

    #[test]
    fn revision_decoder_is_canonical(data in revision_decoder_input()) {
        if let Ok(r) = Revision::decode(&data) {
            prop_assert_eq!(r.encode(), data, "accepted a revision that re-encodes differently");
        }
    }

    #[test]
    fn head_decoder_survives_junk_after_header(data in with_header(HEAD_MAGIC, 256)) {
        if let Ok(h) = SignedHead::decode(&data) {
            prop_assert_eq!(h.encode(), data);
        }
    }

    #[test]
    fn head_decoder_survives_damaged_heads((_key, head) in signed_head(), m in mutation()) {
        let data = mutate(head.encode(), &m);
        if let Ok(h) = SignedHead::decode(&data) {
            prop_assert_eq!(h.encode(), data);
        }
    }

    #[test]
    fn tagged_object_bytes_never_panic(kind in object_kind(), data in prop_oneof![
        bytes(256),
        with_header(TREE_MAGIC, 256),
        with_header(REVISION_MAGIC, 256),
    ]) {
        let tagged: Vec<u8> = std::iter::once(kind.tag()).chain(data.iter().copied()).collect();
        let kind = ObjectKind::from_tag(tagged[0]).unwrap();
        if kind.validate(&tagged[1..]).is_ok() && kind != ObjectKind::Blob {
            // Whatever validates decodes to a value that re-encodes to the same bytes.
            let reencoded = match kind {
                ObjectKind::Tree => Tree::decode(&data).unwrap().encode(),
                ObjectKind::Revision => Revision::decode(&data).unwrap().encode(),
                ObjectKind::Chunks => crate::object::ChunkList::decode(&data).unwrap().encode(),
                ObjectKind::Blob => unreachable!(),
            };
            prop_assert_eq!(reencoded, data);
        }
    }

}

// ---------------------------------------------------------------------------------------------
// The fuzz seed corpus

/// The seed inputs committed under `fuzz/corpus/<target>/`: valid encodings, so the fuzzer
/// starts past the framing. Deterministic (ed25519 signing is), so regenerating is a no-op
/// unless the format changed.
fn fuzz_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let id = |b: u8| ObjectId::from_bytes([b; 32]);
    let entry = |name: &str, kind, b, size| TreeEntry {
        name: EntryName::new(name).unwrap(),
        kind,
        id: id(b),
        size,
        private: name == "a" || name == "auth.json",
        chunked: false,
    };
    let empty = Tree::default();
    // The golden tree of `tree::tests::golden_bytes`.
    let golden = Tree::new(vec![entry("a", EntryKind::Executable, 7, 3)]).unwrap();
    let mixed = Tree::new(vec![
        entry("auth.json", EntryKind::File, 6, 120),
        entry("config.toml", EntryKind::File, 1, 512),
        entry("skills", EntryKind::Tree, 2, 70_000),
        entry("run.sh", EntryKind::Executable, 3, 300),
        entry("ünï cødé.md", EntryKind::File, 4, 0),
        entry("latest", EntryKind::Symlink, 5, 11),
    ])
    .unwrap();
    let first = Revision {
        number: 1,
        root: mixed.id(),
        parents: vec![],
        time_ms: 1_700_000_000_000,
        host: "master".into(),
        home: "/home/m".into(),
        codex_dir: "/home/m/.codex".into(),
        files: 4,
        bytes: 823,
        mcp: None,
        // A revision made before roots: the seed of encoding 1.
        layout: crate::object::revision::Layout::CodexDir,
    };
    let second = Revision {
        number: 2,
        root: golden.id(),
        parents: vec![first.id()],
        time_ms: -1,
        host: "büro-mac.local".into(),
        home: "/Users/büro".into(),
        codex_dir: "/Users/büro/.codex".into(),
        files: 1,
        bytes: 3,
        mcp: Some(empty.id()),
        layout: crate::object::revision::Layout::Roots,
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    let head = |rev: &Revision, issued_at: i64| {
        HeadBody {
            master_key: key.verifying_key().to_bytes(),
            revision: rev.id(),
            number: rev.number,
            issued_at,
            expires_at: issued_at + 86_400,
            objects: 9,
            bytes: 2_000,
        }
        .sign(&key)
        .encode()
    };
    let tagged = |kind: ObjectKind, bytes: &[u8]| [&[kind.tag()][..], bytes].concat();
    let mut seeds = vec![
        ("decode_tree", "empty", empty.encode()),
        ("decode_tree", "golden", golden.encode()),
        ("decode_tree", "mixed", mixed.encode()),
        ("decode_tree", "golden-v1", {
            let mut v1 = b"CXTR\x01\x01\x01a\x01".to_vec();
            v1.extend_from_slice(&[7; 32]);
            v1.push(3);
            v1
        }),
        ("decode_revision", "first", first.encode()),
        ("decode_revision", "second", second.encode()),
        ("decode_head", "first", head(&first, 1_700_000_000)),
        ("decode_head", "second", head(&second, 1_700_086_400)),
        (
            "decode_object",
            "blob",
            tagged(ObjectKind::Blob, b"model = \"o3\"\n"),
        ),
        (
            "decode_object",
            "tree",
            tagged(ObjectKind::Tree, &mixed.encode()),
        ),
        (
            "decode_object",
            "revision",
            tagged(ObjectKind::Revision, &second.encode()),
        ),
    ];
    seeds.extend(format_3_seeds());
    seeds.extend(mirror_seeds());
    seeds
}

/// What a mirror serves, made up: a head file binding `keyring`, its index (sealed under
/// `content` in the head file) and the signed mirror list.
struct MirrorSample {
    file: crate::object::mirror::HeadFile,
    index: crate::object::mirror::Index,
    keyring: crate::object::mirror::Keyring,
    list: crate::object::signed::Signed<crate::object::mirror::MirrorList>,
    content: crate::seal::ContentKey,
}

fn mirror_sample() -> MirrorSample {
    use crate::object::mirror::{Binding, HeadFile, Index, Keyring, MirrorList, PackRef, Wrapped};
    use crate::object::signed::Signed;
    let key = SigningKey::from_bytes(&[7; 32]);
    let master_key = key.verifying_key().to_bytes();
    let revision = ObjectId::from_bytes([9; 32]);
    let pack = |from, to| PackRef {
        hash: [from as u8; 32],
        size: 1000,
        objects: 10,
        bytes: 900,
        from,
        to,
    };
    let index = Index {
        revision,
        number: 3,
        packs: vec![pack(0, 2), pack(2, 3)],
    };
    let content = crate::seal::ContentKey::from_bytes([7; 32]);
    let sealed_index = crate::seal::seal_bytes(&content, &index.encode());
    let keyring = Keyring {
        epoch: [4; 16],
        recipients: vec![Wrapped {
            recipient: [1; 32],
            ephemeral: [2; 32],
            sealed: vec![3; 48],
        }],
    };
    let head = HeadBody {
        master_key,
        revision,
        number: 3,
        issued_at: 1_700_000_000,
        expires_at: 1_702_592_000,
        objects: 20,
        bytes: 1_800,
    }
    .sign(&key);
    let binding = Signed::sign(
        Binding {
            master_key,
            revision,
            number: 3,
            index: *blake3::hash(&sealed_index).as_bytes(),
            keyring: *blake3::hash(&keyring.encode()).as_bytes(),
            epoch: [4; 16],
        },
        &key,
    );
    let file = HeadFile {
        head,
        binding,
        index: sealed_index,
    };
    let list = Signed::sign(
        MirrorList {
            master_key,
            issued_at: 1_700_000_000,
            urls: vec!["https://mirror.example/codexport".into()],
        },
        &key,
    );
    MirrorSample {
        file,
        index,
        keyring,
        list,
        content,
    }
}

/// Seeds of what a mirror serves: a head file, an index, a mirror list, a keyring, a sealed
/// file.
fn mirror_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let MirrorSample {
        file,
        index,
        keyring,
        list,
        content,
    } = mirror_sample();
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    vec![
        ("decode_mirror", "head_file", tagged(0, file.encode())),
        ("decode_mirror", "index", tagged(1, index.encode())),
        ("decode_mirror", "list", tagged(2, list.encode())),
        ("decode_mirror", "keyring", tagged(3, keyring.encode())),
        (
            "seal_open",
            "two_segments",
            crate::seal::seal_bytes(&content, &vec![5u8; crate::seal::SEGMENT + 10]),
        ),
        ("seal_open", "empty", crate::seal::seal_bytes(&content, b"")),
    ]
}

#[test]
fn a_mirror_head_file_takes_only_the_keyring_it_binds() {
    use crate::object::mirror::{HeadFile, Keyring, Wrapped, keyring_name};
    let MirrorSample { file, keyring, .. } = mirror_sample();
    let file = HeadFile::decode(&file.encode()).unwrap();
    let hash = *blake3::hash(&keyring.encode()).as_bytes();
    assert_eq!(file.keyring_name(), keyring_name(&hash));
    assert_eq!(
        file.keyring_name(),
        format!("keys/{}.cxk", super::id::hex(&hash))
    );
    assert_eq!(file.keyring(&keyring.encode()).unwrap(), keyring);
    // Another follower's keyring, or another epoch's: refused.
    let other = |epoch: u8, recipient: u8| Keyring {
        epoch: [epoch; 16],
        recipients: vec![Wrapped {
            recipient: [recipient; 32],
            ..keyring.recipients[0].clone()
        }],
    };
    for other in [other(4, 2), other(5, 1)] {
        assert!(file.keyring(&other.encode()).is_err());
    }
    // A head file of the unreleased version 1 (the keyring inside) is not read.
    let mut v1 = file.encode();
    v1[4] = 1;
    assert!(matches!(
        HeadFile::decode(&v1),
        Err(DecodeError::UnsupportedVersion { found: 1, .. })
    ));
}

/// Seeds of what format 3 added: chunk lists, and the version 2 tree it still reads.
fn format_3_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let id = |b: u8| ObjectId::from_bytes([b; 32]);
    let chunks = crate::object::ChunkList::new(vec![
        crate::object::Chunk {
            id: id(1),
            size: u64::from(crate::object::chunks::MAX_CHUNK),
        },
        crate::object::Chunk { id: id(2), size: 1 },
    ])
    .unwrap();
    vec![
        ("decode_chunks", "two", chunks.encode()),
        (
            "decode_object",
            "chunks",
            [&[ObjectKind::Chunks.tag()][..], &chunks.encode()].concat(),
        ),
        ("decode_tree", "golden-v2", {
            let mut v2 = b"CXTR\x02\x01\x01a\x01".to_vec();
            v2.extend_from_slice(&[7; 32]);
            v2.extend_from_slice(&[3, 1]);
            v2
        }),
    ]
}

/// Checks the committed seed corpus is current; with `CODEXPORT_WRITE_FUZZ_CORPUS=1` it
/// (re)writes it instead. Where the fuzz crate is absent (a packaged crate) there is nothing
/// to seed and only the seeds' validity is checked.
#[test]
fn fuzz_seed_corpus_is_current() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let root = fuzz.join("corpus");
    let write = std::env::var_os("CODEXPORT_WRITE_FUZZ_CORPUS").is_some_and(|v| v == "1");
    let compare = !write && fuzz.join("Cargo.toml").exists();
    for (target, name, bytes) in fuzz_seeds() {
        // Every seed is a valid input of its target.
        match target {
            "decode_tree" => assert_eq!(Tree::decode(&bytes).unwrap().encode(), bytes),
            "decode_revision" => assert_eq!(Revision::decode(&bytes).unwrap().encode(), bytes),
            "decode_head" => assert_eq!(SignedHead::decode(&bytes).unwrap().encode(), bytes),
            "decode_chunks" => assert_eq!(
                crate::object::ChunkList::decode(&bytes).unwrap().encode(),
                bytes
            ),
            "decode_mirror" => {
                let body = &bytes[1..];
                let again = match bytes[0] {
                    0 => crate::object::mirror::HeadFile::decode(body)
                        .unwrap()
                        .encode(),
                    1 => crate::object::mirror::Index::decode(body).unwrap().encode(),
                    2 => crate::object::mirror::MirrorList::decode_signed(body)
                        .unwrap()
                        .encode(),
                    _ => crate::object::mirror::Keyring::decode(body)
                        .unwrap()
                        .encode(),
                };
                assert_eq!(again, body);
            }
            "seal_open" => {
                let key = crate::seal::ContentKey::from_bytes([7; 32]);
                crate::seal::open_bytes(&key, &bytes).unwrap();
            }
            _ => ObjectKind::from_tag(bytes[0])
                .unwrap()
                .validate(&bytes[1..])
                .unwrap(),
        }
        let path = root.join(target).join(name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if compare {
            let committed = std::fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; regenerate with CODEXPORT_WRITE_FUZZ_CORPUS=1 cargo test --lib fuzz_seed_corpus", path.display())
            });
            assert_eq!(
                committed,
                bytes,
                "{} is stale; regenerate with CODEXPORT_WRITE_FUZZ_CORPUS=1",
                path.display()
            );
        }
    }
}
