//! `codexport demo`: the tool on a temporary home, with the real commands it runs shown.

use super::output::Output;
use std::path::Path;
use std::process::Command;

fn step(exe: &Path, home: &Path, args: &[&str], transcript: &mut String) -> miette::Result<()> {
    let shown = format!("$ codexport --home {} {}\n", home.display(), args.join(" "));
    print!("{shown}");
    transcript.push_str(&shown);
    let out = Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .map_err(|e| {
            miette::miette!(
                code = "codexport::demo::spawn",
                "cannot run {}: {e}",
                exe.display()
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    transcript.push_str(&text);
    if !out.status.success() {
        return Err(miette::miette!(
            code = "codexport::demo::step",
            help = "this is a bug; please report it with the output above",
            "demo step `{}` failed",
            args.join(" ")
        ));
    }
    Ok(())
}

pub fn run(keep: bool) -> miette::Result<Output> {
    let exe = std::env::current_exe()
        .map_err(|e| miette::miette!("cannot find the codexport executable: {e}"))?;
    let dir = tempfile::Builder::new()
        .prefix("codexport-demo-")
        .tempdir()
        .map_err(|e| miette::miette!("cannot create a temporary home: {e}"))?;
    let home = dir.path().join("master-home");
    crate::sample::write_sample_codex(&home)
        .map_err(|e| miette::miette!("cannot write the sample ~/.codex: {e}"))?;
    println!("# A sample ~/.codex was written under {}\n", home.display());
    let mut t = String::new();
    step(&exe, &home, &["master", "init"], &mut t)?;
    step(&exe, &home, &["master", "rebuild"], &mut t)?;
    println!("# Change one prompt on the master, then snapshot again:\n");
    std::fs::write(
        home.join(".codex/prompts/review.md"),
        "Review for correctness, then tests, then style.\n",
    )
    .map_err(|e| miette::miette!("cannot edit the sample: {e}"))?;
    step(&exe, &home, &["master", "rebuild"], &mut t)?;
    step(&exe, &home, &["log"], &mut t)?;
    step(&exe, &home, &["show", "HEAD", "skills"], &mut t)?;
    step(&exe, &home, &["show", "1", "prompts/review.md"], &mut t)?;
    step(&exe, &home, &["fsck"], &mut t)?;
    step(&exe, &home, &["status"], &mut t)?;
    let kept = if keep {
        Some(dir.keep().display().to_string())
    } else {
        None
    };
    let human = match &kept {
        Some(p) => format!("demo finished; the temporary home is kept at {p}\n"),
        None => {
            "demo finished; the temporary home was removed (use --keep to keep it)\n".to_owned()
        }
    };
    Ok(Output::new(
        &serde_json::json!({"ok": true, "kept": kept}),
        human,
    ))
}
