//! Deploying one agent: the request assembled from what a surface gives, then the transaction,
//! after the task's abandoned deployments are rolled back.

use std::io::Read;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::reconcile::{self, Scope};
use deploy_core::{
    AgentId, AgentType, BatchId, BatchRequest, Checkout, CheckoutRequest, DeployRequest, Live,
    Parent, SessionName, TaskId,
};
use serde::Serialize;

use super::claude;
use crate::config::{Services, absolute};
use crate::error::Error;

/// What a surface gives to deploy an agent; what it leaves out comes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct DeployOptions {
    pub(crate) task: TaskId,
    pub(crate) agent_type: AgentType,
    pub(crate) prompt: String,
    pub(crate) parent: Parent,
    /// Default: the current directory.
    pub(crate) workdir: Option<Utf8PathBuf>,
    /// Default: the configured agent command.
    pub(crate) command: Option<Vec<String>>,
    /// Default: the configured startup grace.
    pub(crate) startup_grace: Option<Duration>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) allow_duplicate: bool,
    /// Put the agent's identity and how to report in front of its prompt (default: when the
    /// agent is Claude Code, which has fleet's tools to report with).
    pub(crate) preamble: Option<bool>,
    /// Claude Code's `--permission-mode` (default: the configuration's).
    pub(crate) permission_mode: Option<String>,
    /// Claude Code's `--model`.
    pub(crate) model: Option<String>,
    /// Claude Code's `--effort`.
    pub(crate) effort: Option<String>,
    /// The agent's own git checkout, where it runs instead of `workdir`.
    pub(crate) worktree: Option<WorktreeOptions>,
    /// The agent's id, when the caller must know it beforehand (resume: its checkout's path).
    pub(crate) agent: Option<AgentId>,
}

/// `--worktree`: a branch `fleet/<agent>` and a worktree for it under the workspace.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorktreeOptions {
    /// The repository (default: the one holding the current directory).
    pub(crate) repo: Option<Utf8PathBuf>,
    /// The ref to branch from (default: the repository's HEAD).
    pub(crate) base: Option<String>,
    /// Keep worktree and branch when the agent ends, whatever they hold.
    pub(crate) keep: bool,
}

impl DeployOptions {
    /// Options with every default.
    pub(crate) fn new(task: TaskId, agent_type: AgentType, prompt: String) -> Self {
        DeployOptions {
            task,
            agent_type,
            prompt,
            parent: Parent::Orchestrator,
            workdir: None,
            command: None,
            startup_grace: None,
            env: Vec::new(),
            allow_duplicate: false,
            preamble: None,
            permission_mode: None,
            model: None,
            effort: None,
            worktree: None,
            agent: None,
        }
    }
}

/// A Live agent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Deployed {
    pub(crate) agent_id: AgentId,
    pub(crate) task_id: TaskId,
    pub(crate) session: SessionName,
    /// Always `live`.
    pub(crate) status: &'static str,
    #[serde(rename = "type")]
    pub(crate) agent_type: AgentType,
    pub(crate) parent: Parent,
    pub(crate) depth: u32,
    pub(crate) pane_pid: u32,
    pub(crate) prompt_file: Utf8PathBuf,
    pub(crate) log_file: Utf8PathBuf,
    /// Its checkout, with `--worktree`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<Checkout>,
    /// The task's directory.
    #[serde(skip)]
    pub(crate) workspace: String,
}

