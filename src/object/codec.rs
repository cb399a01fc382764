//! Shared framing for encoded objects: 4-byte magic, 1-byte encoding version, postcard body.
//!
//! Each object kind versions its own encoding; a decoder names the versions it reads and
//! re-encodes in the version it found, so every accepted object has exactly one encoding.

use super::DecodeError;
use serde::{Serialize, de::DeserializeOwned};

/// Encodes `value` behind `magic` and `version`.
pub(crate) fn encode<T: Serialize>(magic: &[u8; 4], version: u8, value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(magic);
    out.push(version);
    postcard::to_extend(value, out).expect("postcard encoding into a Vec cannot fail")
}

/// Decodes a framed value of the given `version`, refusing trailing bytes and
/// non-canonical encodings. The caller checked the header (see [`version_of`]).
pub(crate) fn decode_body<T: Serialize + DeserializeOwned>(
    magic: &[u8; 4],
    version: u8,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let body = &bytes[5..];
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    if encode(magic, version, &value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Decodes a framed value that has one version only.
pub(crate) fn decode<T: Serialize + DeserializeOwned>(
    magic: &[u8; 4],
    magic_name: &'static str,
    version: u8,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    version_of(magic, magic_name, &[version], bytes)?;
    decode_body(magic, version, bytes)
}

/// Checks the magic and returns the encoding version, if it is one of `readable` (the
/// newest last, for the error message).
pub(crate) fn version_of(
    magic: &[u8; 4],
    magic_name: &'static str,
    readable: &[u8],
    bytes: &[u8],
) -> Result<u8, DecodeError> {
    if bytes.len() < 5 || &bytes[..4] != magic {
        return Err(DecodeError::BadMagic {
            expected: magic_name,
        });
    }
    if !readable.contains(&bytes[4]) {
        return Err(DecodeError::UnsupportedVersion {
            found: bytes[4],
            supported: readable.last().copied().unwrap_or(0),
        });
    }
    Ok(bytes[4])
}
