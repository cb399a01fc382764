//! `codexport master service install | uninstall | status`: runs `master serve` as a
//! per-user service — a systemd user unit on Linux, a launchd agent on macOS, a Scheduled
//! Task at logon on Windows.
//!
//! The files and commands are built by pure functions (tested on every platform's text);
//! [`execute`] carries out a [`Plan`] step by step, and `--dry-run` prints it instead.

use crate::paths::Paths;
use miette::Diagnostic;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The systemd user unit's file name.
pub const UNIT_NAME: &str = "codexport-master.service";
/// The launchd agent's label (its plist is `<label>.plist`).
pub const LAUNCHD_LABEL: &str = "dev.codexport.master";
/// The Windows Scheduled Task's name.
pub const TASK_NAME: &str = "CodexportMaster";

#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("this machine is not a master")]
    #[diagnostic(
        code(codexport::usage::not_master),
        help("run `codexport master init` first; the service runs `codexport master serve`")
    )]
    NotMaster,
    #[error("running codexport as a service is not supported on {os}")]
    #[diagnostic(
        code(codexport::usage::unsupported_platform),
        help("run `codexport master serve` under your own process supervisor")
    )]
    Unsupported { os: String },
    #[error("`{tool}` is not available on this machine, so the service was not started{done}")]
    #[diagnostic(
        code(codexport::service::missing_tool),
        help("run these yourself where {tool} works (e.g. in your login session): {rest}")
    )]
    MissingTool {
        tool: String,
        done: String,
        rest: String,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    #[diagnostic(
        code(codexport::service::command_failed),
        help(
            "fix the cause and run the command again; `codexport master service install --dry-run` lists every step"
        )
    )]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("I/O error on {}: {source}", path.display())]
    #[diagnostic(
        code(codexport::service::io),
        help("check permissions of the service directory")
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the service runs: a systemd user manager, launchd, or the Windows Task Scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Systemd,
    Launchd,
    Windows,
}

impl Platform {
    /// This machine's, if supported.
    pub fn current() -> Result<Self, ServiceError> {
        match std::env::consts::OS {
            "linux" => Ok(Self::Systemd),
            "macos" => Ok(Self::Launchd),
            "windows" => Ok(Self::Windows),
            os => Err(ServiceError::Unsupported { os: os.to_owned() }),
        }
    }
}

/// What the service runs: `<exe> --home <home> [--codex-dir <dir>] master serve --port <port>`.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub exe: PathBuf,
    pub home: PathBuf,
    /// Only when it is not `<home>/.codex`.
    pub codex_dir: Option<PathBuf>,
    pub port: u16,
    /// `PATH` of the installing shell: the master resolves MCP server commands (npm shims,
    /// uv tools) on it, so the service must see the same one.
    pub path: Option<String>,
}

impl ServiceSpec {
    pub fn new(exe: PathBuf, paths: &Paths, port: u16) -> Self {
        let codex_dir =
            (paths.codex_dir != paths.home.join(".codex")).then(|| paths.codex_dir.clone());
        Self {
            exe,
            home: paths.home.clone(),
            codex_dir,
            port,
            path: std::env::var("PATH").ok(),
        }
    }

    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![
            self.exe.display().to_string(),
            "--home".into(),
            self.home.display().to_string(),
        ];
        if let Some(dir) = &self.codex_dir {
            argv.extend(["--codex-dir".into(), dir.display().to_string()]);
        }
        argv.extend([
            "master".into(),
            "serve".into(),
            "--port".into(),
            self.port.to_string(),
        ]);
        argv
    }
}

/// One argument of a systemd `ExecStart=` line: double-quoted, with `\` and `"` escaped,
/// `%` doubled (specifiers) and `$` doubled (variable expansion).
pub fn systemd_quote(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The systemd user unit (`~/.config/systemd/user/codexport-master.service`).
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let exec: Vec<String> = spec
        .argv()
        .iter()
        .map(|a| {
            if a.starts_with('-') || is_plain(a) {
                a.clone()
            } else {
                systemd_quote(a)
            }
        })
        .collect();
    format!(
        "# Written by `codexport master service install`; `codexport master service uninstall` removes it.\n\
         [Unit]\n\
         Description=codexport master: serves signed revisions of ~/.codex to followers\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {}ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         # Room for many followers; the master also raises its soft limit to this at start.\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        spec.path.as_ref().map_or_else(String::new, |p| format!(
            "Environment={}\n",
            systemd_quote(&format!("PATH={p}"))
        )),
        exec.join(" ")
    )
}

