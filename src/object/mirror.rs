//! What a static mirror holds besides packs: the mirror head file (the signed head, the
//! binding that ties it to one index and one keyring, the sealed index), the keyring (its
//! own file, named by its hash), the index of packs, and the signed list of mirror URLs a
//! master hands its followers.
//!
//! A mirror is untrusted storage: everything a follower reads from it is either signed by
//! the pinned master key or named by a hash that a signed document carries.

use super::signed::{Document, Signed};
use super::{DecodeError, ObjectId, SignedHead, codec};

/// The mirror's one mutable file.
pub const HEAD_FILE: &str = "head";
/// Folder of the sealed packs, `<64 hex>.cxp`.
pub const PACKS: &str = "packs";
/// Folder of the keyrings, `<64 hex>.cxk`.
pub const KEYS: &str = "keys";

/// The name of a sealed pack on a mirror.
pub fn pack_name(hash: &[u8; 32]) -> String {
    format!("{PACKS}/{}.cxp", super::id::hex(hash))
}

/// The name of a keyring on a mirror: the blake3 of its encoding, as the binding names it.
pub fn keyring_name(hash: &[u8; 32]) -> String {
    format!("{KEYS}/{}.cxk", super::id::hex(hash))
}

/// What master and follower compare to know whether the follower's mirror list and the key
/// the master holds for it are current: a hash of the URLs and of that key; empty without
/// mirrors (a follower then registers nothing: its key is asked for once there are some).
pub fn list_tag(urls: &[String], registered: Option<&[u8; 32]>) -> String {
    if urls.is_empty() {
        return String::new();
    }
    let mut h = blake3::Hasher::new_derive_key("codexport 2026-12-08 mirror list tag v1");
    for u in urls {
        h.update(&(u.len() as u64).to_le_bytes());
        h.update(u.as_bytes());
    }
    h.update(registered.map_or(&[0u8; 32][..], |k| &k[..]));
    h.finalize().to_hex()[..32].to_owned()
}

const HEAD_FILE_MAGIC: &[u8; 4] = b"CXMH";
const INDEX_MAGIC: &[u8; 4] = b"CXMI";
const KEYRING_MAGIC: &[u8; 4] = b"CXKR";
const VERSION: u8 = 1;
/// The head file's encoding: 2 since the keyring left it for a file of its own (1, which
/// held the keyring, was never released).
const HEAD_FILE_VERSION: u8 = 2;
/// Most packs one index may name (a checkpoint and the deltas after it).
pub const MAX_PACKS: usize = 4096;
/// Most followers one keyring may name.
pub const MAX_RECIPIENTS: usize = 1 << 16;
/// Most mirror URLs in a list, and the longest URL.
pub const MAX_URLS: usize = 64;
pub const MAX_URL_LEN: usize = 2048;

/// Ties a signed head to the index and keyring published with it, so a mirror cannot pair
/// a valid head with another revision's index or an older keyring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    pub master_key: [u8; 32],
    pub revision: ObjectId,
    pub number: u64,
    /// blake3 of the sealed index bytes in the same head file.
    pub index: [u8; 32],
    /// blake3 of the keyring encoding: also its name (`keys/<hex>.cxk`).
    pub keyring: [u8; 32],
    /// The content key's epoch (changes when a follower is revoked).
    pub epoch: [u8; 16],
}

impl Document for Binding {
    const MAGIC: &'static [u8; 4] = b"CXMB";
    const VERSION: u8 = 1;
    const CONTEXT: &'static [u8] = b"codexport mirror binding v1\n";
    const WHAT: &'static str = "mirror binding (CXMB)";
    fn master_key(&self) -> [u8; 32] {
        self.master_key
    }
}

/// The mirrors a master publishes to, as its followers should read them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MirrorList {
    pub master_key: [u8; 32],
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    pub urls: Vec<String>,
}

impl Document for MirrorList {
    const MAGIC: &'static [u8; 4] = b"CXML";
    const VERSION: u8 = 1;
    const CONTEXT: &'static [u8] = b"codexport mirror list v1\n";
    const WHAT: &'static str = "mirror list (CXML)";
    fn master_key(&self) -> [u8; 32] {
        self.master_key
    }
}

impl MirrorList {
    /// Decodes, verifies and checks the limits.
    pub fn decode_signed(bytes: &[u8]) -> Result<Signed<Self>, DecodeError> {
        let list = Signed::<Self>::decode(bytes)?;
        if list.body.urls.len() > MAX_URLS {
            return Err(DecodeError::TooLarge {
                what: "mirror URL count",
                limit: MAX_URLS as u64,
            });
        }
        if list.body.urls.iter().any(|u| u.len() > MAX_URL_LEN) {
            return Err(DecodeError::TooLarge {
                what: "mirror URL length",
                limit: MAX_URL_LEN as u64,
            });
        }
        Ok(list)
    }
}

/// One pack file on a mirror.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackRef {
    /// blake3 of the file's bytes; also its name (`packs/<hex>.cxp`).
    pub hash: [u8; 32],
    /// The file's length.
    pub size: u64,
    /// Objects in it, and their own sizes added (the budget its stream is read with).
    pub objects: u64,
    pub bytes: u64,
    /// The revision number it builds on (its objects are what `to` added since `from`); 0
    /// for a checkpoint, which holds the whole closure of `to`.
    pub from: u64,
    pub to: u64,
}