/// Builds the request: defaults from the configuration, the workdir checked, for Claude Code
/// fleet's tools wired in (see [`claude`]), and with the preamble the agent's identity in front
/// of its prompt.
fn request(services: &Services, options: DeployOptions) -> Result<DeployRequest, Error> {
    let config = &services.config;
    let workdir = absolute(options.workdir.as_deref().unwrap_or(Utf8Path::new(".")))?;
    if !workdir.is_dir() {
        return Err(Error::Invalid(format!(
            "workdir {workdir} does not exist or is not a directory"
        )));
    }
    let checkout = options
        .worktree
        .as_ref()
        .map(|w| checkout_request(services, w, &workdir))
        .transpose()?;
    let mut command = options.command.unwrap_or_else(|| config.agent_cmd.clone());
    let claude = claude::is_claude(&command);
    claude::choose(
        &mut command,
        claude::Choices {
            model: options.model.as_deref(),
            effort: options.effort.as_deref(),
            permission_mode: options.permission_mode.as_deref(),
        },
        config,
    )?;
    let mut env = options.env;
    if claude
        && claude::skips_permissions(&command)
        && claude::refused_to_root(
            rustix::process::geteuid().is_root(),
            std::env::var(claude::SANDBOX_ENV).ok().as_deref(),
            &env,
        )?
    {
        // The agent's environment is its tmux server's: carry the sandbox's word to it.
        env.push((claude::SANDBOX_ENV.to_owned(), "1".to_owned()));
    }
    // The id is chosen here when the command or the prompt must name it.
    let preamble = options.preamble.unwrap_or(claude);
    let agent = match options.agent {
        Some(agent) => Some(agent),
        None if claude || preamble => Some(AgentId::generate(&options.agent_type)?),
        None => None,
    };
    // What continues this agent later starts it the same way: its command as given, with the
    // choices made, without fleet's wiring (made anew for each agent).
    let recorded_command = command.clone();
    if let Some(agent) = agent.as_ref().filter(|_| claude) {
        claude::wire(&mut command, config, &options.task, agent)?;
    }
    let mut request = DeployRequest::new(options.task, options.agent_type, options.prompt, command);
    // A blank prompt is refused as such by the request's validation, not hidden by a preamble.
    if let Some(agent) = agent.as_ref().filter(|_| preamble)
        && !request.prompt.trim().is_empty()
    {
        let task = services.registry.read_task(&request.task)?;
        request.prompt = super::preamble::preamble(
            agent,
            &request.agent_type,
            &task,
            &options.parent,
            &request.prompt,
        );
    }
    request.agent = agent;
    request.parent = options.parent;
    request.workdir = workdir;
    request.startup_grace = options.startup_grace.unwrap_or(config.startup_grace);
    request.env = env;
    request.allow_duplicate = options.allow_duplicate;
    request.checkout = checkout;
    request.recorded_command = Some(recorded_command);
    Ok(request)
}

/// The checkout asked for: an explicit repository is taken as given (the deployment reports
/// what is wrong with it, and leaves nothing); by default, the repository holding `cwd` — and
/// none is an error before anything exists.
fn checkout_request(
    services: &Services,
    w: &WorktreeOptions,
    cwd: &Utf8Path,
) -> Result<CheckoutRequest, Error> {
    let repo = match &w.repo {
        Some(repo) => absolute(repo)?,
        None => services.checkouts.repository_of(cwd)?.ok_or_else(|| {
            Error::Invalid(format!(
                "--worktree: {cwd} is in no git repository; give --repo"
            ))
        })?,
    };
    Ok(CheckoutRequest {
        repo,
        base: w.base.clone(),
        keep: w.keep,
    })
}

/// Deploys after rolling back the task's abandoned deployments (a scan of the intent journal,
/// no tmux call). Agents that ended unobserved only matter when they push the task over a
/// limit: on a limit refusal they are looked for, recorded, and the deployment is tried once
/// more — so leftovers never block new work or count against a limit, and the common path pays
/// nothing for them.
///
/// `interrupt` is asked between steps and during the startup grace (the CLI's SIGINT and
/// SIGTERM): when it names a signal, the deployment rolls back and fails with it.
pub(crate) fn run(
    services: &Services,
    options: DeployOptions,
    interrupt: &dyn Fn() -> Option<i32>,
) -> Result<Deployed, Error> {
    let request = request(services, options)?;
    let deployer = services.deployer();
    clean(services, &deployer, &request.task, false)?;
    let live = match deployer.deploy_interruptible(request.clone(), interrupt) {
        Err(f)
            if matches!(*f.cause, deploy_core::Error::Limit(_))
                && clean(services, &deployer, &request.task, true)? =>
        {
            deployer.deploy_interruptible(request, interrupt)
        }
        other => other,
    }
    .map_err(condensed)?;
    Ok(deployed(services, &live))
}

