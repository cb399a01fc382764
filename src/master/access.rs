//! Who may talk to the master: single-use join tokens and per-follower credentials.
//!
//! The master's store keeps only hashes of tokens and credentials (`tokens-v1`,
//! `followers-v1`), so a copy of the store does not let anyone enrol or pose as a follower.
//! A join link carries the master's address, its key fingerprint and a token; redeeming the
//! token enrols one follower and hands it a long-lived credential.

use crate::object::id::hex;
use crate::store::{Reader, Store, StoreError, Writer};
use crate::time::now_ms;
use crate::transport::link::{CREDENTIAL_PREFIX, TOKEN_PREFIX, parse_secret};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// How long a join token is valid unless the master says otherwise.
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest follower name.
pub const MAX_NAME_LEN: usize = 64;

/// blake3 key-derivation contexts: a token can never be taken for a credential.
const TOKEN_CONTEXT: &str = "codexport 2026-11-25 join token v1";
const CREDENTIAL_CONTEXT: &str = "codexport 2026-11-25 follower credential v1";
/// Expired tokens are kept this long after expiry (so redeeming one says "expired", not
/// "unknown"), then pruned when the next token is issued.
const PRUNE_AFTER_MS: i64 = 30 * 24 * 3600 * 1000;

/// What went wrong enrolling, authenticating or parsing a link.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum AccessError {
    #[error("this join token is not known to the master")]
    #[diagnostic(
        code(codexport::trust::token_unknown),
        help("copy the whole link, or ask the master for a new link with `codexport master link`")
    )]
    TokenUnknown,
    #[error("this join token expired")]
    #[diagnostic(
        code(codexport::trust::token_expired),
        help("ask the master for a new link with `codexport master link`")
    )]
    TokenExpired,
    #[error("this join token was already used (each link enrols one follower)")]
    #[diagnostic(
        code(codexport::trust::token_used),
        help("ask the master for a new link with `codexport master link`")
    )]
    TokenUsed,
    #[error("the master does not accept this follower's credential")]
    #[diagnostic(
        code(codexport::trust::bad_credential),
        help(
            "enrol this machine again: ask the master for a new link with `codexport master link`, then `codexport follower join <link>`"
        )
    )]
    BadCredential,
    #[error("follower {name:?} was revoked on the master")]
    #[diagnostic(
        code(codexport::trust::revoked),
        help(
            "if that was a mistake, enrol again: ask the master for a new link with `codexport master link`, then `codexport follower join <link>`"
        )
    )]
    Revoked { name: String },
    #[error("no follower named {name:?} (known: {known})")]
    #[diagnostic(
        code(codexport::usage::unknown_follower),
        help("use one of the known names exactly as listed")
    )]
    UnknownFollower { name: String, known: String },
    #[error("cannot tell which host followers should connect to: {reason}")]
    #[diagnostic(
        code(codexport::usage::no_host),
        help("pass --host <name or IP that followers can reach>")
    )]
    NoHost { reason: String },
    #[error("the operating system's random source failed: {reason}")]
    #[diagnostic(
        code(codexport::access::random),
        help("retry; if it keeps failing, the system's entropy source is broken")
    )]
    Random { reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// What the master keeps about a join token (under the token's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TokenRecord {
    created_ms: i64,
    expires_ms: i64,
    used: bool,
}

/// An enrolled follower, as the master keeps it (under its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerRecord {
    /// Unique among all followers ever enrolled, revoked ones included.
    pub name: String,
    /// Keyed blake3 of the credential; the credential itself is only on the follower.
    pub credential_hash: [u8; 32],
    /// Milliseconds since the Unix epoch.
    pub enrolled_ms: i64,
    /// When the follower last talked to the master (batched, so up to a minute or so late).
    pub last_seen_ms: Option<i64>,
    /// The revision number it last reported having.
    pub last_revision: Option<u64>,
    /// Set once revoked; a revoked follower is refused but kept so its name stays taken.
    pub revoked_ms: Option<i64>,
}

impl FollowerRecord {
    pub fn is_revoked(&self) -> bool {
        self.revoked_ms.is_some()
    }
}

