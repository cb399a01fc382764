//! Revisions: one snapshot of the selected `~/.codex`, with its place in history.

use super::{DecodeError, ObjectId, ObjectKind, codec};

pub(crate) const MAGIC: &[u8; 4] = b"CXRV";
/// The revision's encoding version.
pub const VERSION: u8 = 1;
pub(crate) const ID_CONTEXT: &str = "codexport 2026-11-25 revision v1";
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
}

impl Revision {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(MAGIC, VERSION, self)
    }

    pub fn id(&self) -> ObjectId {
        ObjectKind::Revision.id_of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let rev: Revision = codec::decode(MAGIC, "revision (CXRV)", VERSION, bytes)?;
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
        };
        let bytes = rev.encode();
        assert_eq!(&bytes[..6], b"CXRV\x01\x03");
        assert_eq!(Revision::decode(&bytes).unwrap(), rev);
        assert_ne!(
            rev.id(),
            ObjectKind::Tree.id_of(&bytes),
            "kinds must not share ids"
        );
    }
}
