//! Revisions: one snapshot of the selected roots, with its place in history.
//!
//! Encoding version 2 (written) has the same fields as version 1 (still read); what differs
//! is the root tree: in version 2 it is a tree of roots (one entry per root, named after it,
//! see [`crate::roots`]), in version 1 it was the Codex dir itself. The version byte is the
//! only record of that, so [`Revision::layout`] is not part of the body.

use super::{DecodeError, ObjectId, ObjectKind, codec};

pub(crate) const MAGIC: &[u8; 4] = b"CXRV";
/// The encoding written; [`Revision::decode`] also reads version 1.
pub const VERSION: u8 = 2;
const ID_CONTEXT_V1: &str = "codexport 2026-11-25 revision v1";
const ID_CONTEXT_V2: &str = "codexport 2026-12-15 revision v2";

/// The id derivation context of a revision encoded in `version`.
pub(crate) fn id_context(version: u8) -> &'static str {
    match version {
        1 => ID_CONTEXT_V1,
        _ => ID_CONTEXT_V2,
    }
}

/// What a revision's `root` tree is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// A tree of roots: one entry per root of the table, named after it (encoding 2).
    #[default]
    Roots,
    /// The Codex dir itself (encoding 1, revisions made before roots existed).
    CodexDir,
}

impl Layout {
    /// The encoding version that records this layout.
    pub fn version(self) -> u8 {
        match self {
            Layout::Roots => VERSION,
            Layout::CodexDir => 1,
        }
    }
}
const MAX_PARENTS: usize = 16;
/// In a revision's `mcp` tree: the MCP manifest blob (JSON, see store-format.md)…
pub const MCP_MANIFEST: &str = "manifest.json";
/// …and the subtree of copied MCP sources, one subtree per server.
pub const MCP_SOURCES: &str = "sources";
const MAX_HOST_LEN: usize = 255;
const MAX_PATH_LEN: usize = 4096;

/// A revision. `number` increases by one with each revision the master publishes; followers
/// use it to refuse replayed older heads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    pub number: u64,
    /// Root tree of the selected files.
    pub root: ObjectId,
    pub parents: Vec<ObjectId>,
    /// Creation time, milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    /// The master's host name, for display and for rewriting loopback MCP URLs.
    pub host: String,
    /// The master's home and codex dir (absolute paths), so followers can rewrite paths that
    /// point into them.
    pub home: String,
    pub codex_dir: String,
    /// Number of files (blobs, including symlinks) below `root`.
    pub files: u64,
    /// Total bytes of those files.
    pub bytes: u64,
    /// Tree holding the MCP manifest and copied MCP sources, if the master exported any.
    pub mcp: Option<ObjectId>,
    /// What `root` is; told by the encoding version, not stored in the body.
    #[serde(skip)]
    pub layout: Layout,
}

impl Revision {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(MAGIC, self.layout.version(), self)
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Revision.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let version = codec::version_of(MAGIC, "revision (CXRV)", &[1, VERSION], bytes)?;
        let mut rev: Revision = codec::decode_body(MAGIC, version, bytes)?;
        rev.layout = if version == 1 {
            Layout::CodexDir
        } else {
            Layout::Roots
        };
        if rev.parents.len() > MAX_PARENTS {
            return Err(DecodeError::TooLarge {
                what: "revision parent count",
                limit: MAX_PARENTS as u64,
            });
        }
        if rev.host.len() > MAX_HOST_LEN {
            return Err(DecodeError::TooLarge {
                what: "revision host name",
                limit: MAX_HOST_LEN as u64,
            });
        }
        if rev.home.len() > MAX_PATH_LEN || rev.codex_dir.len() > MAX_PATH_LEN {
            return Err(DecodeError::TooLarge {
                what: "revision source path",
                limit: MAX_PATH_LEN as u64,
            });
        }
        Ok(rev)
    }

    /// The objects this revision points at directly.
    pub fn children(&self) -> impl Iterator<Item = (ObjectKind, ObjectId)> + '_ {
        std::iter::once((ObjectKind::Tree, self.root))
            .chain(self.mcp.map(|m| (ObjectKind::Tree, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_golden_prefix() {
        let rev = Revision {
            number: 3,
            root: ObjectId::from_bytes([1; 32]),
            parents: vec![ObjectId::from_bytes([2; 32])],
            time_ms: 1_700_000_000_000,
            host: "master".into(),
            home: "/home/m".into(),
            codex_dir: "/home/m/.codex".into(),
            files: 10,
            bytes: 300,
            mcp: None,
            layout: Layout::Roots,
        };
        let bytes = rev.encode();
        assert_eq!(&bytes[..6], b"CXRV\x02\x03");
        assert_eq!(Revision::decode(&bytes).unwrap(), rev);
        assert_ne!(
            rev.id(),
            ObjectKind::Tree.id_of(&bytes),
            "kinds must not share ids"
        );
        // A revision made before roots: version 1, its own id context, read back as such.
        let old = Revision {
            layout: Layout::CodexDir,
            ..rev.clone()
        };
        let old_bytes = old.encode();
        assert_eq!(&old_bytes[..6], b"CXRV\x01\x03");
        assert_eq!(&old_bytes[5..], &bytes[5..], "the bodies are alike");
        assert_eq!(Revision::decode(&old_bytes).unwrap(), old);
        assert_ne!(old.id(), rev.id());
        assert_eq!(
            ObjectKind::Revision.id_of(&old_bytes),
            ObjectId::derived("codexport 2026-11-25 revision v1", &old_bytes),
            "version 1 ids are what they were"
        );
        let mut newer = bytes.clone();
        newer[4] = 3;
        assert!(matches!(
            Revision::decode(&newer),
            Err(DecodeError::UnsupportedVersion {
                found: 3,
                supported: 2
            })
        ));
    }
}
