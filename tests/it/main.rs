//! The single integration-test binary: real files, real processes, temporary homes.

mod bench_cmd;
mod checkout;
mod cli;
mod codex_roots;
mod converge;
mod diskfull;
mod faults;
mod features;
mod hook;
mod hostile;
mod large;
mod layers;
mod limits;
mod load;
mod mcp;
mod mcp_kinds;
mod mcp_more;
mod messages;
mod mirror;
mod mitm;
mod notice;
mod roots;
mod snapshot;
mod sync;
mod tools;
mod upgrade;
mod util;

/// Points a follower at another master URL (a restarted master or a proxy).
pub(crate) fn sync_point_at(follower: &util::Home, url: &str) {
    let path = follower.state().join("follower.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["master_url"] = toml_edit::value(url);
    std::fs::write(path, doc.to_string()).unwrap();
}
