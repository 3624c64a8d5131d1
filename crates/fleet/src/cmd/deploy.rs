//! `fleet deploy`: one agent, or a batch, transactionally, to Live.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::cli::DeployArgs;
use crate::config::Services;
use crate::error::Error;
use deploy_core::AgentType;

use crate::ops::deploy::{self, DeployOptions, WorktreeOptions, read_capped};
use crate::ops::plan;
use crate::output::emit;

/// Deploys here. (`--host` needs no services here: `main` sends it to [`on_host`] before they
/// are made.)
pub(crate) fn run(services: &Services, args: DeployArgs, json_mode: bool) -> Result<(), Error> {
    let cap = services.config.max_prompt_bytes;
    let options = options_of(&args, prompt_of(&args, cap)?.unwrap_or_default())?;
    let members = match (&args.plan, args.count) {
        (Some(plan), _) => match &args.plan_text {
            // A remote request's plan, which came in the request.
            Some(text) => plan::parse(text, plan)?,
            None => plan::read(plan, cap.saturating_mul(4))?,
        }
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

/// Runs `deploy` with SIGINT, SIGTERM and SIGHUP caught: they roll the deployment back before
/// fleet exits (130 / 143 / 129). They are caught only for the deployment; once it is Live they
/// change nothing.
fn interruptibly<T>(
    services: &Services,
    deploy: impl FnOnce(&dyn Fn() -> Option<i32>) -> Result<T, Error>,
) -> Result<T, Error> {
    let (int, term, hup) = (
        &services.interrupts.int,
        &services.interrupts.term,
        &services.interrupts.hup,
    );
    for (signal, flag) in [(SIGINT, int), (SIGTERM, term), (SIGHUP, hup)] {
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
        } else if hup.load(Ordering::Relaxed) {
            Some(SIGHUP)
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

/// The prompt `args` give: on the command line, in a file, or on stdin (`-`), at most `cap`
/// bytes.
fn prompt_of(args: &DeployArgs, cap: u64) -> Result<Option<String>, Error> {
    Ok(match (&args.prompt, &args.prompt_file) {
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
    })
}

/// `deploy --host`: that host's own deployment, asked over ssh. Nothing of this machine's
/// services is needed (no registry connection, no tmux): only its configuration.
pub(crate) fn on_host(
    config: &crate::config::Config,
    host: &deploy_core::HostName,
    args: &DeployArgs,
    json_mode: bool,
) -> Result<(), Error> {
    let cap = config.max_prompt_bytes;
    let plan = match &args.plan {
        Some(path) => Some(plan::inlined(
            plan::read(path, cap.saturating_mul(4))?,
            cap,
        )?),
        None => None,
    };
    let prompt = match plan {
        Some(_) => String::new(),
        None => prompt_of(args, cap)?.unwrap_or_default(),
    };
    let options = options_of(args, prompt)?;
    let members = match &plan {
        Some(text) => crate::ops::remote::Members::Plan(text),
        None => crate::ops::remote::Members::Like(args.count),
    };
    let answer = crate::ops::remote::deploy(config, host, &options, members)?;
    emit(json_mode, &answer, || remote_lines(&answer));
    Ok(())
}

/// The deployment `args` ask for, with `prompt`.
fn options_of(args: &DeployArgs, prompt: String) -> Result<DeployOptions, Error> {
    let agent_type = match &args.agent_type {
        Some(t) => t.clone(),
        // Only a plan's members have their own (clap requires --type otherwise).
        None => AgentType::parse("planned")?,
    };
    let mut options = DeployOptions::new(args.task.clone(), agent_type, prompt);
    options.parent = args.parent.clone();
    options.workdir = args.workdir.clone();
    options.command = (!args.command.is_empty()).then(|| args.command.clone());
    options.startup_grace = args.startup_grace_ms.map(Duration::from_millis);
    options.env = args.env.clone();
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
    Ok(options)
}

/// A remote host's answer, as `deploy` prints its own: the agent's id, or the batch's and its
/// members'.
fn remote_lines(answer: &serde_json::Value) -> String {
    let id = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    match answer.get("agent_ids") {
        Some(serde_json::Value::Array(ids)) => {
            let mut out = format!("{}\n", answer.get("batch_id").map(id).unwrap_or_default());
            for a in ids {
                out.push_str(&format!("{}\n", id(a)));
            }
            out
        }
        _ => format!("{}\n", answer.get("agent_id").map(id).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::options_of;
    use crate::cli::{Cli, Command, DeployArgs};
    use crate::ops::remote::{Members, deploy_argv};

    fn deploy_args(argv: &[&str]) -> DeployArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Deploy(args) => *args,
            other => panic!("not a deploy: {other:?}"),
        }
    }

    #[test]
    fn a_remote_deployment_asks_for_every_option_but_the_host_with_the_prompt_on_stdin() {
        let mine = deploy_args(&[
            "fleet",
            "deploy",
            "--host",
            "gpu-b",
            "--task",
            "TASK-20260101-000000-abcdef12",
            "--type",
            "builder",
            "--prompt",
            "secret plan",
            "--count",
            "3",
            "--worktree",
            "--repo",
            "/srv/repo",
            "--base",
            "main",
            "--keep-worktree",
            "--startup-grace-ms",
            "900",
            "--allow-duplicate",
            "--model",
            "opus",
            "--effort",
            "high",
            "--permission-mode",
            "plan",
            "--no-preamble",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--parent",
            "orchestrator",
            "--",
            "claude",
            "--print",
            "--host",
        ]);
        let options = options_of(&mine, "secret plan".into()).unwrap();
        let argv = deploy_argv(&options, Members::Like(mine.count));
        assert!(!argv.iter().any(|a| a.contains("secret plan")), "{argv:?}");
        let theirs = deploy_args(
            &std::iter::once("fleet")
                .chain(argv.iter().map(String::as_str))
                .collect::<Vec<_>>(),
        );
        assert_eq!(theirs.host, None);
        assert_eq!(theirs.count, Some(3));
        assert_eq!(theirs.prompt_file.as_deref().map(|p| p.as_str()), Some("-"));
        let again = options_of(&theirs, "secret plan".into()).unwrap();
        assert_eq!(format!("{again:?}"), format!("{options:?}"));
    }
}
