//! Content-addressed objects: blobs, trees, revisions and the signed head.
//!
//! Owns the canonical byte encoding of every object and the derivation of its id. Decoders
//! here are the trust boundary for bytes from disk and from the network: they bound every
//! length, validate every name, and refuse any encoding that is not the canonical one, so one
//! object has exactly one id. This module never touches the filesystem.

pub mod chunks;
pub(crate) mod codec;
pub mod head;
pub mod id;
pub mod mirror;
pub mod name;
#[cfg(test)]
pub(crate) mod proptests;
pub mod revision;
pub mod signed;
pub mod tree;

pub use chunks::{Chunk, ChunkList};
pub use head::{Fingerprint, HeadBody, SignedHead};
pub use id::ObjectId;
pub use name::{EntryName, RelPath};
pub use revision::Revision;
pub use tree::{EntryKind, Tree, TreeEntry};

use miette::Diagnostic;
use thiserror::Error;

/// Version of the store layout and wire format described in `store-format.md`. Each object
/// kind also versions its own encoding (the byte after its magic).
pub const FORMAT_VERSION: u8 = 4;

/// What an object is. The byte tag is part of the store and wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Blob,
    Tree,
    Revision,
    /// The chunk list of a large file (see [`chunks`]).
    Chunks,
}

impl ObjectKind {
    /// The one-byte tag used in the store and on the wire.
    pub fn tag(self) -> u8 {
        match self {
            ObjectKind::Blob => 1,
            ObjectKind::Tree => 2,
            ObjectKind::Revision => 3,
            ObjectKind::Chunks => 4,
        }
    }

    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(ObjectKind::Blob),
            2 => Ok(ObjectKind::Tree),
            3 => Ok(ObjectKind::Revision),
            4 => Ok(ObjectKind::Chunks),
            other => Err(DecodeError::UnknownKind(other)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Tree => "tree",
            ObjectKind::Revision => "revision",
            ObjectKind::Chunks => "chunk list",
        }
    }

    /// Computes the id of an encoded object of this kind.
    pub fn id_of(self, encoded: &[u8]) -> ObjectId {
        match self {
            ObjectKind::Blob => ObjectId::from(blake3::hash(encoded)),
            ObjectKind::Tree => ObjectId::derived(
                tree::id_context(encoded.get(4).copied().unwrap_or(0)),
                encoded,
            ),
            ObjectKind::Revision => ObjectId::derived(
                revision::id_context(encoded.get(4).copied().unwrap_or(0)),
                encoded,
            ),
            ObjectKind::Chunks => ObjectId::derived(chunks::ID_CONTEXT, encoded),
        }
    }

    /// Checks that `encoded` is a canonical object of this kind; blobs are any bytes.
    pub fn validate(self, encoded: &[u8]) -> Result<(), DecodeError> {
        match self {
            ObjectKind::Blob => Ok(()),
            ObjectKind::Tree => Tree::decode(encoded).map(drop),
            ObjectKind::Revision => Revision::decode(encoded).map(drop),
            ObjectKind::Chunks => ChunkList::decode(encoded).map(drop),
        }
    }
}

/// Why bytes were refused as an object.
#[derive(Debug, Error, Diagnostic, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("object does not start with the {expected} magic")]
    #[diagnostic(
        code(codexport::object::magic),
        help("the bytes are not a codexport object of this kind; the store or stream is corrupt")
    )]
    BadMagic { expected: &'static str },
    #[error(
        "object format version {found} is not supported (this codexport reads version {supported})"
    )]
    #[diagnostic(
        code(codexport::object::version),
        help("upgrade codexport to read objects written by a newer version")
    )]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("object body is malformed: {0}")]
    #[diagnostic(
        code(codexport::object::malformed),
        help("the object is corrupt; run `codexport fsck`")
    )]
    Malformed(String),
    #[error("object is not in canonical encoding")]
    #[diagnostic(
        code(codexport::object::noncanonical),
        help("the object was not written by codexport or was altered")
    )]
    NonCanonical,
    #[error("invalid entry name {name:?}: {why}")]
    #[diagnostic(
        code(codexport::object::name),
        help("entry names are non-empty UTF-8 without '/', '\\', NUL, '.' or '..'")
    )]
    BadName { name: String, why: &'static str },
    #[error("tree entries are not sorted and unique at {name:?}")]
    #[diagnostic(
        code(codexport::object::order),
        help("the tree is corrupt or was forged")
    )]
    Unsorted { name: String },
    #[error("{what} exceeds the limit of {limit}")]
    #[diagnostic(
        code(codexport::object::limit),
        help("the object is larger than codexport accepts")
    )]
    TooLarge { what: &'static str, limit: u64 },
    #[error("unknown object kind tag {0}")]
    #[diagnostic(
        code(codexport::object::kind),
        help("the store or stream is corrupt or from a newer codexport")
    )]
    UnknownKind(u8),
    #[error("head signature does not verify against its master key")]
    #[diagnostic(
        code(codexport::object::signature),
        help("the head was altered or forged; do not trust this master")
    )]
    BadSignature,
}
