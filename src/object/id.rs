//! `ObjectId`: the 32-byte blake3 name of an object.

use std::fmt;
use std::str::FromStr;

/// A blake3 object id. Blobs are named by the plain blake3 of their bytes (so `b3sum FILE`
/// names a file's blob); trees and revisions by a keyed derivation per kind, so ids of
/// different kinds never collide.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectId(pub [u8; 32]);

impl ObjectId {
    /// Hashes `bytes` under a blake3 `derive_key` context.
    pub fn derived(context: &str, bytes: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        hasher.update(bytes);
        Self::from(hasher.finalize())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits, for humans.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }

    /// Whether the hex form starts with `prefix` (case-insensitive hex digits).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.to_string().starts_with(&prefix.to_ascii_lowercase())
    }
}

impl From<blake3::Hash> for ObjectId {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// Error for text that is not a 64-digit hex id.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0:?} is not a 64-digit hex object id")]
#[diagnostic(
    code(codexport::object::id),
    help("object ids are 64 lowercase hex digits")
)]
pub struct ParseIdError(pub String);

impl FromStr for ObjectId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex::<32>(s)
            .map(Self)
            .ok_or_else(|| ParseIdError(s.to_owned()))
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("writing to a String cannot fail");
    }
    s
}

/// Parses exactly `N` bytes of hex.
pub fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_id_is_plain_blake3() {
        let id = crate::object::ObjectKind::Blob.id_of(b"hello");
        assert_eq!(id.to_string(), blake3::hash(b"hello").to_hex().as_str());
    }

    #[test]
    fn hex_round_trip_and_short() {
        let id = ObjectId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<ObjectId>().unwrap(), id);
        assert_eq!(id.short(), "abababababab");
        assert!("xyz".parse::<ObjectId>().is_err());
        assert!(id.has_prefix("ABAB"));
    }
}
