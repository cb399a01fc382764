//! Sealing what a mirror holds, so storage that is not ours learns nothing but sizes.
//!
//! Packs and indexes are sealed under a 32-byte content key with XChaCha20-Poly1305 in the
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): 64 KiB segments, each
//! authenticated, the last one marked, so a file is opened a segment at a time (memory
//! stays bounded at any size) and a truncated or reordered file is refused. The nonce is
//! derived from the key and the plaintext, so the same plaintext seals to the same bytes: a
//! publish run again finds its packs already uploaded (it reveals only that two sealed files
//! are equal, which their names say anyway).
//!
//! The content key reaches each follower wrapped to its X25519 key: an ephemeral key pair
//! per wrapping, the shared secret through BLAKE3's key derivation, and the content key
//! sealed with XChaCha20-Poly1305 (the shape of age's X25519 recipients). The ephemeral
//! secret is derived from the content key, the recipient and the epoch, so wrapping the same
//! key to the same followers again gives the same keyring (a publish finds it uploaded).

use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::{self, Read, Seek, SeekFrom, Write};
use x25519_dalek::{PublicKey, StaticSecret};

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 << 10;
const TAG: usize = 16;
const NONCE_PREFIX: usize = 19;
const MAGIC: &[u8; 4] = b"CXE1";
/// Bytes before the first segment: the magic and the nonce prefix.
pub const HEADER: usize = MAGIC.len() + NONCE_PREFIX;
const NONCE_CONTEXT: &str = "codexport 2026-12-08 mirror seal nonce v1";
const WRAP_CONTEXT: &str = "codexport 2026-12-08 mirror key wrap v1";
const EPHEMERAL_CONTEXT: &str = "codexport 2026-12-08 mirror key wrap ephemeral v1";

/// A content key: reads everything sealed in one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey([u8; 32]);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

impl ContentKey {
    pub fn generate() -> Self {
        Self(random())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(GenericArray::from_slice(&self.0))
    }
}

/// Seals `plain` (read twice: once to derive the nonce, once to seal) into `out`.
pub fn seal<R: Read + Seek, W: Write>(
    key: &ContentKey,
    plain: &mut R,
    out: &mut W,
) -> io::Result<()> {
    let mut hasher = blake3::Hasher::new_derive_key(NONCE_CONTEXT);
    hasher.update(key.as_bytes());
    plain.seek(SeekFrom::Start(0))?;
    io::copy(plain, &mut hasher)?;
    let prefix: [u8; NONCE_PREFIX] = hasher.finalize().as_bytes()[..NONCE_PREFIX]
        .try_into()
        .expect("19 bytes");
    plain.seek(SeekFrom::Start(0))?;
    out.write_all(MAGIC)?;
    out.write_all(&prefix)?;
    let mut enc = EncryptorBE32::from_aead(key.aead(), GenericArray::from_slice(&prefix));
    let mut cur = vec![0u8; SEGMENT];
    let mut next = vec![0u8; SEGMENT];
    let mut cur_len = read_full(plain, &mut cur)?;
    loop {
        let next_len = if cur_len == SEGMENT {
            read_full(plain, &mut next)?
        } else {
            0
        };
        if next_len == 0 {
            let sealed = enc
                .encrypt_last(&cur[..cur_len])
                .map_err(|_| io::Error::other("sealing failed"))?;
            return out.write_all(&sealed);
        }
        let sealed = enc
            .encrypt_next(&cur[..cur_len])
            .map_err(|_| io::Error::other("sealing failed"))?;
        out.write_all(&sealed)?;
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
    }
}

/// Seals bytes held in memory.
pub fn seal_bytes(key: &ContentKey, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + plain.len() + (plain.len() / SEGMENT + 1) * TAG);
    seal(key, &mut io::Cursor::new(plain), &mut out).expect("sealing into memory cannot fail");
    out
}

