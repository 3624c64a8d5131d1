//! `fleet remote` (internal): one command for a controller on another host, run as this
//! host's own. Its request is the first line of stdin ([`Request`]); the end of stdin after it
//! means the controller is gone, and is this process's SIGHUP: a deployment in flight rolls
//! back, as on SIGINT.

use std::io::{BufRead, Read};

use clap::Parser;
use deploy_core::HostName;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::ops::remote::Request;

/// The largest request line read (a prompt travels in it).
const MAX_REQUEST: u64 = 64 << 20;

/// What `fleet remote` runs: the parsed command, and what the request sets that no flag does.
pub(crate) struct Remote {
    pub(crate) cli: Cli,
    pub(crate) host: HostName,
    pub(crate) database_url: Option<String>,
}

/// Reads the request and starts watching stdin for its end.
pub(crate) fn receive() -> Result<Remote, Error> {
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut line = String::new();
    (&mut stdin)
        .take(MAX_REQUEST)
        .read_line(&mut line)
        .map_err(|e| Error::Invalid(format!("cannot read the request on stdin: {e}")))?;
    let request: Request = serde_json::from_str(&line)
        .map_err(|e| Error::Invalid(format!("the request on stdin is not one: {e}")))?;
    let host = HostName::parse(&request.host)
        .map_err(|e| Error::Invalid(format!("the request's host: {e}")))?;
    let mut cli = Cli::try_parse_from(std::iter::once("fleet".to_owned()).chain(request.argv))
        .map_err(|e| Error::Invalid(format!("the request's command: {}", e.render())))?;
    match &mut cli.command {
        Command::Deploy(args) => {
            if args.host.is_some() {
                return Err(Error::Invalid(
                    "a remote deployment names no further host".into(),
                ));
            }
            if args.prompt_file.as_ref().is_some_and(|p| p.as_str() == "-") {
                args.prompt_file = None;
                args.prompt = Some(request.input.unwrap_or_default());
            } else if args.plan.as_ref().is_some_and(|p| p.as_str() == "-") {
                args.plan_text = Some(request.input.unwrap_or_default());
            }
        }
        Command::Kill(_)
        | Command::Logs(_)
        | Command::Status(_)
        | Command::Wait(_)
        | Command::Diff(_)
        | Command::Resume(_)
        | Command::Reconcile(_) => {}
        _ => {
            return Err(Error::Invalid(
                "a remote request runs deploy, kill, logs, status, wait, diff, resume or reconcile"
                    .into(),
            ));
        }
    }
    std::thread::spawn(move || {
        // Whatever follows the request is ignored; its end is the controller's loss.
        let _ = std::io::copy(&mut stdin, &mut std::io::sink());
        tracing::warn!("the controller's connection ended: acting as on SIGHUP");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP);
    });
    Ok(Remote {
        cli,
        host,
        database_url: request.database_url,
    })
}
