//! Ending an agent: the verified kill, and — after its own final report, from inside its tree —
//! the end handed to a process outside it (`fleet end-agent`).

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::checkout::CHECKOUT_FIELD;
use deploy_core::reconcile::retire;
use deploy_core::{
    AgentId, AgentStatus, Checkout, KilledProcess, Liveness, SessionName, StatusUpdate, TaskId,
};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;

/// Where an agent's files go at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logs {
    /// They stay in `logs/`, `progress/`, `findings/` (the CLI: `fleet logs` reads them).
    Keep,
    /// They move to `<task>/archive/`, as the Python server did.
    Archive,
}

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
    logs: Logs,
) -> Result<Killed, Error> {
    end(services, task, agent, AgentStatus::Terminated, reason, logs)
}

/// Ends an agent: the verified kill of its session and processes, its prompt file removed, its
/// checkout retired (work kept, the rest removed), then — only then — an active agent recorded
/// as `status` with `reason`, and its files archived with [`Logs::Archive`]. An agent that had
/// already ended keeps its record (but a checkout it left unretired is retired now).
pub(crate) fn end(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    status: AgentStatus,
    reason: &str,
    logs: Logs,
) -> Result<Killed, Error> {
    let record = super::agent_record(services, task, agent)?;
    // Everything is released before the end is recorded: should a step fail, the agent stays
    // active with its session gone — a zombie that the next reconcile records and finishes.
    let report = services
        .deployer()
        .backend_of(&record)?
        .kill(&record.session, agent)?;
    let files = services.layout.tracked_files(task, agent);
    let prompt_removed = services.prompts.remove(&files.prompt_file)?;
    let checkout = Checkout::of(&record);
    let retired = checkout
        .as_ref()
        .and_then(|c| retire(&services.deployer(), task, agent, c));
    let mut update = StatusUpdate::now(status.clone());
    if let Some(retired) = &retired {
        update
            .fields
            .insert(CHECKOUT_FIELD.to_owned(), retired.to_value());
    }
    let status = if record.status.is_active() {
        update.reason = Some(reason.to_owned());
        let success = status == AgentStatus::Completed;
        update.fields.extend(super::activity::at_end(
            services, task, &record, None, success,
        ));
        services.registry.update_status(task, agent, &update)?;
        status
    } else {
        if !update.fields.is_empty() {
            services.registry.annotate(task, agent, &update.fields)?;
        }
        record.status.clone()
    };
    let archived_files = match logs {
        Logs::Archive => archive_files(services, task, agent)?,
        Logs::Keep => Vec::new(),
    };
    Ok(Killed {
        agent_id: agent.clone(),
        task_id: task.clone(),
        session: record.session,
        session_killed: report.session_existed,
        killed: report.killed,
        status,
        reason: reason.to_owned(),
        prompt_removed,
        archived_files,
        worktree: retired.or(checkout),
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

/// `fleet --root R --socket S end-agent --task T --agent A`: this binary, this workspace.
pub(crate) fn ender_argv(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<Vec<String>, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Invalid(format!("cannot find the fleet binary itself: {e}")))?;
    let config = &services.config;
    Ok([
        &*exe.to_string_lossy(),
        "--root",
        config.root.as_str(),
        "--socket",
        &config.socket,
        "end-agent",
        "--task",
        task.as_str(),
        "--agent",
        agent.as_str(),
        "--finish-grace-ms",
        &config.finish_grace.as_millis().to_string(),
    ]
    .map(str::to_owned)
    .to_vec())
}

/// The agent's last final report (completed, error, terminated) from its progress file, as
/// its status and message.
pub(crate) fn final_report(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Option<(AgentStatus, String)> {
    let files = services.layout.tracked_files(task, agent);
    super::reports::read_jsonl(&files.progress_file)
        .into_iter()
        .rev()
        .filter(|l| l["agent_id"].as_str() == Some(agent.as_str()))
        .find_map(|l| {
            let status = AgentStatus::from(l["status"].as_str()?.to_owned());
            (!status.is_active()).then(|| (status, l["message"].as_str().unwrap_or("").to_owned()))
        })
}

/// Moves an agent's log, progress and findings files into `<task>/archive/`.
fn archive_files(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<Vec<Utf8PathBuf>, Error> {
    let files = services.layout.tracked_files(task, agent);
    let mut moved = Vec::new();
    for path in [files.log_file, files.progress_file, files.findings_file] {
        if !path.exists() {
            continue;
        }
        deploy_core::private::create_dir_all(&services.layout.archive_dir(task))?;
        let to = archived(services, task, &path);
        fs_err::rename(&path, &to)?;
        moved.push(to);
    }
    Ok(moved)
}

/// Where an agent's file goes when it is archived: `<task>/archive/<its name>`.
pub(crate) fn archived(services: &Services, task: &TaskId, path: &Utf8Path) -> Utf8PathBuf {
    services
        .layout
        .archive_dir(task)
        .join(path.file_name().unwrap_or("unnamed"))
}
