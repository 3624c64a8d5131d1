//! `fleet deploy`: one agent, or a batch, transactionally, to Live.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::DeployArgs;
use crate::config::Services;
use crate::error::Error;
use deploy_core::AgentType;

use crate::ops::deploy::{self, DeployOptions, WorktreeOptions, read_capped};
use crate::ops::plan;
use crate::output::emit;

pub(crate) fn run(services: &Services, args: DeployArgs, json_mode: bool) -> Result<(), Error> {
    let cap = services.config.max_prompt_bytes;
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(path)) if path.as_str() == "-" => {
            Some(read_capped(std::io::stdin(), "the prompt on stdin", cap)?)
        }
        (None, Some(path)) => {
            let file = fs_err::File::open(path)
                .map_err(|e| Error::Invalid(format!("cannot read prompt file: {e}")))?;
            Some(read_capped(file, &format!("prompt file {path}"), cap)?)
        }
        (None, None) => None,
    };
    let agent_type = match &args.agent_type {
        Some(t) => t.clone(),
        // Only a plan's members have their own (clap requires --type otherwise).
        None => AgentType::parse("planned")?,
    };
    let mut options = DeployOptions::new(args.task.clone(), agent_type, prompt.unwrap_or_default());
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
    let members = match (&args.plan, args.count) {
        (Some(plan), _) => plan::read(plan, cap.saturating_mul(4))?
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.options(&args.task, &options, cap, i))
            .collect::<Result<Vec<_>, _>>()?,
        (None, Some(n)) if n > 1 => vec![options; n as usize],
        (None, _) => return deploy_interruptibly(services, options, json_mode),
    };
    let batch = interruptibly(services, |interrupt| {
        deploy::run_batch(services, &args.task, members, interrupt)
    })?;
    tracing::info!(batch = %batch.batch_id, members = batch.agent_ids.len(), "batch is live");
    emit(json_mode, &batch, || {
        let mut out = format!("{}\n", batch.batch_id);
        for a in &batch.agent_ids {
            out.push_str(&format!("{a}\n"));
        }
        out
    });
    Ok(())
}

/// Deploys, rolling back on SIGINT or SIGTERM, and prints the agent's id (or `--json`, the
/// whole result).
pub(crate) fn deploy_interruptibly(
    services: &Services,
    options: DeployOptions,
    json_mode: bool,
) -> Result<(), Error> {
    let deployed = interruptibly(services, |interrupt| {
        deploy::run(services, options, interrupt)
    })?;
    tracing::info!(agent = %deployed.agent_id, session = %deployed.session, "agent is live");
    emit(json_mode, &deployed, || format!("{}\n", deployed.agent_id));
    Ok(())
}

/// Runs `deploy` with SIGINT and SIGTERM caught: they roll the deployment back before fleet
/// exits (130 / 143). They are caught only for the deployment; once it is Live they change
/// nothing.
fn interruptibly<T>(
    services: &Services,
    deploy: impl FnOnce(&dyn Fn() -> Option<i32>) -> Result<T, Error>,
) -> Result<T, Error> {
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
    deploy(&interrupt).map_err(|e| match interrupt() {
        // Stopped by the signal inside a step (a git hook that hung): rolled back, as any.
        Some(signal) if e.exit_code() == 1 => Error::Signalled {
            signal,
            source: Box::new(e),
        },
        _ => e,
    })
}
