//! The signed head: which revision is current, signed by the master's ed25519 key.

use super::{DecodeError, ObjectId, codec, id::hex};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;

const MAGIC: &[u8; 4] = b"CXHD";
/// The head's encoding version.
pub const VERSION: u8 = 1;
/// Domain separation prefix of the signed bytes.
pub const SIGNATURE_CONTEXT: &[u8] = b"codexport signed head v1\n";
const FINGERPRINT_CONTEXT: &str = "codexport 2026-11-25 master fingerprint v1";
const FINGERPRINT_LEN: usize = 20;

/// What the master vouches for. Besides the revision it carries an expiry (a follower refuses
/// a stale head: freeze attack), the key (a head from another master cannot be swapped in),
/// and the size of the closure (a follower caps what it downloads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadBody {
    pub master_key: [u8; 32],
    pub revision: ObjectId,
    pub number: u64,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    /// Objects in the revision's closure (the revision, its trees and blobs).
    pub objects: u64,
    /// Encoded bytes of those objects.
    pub bytes: u64,
}

/// A head body with its ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    pub body: HeadBody,
    pub signature: [u8; 64],
}

impl HeadBody {
    fn encode(&self) -> Vec<u8> {
        codec::encode(MAGIC, VERSION, self)
    }

    fn signing_input(&self) -> Vec<u8> {
        let mut input = SIGNATURE_CONTEXT.to_vec();
        input.extend_from_slice(&self.encode());
        input
    }

    pub fn sign(self, key: &SigningKey) -> SignedHead {
        let signature = key.sign(&self.signing_input()).to_bytes();
        SignedHead {
            body: self,
            signature,
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_key(&self.master_key)
    }
}

impl SignedHead {
    /// Body encoding followed by the 64 signature bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body.encode();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes and verifies the signature against the key the head names. Whether that key
    /// is the one the follower trusts is the caller's check.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < 64 + 5 {
            return Err(DecodeError::Malformed(
                "head shorter than its signature".into(),
            ));
        }
        let (body_bytes, sig) = bytes.split_at(bytes.len() - 64);
        let body: HeadBody = codec::decode(MAGIC, "head (CXHD)", VERSION, body_bytes)?;
        let signature: [u8; 64] = sig.try_into().expect("split_at left exactly 64 bytes");
        let head = SignedHead { body, signature };
        head.verify()?;
        Ok(head)
    }

    fn verify(&self) -> Result<(), DecodeError> {
        let key = VerifyingKey::from_bytes(&self.body.master_key)
            .map_err(|_| DecodeError::BadSignature)?;
        key.verify_strict(
            &self.body.signing_input(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| DecodeError::BadSignature)?;
        if key.is_weak() {
            return Err(DecodeError::BadSignature);
        }
        Ok(())
    }
}

/// Short public name of a master key, carried in join links and compared on every sync.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

impl Fingerprint {
    pub fn of_key(key: &[u8; 32]) -> Self {
        let id = ObjectId::derived(FINGERPRINT_CONTEXT, key);
        let mut fp = [0u8; FINGERPRINT_LEN];
        fp.copy_from_slice(&id.as_bytes()[..FINGERPRINT_LEN]);
        Self(fp)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        super::id::decode_hex::<FINGERPRINT_LEN>(s.trim())
            .map(Self)
            .ok_or_else(|| {
                DecodeError::Malformed(format!("fingerprint {s:?} is not 40 hex digits"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &SigningKey) -> HeadBody {
        HeadBody {
            master_key: key.verifying_key().to_bytes(),
            revision: ObjectId::from_bytes([9; 32]),
            number: 4,
            issued_at: 100,
            expires_at: 200,
            objects: 12,
            bytes: 3456,
        }
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let head = body(&key).sign(&key);
        let bytes = head.encode();
        assert_eq!(SignedHead::decode(&bytes).unwrap(), head);
        for i in [6, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(SignedHead::decode(&bad).is_err(), "flip at {i} accepted");
        }
        // Signed by another key but naming the first: refused.
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = SignedHead {
            body: body(&key),
            signature: other.sign(&body(&key).signing_input()).to_bytes(),
        };
        assert_eq!(
            SignedHead::decode(&forged.encode()),
            Err(DecodeError::BadSignature)
        );
    }

    #[test]
    fn fingerprint_text_round_trip() {
        let fp = Fingerprint::of_key(&[1; 32]);
        assert_eq!(fp.to_string().len(), 40);
        assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
    }
}