/// Opens bytes held in memory.
pub fn open_bytes(key: &ContentKey, sealed: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Opener::new(key, sealed)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Reads as much as fits in `buf`, stopping early only at the end of the input.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Opens a sealed stream a segment at a time. Any damage, truncation or reordering is an
/// `InvalidData` error, and nothing of the damaged segment is handed out.
pub struct Opener<R: Read> {
    input: R,
    dec: Option<DecryptorBE32<XChaCha20Poly1305>>,
    /// Sealed bytes of the segment after the current one (to know which one is last).
    ahead: Vec<u8>,
    ahead_len: usize,
    plain: Vec<u8>,
    at: usize,
}

impl<R: Read> Opener<R> {
    pub fn new(key: &ContentKey, mut input: R) -> io::Result<Self> {
        let mut header = [0u8; HEADER];
        if read_full(&mut input, &mut header)? < HEADER || &header[..4] != MAGIC {
            return Err(refused("not a sealed codexport file (bad header)"));
        }
        let dec = DecryptorBE32::from_aead(key.aead(), GenericArray::from_slice(&header[4..]));
        let mut ahead = vec![0u8; SEGMENT + TAG];
        let ahead_len = read_full(&mut input, &mut ahead)?;
        Ok(Self {
            input,
            dec: Some(dec),
            ahead,
            ahead_len,
            plain: Vec::new(),
            at: 0,
        })
    }

    /// Opens the next segment into `plain`; false at the end.
    fn next_segment(&mut self) -> io::Result<bool> {
        let Some(dec) = self.dec.as_mut() else {
            return Ok(false);
        };
        let cur = std::mem::replace(&mut self.ahead, vec![0u8; SEGMENT + TAG]);
        let cur_len = self.ahead_len;
        self.ahead_len = if cur_len == SEGMENT + TAG {
            read_full(&mut self.input, &mut self.ahead)?
        } else {
            0
        };
        let bad = |_| refused("a sealed segment does not open (damaged, truncated or not ours)");
        self.plain = if self.ahead_len == 0 {
            let dec = self.dec.take().expect("checked above");
            dec.decrypt_last(&cur[..cur_len]).map_err(bad)?
        } else {
            dec.decrypt_next(&cur[..cur_len]).map_err(bad)?
        };
        self.at = 0;
        Ok(true)
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if !self.next_segment()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len() - self.at);
        buf[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A follower's X25519 key pair for mirrors: the secret stays on the follower.
pub struct RecipientSecret(StaticSecret);

impl RecipientSecret {
    pub fn generate() -> Self {
        Self(StaticSecret::from(random::<32>()))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }
}

fn wrap_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
    epoch: &[u8; 16],
) -> ContentKey {
    let mut h = blake3::Hasher::new_derive_key(WRAP_CONTEXT);
    h.update(shared);
    h.update(ephemeral);
    h.update(recipient);
    h.update(epoch);
    ContentKey(*h.finalize().as_bytes())
}

/// Wraps `key` to `recipient`: `(ephemeral public key, 48 sealed bytes)`. `None` for a
/// recipient key that is a low-order point (no secret would be shared).
pub fn wrap(
    key: &ContentKey,
    recipient: &[u8; 32],
    epoch: &[u8; 16],
) -> Option<([u8; 32], Vec<u8>)> {
    // Unpredictable without the content key, and the same for the same wrapping.
    let mut h = blake3::Hasher::new_derive_key(EPHEMERAL_CONTEXT);
    h.update(key.as_bytes());
    h.update(recipient);
    h.update(epoch);
    let ephemeral = StaticSecret::from(*h.finalize().as_bytes());
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
    if !shared.was_contributory() {
        return None;
    }
    let k = wrap_key(shared.as_bytes(), &ephemeral_public, recipient, epoch);
    // A wrapping key seals one plaintext only (it follows from the content key, the
    // recipient and the epoch): a zero nonce is safe.
    let sealed = k
        .aead()
        .encrypt(&XNonce::default(), key.as_bytes().as_slice())
        .expect("sealing 32 bytes cannot fail");
    Some((ephemeral_public, sealed))
}

/// Unwraps a content key wrapped to `secret`; `None` if it was not, or was altered.
pub fn unwrap(
    secret: &RecipientSecret,
    ephemeral: &[u8; 32],
    sealed: &[u8],
    epoch: &[u8; 16],
) -> Option<ContentKey> {
    let shared = secret.0.diffie_hellman(&PublicKey::from(*ephemeral));
    if !shared.was_contributory() {
        return None;
    }
    let k = wrap_key(shared.as_bytes(), ephemeral, &secret.public(), epoch);
    let plain = k.aead().decrypt(&XNonce::default(), sealed).ok()?;
    Some(ContentKey(plain.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_streams_open_whole_and_refuse_damage() {
        let key = ContentKey::generate();
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let sealed = seal_bytes(&key, &plain);
            assert_eq!(open_bytes(&key, &sealed).unwrap(), plain, "{len}");
            assert_eq!(sealed, seal_bytes(&key, &plain), "deterministic");
            // Flipped bit, truncation at a segment boundary, a dropped last byte, another key.
            let mut flipped = sealed.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert!(open_bytes(&key, &flipped).is_err());
            if len > SEGMENT {
                let cut = &sealed[..HEADER + SEGMENT + TAG];
                assert!(open_bytes(&key, cut).is_err(), "truncated at a boundary");
            }
            assert!(open_bytes(&key, &sealed[..sealed.len() - 1]).is_err());
            assert!(open_bytes(&ContentKey::generate(), &sealed).is_err());
        }
        assert_ne!(
            seal_bytes(&key, b"a"),
            seal_bytes(&ContentKey::generate(), b"a")
        );
    }

    #[test]
    fn a_key_unwraps_only_for_its_recipient_and_epoch() {
        let key = ContentKey::generate();
        let (alice, bob) = (RecipientSecret::generate(), RecipientSecret::generate());
        let epoch = [3; 16];
        let (eph, sealed) = wrap(&key, &alice.public(), &epoch).unwrap();
        assert_eq!(sealed.len(), 48);
        // The same wrapping again is the same bytes; another key, recipient or epoch is not.
        assert_eq!(
            wrap(&key, &alice.public(), &epoch),
            Some((eph, sealed.clone()))
        );
        let other = ContentKey::generate();
        for (k, r, e) in [
            (&other, alice.public(), epoch),
            (&key, bob.public(), epoch),
            (&key, alice.public(), [4; 16]),
        ] {
            assert_ne!(wrap(k, &r, &e).unwrap().0, eph);
        }
        assert_eq!(unwrap(&alice, &eph, &sealed, &epoch), Some(key.clone()));
        assert_eq!(unwrap(&bob, &eph, &sealed, &epoch), None);
        assert_eq!(unwrap(&alice, &eph, &sealed, &[4; 16]), None);
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert_eq!(unwrap(&alice, &eph, &bad, &epoch), None);
        // A low-order recipient key shares no secret: refused.
        assert!(wrap(&key, &[0; 32], &epoch).is_none());
        let again = RecipientSecret::from_bytes(alice.to_bytes());
        assert_eq!(again.public(), alice.public());
    }
}