fn corrupt(what: String) -> AccessError {
    AccessError::Store(StoreError::Corrupt { what })
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, AccessError> {
    postcard::to_allocvec(value).map_err(|e| corrupt(format!("encoding {what}: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T, AccessError> {
    postcard::from_bytes(bytes).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// 32 bytes from the operating system's random source.
fn random_secret() -> Result<[u8; 32], AccessError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| AccessError::Random {
        reason: e.to_string(),
    })?;
    Ok(secret)
}

fn hash_secret(context: &str, secret: &[u8; 32]) -> blake3::Hash {
    blake3::Hasher::new_derive_key(context)
        .update(secret)
        .finalize()
}

/// Creates a join token valid for `ttl` and returns its text (`cxt1_` + 64 hex digits). The
/// store keeps only its hash, so the text must be handed on now (in a join link).
pub fn issue_token(store: &Store, ttl: Duration) -> Result<String, AccessError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    issue_token_ms(store, ttl_ms)
}

/// [`issue_token`] with a signed TTL in milliseconds, so tests can issue expired tokens.
fn issue_token_ms(store: &Store, ttl_ms: i64) -> Result<String, AccessError> {
    let secret = random_secret()?;
    let now = now_ms();
    let record = TokenRecord {
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms),
        used: false,
    };
    let mut w = store.write()?;
    for hash in w.token_hashes()? {
        let Some(bytes) = w.token(&hash)? else {
            continue;
        };
        let old: TokenRecord = decode(&bytes, "join token record")?;
        if old.expires_ms.saturating_add(PRUNE_AFTER_MS) < now {
            w.remove_token(&hash)?;
        }
    }
    let hash = hash_secret(TOKEN_CONTEXT, &secret);
    w.put_token(hash.as_bytes(), &encode(&record, "join token record")?)?;
    w.commit()?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&secret)))
}

/// Redeems a join token: refuses an unknown, used or expired one; otherwise marks it used and
/// enrols a follower under a unique name derived from `follower_name`, in one transaction
/// (so two followers racing with the same token cannot both get in). Returns the new
/// credential text (`cxc1_` + 64 hex digits), which exists nowhere else, and the record.
pub fn redeem_token(
    store: &Store,
    token: &str,
    follower_name: &str,
) -> Result<(String, FollowerRecord), AccessError> {
    let secret = parse_secret(token, TOKEN_PREFIX).ok_or(AccessError::TokenUnknown)?;
    let hash = hash_secret(TOKEN_CONTEXT, &secret);
    let mut w = store.write()?;
    let mut record: TokenRecord = match w.token(hash.as_bytes())? {
        Some(bytes) => decode(&bytes, "join token record")?,
        None => return Err(AccessError::TokenUnknown),
    };
    if record.used {
        return Err(AccessError::TokenUsed);
    }
    let now = now_ms();
    if now >= record.expires_ms {
        return Err(AccessError::TokenExpired);
    }
    record.used = true;
    w.put_token(hash.as_bytes(), &encode(&record, "join token record")?)?;

    let name = unique_name(&w, &sanitize_name(follower_name))?;
    let credential = random_secret()?;
    let follower = FollowerRecord {
        name: name.clone(),
        credential_hash: *hash_secret(CREDENTIAL_CONTEXT, &credential).as_bytes(),
        enrolled_ms: now,
        last_seen_ms: None,
        last_revision: None,
        revoked_ms: None,
    };
    w.put_follower(&name, &encode(&follower, "follower record")?)?;
    w.commit()?;
    Ok((format!("{CREDENTIAL_PREFIX}{}", hex(&credential)), follower))
}

/// Whether `name` is a valid follower name as is: 1–64 characters of `[A-Za-z0-9._-]`,
/// starting with a letter or digit (so it never reads as a command-line option or a
/// hidden/relative path).
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Turns any text (typically a host name) into a valid follower name: other characters
/// become `-`, leading punctuation is dropped, the result is cut to 64 characters, and an
/// empty result becomes `follower`. Valid names are returned unchanged.
pub fn sanitize_name(name: &str) -> String {
    let mapped: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(MAX_NAME_LEN)
        .collect();
    if mapped.is_empty() {
        "follower".to_owned()
    } else {
        mapped
    }
}

