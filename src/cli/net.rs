//! `master serve`, `master link`, `master followers`, `follower join`, `sync`.

use super::output::{Output, bytes, time};
use crate::access::{self, JoinLink};
use crate::follower::{self, SyncOptions, join::JoinOptions};
use crate::paths::Paths;
use crate::store::Store;
use crate::transport::server::{self, ServeOptions};
use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

pub fn serve(paths: &Paths, host: String, port: u16, watch: bool) -> miette::Result<Output> {
    server::run(ServeOptions {
        paths: paths.clone(),
        host,
        port,
        watch,
    })?;
    Ok(Output::new(&serde_json::json!({"stopped": true}), ""))
}

pub fn link(
    paths: &Paths,
    host: Option<String>,
    port: u16,
    ttl_hours: u64,
) -> miette::Result<Output> {
    let key = crate::master::MasterKey::load(&paths.master_key())?;
    let host = match host {
        Some(h) => h,
        None => access::tailscale_host()?,
    };
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let token = access::issue_token(&store, Duration::from_secs(ttl_hours * 3600))?;
    let link = JoinLink::for_host(&host, port, key.fingerprint(), Some(token.clone()))?;
    let fallback = format!(
        "codexport follower join --master {} --fingerprint {} --token {token}",
        link.master_url(),
        key.fingerprint()
    );
    let human = format!(
        "{link}\n\nOn the follower:\n  codexport follower join \"{link}\"\nor:\n  {fallback}\n\nThe token works once and expires in {ttl_hours} h.\n"
    );
    Ok(Output::new(
        &serde_json::json!({"link": link.to_string(), "master_url": link.master_url(), "fingerprint": key.fingerprint().to_string(), "token": token, "fallback": fallback, "expires_hours": ttl_hours}),
        human,
    ))
}

pub fn followers(paths: &Paths) -> miette::Result<Output> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    let list = access::list_followers(&store.read()?)?;
    let mut human = format!(
        "{:<24} {:<19} {:<19} {:>8}  state\n",
        "name", "enrolled (UTC)", "last seen (UTC)", "revision"
    );
    for f in &list {
        let seen = f.last_seen_ms.map_or_else(|| "never".to_owned(), time);
        let rev = f
            .last_revision
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        let state = if f.revoked_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        writeln!(
            human,
            "{:<24} {:<19} {:<19} {:>8}  {state}",
            f.name,
            time(f.enrolled_ms),
            seen,
            rev
        )
        .ok();
    }
    if list.is_empty() {
        human = String::from("no followers yet; create a join link with `codexport master link`\n");
    }
    let json: Vec<_> = list
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "enrolled_ms": f.enrolled_ms, "last_seen_ms": f.last_seen_ms, "last_revision": f.last_revision, "revoked": f.revoked_ms.is_some()}))
        .collect();
    Ok(Output::new(&serde_json::json!({"followers": json}), human))
}

pub fn revoke(paths: &Paths, name: &str) -> miette::Result<Output> {
    let store = Store::open_waiting(&paths.state_dir, crate::store::WAIT)?;
    access::revoke(&store, name)?;
    Ok(Output::new(
        &serde_json::json!({"revoked": name}),
        format!("revoked {name}: its credential is refused from now on\n"),
    ))
}

fn progress_wanted(quiet: bool, json: bool) -> bool {
    !quiet && !json && std::io::stderr().is_terminal()
}

pub fn join(
    paths: &Paths,
    mut opts: JoinOptions,
    quiet: bool,
    json: bool,
) -> miette::Result<Output> {
    opts.progress = progress_wanted(quiet, json);
    let r = follower::join::join(paths, &opts)?;
    let mut human = format!(
        "role         follower\nname         {}\nmaster       {}\nfingerprint  {}\nrevision     {} {} ({} objects, {})\n",
        r.name,
        r.master_url,
        r.fingerprint,
        r.sync.number,
        r.sync.result,
        r.sync.objects,
        bytes(r.sync.object_bytes)
    );
    if let Some(a) = &r.sync.apply {
        human.push_str(&super::checkout_cmd::describe(a));
    }
    Ok(Output::new(&r, human))
}

pub fn sync(
    paths: &Paths,
    apply: bool,
    timeout_ms: u64,
    quiet: bool,
    json: bool,
) -> miette::Result<Output> {
    let opts = SyncOptions {
        timeout: Duration::from_millis(timeout_ms),
        progress: progress_wanted(quiet, json),
        apply,
    };
    let r = follower::sync(paths, &opts)?;
    let mut human = if r.result == "current" {
        format!("current: revision {} ({})\n", r.number, &r.revision[..12])
    } else {
        format!(
            "fetched: revision {} ({}): {} objects, {} ({} on the wire) in {:.0} ms\n",
            r.number,
            &r.revision[..12],
            r.objects,
            bytes(r.object_bytes),
            bytes(r.wire_bytes),
            r.elapsed_ms
        )
    };
    if let Some(a) = &r.apply {
        human.push_str(&super::checkout_cmd::describe(a));
    }
    if let Some(held) = r.held_at {
        human.push_str(&format!(
            "held back: a rollback keeps this follower below revision {}; run `codexport apply` to return to the newest revision now\n",
            held + 1
        ));
    }
    Ok(Output::new(&r, human))
}