/// The packs that together hold the closure of one revision: a checkpoint, then deltas in
/// order. A follower holding revision `n` completely needs only the deltas with `from >= n`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    pub revision: ObjectId,
    pub number: u64,
    pub packs: Vec<PackRef>,
}

impl Index {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(INDEX_MAGIC, VERSION, self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let index: Self = codec::decode(INDEX_MAGIC, "mirror index (CXMI)", VERSION, bytes)?;
        if index.packs.len() > MAX_PACKS {
            return Err(DecodeError::TooLarge {
                what: "mirror pack count",
                limit: MAX_PACKS as u64,
            });
        }
        let chained = index.packs.first().is_some_and(|p| p.from == 0)
            && index.packs.windows(2).all(|w| w[1].from == w[0].to)
            && index.packs.last().is_some_and(|p| p.to == index.number);
        if !chained {
            return Err(DecodeError::Malformed(
                "the index's packs do not chain from a checkpoint to its revision".into(),
            ));
        }
        Ok(index)
    }

    /// The packs a follower needs: from the last delta that builds on a revision it holds
    /// completely (`holds(number)`), else all of them from the checkpoint.
    pub fn needed(&self, holds: impl Fn(u64) -> bool) -> &[PackRef] {
        if holds(self.number) {
            return &[];
        }
        match self
            .packs
            .iter()
            .rposition(|p| p.from != 0 && holds(p.from))
        {
            Some(i) => &self.packs[i..],
            None => &self.packs,
        }
    }
}

/// The content key, wrapped to one follower's X25519 key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Wrapped {
    /// The follower's public key.
    pub recipient: [u8; 32],
    /// The ephemeral public key of this wrapping.
    pub ephemeral: [u8; 32],
    /// The sealed content key (32 bytes and a 16-byte tag).
    pub sealed: Vec<u8>,
}

/// The content key of one epoch, wrapped to every follower allowed to read the mirror.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Keyring {
    pub epoch: [u8; 16],
    pub recipients: Vec<Wrapped>,
}

impl Keyring {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(KEYRING_MAGIC, VERSION, self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let ring: Self = codec::decode(KEYRING_MAGIC, "mirror keyring (CXKR)", VERSION, bytes)?;
        if ring.recipients.len() > MAX_RECIPIENTS {
            return Err(DecodeError::TooLarge {
                what: "keyring recipient count",
                limit: MAX_RECIPIENTS as u64,
            });
        }
        if ring.recipients.iter().any(|w| w.sealed.len() != 48) {
            return Err(DecodeError::Malformed(
                "a wrapped key is not 48 bytes".into(),
            ));
        }
        Ok(ring)
    }

    /// The wrapping meant for `recipient`.
    pub fn for_recipient(&self, recipient: &[u8; 32]) -> Option<&Wrapped> {
        self.recipients.iter().find(|w| &w.recipient == recipient)
    }
}

/// The `head` file of a mirror, the one file rewritten in place: one GET gives a follower
/// the head, the binding and the index. It grows with the packs of the chain, not with the
/// followers: the keyring, which does, is a file of its own, read once per content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadFile {
    pub head: SignedHead,
    pub binding: Signed<Binding>,
    /// The index, sealed under the epoch's content key.
    pub index: Vec<u8>,
}

/// The head file's layout: each part in its own encoding, as bytes.
#[derive(serde::Serialize, serde::Deserialize)]
struct HeadFileParts {
    head: Vec<u8>,
    binding: Vec<u8>,
    index: Vec<u8>,
}

impl HeadFile {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(
            HEAD_FILE_MAGIC,
            HEAD_FILE_VERSION,
            &HeadFileParts {
                head: self.head.encode(),
                binding: self.binding.encode(),
                index: self.index.clone(),
            },
        )
    }

    /// Decodes every part and checks what can be checked without the trusted key: both
    /// signatures verify under the key they name, the binding names the same key, revision
    /// and number as the head, and the index hashes to what the binding says.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let parts: HeadFileParts = codec::decode(
            HEAD_FILE_MAGIC,
            "mirror head (CXMH)",
            HEAD_FILE_VERSION,
            bytes,
        )?;
        let head = SignedHead::decode(&parts.head)?;
        let binding = Signed::<Binding>::decode(&parts.binding)?;
        let b = &binding.body;
        if b.master_key != head.body.master_key
            || b.revision != head.body.revision
            || b.number != head.body.number
        {
            return Err(DecodeError::Malformed(
                "the mirror binding names another head".into(),
            ));
        }
        if b.index != *blake3::hash(&parts.index).as_bytes() {
            return Err(DecodeError::Malformed(
                "the mirror head's index is not the one signed".into(),
            ));
        }
        Ok(Self {
            head,
            binding,
            index: parts.index,
        })
    }

    /// The name of the keyring the binding names (`keys/<hex>.cxk`).
    pub fn keyring_name(&self) -> String {
        keyring_name(&self.binding.body.keyring)
    }

    /// Decodes the keyring file the binding names, refusing any other: it must hash to the
    /// binding's keyring hash and be of the binding's epoch.
    pub fn keyring(&self, bytes: &[u8]) -> Result<Keyring, DecodeError> {
        let b = &self.binding.body;
        if b.keyring != *blake3::hash(bytes).as_bytes() {
            return Err(DecodeError::Malformed(
                "the mirror's keyring is not the one signed".into(),
            ));
        }
        let keyring = Keyring::decode(bytes)?;
        if keyring.epoch != b.epoch {
            return Err(DecodeError::Malformed(
                "the mirror's keyring is of another epoch".into(),
            ));
        }
        Ok(keyring)
    }
}
