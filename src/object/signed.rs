//! Documents the master signs besides its head: each kind has its own magic and its own
//! signature context, so no signature made for one kind can be passed off as another.

use super::{DecodeError, codec};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Serialize, de::DeserializeOwned};

/// A kind of signed document: its framing and the context its signatures are made under.
pub trait Document: Serialize + DeserializeOwned {
    const MAGIC: &'static [u8; 4];
    const VERSION: u8;
    /// Prefixed to the encoded body before signing.
    const CONTEXT: &'static [u8];
    /// For error messages, e.g. `"mirror binding (CXMB)"`.
    const WHAT: &'static str;
    /// The key that signed it (and must verify it).
    fn master_key(&self) -> [u8; 32];
}

/// A document with the master's ed25519 signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    pub body: T,
    pub signature: [u8; 64],
}

fn signing_input<T: Document>(body: &T) -> Vec<u8> {
    let mut input = T::CONTEXT.to_vec();
    input.extend_from_slice(&codec::encode(T::MAGIC, T::VERSION, body));
    input
}

impl<T: Document> Signed<T> {
    pub fn sign(body: T, key: &SigningKey) -> Self {
        let signature = key.sign(&signing_input(&body)).to_bytes();
        Self { body, signature }
    }

    /// Body encoding followed by the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = codec::encode(T::MAGIC, T::VERSION, &self.body);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes and verifies the signature against the key the body names; whether that key
    /// is the trusted one is the caller's check.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 64 + 5 {
            return Err(DecodeError::Malformed(format!(
                "{} shorter than its signature",
                T::WHAT
            )));
        }
        let (body_bytes, sig) = bytes.split_at(bytes.len() - 64);
        let body: T = codec::decode(T::MAGIC, T::WHAT, T::VERSION, body_bytes)?;
        let signature: [u8; 64] = sig.try_into().expect("split_at left exactly 64 bytes");
        let key =
            VerifyingKey::from_bytes(&body.master_key()).map_err(|_| DecodeError::BadSignature)?;
        if key.is_weak() {
            return Err(DecodeError::BadSignature);
        }
        key.verify_strict(&signing_input(&body), &Signature::from_bytes(&signature))
            .map_err(|_| DecodeError::BadSignature)?;
        Ok(Self { body, signature })
    }
}