/// `base` if no follower has it yet, else `base-2`, `base-3`, … (cutting `base` so the
/// result stays within 64 characters).
fn unique_name(w: &Writer<'_>, base: &str) -> Result<String, AccessError> {
    if w.follower(base)?.is_none() {
        return Ok(base.to_owned());
    }
    for n in 2u64.. {
        let suffix = format!("-{n}");
        let keep = MAX_NAME_LEN.saturating_sub(suffix.len()).min(base.len());
        let candidate = format!("{}{suffix}", &base[..keep]);
        if w.follower(&candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    unreachable!("an unused suffix exists among 2..u64::MAX")
}

/// The follower a credential belongs to. Every follower's hash is compared (in constant
/// time) so timing tells nothing about which, if any, matched. A revoked follower gets
/// [`AccessError::Revoked`]; anything else that does not match gets
/// [`AccessError::BadCredential`].
pub fn authenticate(reader: &Reader<'_>, credential: &str) -> Result<FollowerRecord, AccessError> {
    let secret = parse_secret(credential, CREDENTIAL_PREFIX).ok_or(AccessError::BadCredential)?;
    let presented = hash_secret(CREDENTIAL_CONTEXT, &secret);
    let mut found = None;
    for (_, bytes) in reader.followers()? {
        let record: FollowerRecord = decode(&bytes, "follower record")?;
        if blake3::Hash::from_bytes(record.credential_hash) == presented {
            found = Some(record);
        }
    }
    match found {
        Some(record) if record.is_revoked() => Err(AccessError::Revoked { name: record.name }),
        Some(record) => Ok(record),
        None => Err(AccessError::BadCredential),
    }
}

/// Whether the follower named `name` may still talk to the master: enrolled and not
/// revoked. The running server asks this about followers with open streams, since a
/// revocation is written by another process.
pub fn is_active(reader: &Reader<'_>, name: &str) -> Result<bool, AccessError> {
    match reader.follower(name)? {
        Some(bytes) => Ok(!decode::<FollowerRecord>(&bytes, "follower record")?.is_revoked()),
        None => Ok(false),
    }
}

/// Records when followers were last seen and which revision they reported, all in one
/// transaction (the server batches these rather than writing on every request). Unknown
/// names are skipped; an older time never replaces a newer one; a `None` revision keeps the
/// previous one.
pub fn record_seen(
    store: &Store,
    updates: &[(String, i64, Option<u64>)],
) -> Result<(), AccessError> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut w = store.write()?;
    for (name, seen_ms, revision) in updates {
        let Some(bytes) = w.follower(name)? else {
            continue;
        };
        let mut record: FollowerRecord = decode(&bytes, "follower record")?;
        record.last_seen_ms = Some(record.last_seen_ms.map_or(*seen_ms, |t| t.max(*seen_ms)));
        if revision.is_some() {
            record.last_revision = *revision;
        }
        w.put_follower(name, &encode(&record, "follower record")?)?;
    }
    w.commit()?;
    Ok(())
}

/// Every follower ever enrolled, revoked ones included, by name.
pub fn list_followers(reader: &Reader<'_>) -> Result<Vec<FollowerRecord>, AccessError> {
    reader
        .followers()?
        .iter()
        .map(|(_, bytes)| decode(bytes, "follower record"))
        .collect()
}

/// Revokes a follower: its credential is refused from now on. Revoking twice keeps the
/// first time. The record stays, so the name is not handed out again.
pub fn revoke(store: &Store, name: &str) -> Result<(), AccessError> {
    let mut w = store.write()?;
    let Some(bytes) = w.follower(name)? else {
        let names: Vec<String> = w.followers()?.into_iter().map(|(n, _)| n).collect();
        let known = if names.is_empty() {
            "no follower is enrolled".to_owned()
        } else {
            names.join(", ")
        };
        return Err(AccessError::UnknownFollower {
            name: name.to_owned(),
            known,
        });
    };
    let mut record: FollowerRecord = decode(&bytes, "follower record")?;
    if record.revoked_ms.is_none() {
        record.revoked_ms = Some(now_ms());
        w.put_follower(name, &encode(&record, "follower record")?)?;
    }
    w.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn token_text_and_hash_only_stored() {
        let (_d, store) = store();
        let token = issue_token(&store, TOKEN_TTL).unwrap();
        assert!(token.starts_with("cxt1_"));
        assert_eq!(token.len(), 5 + 64);
        let secret = parse_secret(&token, TOKEN_PREFIX).unwrap();
        let r = store.read().unwrap();
        assert!(
            r.token(&secret).unwrap().is_none(),
            "raw secret is not a key"
        );
        let hash = hash_secret(TOKEN_CONTEXT, &secret);
        assert!(r.token(hash.as_bytes()).unwrap().is_some());
        assert_ne!(issue_token(&store, TOKEN_TTL).unwrap(), token);
    }

    #[test]
    fn token_is_single_use() {
        let (_d, store) = store();
        let token = issue_token(&store, TOKEN_TTL).unwrap();
        let (cred, rec) = redeem_token(&store, &token, "laptop").unwrap();
        assert_eq!(rec.name, "laptop");
        assert!(cred.starts_with("cxc1_"));
        assert!(rec.last_seen_ms.is_none() && rec.revoked_ms.is_none());
        assert!(matches!(
            redeem_token(&store, &token, "other"),
            Err(AccessError::TokenUsed)
        ));
        assert_eq!(list_followers(&store.read().unwrap()).unwrap().len(), 1);
    }

    #[test]
    fn unknown_and_malformed_tokens() {
        let (_d, store) = store();
        let never = format!("cxt1_{}", "ab".repeat(32));
        for t in [never.as_str(), "garbage", "cxt1_zz", ""] {
            assert!(
                matches!(redeem_token(&store, t, "x"), Err(AccessError::TokenUnknown)),
                "{t}"
            );
        }
        // A credential is not a token, even with the same digits.
        let token = issue_token(&store, TOKEN_TTL).unwrap();
        let as_cred = token.replacen("cxt1_", "cxc1_", 1);
        assert!(matches!(
            redeem_token(&store, &as_cred, "x"),
            Err(AccessError::TokenUnknown)
        ));
    }

    #[test]
    fn expired_token_is_refused() {
        let (_d, store) = store();
        for ttl in [0, -1, -5_000] {
            let token = issue_token_ms(&store, ttl).unwrap();
            assert!(matches!(
                redeem_token(&store, &token, "late"),
                Err(AccessError::TokenExpired)
            ));
        }
        assert!(list_followers(&store.read().unwrap()).unwrap().is_empty());
    }

    #[test]
    fn long_expired_tokens_are_pruned() {
        let (_d, store) = store();
        let old = issue_token_ms(&store, -PRUNE_AFTER_MS - 1000).unwrap();
        let recent = issue_token_ms(&store, -1000).unwrap();
        issue_token(&store, TOKEN_TTL).unwrap();
        assert!(matches!(
            redeem_token(&store, &old, "x"),
            Err(AccessError::TokenUnknown)
        ));
        assert!(matches!(
            redeem_token(&store, &recent, "x"),
            Err(AccessError::TokenExpired)
        ));
    }

    #[test]
    fn authenticate_and_revoke() {
        let (_d, store) = store();
        let t1 = issue_token(&store, TOKEN_TTL).unwrap();
        let t2 = issue_token(&store, TOKEN_TTL).unwrap();
        let (c1, r1) = redeem_token(&store, &t1, "laptop").unwrap();
        let (c2, r2) = redeem_token(&store, &t2, "desktop").unwrap();
        assert_ne!(c1, c2);
        {
            let r = store.read().unwrap();
            assert_eq!(authenticate(&r, &c1).unwrap(), r1);
            assert_eq!(authenticate(&r, &c2).unwrap(), r2);
            // Surrounding whitespace (a pasted credential) is tolerated.
            assert_eq!(authenticate(&r, &format!(" {c1}\n")).unwrap(), r1);
            let wrong = format!("cxc1_{}", "00".repeat(32));
            for bad in [wrong.as_str(), "", "cxc1_", &t1, &c1[..c1.len() - 1]] {
                assert!(
                    matches!(authenticate(&r, bad), Err(AccessError::BadCredential)),
                    "{bad}"
                );
            }
        }
        assert!(is_active(&store.read().unwrap(), "laptop").unwrap());
        revoke(&store, "laptop").unwrap();
        let r = store.read().unwrap();
        assert!(!is_active(&r, "laptop").unwrap());
        assert!(is_active(&r, "desktop").unwrap());
        assert!(!is_active(&r, "ghost").unwrap());
        match authenticate(&r, &c1) {
            Err(AccessError::Revoked { name }) => assert_eq!(name, "laptop"),
            other => panic!("{other:?}"),
        }
        assert!(authenticate(&r, &c2).is_ok());
        let listed = list_followers(&r).unwrap();
        assert_eq!(listed.len(), 2);
        let laptop = listed.iter().find(|f| f.name == "laptop").unwrap();
        let first_revoked = laptop.revoked_ms.unwrap();
        drop(r);
        // Idempotent: the first revocation time stays.
        revoke(&store, "laptop").unwrap();
        let again = list_followers(&store.read().unwrap()).unwrap();
        assert_eq!(
            again
                .iter()
                .find(|f| f.name == "laptop")
                .unwrap()
                .revoked_ms,
            Some(first_revoked)
        );
    }

    #[test]
    fn revoke_unknown_names_the_known() {
        let (_d, store) = store();
        match revoke(&store, "ghost") {
            Err(AccessError::UnknownFollower { known, .. }) => {
                assert_eq!(known, "no follower is enrolled");
            }
            other => panic!("{other:?}"),
        }
        for name in ["b", "a"] {
            let t = issue_token(&store, TOKEN_TTL).unwrap();
            redeem_token(&store, &t, name).unwrap();
        }
        let err = revoke(&store, "ghost").unwrap_err();
        assert!(err.to_string().contains("known: a, b"), "{err}");
    }

    #[test]
    fn names_are_sanitized_and_unique() {
        let (_d, store) = store();
        let enrol = |name: &str| {
            let t = issue_token(&store, TOKEN_TTL).unwrap();
            redeem_token(&store, &t, name).unwrap().1.name
        };
        assert_eq!(enrol("laptop"), "laptop");
        assert_eq!(enrol("laptop"), "laptop-2");
        assert_eq!(enrol("laptop"), "laptop-3");
        assert_eq!(enrol("my laptop (work)"), "my-laptop--work-");
        assert_eq!(enrol("--x"), "x");
        assert_eq!(enrol(""), "follower");
        assert_eq!(enrol("***"), "follower-2");
        let long = "a".repeat(80);
        assert_eq!(enrol(&long), "a".repeat(64));
        let second = enrol(&long);
        assert_eq!(second, format!("{}-2", "a".repeat(62)));
        for f in list_followers(&store.read().unwrap()).unwrap() {
            assert!(is_valid_name(&f.name), "{}", f.name);
        }
        assert!(is_valid_name("host.example_1-a"));
        assert!(!is_valid_name(".hidden"));
        assert!(!is_valid_name(""));
        assert_eq!(sanitize_name("host.example_1-a"), "host.example_1-a");
    }

    #[test]
    fn record_seen_batches() {
        let (_d, store) = store();
        let t = issue_token(&store, TOKEN_TTL).unwrap();
        redeem_token(&store, &t, "a").unwrap();
        let t = issue_token(&store, TOKEN_TTL).unwrap();
        redeem_token(&store, &t, "b").unwrap();
        record_seen(
            &store,
            &[
                ("a".into(), 1000, Some(3)),
                ("b".into(), 2000, None),
                ("gone".into(), 5, Some(1)),
            ],
        )
        .unwrap();
        record_seen(&store, &[("a".into(), 500, None)]).unwrap();
        record_seen(&store, &[]).unwrap();
        let list = list_followers(&store.read().unwrap()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].last_seen_ms, list[0].last_revision),
            (Some(1000), Some(3))
        );
        assert_eq!(
            (list[1].last_seen_ms, list[1].last_revision),
            (Some(2000), None)
        );
    }
}
