//! Ending an agent: the verified kill, and — after its own final report, from inside its tree —
//! the end handed to a process outside it (`fleet end-agent`).

use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use deploy_core::end::{Cause, Ending, Files};
use deploy_core::{AgentId, AgentStatus, Checkout, KilledProcess, Liveness, SessionName, TaskId};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;

/// What a kill did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Killed {
    pub(crate) agent_id: AgentId,
    pub(crate) task_id: TaskId,
    pub(crate) session: SessionName,
    /// Whether the session existed.
    pub(crate) session_killed: bool,
    /// The agent's processes that were signalled; none is left.
    pub(crate) killed: Vec<KilledProcess>,
    /// The agent's status afterwards.
    pub(crate) status: AgentStatus,
    pub(crate) reason: String,
    pub(crate) prompt_removed: bool,
    pub(crate) archived_files: Vec<Utf8PathBuf>,
    /// Its checkout after its end (`--worktree`): what was kept of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<Checkout>,
}

/// The verified kill of an agent; an active agent is recorded terminated with `reason`. An
/// agent that had already ended keeps its record.
pub(crate) fn run(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    reason: &str,
    files: Files,
) -> Result<Killed, Error> {
    end(
        services,
        task,
        agent,
        AgentStatus::Terminated,
        reason,
        files,
    )
}

/// Ends an agent through deploy-core's one end ([`deploy_core::end`]): the verified kill of
/// its session and processes, its prompt file removed, its checkout retired, then — only then
/// — an active agent recorded as `status` with `reason` and its activity, and its files
/// archived with [`Files::Archive`]. An agent that had already ended keeps its record.
pub(crate) fn end(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    status: AgentStatus,
    reason: &str,
    files: Files,
) -> Result<Killed, Error> {
    let record = super::agent_record(services, task, agent)?;
    let success = status == AgentStatus::Completed;
    let mut ending = Ending::of(
        &record,
        Cause::Ended {
            status,
            reason: reason.to_owned(),
        },
    );
    if record.status.is_active() {
        ending.fields = super::activity::at_end(services, task, &record, None, success);
    }
    let done = deploy_core::end::end(&services.deployer(), task, &[ending], files)?
        .pop()
        .ok_or_else(|| Error::Refused(format!("agent {agent}: its end reported nothing")))?;
    Ok(Killed {
        agent_id: agent.clone(),
        task_id: task.clone(),
        session: record.session,
        session_killed: done.kill.session_existed,
        killed: done.kill.killed,
        status: done.status,
        reason: reason.to_owned(),
        prompt_removed: done.prompt_removed,
        archived_files: done.archived,
        worktree: done.checkout,
    })
}

/// Waits up to `grace` for `agent`'s process to end by itself (its session's pane dead, or the
/// session gone); whether it did.
pub(crate) fn await_exit(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    grace: Duration,
) -> Result<bool, Error> {
    let record = super::agent_record(services, task, agent)?;
    let deployer = services.deployer();
    let backend = deployer.backend_of(&record)?;
    let deadline = Instant::now() + grace;
    loop {
        if backend.probe(&record.session)? != Liveness::Alive {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            tracing::info!(%agent, "still running {} ms after its final report: ending it", grace.as_millis());
            return Ok(false);
        }
        std::thread::sleep(EXIT_POLL);
    }
}

/// How often [`await_exit`] looks.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// The label of the process that ends `agent` after its own final report.
pub(crate) fn ender_label(agent: &AgentId) -> Result<SessionName, Error> {
    Ok(SessionName::parse(&format!("ended_{agent}"))?)
}

/// `fleet --root R --socket S --registry K end-agent --task T --agent A`: this binary, this
/// workspace and registry (its database URL the workspace names), under `env FLEET_HOST=H` when
/// this fleet has a host — the detached process gets none of this process's environment.
pub(crate) fn ender_argv(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<Vec<String>, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find the fleet binary itself: {e}")))?;
    let config = &services.config;
    let mut argv = match &config.host {
        Some(host) => vec!["env".to_owned(), format!("FLEET_HOST={host}")],
        None => Vec::new(),
    };
    argv.extend(
        [
            &*exe.to_string_lossy(),
            "--root",
            config.root.as_str(),
            "--socket",
            &config.socket,
            "--registry",
            config.registry.as_str(),
            "end-agent",
            "--task",
            task.as_str(),
            "--agent",
            agent.as_str(),
            "--finish-grace-ms",
            &config.finish_grace.as_millis().to_string(),
        ]
        .map(str::to_owned),
    );
    Ok(argv)
}
