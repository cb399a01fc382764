//! Shared framing for encoded objects: 4-byte magic, 1-byte format version, postcard body.

use super::{DecodeError, FORMAT_VERSION};
use serde::{Serialize, de::DeserializeOwned};

/// Encodes `value` behind `magic` and the format version.
pub(crate) fn encode<T: Serialize>(magic: &[u8; 4], value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(magic);
    out.push(FORMAT_VERSION);
    postcard::to_extend(value, out).expect("postcard encoding into a Vec cannot fail")
}

/// Decodes a framed value, refusing trailing bytes and non-canonical encodings.
pub(crate) fn decode<T: Serialize + DeserializeOwned>(
    magic: &[u8; 4],
    magic_name: &'static str,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let body = strip_header(magic, magic_name, bytes)?;
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    if encode(magic, &value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Checks magic and version and returns the body that follows them.
pub(crate) fn strip_header<'a>(
    magic: &[u8; 4],
    magic_name: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [u8], DecodeError> {
    if bytes.len() < 5 || &bytes[..4] != magic {
        return Err(DecodeError::BadMagic {
            expected: magic_name,
        });
    }
    if bytes[4] != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: bytes[4],
            supported: FORMAT_VERSION,
        });
    }
    Ok(&bytes[5..])
}
