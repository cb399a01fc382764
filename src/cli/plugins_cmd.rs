//! `plugins list|install|repair`, and the plugin install that follows every apply.

use super::output::{Output, Render};
use super::{Global, PluginsCommand};
use crate::paths::Paths;

/// After an apply (`applied`): installs the plugins the applied config.toml enables that
/// Codex lacks here, and adds what it did (and what could not be installed) to the output.
pub fn with_plugins(
    paths: &Paths,
    global: &Global,
    mut out: Output,
    applied: bool,
) -> miette::Result<Output> {
    use crate::follower::plugins::{ReconcileOptions, reconcile};
    if !applied {
        return Ok(out);
    }
    let report = reconcile(
        paths,
        ReconcileOptions {
            retry_failed: false,
            echo: !global.json && !global.quiet,
        },
    )?;
    if report.installed.is_empty() && report.not_installed().next().is_none() {
        return Ok(out);
    }
    if let serde_json::Value::Object(map) = &mut out.json {
        map.insert(
            "plugins".into(),
            serde_json::to_value(&report).expect("reports serialise"),
        );
    }
    out.human.push_str(&Render::render(&report));
    Ok(out)
}

/// The `plugins …` commands.
pub fn plugins(paths: &Paths, global: &Global, cmd: PluginsCommand) -> miette::Result<Output> {
    use crate::follower::plugins::{ReconcileOptions, reconcile, status};
    let echo = !global.json && !global.quiet;
    let list = matches!(cmd, PluginsCommand::List);
    let report = match cmd {
        PluginsCommand::List => status(paths),
        PluginsCommand::Install => reconcile(
            paths,
            ReconcileOptions {
                retry_failed: false,
                echo,
            },
        )?,
        PluginsCommand::Repair => reconcile(
            paths,
            ReconcileOptions {
                retry_failed: true,
                echo,
            },
        )?,
    };
    let mut out = Output::of(&report);
    if !list && report.not_installed().next().is_some() {
        out.code = 1;
    }
    Ok(out)
}
