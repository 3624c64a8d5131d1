//! `fleet`: the command line (and, later, the MCP server) over deploy-core, tmux-backend and
//! registry.

mod cli;
mod cmd;
mod config;
mod mcp;
mod observe;
mod ops;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use deploy_core::DeployFailure;
use serde_json::json;

use crate::cli::{Cli, Command, TaskCommand};
use crate::config::Config;

/// Everything a fleet command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The command line or the environment is wrong.
    #[error("{0}")]
    Usage(String),
    /// A deploy-core error (unknown ids, limits, ...).
    #[error(transparent)]
    Core(#[from] deploy_core::Error),
    /// A registry error (corrupt files, ...).
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// A tmux error.
    #[error(transparent)]
    Tmux(#[from] tmux_backend::Error),
    /// A deployment failed (and rolled back).
    #[error("{}", .0.headline())]
    Deploy(Box<DeployFailure>),
    /// A file error (fs-err names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// One line for stderr: the message, and for a deployment whose rollback left something,
    /// what and why.
    fn line(&self) -> String {
        let mut line = self.to_string();
        if let Error::Deploy(f) = self {
            let left: Vec<String> = f
                .cleanup
                .unreleased()
                .map(|e| match &e.outcome {
                    deploy_core::CleanupOutcome::NotReleased(why) => {
                        format!("{}: {why}", e.resource)
                    }
                    _ => e.resource.to_string(),
                })
                .collect();
            if !left.is_empty() {
                line.push_str(&format!(
                    "; rollback incomplete, run `fleet reconcile`: {}",
                    left.join("; ")
                ));
            }
        }
        line.replace('\n', " ")
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Error::Deploy(f) => json!({
                "error": { "step": f.step, "message": self.to_string() },
                "cleanup": f.cleanup,
            }),
            _ => json!({ "error": { "message": self.to_string() } }),
        }
    }
}

/// Prints a value on stdout: JSON, or the text `text` makes of it.
pub(crate) fn emit(json_mode: bool, value: &serde_json::Value, text: impl FnOnce() -> String) {
    let mut out = std::io::stdout().lock();
    let printed = if json_mode {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .unwrap_or_default()
    } else {
        text()
    };
    let _ = out.write_all(printed.as_bytes());
    let _ = out.flush();
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn run(cli: Cli) -> Result<(), Error> {
    let json_mode = cli.json;
    let config = || Config::resolve(cli.root.clone(), Some(cli.socket.clone()));
    match cli.command {
        Command::Task(TaskCommand::Create(args)) => cmd::task::create(&config()?, &args, json_mode),
        Command::Task(TaskCommand::List) => cmd::task::list(&config()?, json_mode),
        Command::Deploy(args) => cmd::deploy::run(&config()?, args, json_mode),
        Command::Status(args) => cmd::status::run(&config()?, &args, json_mode),
        Command::Kill(args) => cmd::kill::run(&config()?, &args, json_mode),
        Command::Logs(args) => cmd::logs::run(&config()?, &args, json_mode),
        Command::Attach(args) => cmd::attach::run(&config()?, &args),
        Command::Reconcile(args) => cmd::reconcile::run(&config()?, &args, json_mode),
        Command::Mcp => mcp::serve(config()?),
        Command::AgentWrap { .. } => unreachable_wrap(),
    }
}

/// `agent-wrap` is dispatched in `main` before anything else; reaching it here is a bug.
fn unreachable_wrap() -> Result<(), Error> {
    Err(Error::Usage(
        "agent-wrap is handled before configuration (a bug if seen)".into(),
    ))
}

/// Parses the command line; a usage error becomes one line (and JSON with `--json`), exit 2.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                let text = e.to_string();
                let line = text.lines().next().unwrap_or_default();
                let line = line.strip_prefix("error: ").unwrap_or(line).to_owned();
                if std::env::args().any(|a| a == "--json") {
                    emit(true, &json!({ "error": { "message": line } }), String::new);
                }
                eprintln!("fleet: {line}");
                Err(ExitCode::from(2))
            }
        },
    }
}

fn main() -> ExitCode {
    // FAILPOINTS (env) configures the crash tests' failpoints; a no-op without the feature.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Command::AgentWrap { args } = &cli.command {
        // The agent wrapper: no logging setup, no configuration, nothing on stdout but the
        // agent's own output.
        return tmux_backend::wrapper::main(args);
    }
    init_tracing(cli.verbose);
    let json_mode = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json_mode {
                emit(true, &e.json(), String::new);
            }
            eprintln!("fleet: {}", e.line());
            ExitCode::from(e.exit_code())
        }
    }
}
