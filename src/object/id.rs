//! `ObjectId`: the 32-byte blake3 name of an object.

use std::fmt;
use std::str::FromStr;

/// A blake3 object id. Blobs are named by the plain blake3 of their bytes (so `b3sum FILE`
/// names a file's blob); trees and revisions by a keyed derivation per kind, so ids of
/// different kinds never collide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The id made of these 32 bytes (read from the store or the wire, where the bytes are
    /// checked against content before anything trusts them).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Hashes `bytes` under a blake3 `derive_key` context.
    pub fn derived(context: &str, bytes: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        hasher.update(bytes);
        Self::from(hasher.finalize())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
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

/// Lowercase hex in human-readable formats (JSON, TOML); the 32 raw bytes in binary ones
/// (postcard), exactly as the derived encoding of `ObjectId([u8; 32])` wrote them, so the
/// binary formats of store-format.md stay byte for byte.
impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_newtype_struct("ObjectId", &self.0)
        }
    }
}

/// Reads what [`Serialize`](serde::Serialize) writes; in human-readable formats it also
/// accepts the array of 32 numbers that JSON state files of earlier versions hold.
impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(HexOrBytes)
        } else {
            d.deserialize_newtype_struct("ObjectId", RawBytes)
        }
    }
}

/// Human-readable forms: a hex string, or (earlier JSON files) a sequence of 32 bytes.
struct HexOrBytes;

impl<'de> serde::de::Visitor<'de> for HexOrBytes {
    type Value = ObjectId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-digit hex object id")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ObjectId, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<ObjectId, A::Error> {
        RawBytes.visit_seq(seq)
    }
}

/// The binary form: a newtype around a tuple of 32 bytes.
struct RawBytes;

impl<'de> serde::de::Visitor<'de> for RawBytes {
    type Value = ObjectId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("32 id bytes")
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<ObjectId, D::Error> {
        <[u8; 32] as serde::Deserialize>::deserialize(d).map(ObjectId)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectId, A::Error> {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(serde::de::Error::invalid_length(33, &self));
        }
        Ok(ObjectId(out))
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
    fn serde_is_hex_for_people_and_raw_bytes_for_postcard() {
        let id = ObjectId([0xab; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ObjectId>(&json).unwrap(), id);
        // JSON state files written by earlier versions hold arrays of 32 numbers.
        let old = serde_json::to_string(&[0xabu8; 32]).unwrap();
        assert_eq!(serde_json::from_str::<ObjectId>(&old).unwrap(), id);
        assert!(serde_json::from_str::<ObjectId>("[1,2]").is_err());
        // postcard: the same 32 raw bytes the derived encoding wrote.
        let bin = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bin, [0xab; 32]);
        assert_eq!(postcard::from_bytes::<ObjectId>(&bin).unwrap(), id);
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
