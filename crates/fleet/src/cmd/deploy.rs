//! `fleet deploy`: one agent, transactionally, to Live.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::DeployArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::deploy::{self, DeployOptions, WorktreeOptions};
use crate::output::emit;

/// Reads a whole prompt of at most `cap` bytes, as UTF-8.
fn read_capped(source: impl Read, what: &str, cap: u64) -> Result<String, Error> {
    let mut bytes = Vec::new();
    source
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Invalid(format!("cannot read {what}: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(Error::Invalid(format!(
            "{what} is over {cap} bytes (FLEET_MAX_PROMPT_BYTES sets the cap)"
        )));
    }
    String::from_utf8(bytes).map_err(|e| Error::Invalid(format!("{what} is not UTF-8: {e}")))
}

pub(crate) fn run(services: &Services, args: DeployArgs, json_mode: bool) -> Result<(), Error> {
    let cap = services.config.max_prompt_bytes;
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) if path.as_str() == "-" => {
            read_capped(std::io::stdin(), "the prompt on stdin", cap)?
        }
        (None, Some(path)) => {
            let file = fs_err::File::open(path)
                .map_err(|e| Error::Invalid(format!("cannot read prompt file: {e}")))?;
            read_capped(file, &format!("prompt file {path}"), cap)?
        }
        // clap requires one of the two.
        (None, None) => return Err(Error::Invalid("give --prompt or --prompt-file".into())),
    };
    let mut options = DeployOptions::new(args.task, args.agent_type, prompt);
    options.parent = args.parent;
    options.workdir = args.workdir;
    options.command = (!args.command.is_empty()).then_some(args.command);
    options.startup_grace = args.startup_grace_ms.map(Duration::from_millis);
    options.env = args.env;
    options.allow_duplicate = args.allow_duplicate;
    options.model = args.model.clone();
    options.effort = args.effort.clone();
    options.permission_mode = args.permission_mode.clone();
    options.preamble = args.no_preamble.then_some(false);
    options.worktree = args.worktree.then(|| WorktreeOptions {
        repo: args.repo.clone(),
        base: args.base.clone(),
        keep: args.keep_worktree,
    });
    deploy_interruptibly(services, options, json_mode)
}

/// Deploys, rolling back on SIGINT or SIGTERM, and prints the agent's id (or `--json`, the
/// whole result).
pub(crate) fn deploy_interruptibly(
    services: &Services,
    options: DeployOptions,
    json_mode: bool,
) -> Result<(), Error> {
    // SIGINT and SIGTERM roll the deployment back before fleet exits (130 / 143). They are
    // caught only for the deployment; once it is Live they change nothing.
    let (int, term) = (&services.interrupts.int, &services.interrupts.term);
    for (signal, flag) in [(SIGINT, int), (SIGTERM, term)] {
        signal_hook::flag::register(signal, Arc::clone(flag)).map_err(|e| {
            Error::Environment(format!(
                "cannot install the handler of signal {signal}: {e}"
            ))
        })?;
    }
    let interrupt = || {
        if int.load(Ordering::Relaxed) {
            Some(SIGINT)
        } else if term.load(Ordering::Relaxed) {
            Some(SIGTERM)
        } else {
            None
        }
    };
    let deployed = deploy::run(services, options, &interrupt).map_err(|e| match interrupt() {
        // Stopped by the signal inside a step (a git hook that hung): rolled back, as any.
        Some(signal) if e.exit_code() == 1 => Error::Signalled {
            signal,
            source: Box::new(e),
        },
        _ => e,
    })?;
    tracing::info!(agent = %deployed.agent_id, session = %deployed.session, "agent is live");
    emit(json_mode, &deployed, || format!("{}\n", deployed.agent_id));
    Ok(())
}