/// Words that need no quoting anywhere (subcommands, numbers).
fn is_plain(a: &str) -> bool {
    !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent (`~/Library/LaunchAgents/dev.codexport.master.plist`); its output goes
/// to `log_dir`.
pub fn launchd_plist(spec: &ServiceSpec, log_dir: &Path) -> String {
    let mut args = String::new();
    for a in spec.argv() {
        writeln!(args, "    <string>{}</string>", xml_escape(&a)).ok();
    }
    let log = |name: &str| xml_escape(&log_dir.join(name).display().to_string());
    let env = spec.path.as_ref().map_or_else(String::new, |p| {
        format!("  <key>EnvironmentVariables</key>\n  <dict>\n    <key>PATH</key>\n    <string>{}</string>\n  </dict>\n", xml_escape(p))
    });
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         <dict>\n  <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n{args}  </array>\n{env}\
         \x20 <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <true/>\n\
         \x20 <key>StandardOutPath</key>\n  <string>{}</string>\n\
         \x20 <key>StandardErrorPath</key>\n  <string>{}</string>\n\
         </dict>\n</plist>\n",
        log("master.out.log"),
        log("master.err.log"),
    )
}

/// The command line a Scheduled Task runs (`/TR`): every path double-quoted.
pub fn windows_task_command(spec: &ServiceSpec) -> String {
    spec.argv()
        .iter()
        .map(|a| {
            if a.starts_with('-') || is_plain(a) {
                a.clone()
            } else {
                format!("\"{a}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One step of installing or removing the service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Step {
    Write {
        path: PathBuf,
        content: String,
    },
    Remove {
        path: PathBuf,
    },
    /// A command; `may_fail` steps (stopping what may not run) go on when they fail.
    Run {
        argv: Vec<String>,
        may_fail: bool,
    },
}

impl Step {
    fn run(argv: &[&str]) -> Self {
        Step::Run {
            argv: argv.iter().map(|&s| s.to_owned()).collect(),
            may_fail: false,
        }
    }
    fn try_run(argv: &[&str]) -> Self {
        Step::Run {
            argv: argv.iter().map(|&s| s.to_owned()).collect(),
            may_fail: true,
        }
    }
}

/// Steps, in order, and advice printed after them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub platform: Platform,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

pub fn unit_path(home: &Path) -> PathBuf {
    home.join(".config/systemd/user").join(UNIT_NAME)
}

pub fn plist_path(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist"))
}

/// Installing and starting the service.
pub fn install_plan(platform: Platform, spec: &ServiceSpec) -> Plan {
    match platform {
        Platform::Systemd => Plan {
            platform,
            steps: vec![
                Step::Write { path: unit_path(&spec.home), content: systemd_unit(spec) },
                Step::run(&["systemctl", "--user", "daemon-reload"]),
                Step::run(&["systemctl", "--user", "enable", "--now", UNIT_NAME]),
            ],
            notes: vec!["A user service stops when you log out; to keep it running (and start it at boot) run: loginctl enable-linger $USER".into()],
        },
        Platform::Launchd => {
            let plist = plist_path(&spec.home);
            let p = plist.display().to_string();
            Plan {
                platform,
                steps: vec![
                    Step::Write { path: plist.clone(), content: launchd_plist(spec, &spec.home.join(".codexport/logs")) },
                    Step::try_run(&["launchctl", "unload", &p]),
                    Step::run(&["launchctl", "load", "-w", &p]),
                ],
                notes: vec![format!("The server's output goes to {}", spec.home.join(".codexport/logs").display())],
            }
        }
        Platform::Windows => {
            let tr = windows_task_command(spec);
            Plan {
                platform,
                steps: vec![
                    Step::run(&["schtasks", "/Create", "/TN", TASK_NAME, "/SC", "ONLOGON", "/TR", &tr, "/F"]),
                    Step::run(&["schtasks", "/Run", "/TN", TASK_NAME]),
                ],
                notes: vec!["The task starts at every logon of this user.".into()],
            }
        }
    }
}

/// Stopping and removing the service.
pub fn uninstall_plan(platform: Platform, home: &Path) -> Plan {
    let steps = match platform {
        Platform::Systemd => vec![
            Step::try_run(&["systemctl", "--user", "disable", "--now", UNIT_NAME]),
            Step::Remove {
                path: unit_path(home),
            },
            Step::run(&["systemctl", "--user", "daemon-reload"]),
        ],
        Platform::Launchd => {
            let plist = plist_path(home);
            vec![
                Step::try_run(&["launchctl", "unload", "-w", &plist.display().to_string()]),
                Step::Remove { path: plist },
            ]
        }
        Platform::Windows => vec![
            Step::try_run(&["schtasks", "/End", "/TN", TASK_NAME]),
            Step::run(&["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]),
        ],
    };
    Plan {
        platform,
        steps,
        notes: Vec::new(),
    }
}

/// A step as a person would type it.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Write { path, .. } => format!("write {}", path.display()),
        Step::Remove { path } => format!("remove {}", path.display()),
        Step::Run { argv, .. } => shell_words(argv),
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Carries out `plan`; returns what each step did.
pub fn execute(plan: &Plan) -> Result<Vec<String>, ServiceError> {
    let mut done = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        match step {
            Step::Write { path, content } => {
                crate::fsutil::write_atomic(path, content.as_bytes(), 0o644).map_err(|e| {
                    ServiceError::Io {
                        path: path.clone(),
                        source: e,
                    }
                })?;
                done.push(describe(step));
            }
            Step::Remove { path } => match std::fs::remove_file(path) {
                Ok(()) => done.push(describe(step)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    done.push(format!("{} (was not there)", describe(step)));
                }
                Err(e) => {
                    return Err(ServiceError::Io {
                        path: path.clone(),
                        source: e,
                    });
                }
            },
            Step::Run { argv, may_fail } => {
                match Command::new(&argv[0]).args(&argv[1..]).output() {
                    Ok(out) if out.status.success() || *may_fail => done.push(describe(step)),
                    Ok(out) => {
                        return Err(ServiceError::CommandFailed {
                            command: describe(step),
                            status: out.status.to_string(),
                            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let done_text = if done.is_empty() {
                            String::new()
                        } else {
                            format!(" (done: {})", done.join("; "))
                        };
                        let rest = plan.steps[i..]
                            .iter()
                            .map(describe)
                            .collect::<Vec<_>>()
                            .join("; ");
                        return Err(ServiceError::MissingTool {
                            tool: argv[0].clone(),
                            done: done_text,
                            rest,
                        });
                    }
                    Err(e) => {
                        return Err(ServiceError::CommandFailed {
                            command: describe(step),
                            status: "not started".into(),
                            stderr: e.to_string(),
                        });
                    }
                }
            }
        }
    }
    Ok(done)
}

/// What `service install` or `uninstall` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceReport {
    pub action: ServiceAction,
    pub dry_run: bool,
    pub plan: Plan,
    /// What each step did, in order (empty for a dry run).
    pub done: Vec<String>,
}

/// Which way a service report went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    Install,
    Uninstall,
}

fn carry_out(
    action: ServiceAction,
    plan: Plan,
    dry_run: bool,
) -> Result<ServiceReport, ServiceError> {
    let done = if dry_run { Vec::new() } else { execute(&plan)? };
    Ok(ServiceReport {
        action,
        dry_run,
        plan,
        done,
    })
}

/// Installs and starts `master serve` as this user's service, running `exe`.
pub fn install(
    paths: &Paths,
    exe: PathBuf,
    port: u16,
    dry_run: bool,
) -> Result<ServiceReport, ServiceError> {
    let platform = Platform::current()?;
    if !paths.master_key().exists() {
        return Err(ServiceError::NotMaster);
    }
    carry_out(
        ServiceAction::Install,
        install_plan(platform, &ServiceSpec::new(exe, paths, port)),
        dry_run,
    )
}

/// Stops and removes the service.
pub fn uninstall(paths: &Paths, dry_run: bool) -> Result<ServiceReport, ServiceError> {
    let platform = Platform::current()?;
    carry_out(
        ServiceAction::Uninstall,
        uninstall_plan(platform, &paths.home),
        dry_run,
    )
}

/// What `service status` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub platform: Platform,
    /// The unit / plist file, or the task name.
    pub location: String,
    pub installed: bool,
    /// The service manager's own words (`active`, `inactive`, `enabled`, …), or why they
    /// could not be had.
    pub state: String,
}

fn ask(argv: &[&str]) -> Result<(bool, String), String> {
    match Command::new(argv[0]).args(&argv[1..]).output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            Ok((
                out.status.success(),
                if text.is_empty() { err } else { text },
            ))
        }
        Err(e) => Err(format!("{} is not available: {e}", argv[0])),
    }
}

/// Asks the service manager about the service.
pub fn status(platform: Platform, home: &Path) -> Status {
    match platform {
        Platform::Systemd => {
            let path = unit_path(home);
            let state = match (
                ask(&["systemctl", "--user", "is-active", UNIT_NAME]),
                ask(&["systemctl", "--user", "is-enabled", UNIT_NAME]),
            ) {
                (Ok((_, active)), Ok((_, enabled))) => format!("{active}, {enabled}"),
                (Err(e), _) | (_, Err(e)) => e,
            };
            Status {
                platform,
                installed: path.exists(),
                location: path.display().to_string(),
                state,
            }
        }
        Platform::Launchd => {
            let path = plist_path(home);
            let state = match ask(&["launchctl", "list", LAUNCHD_LABEL]) {
                Ok((true, _)) => "loaded".into(),
                Ok((false, _)) => "not loaded".into(),
                Err(e) => e,
            };
            Status {
                platform,
                installed: path.exists(),
                location: path.display().to_string(),
                state,
            }
        }
        Platform::Windows => {
            let (installed, state) = match ask(&["schtasks", "/Query", "/TN", TASK_NAME]) {
                Ok((ok, text)) => (ok, text.lines().last().unwrap_or("").trim().to_owned()),
                Err(e) => (false, e),
            };
            Status {
                platform,
                installed,
                location: TASK_NAME.into(),
                state,
            }
        }
    }
}
