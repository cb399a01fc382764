//! `master service install | uninstall | status`, and `completions`.

use super::ServiceCommand;
use super::output::Output;
use crate::paths::Paths;
use crate::service::{self, Plan, Platform, ServiceError, ServiceSpec, Step};
use std::fmt::Write;

pub fn service(paths: &Paths, cmd: &ServiceCommand) -> miette::Result<Output> {
    let platform = Platform::current()?;
    match cmd {
        &ServiceCommand::Install { port, dry_run } => {
            if !paths.master_key().exists() {
                return Err(ServiceError::NotMaster.into());
            }
            let exe = std::env::current_exe().map_err(|e| ServiceError::Io {
                path: "the running codexport executable".into(),
                source: e,
            })?;
            let plan = service::install_plan(platform, &ServiceSpec::new(exe, paths, port));
            carry_out(&plan, dry_run, "installed and started")
        }
        &ServiceCommand::Uninstall { dry_run } => carry_out(
            &service::uninstall_plan(platform, &paths.home),
            dry_run,
            "stopped and removed",
        ),
        ServiceCommand::Status => {
            let s = service::status(platform, &paths.home);
            let human = format!(
                "service      {}\ninstalled    {}\nstate        {}\n",
                s.location,
                if s.installed { "yes" } else { "no" },
                s.state
            );
            Ok(Output::new(&s, human))
        }
    }
}

fn carry_out(plan: &Plan, dry_run: bool, what: &str) -> miette::Result<Output> {
    let mut human = String::new();
    let done = if dry_run {
        writeln!(human, "dry run: nothing was changed. The steps:").ok();
        for step in &plan.steps {
            writeln!(human, "  {}", service::describe(step)).ok();
            if let Step::Write { content, .. } = step {
                for line in content.lines() {
                    writeln!(human, "    | {line}").ok();
                }
            }
        }
        Vec::new()
    } else {
        let done = service::execute(plan)?;
        writeln!(human, "service {what}:").ok();
        for d in &done {
            writeln!(human, "  {d}").ok();
        }
        done
    };
    for note in &plan.notes {
        writeln!(human, "note: {note}").ok();
    }
    Ok(Output::new(
        &serde_json::json!({"dry_run": dry_run, "plan": plan, "done": done}),
        human,
    ))
}

/// `completions <shell>`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Output {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "codexport", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    Output::new(
        &serde_json::json!({"shell": shell.to_string(), "script": script}),
        script,
    )
}
