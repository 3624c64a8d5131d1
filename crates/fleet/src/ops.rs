//! Operations shared by the CLI and the MCP server, so both surfaces behave alike. Results are
//! JSON in the Python server's shapes (the MCP tools return them as they are).

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::lock::{DEFAULT_LOCK_TIMEOUT, Flock};
use deploy_core::reconcile::{self, Scope};
use deploy_core::{
    AgentId, AgentStatus, DeployRequest, KillReport, Live, Parent, PromptStore, Registry,
    SessionBackend, StatusUpdate, TaskId, timestamp,
};
use registry::format::{AgentEntry, TaskFile};
use serde_json::{Value, json};

use crate::Error;
use crate::config::Services;

/// Deploys `request` after rolling back its task's abandoned deployments (a scan of the intent
/// journal, no tmux call). Agents that ended unobserved only matter when they push the task
/// over a limit: on a limit refusal they are looked for, recorded, and the deployment is tried
/// once more — so leftovers never block new work or count against a limit, and the common
/// path pays nothing for them.
pub(crate) fn deploy(services: &Services, request: DeployRequest) -> Result<Live, Error> {
    let deployer = services.deployer();
    let cleanup = |zombies: bool| -> Result<bool, Error> {
        let scope = Scope {
            task: Some(&request.task),
            dry_run: false,
            zombies,
            orphans: false,
        };
        match reconcile::reconcile(&deployer, scope) {
            Ok(report) if !report.is_empty() => {
                tracing::info!(
                    task = %request.task,
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
    };
    cleanup(false)?;
    match deployer.deploy(request.clone()) {
        Err(f) if matches!(*f.cause, deploy_core::Error::Limit(_)) && cleanup(true)? => deployer
            .deploy(request)
            .map_err(|f| Error::Deploy(Box::new(f))),
        other => other.map_err(|f| Error::Deploy(Box::new(f))),
    }
}

/// What a kill did.
pub(crate) struct Killed {
    pub(crate) report: KillReport,
    pub(crate) status: AgentStatus,
    pub(crate) session: String,
    pub(crate) prompt_removed: bool,
    pub(crate) archived: Vec<Utf8PathBuf>,
}

/// The verified kill of an agent; an active agent is recorded terminated with `reason`. With
/// `archive`, its log, progress and findings files move to `<task>/archive/` as the Python
/// server did; otherwise they stay where they are.
pub(crate) fn kill(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    reason: &str,
    archive: bool,
) -> Result<Killed, Error> {
    let entry = agent_entry(services, task, agent)?;
    let report = services.backend.kill(&entry.tmux_session, agent)?;
    let status = if entry.status.is_active() {
        let mut update = StatusUpdate::now(AgentStatus::Terminated);
        update.reason = Some(reason.to_owned());
        services.registry.update_status(task, agent, &update)?;
        AgentStatus::Terminated
    } else {
        entry.status.clone() // already ended: its record stays as it was
    };
    let files = services.layout.tracked_files(task, agent);
    let prompt_removed = services.prompts.remove(&files.prompt_file)?;
    let archived = if archive {
        archive_files(services, task, agent)?
    } else {
        Vec::new()
    };
    Ok(Killed {
        report,
        status,
        session: entry.tmux_session.to_string(),
        prompt_removed,
        archived,
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
        fs_err::create_dir_all(services.layout.archive_dir(task))?;
        let to = archived(services, task, &path);
        fs_err::rename(&path, &to)?;
        moved.push(to);
    }
    Ok(moved)
}

/// The log file of an agent: in `logs/`, or in `archive/` once the agent ended.
pub(crate) fn log_file(services: &Services, task: &TaskId, agent: &AgentId) -> Utf8PathBuf {
    let log = services.layout.tracked_files(task, agent).log_file;
    let archived = archived(services, task, &log);
    if !log.exists() && archived.exists() {
        archived
    } else {
        log
    }
}

/// Where an agent's file goes when it is archived: `<task>/archive/<its name>`.
fn archived(services: &Services, task: &TaskId, path: &Utf8Path) -> Utf8PathBuf {
    services
        .layout
        .archive_dir(task)
        .join(path.file_name().unwrap_or("unnamed"))
}

/// `fleet reconcile`, in full: the generic repairs, then counters, the index and temp files.
pub(crate) fn reconcile(
    services: &Services,
    task: Option<&TaskId>,
    dry_run: bool,
) -> Result<Value, Error> {
    let report = reconcile::reconcile(
        &services.deployer(),
        Scope {
            task,
            dry_run,
            zombies: true,
            orphans: true,
        },
    )?;
    let registry = &services.registry;
    let counters = registry.recount_tasks(task, dry_run)?;
    // The global index is rebuilt from every task registry: only an unscoped run does that, so
    // that `--task` repairs its task even while another task's registry cannot be read.
    let index = match task {
        None => Some(registry.rebuild_global_with(dry_run)?),
        Some(_) => None,
    };
    deploy_core::failpoint("reconcile::after_rebuild");
    let temps = registry.sweep_temps_with(dry_run)?;
    let index_changed = index.as_ref().is_some_and(|i| i.changed);
    let nothing = report.is_empty() && counters.is_empty() && !index_changed && temps == 0;
    Ok(json!({
        "dry_run": dry_run,
        "nothing_to_do": nothing,
        "abandoned": report.abandoned,
        "zombies": report.zombies,
        "orphans": report.orphans,
        "counters_fixed": counters,
        "index": index,
        "temp_files": temps,
    }))
}

/// Appends one JSON line to `path` under its sidecar lock, replacing the file atomically, so
/// readers never see a torn line and concurrent writers never lose one.
pub(crate) fn append_jsonl(path: &Utf8Path, line: &Value) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let lock = path.with_file_name(format!("{}.lock", path.file_name().unwrap_or("jsonl")));
    let _held = Flock::open(&lock, DEFAULT_LOCK_TIMEOUT)?;
    let mut bytes = match fs_err::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend(serde_json::to_vec(line).map_err(|e| Error::Usage(e.to_string()))?);
    bytes.push(b'\n');
    registry::atomic::write_atomic(path, &bytes)?;
    Ok(())
}

/// The JSON lines of a file (skipping any that do not parse); none if it does not exist.
pub(crate) fn read_jsonl(path: &Utf8Path) -> Vec<Value> {
    fs_err::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every line of every `*<suffix>` file of a task, in `dir` and in `archive/`, oldest first.
fn task_lines(services: &Services, task: &TaskId, dir: &str, suffix: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    for d in [
        services.layout.task_dir(task).join(dir),
        services.layout.archive_dir(task),
    ] {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if let Some(name) = e.file_name().to_str()
                && name.ends_with(suffix)
            {
                lines.extend(read_jsonl(&d.join(name)));
            }
        }
    }
    lines.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
    lines
}

fn last(mut v: Vec<Value>, n: usize) -> Vec<Value> {
    let skip = v.len().saturating_sub(n);
    v.split_off(skip)
}

/// The Python server's `coordination_info`.
pub(crate) fn coordination_info(services: &Services, task: &TaskId) -> Result<Value, Error> {
    let t = services.registry.read_task_file(task)?;
    Ok(json!({
        "success": true,
        "task_id": task,
        "agent_counts": {
            "total_spawned": t.total_spawned,
            "active": t.active_count,
            "completed": t.completed_count,
        },
        "recent_findings": last(task_lines(services, task, "findings", "_findings.jsonl"), 10),
    }))
}

/// The Python server's `enhanced_progress`.
pub(crate) fn enhanced_progress(services: &Services, task: &TaskId) -> Value {
    let progress = task_lines(services, task, "progress", "_progress.jsonl");
    let findings = task_lines(services, task, "findings", "_findings.jsonl");
    json!({
        "total_progress_entries": progress.len(),
        "total_findings": findings.len(),
        "recent_updates": last(progress, 10),
        "recent_findings": last(findings, 10),
    })
}

/// Records a progress report: a line in `progress/<agent>_progress.jsonl` and the agent's
/// status and progress in the registries. A final status ends the agent as the Python server
/// did: verified kill of its session, logs moved to `archive/`, prompt file removed.
pub(crate) fn progress(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    status: &str,
    message: &str,
    progress: u8,
) -> Result<Value, Error> {
    let status = match AgentStatus::from(status.to_owned()) {
        AgentStatus::Other(word) => {
            return Err(Error::Usage(format!(
                "unknown status {word:?}: use running, working, blocked, completed, error or terminated"
            )));
        }
        s => s,
    };
    if progress > 100 {
        return Err(Error::Usage(format!("progress {progress} is over 100")));
    }
    agent_entry(services, task, agent)?;
    let now = timestamp();
    let line = json!({
        "timestamp": now,
        "agent_id": agent,
        "status": status,
        "message": message,
        "progress": progress,
    });
    append_jsonl(
        &services.layout.tracked_files(task, agent).progress_file,
        &line,
    )?;
    let update = StatusUpdate {
        status: status.clone(),
        progress: Some(progress),
        reason: (!status.is_active()).then(|| message.to_owned()),
        exit: None,
        at: now.clone(),
    };
    services.registry.update_status(task, agent, &update)?;
    if !status.is_active() {
        kill(services, task, agent, message, true)?;
    }
    Ok(json!({
        "success": true,
        "own_update": {
            "agent_id": agent,
            "status": status,
            "progress": progress,
            "message": message,
            "timestamp": now,
        },
        "coordination_info": coordination_info(services, task)?,
    }))
}

/// Records a finding in `findings/<agent>_findings.jsonl`.
pub(crate) fn finding(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    finding_type: &str,
    severity: &str,
    message: &str,
    data: Value,
) -> Result<Value, Error> {
    agent_entry(services, task, agent)?;
    let line = json!({
        "timestamp": timestamp(),
        "agent_id": agent,
        "finding_type": finding_type,
        "severity": severity,
        "message": message,
        "data": data,
    });
    append_jsonl(
        &services.layout.tracked_files(task, agent).findings_file,
        &line,
    )?;
    Ok(json!({
        "success": true,
        "own_finding": line,
        "coordination_info": coordination_info(services, task)?,
    }))
}

/// The registry entry of `agent` in `task`; an error if it has none.
pub(crate) fn agent_entry(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<AgentEntry, Error> {
    match services.registry.read_task_file(task)?.agent(agent) {
        Some(entry) => Ok(entry.clone()),
        None => Err(deploy_core::Error::UnknownAgent {
            task: task.clone(),
            agent: agent.clone(),
        }
        .into()),
    }
}

/// What an agent is told about itself and how to report, in front of its task.
pub(crate) fn agent_prompt(
    agent: &AgentId,
    agent_type: &str,
    task: &TaskFile,
    parent: &Parent,
    depth: Option<u32>,
    prompt: &str,
) -> String {
    let depth = depth.map_or_else(|| "?".to_owned(), |d| d.to_string());
    let t = &task.task_id;
    format!(
        "You are agent {agent}, of type {agent_type}, in task {t} (\"{desc}\"), deployed by fleet.\n\
         Your parent is {parent}; you are at depth {depth} of at most {max_depth}.\n\
         \n\
         Your assignment:\n\
         {prompt}\n\
         \n\
         Report through fleet's MCP tools, always with task_id=\"{t}\" and agent_id=\"{agent}\":\n\
         - update_agent_progress(task_id, agent_id, status, message, progress): report as you work\n\
           (status \"working\" or \"blocked\", progress 0-100), and once at the end with status\n\
           \"completed\" (or \"error\" with what went wrong). The final report ends your session.\n\
         - report_agent_finding(task_id, agent_id, finding_type, severity, message, data): each\n\
           significant finding, with its evidence in data.\n\
         - spawn_child_agent(task_id, parent_agent_id=\"{agent}\", child_agent_type, child_prompt):\n\
           hand a focused sub-task to a new agent (at most {max_depth} levels deep).\n",
        desc = task.task_description,
        max_depth = task.max_depth,
    )
}
