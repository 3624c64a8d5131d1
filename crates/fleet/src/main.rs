//! `fleet`: the command line and the MCP server over deploy-core's traits.

mod cli;
mod cmd;
mod config;
mod error;
mod mcp;
mod ops;
mod output;
mod top;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use crate::cli::{Cli, Command, TaskCommand};
use crate::config::{Config, Services};
use crate::error::Error;
use crate::output::emit;

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: never escape codes in a pipe, a file or a CI log.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A usage error clap cannot see by itself: the Postgres registry without a database (none
/// given, none named by the workspace), for a command or on either side of a migration.
fn check_usage(cli: &Cli, config: &Config) {
    let postgres = match &cli.command {
        Command::Migrate(m) => {
            let from = cmd::migrate::source(m, &config.layout());
            [from, m.to].contains(&config::RegistryKind::Postgres)
        }
        _ => config.registry == config::RegistryKind::Postgres,
    };
    if postgres && config.database_url.is_none() {
        <Cli as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the postgres registry needs a database: give --database-url or FLEET_DATABASE_URL",
            )
            .exit();
    }
}

/// What `fleet remote`'s request sets that no flag does.
#[derive(Default)]
struct Overrides {
    host: Option<deploy_core::HostName>,
    database_url: Option<String>,
}

fn run(cli: Cli) -> Result<(), Error> {
    if let Command::Remote = cli.command {
        let remote = cmd::remote::receive()?;
        let overrides = Overrides {
            host: Some(remote.host),
            database_url: remote.database_url,
        };
        return run_with(remote.cli, overrides);
    }
    run_with(cli, Overrides::default())
}

fn run_with(cli: Cli, overrides: Overrides) -> Result<(), Error> {
    // A fleet started under `ulimit -Sn 8` still opens its registry and starts tmux with room.
    procs::raise_open_files();
    let json_mode = cli.json;
    let config = Config::resolve(
        cli.root.clone(),
        Some(cli.socket.clone()),
        cli.registry,
        overrides.database_url.or_else(|| cli.database_url.clone()),
        overrides.host,
    )?;
    check_usage(&cli, &config);
    if let Command::Host(command) = cli.command {
        return cmd::host::run(&config, command, json_mode);
    }
    if let Command::Deploy(args) = &cli.command
        && let Some(host) = &args.host
    {
        return cmd::deploy::on_host(&config, host, args, json_mode);
    }
    if let Command::Migrate(args) = &cli.command {
        return cmd::migrate::run(&config, args, json_mode);
    }
    if let Command::Mcp = cli.command {
        return mcp::serve(config);
    }
    if let Command::Top = cli.command {
        return top::run(Services::new(&config)?);
    }
    let services = Services::new(&config)?;
    let s = &services;
    match cli.command {
        Command::Task(TaskCommand::Create(args)) => cmd::task::create(s, &args, json_mode),
        Command::Task(TaskCommand::List) => cmd::task::list(s, json_mode),
        Command::Deploy(args) => cmd::deploy::run(s, *args, json_mode),
        Command::Status(args) => cmd::status::run(s, &args, json_mode),
        Command::Kill(args) => cmd::kill::run(s, &args, json_mode),
        Command::Logs(args) => cmd::logs::run(s, &args, json_mode),
        Command::Attach(args) => cmd::attach::run(s, &args),
        Command::Reconcile(args) => cmd::reconcile::run(s, &args, json_mode),
        Command::EndAgent(args) => cmd::kill::end_agent(s, &args),
        Command::Wait(args) => cmd::wait::run(s, &args, json_mode),
        Command::Resume(args) => cmd::resume::run(s, &args, json_mode),
        Command::Worktrees(args) => cmd::worktree::list(s, &args, json_mode),
        Command::Diff(args) => cmd::worktree::diff(s, &args),
        // Dispatched before the services are made; reaching them here is a bug.
        Command::Mcp
        | Command::Top
        | Command::Host(_)
        | Command::Remote
        | Command::Migrate(_)
        | Command::AgentWrap { .. }
        | Command::GitReap { .. } => Err(Error::Environment(
            "internal error: a command dispatched twice".into(),
        )),
    }
}

/// Parses the command line. A usage error is clap's whole message (what was wrong, the usage
/// line, any "similar" tip) on stderr — and under `--json` also as `{"error": {...}}` on
/// stdout — with exit 2.
fn parse() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    let e = match Cli::try_parse() {
        Ok(cli) => return Ok(cli),
        Err(e) => e,
    };
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        kind => {
            if std::env::args().any(|a| a == "--json") {
                let message = e.render().to_string();
                let value = json!({ "error": {
                    "kind": "usage",
                    "clap_kind": kind.as_str(),
                    "message": message.trim_end(),
                }});
                emit(true, &value, String::new);
            }
            let _ = e.print();
            Err(ExitCode::from(2))
        }
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
        #[allow(clippy::disallowed_methods)] // `fleet agent-wrap` is the agent wrapper
        return tmux_backend::wrapper::main(args);
    }
    if let Command::GitReap { args } = &cli.command {
        // The reaper git runs under: nothing of fleet's own, git's output is the output.
        #[allow(clippy::disallowed_methods)] // `fleet git-reap` is the git reaper
        return git_checkout::reaper::main(args);
    }
    init_tracing(cli.verbose);
    // A remote request always runs under --json: its controller reads the answer.
    let json_mode = cli.json || matches!(cli.command, Command::Remote);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json_mode && !e.already_reported() {
                emit(true, &e.json(), String::new);
            }
            // The line may quote an agent's output or a git hook's: nothing raw reaches the
            // terminal.
            eprintln!("fleet: {}", output::safe(&e.line()));
            ExitCode::from(e.exit_code())
        }
    }
}
