//! `master link`, `master followers [revoke NAME]`: handing out join links and managing the
//! followers they enrolled.

use super::access::{self, AccessError, FollowerRecord};
use super::{MasterError, MasterKey};
use crate::paths::Paths;
use crate::store::Store;
use crate::transport::link::JoinLink;
use std::time::Duration;

/// A join link for one follower, with the equivalent explicit command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkReport {
    pub link: String,
    pub master_url: String,
    pub fingerprint: String,
    pub token: String,
    /// `codexport follower join --master … --fingerprint … --token …`.
    pub fallback: String,
    pub expires_hours: u64,
}

/// Issues a single-use token valid for `ttl_hours` and the link that carries it. Without
/// `host`, followers are pointed at this machine's Tailscale name.
pub fn link(
    paths: &Paths,
    host: Option<String>,
    port: u16,
    ttl_hours: u64,
) -> Result<LinkReport, MasterError> {
    let key = MasterKey::load(&paths.master_key())?;
    let host = match host {
        Some(h) => h,
        None => super::tailscale::tailscale_host()?,
    };
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let token = access::issue_token(&store, Duration::from_secs(ttl_hours * 3600))?;
    let link = JoinLink::for_host(&host, port, key.fingerprint(), Some(token.clone()))?;
    let fallback = format!(
        "codexport follower join --master {} --fingerprint {} --token {token}",
        link.master_url(),
        key.fingerprint()
    );
    Ok(LinkReport {
        link: link.to_string(),
        master_url: link.master_url(),
        fingerprint: key.fingerprint().to_string(),
        token,
        fallback,
        expires_hours: ttl_hours,
    })
}

/// One enrolled follower, as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowerRow {
    pub name: String,
    pub enrolled_ms: i64,
    pub last_seen_ms: Option<i64>,
    pub last_revision: Option<u64>,
    pub revoked: bool,
}

impl From<FollowerRecord> for FollowerRow {
    fn from(f: FollowerRecord) -> Self {
        Self {
            revoked: f.is_revoked(),
            name: f.name,
            enrolled_ms: f.enrolled_ms,
            last_seen_ms: f.last_seen_ms,
            last_revision: f.last_revision,
        }
    }
}

/// Every follower ever enrolled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowersReport {
    pub followers: Vec<FollowerRow>,
}

pub fn followers(paths: &Paths) -> Result<FollowersReport, MasterError> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let list = access::list_followers(&store.read()?)?;
    Ok(FollowersReport {
        followers: list.into_iter().map(FollowerRow::from).collect(),
    })
}

/// What `followers revoke` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevokeReport {
    pub revoked: String,
}

pub fn revoke(paths: &Paths, name: &str) -> Result<RevokeReport, MasterError> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    access::revoke(&store, name)?;
    Ok(RevokeReport {
        revoked: name.to_owned(),
    })
}

impl From<AccessError> for MasterError {
    fn from(e: AccessError) -> Self {
        MasterError::Access(e)
    }
}
