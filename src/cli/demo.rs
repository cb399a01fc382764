//! `codexport demo`: the tool on temporary homes, with the real commands it runs shown: a
//! master and a follower doing a full round trip on loopback.

use super::output::Output;
use codexport_dev::serve::{ServeOptions, ServingMaster, spawn_master};
use std::path::Path;
use std::process::Command;

fn fail(what: impl std::fmt::Display) -> miette::Report {
    miette::miette!(
        code = "codexport::demo::failed",
        help = "this is a bug; please report it with the output above",
        "{what}"
    )
}

/// Runs one real command, shows it and its output; returns its stdout.
fn step(exe: &Path, home: &Path, args: &[&str]) -> miette::Result<String> {
    println!("$ codexport --home {} {}", home.display(), args.join(" "));
    let out = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .map_err(|e| fail(format!("cannot run {}: {e}", exe.display())))?;
    println!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(fail(format!("demo step `{}` failed", args.join(" "))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `master serve` on an ephemeral loopback port (the watcher on, as users run it, and its log
/// shown), stopped when dropped; shows the command and the line the server prints.
fn start_server(exe: &Path, home: &Path) -> miette::Result<ServingMaster> {
    println!(
        "$ codexport --home {} master serve --host 127.0.0.1 --port 0 &",
        home.display()
    );
    let options = ServeOptions::new().watch(true).show_stderr(true);
    let server = spawn_master(exe, home, &options).map_err(fail)?;
    println!("{}\n", server.banner());
    Ok(server)
}

pub fn run(keep: bool) -> miette::Result<Output> {
    let exe = std::env::current_exe()
        .map_err(|e| fail(format!("cannot find the codexport executable: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("codexport-demo-")
        .tempdir()
        .map_err(|e| fail(format!("cannot create a temporary home: {e}")))?;
    let master = dir.path().join("master-home");
    let follower = dir.path().join("follower-home");
    codexport_dev::sample::write_sample_codex(&master)
        .map_err(|e| fail(format!("cannot write the sample ~/.codex: {e}")))?;
    println!(
        "# A sample ~/.codex was written under {}\n",
        master.display()
    );

    step(&exe, &master, &["master", "init"])?;
    println!("# Serve it on loopback (in real use: inside your tailnet, as a service):\n");
    let server = start_server(&exe, &master)?;
    let port = server.port().to_string();
    let link = step(
        &exe,
        &master,
        &[
            "--json",
            "master",
            "link",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ],
    )?;
    let link: serde_json::Value =
        serde_json::from_str(&link).map_err(|e| fail(format!("bad link output: {e}")))?;
    let link = link["link"]
        .as_str()
        .ok_or_else(|| fail("no link in the output"))?
        .to_owned();

    println!(
        "# On a second machine (here: a second temporary home), join with that link and apply:\n"
    );
    step(&exe, &follower, &["follower", "join", "--apply", &link])?;
    step(&exe, &follower, &["sync"])?;

    println!(
        "# Change one prompt on the master. The server publishes changes when they settle;\n# `master rebuild` does it at once. The follower fetches only that file and applies it:\n"
    );
    std::fs::write(
        master.join(".codex/prompts/review.md"),
        "Review for correctness, then tests, then style.\n",
    )
    .map_err(|e| fail(format!("cannot edit the sample: {e}")))?;
    step(&exe, &master, &["master", "rebuild"])?;
    step(&exe, &follower, &["sync"])?;
    step(&exe, &follower, &["diff", "--patch"])?;
    step(&exe, &follower, &["sync", "--apply"])?;
    step(&exe, &master, &["log"])?;
    step(&exe, &follower, &["log"])?;
    println!("# The follower's ~/.codex now holds revision 2; go back to revision 1:\n");
    step(&exe, &follower, &["rollback", "1"])?;
    let review = std::fs::read_to_string(follower.join(".codex/prompts/review.md"))
        .map_err(|e| fail(format!("cannot read the follower's prompt: {e}")))?;
    println!(
        "# {} now reads: {review}",
        follower.join(".codex/prompts/review.md").display()
    );
    step(&exe, &follower, &["status"])?;
    step(&exe, &master, &["master", "followers"])?;
    step(&exe, &follower, &["fsck"])?;
    drop(server);

    let kept = if keep {
        Some(dir.keep().display().to_string())
    } else {
        None
    };
    let human = match &kept {
        Some(p) => format!("demo finished; the temporary homes are kept under {p}\n"),
        None => {
            "demo finished; the temporary homes were removed (use --keep to keep them)\n".to_owned()
        }
    };
    Ok(Output::new(
        &serde_json::json!({"ok": true, "kept": kept}),
        human,
    ))
}