/// A batch whose every member is Live.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeployedBatch {
    pub(crate) batch_id: BatchId,
    pub(crate) agent_ids: Vec<AgentId>,
    /// Each member, as a deployment alone reports it.
    pub(crate) agents: Vec<Deployed>,
}

/// Deploys `members` (each a deployment of `task`) as one batch: every member Live, or none.
/// The task's abandoned deployments are rolled back first and, on a limit refusal, its agents
/// that ended unobserved recorded, as for one agent.
pub(crate) fn run_batch(
    services: &Services,
    task: &TaskId,
    members: Vec<DeployOptions>,
    interrupt: &dyn Fn() -> Option<i32>,
) -> Result<DeployedBatch, Error> {
    let members = members
        .into_iter()
        .map(|m| request(services, m))
        .collect::<Result<Vec<_>, _>>()?;
    let request = BatchRequest {
        batch: Some(BatchId::generate()?),
        members,
    };
    let deployer = services.deployer();
    clean(services, &deployer, task, false)?;
    let live = match deployer.deploy_batch(request.clone(), interrupt) {
        Err(f)
            if matches!(*f.failure.cause, deploy_core::Error::Limit(_))
                && clean(services, &deployer, task, true)? =>
        {
            deployer.deploy_batch(request, interrupt)
        }
        other => other,
    }
    .map_err(|mut f| {
        *f.failure = condensed(*f.failure);
        f
    })?;
    let agents: Vec<Deployed> = live
        .members()
        .iter()
        .map(|m| deployed(services, m))
        .collect();
    Ok(DeployedBatch {
        batch_id: live.batch().clone(),
        agent_ids: agents.iter().map(|a| a.agent_id.clone()).collect(),
        agents,
    })
}

/// Reconciles `task` before a deployment: its abandoned deployments (a scan of the intent
/// journal, no tmux call) and, with `zombies`, its agents that ended unobserved. Whether it
/// found anything.
fn clean(
    services: &Services,
    deployer: &deploy_core::Deployer<'_>,
    task: &TaskId,
    zombies: bool,
) -> Result<bool, Error> {
    let reported = super::reconcile::final_word(services);
    let scope = Scope {
        task: Some(task),
        dry_run: false,
        zombies,
        orphans: false,
        annotate: None,
        reported: Some(&reported),
    };
    match reconcile::reconcile(deployer, scope) {
        Ok(report) if !report.is_empty() => {
            tracing::info!(
                %task,
                "cleaned up before deploying: {}",
                serde_json::to_string(&report).unwrap_or_default()
            );
            Ok(true)
        }
        Ok(_) => Ok(false),
        // An unknown task is reported by the deployment itself, at its precheck.
        Err(deploy_core::Error::UnknownTask(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads a whole prompt of at most `cap` bytes, as UTF-8.
pub(crate) fn read_capped(source: impl Read, what: &str, cap: u64) -> Result<String, Error> {
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

/// A failure whose agent died at start quotes what the agent said — a Claude Code or Codex
/// result ("Not logged in · Please run /login") — rather than kilobytes of its events.
fn condensed(mut f: deploy_core::DeployFailure) -> deploy_core::DeployFailure {
    if let deploy_core::Error::AgentDied { last_lines, .. } = &mut *f.cause {
        *last_lines = activity::condense(last_lines);
    }
    f
}

fn deployed(services: &Services, live: &Live) -> Deployed {
    let r = live.record();
    Deployed {
        agent_id: r.id.clone(),
        task_id: live.task().clone(),
        session: r.session.clone(),
        status: "live",
        agent_type: r.agent_type.clone(),
        parent: r.parent.clone(),
        depth: r.depth,
        pane_pid: live.session().pane_pid,
        prompt_file: live.files().prompt_file.clone(),
        log_file: live.files().log_file.clone(),
        worktree: live.checkout().cloned(),
        workspace: services.layout.task_dir(live.task()).to_string(),
    }
}
