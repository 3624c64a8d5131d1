//! What agents report: progress and findings, appended as JSON lines to
//! `<task>/progress/<agent>_progress.jsonl` and `<task>/findings/<agent>_findings.jsonl` (moved to
//! `archive/` when the agent ends), and what they read back of each other's reports.

use camino::Utf8Path;
use deploy_core::lock::{DEFAULT_LOCK_TIMEOUT, Flock};
use deploy_core::{AgentId, AgentStatus, StatusUpdate, TaskId, TaskSnapshot, timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::config::Services;
use crate::error::Error;

/// One progress line, as the Python server wrote it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgressLine {
    pub(crate) timestamp: String,
    pub(crate) agent_id: AgentId,
    pub(crate) status: AgentStatus,
    pub(crate) message: String,
    pub(crate) progress: u8,
}

/// One finding line, as the Python server wrote it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingLine {
    pub(crate) timestamp: String,
    pub(crate) agent_id: AgentId,
    pub(crate) finding_type: String,
    pub(crate) severity: String,
    pub(crate) message: String,
    pub(crate) data: Value,
}

/// How many agents a task has, by state.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentCounts {
    pub(crate) total_spawned: usize,
    pub(crate) active: usize,
    pub(crate) completed: usize,
}

/// What a reporting agent learns about its task (the Python server's `coordination_info`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Coordination {
    pub(crate) task_id: TaskId,
    pub(crate) agent_counts: AgentCounts,
    /// The last ten findings of every agent of the task.
    pub(crate) recent_findings: Vec<Value>,
}

/// A task's reports (the Python server's `enhanced_progress`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskReports {
    pub(crate) total_progress_entries: usize,
    pub(crate) total_findings: usize,
    pub(crate) recent_updates: Vec<Value>,
    pub(crate) recent_findings: Vec<Value>,
}

/// A recorded progress report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProgressReported {
    pub(crate) own_update: ProgressLine,
    pub(crate) coordination_info: Coordination,
    /// For a final report: `ended` (the agent was ended before this returned) or `ending` (the
    /// agent reported on itself: a process outside its tree ends it, since this one is inside).
    pub(crate) end: Option<&'static str>,
}

/// A recorded finding.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingReported {
    pub(crate) own_finding: FindingLine,
    pub(crate) coordination_info: Coordination,
}

/// Records a progress report: a progress line, and the agent's status and progress in the
/// registry. A final status (completed, error, terminated) ends the agent as the Python server
/// did — verified kill of its session, prompt file removed, logs moved to `archive/` — and is
/// recorded only then, so a recorded end never hides a leftover. When the reporter is the agent
/// itself (this process serves it: its `fleet mcp`, inside its process tree), the end is handed to
/// a process outside the tree ([`SessionBackend::run_detached`]: `fleet end-agent`), which
/// reads the final report back from the progress file.
///
/// [`SessionBackend::run_detached`]: deploy_core::SessionBackend::run_detached
pub(crate) fn progress(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    status: &str,
    message: &str,
    progress: u8,
) -> Result<ProgressReported, Error> {
    let status = match AgentStatus::from(status.to_owned()) {
        AgentStatus::Other(word) => {
            return Err(Error::Invalid(format!(
                "unknown status {word:?}: use running, working, blocked, completed, error or terminated"
            )));
        }
        s => s,
    };
    if progress > 100 {
        return Err(Error::Invalid(format!("progress {progress} is over 100")));
    }
    let record = super::agent_record(services, task, agent)?;
    let line = ProgressLine {
        timestamp: timestamp(),
        agent_id: agent.clone(),
        status: status.clone(),
        message: message.to_owned(),
        progress,
    };
    let files = services.layout.tracked_files(task, agent);
    append_jsonl(&files.progress_file, &line)?;
    let update = StatusUpdate {
        status: status.clone(),
        progress: Some(progress),
        reason: (!status.is_active()).then(|| message.to_owned()),
        exit: None,
        at: line.timestamp.clone(),
        fields: serde_json::Map::new(),
    };
    let end = if status.is_active() || !record.status.is_active() {
        services.registry.update_status(task, agent, &update)?;
        None
    } else {
        // The progress now; the final status once everything is released.
        let interim = StatusUpdate {
            status: record.status.clone(),
            reason: None,
            ..update
        };
        services.registry.update_status(task, agent, &interim)?;
        let own_report = services.config.serving.as_ref();
        if own_report.is_some_and(|(t, a)| t == task && a == agent) {
            services.deployer().backend_of(&record)?.run_detached(
                &super::kill::ender_label(agent)?,
                &super::kill::ender_argv(services, task, agent)?,
            )?;
            Some("ending")
        } else {
            let files = deploy_core::end::Files::Archive;
            super::kill::end(services, task, agent, status.clone(), message, files)?;
            Some("ended")
        }
    };
    Ok(ProgressReported {
        own_update: line,
        coordination_info: coordination(services, task)?,
        end,
    })
}

/// Records a finding.
pub(crate) fn finding(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    finding_type: &str,
    severity: &str,
    message: &str,
    data: Value,
) -> Result<FindingReported, Error> {
    super::agent_record(services, task, agent)?;
    let line = FindingLine {
        timestamp: timestamp(),
        agent_id: agent.clone(),
        finding_type: finding_type.to_owned(),
        severity: severity.to_owned(),
        message: message.to_owned(),
        data,
    };
    append_jsonl(
        &services.layout.tracked_files(task, agent).findings_file,
        &line,
    )?;
    Ok(FindingReported {
        own_finding: line,
        coordination_info: coordination(services, task)?,
    })
}

/// What a reporting agent learns about its task.
pub(crate) fn coordination(services: &Services, task: &TaskId) -> Result<Coordination, Error> {
    let t: TaskSnapshot = services.registry.read_task(task)?;
    Ok(Coordination {
        task_id: task.clone(),
        agent_counts: AgentCounts {
            total_spawned: t.agents.len(),
            active: t.active_count(),
            completed: t.completed_count(),
        },
        recent_findings: last(
            task_lines(services, task, "findings", "_findings.jsonl"),
            10,
        ),
    })
}

/// Every progress line and finding of a task.
pub(crate) fn task_reports(services: &Services, task: &TaskId) -> TaskReports {
    let progress = task_lines(services, task, "progress", "_progress.jsonl");
    let findings = task_lines(services, task, "findings", "_findings.jsonl");
    TaskReports {
        total_progress_entries: progress.len(),
        total_findings: findings.len(),
        recent_updates: last(progress, 10),
        recent_findings: last(findings, 10),
    }
}

/// Which findings to read.
#[derive(Debug, Clone, Default)]
pub(crate) struct FindingFilter {
    pub(crate) agent: Option<AgentId>,
    pub(crate) severity: Option<String>,
    pub(crate) finding_type: Option<String>,
    /// Only the newest this many (after filtering).
    pub(crate) limit: Option<usize>,
}

/// A task's findings, oldest first, filtered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskFindings {
    pub(crate) task_id: TaskId,
    /// How many findings the task has in all.
    pub(crate) total_findings: usize,
    /// How many matched the filter (before `limit`).
    pub(crate) matching: usize,
    pub(crate) findings: Vec<Value>,
}

/// Every finding of a task — of agents running, ended (in `archive/`), of any agent — that
/// matches `filter`; an unknown task is an error.
pub(crate) fn findings(
    services: &Services,
    task: &TaskId,
    filter: &FindingFilter,
) -> Result<TaskFindings, Error> {
    services.registry.read_task(task)?; // an unknown task is an error, not "no findings"
    let all = task_lines(services, task, "findings", "_findings.jsonl");
    let total_findings = all.len();
    let is = |v: &Value, key: &str, want: &Option<String>| {
        want.as_deref().is_none_or(|w| v[key].as_str() == Some(w))
    };
    let agent = filter.agent.as_ref().map(ToString::to_string);
    let matched: Vec<Value> = all
        .into_iter()
        .filter(|f| {
            is(f, "agent_id", &agent)
                && is(f, "severity", &filter.severity)
                && is(f, "finding_type", &filter.finding_type)
        })
        .collect();
    let matching = matched.len();
    Ok(TaskFindings {
        task_id: task.clone(),
        total_findings,
        matching,
        findings: match filter.limit {
            Some(n) => last(matched, n),
            None => matched,
        },
    })
}

/// The agent's last final report (completed, error, terminated) from its progress file, as
/// its status and message.
pub(crate) fn final_report(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Option<(AgentStatus, String)> {
    let files = services.layout.tracked_files(task, agent);
    read_jsonl(&files.progress_file)
        .into_iter()
        .rev()
        .filter(|l| l["agent_id"].as_str() == Some(agent.as_str()))
        .find_map(|l| {
            let status = AgentStatus::from(l["status"].as_str()?.to_owned());
            (!status.is_active()).then(|| (status, l["message"].as_str().unwrap_or("").to_owned()))
        })
}

/// Appends one JSON line to `path` under its sidecar lock, replacing the file atomically, so
/// readers never see a torn line and concurrent writers never lose one.
fn append_jsonl<T: Serialize>(path: &Utf8Path, line: &T) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        deploy_core::private::create_dir_all(dir)?;
    }
    let lock = path.with_file_name(format!("{}.lock", path.file_name().unwrap_or("jsonl")));
    let _held = Flock::open(&lock, DEFAULT_LOCK_TIMEOUT)?;
    let mut bytes = Vec::new();
    match activity::agent_file::open(path.as_std_path()) {
        Ok(file) => {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, REPORTS_CAP as u64),
                &mut bytes,
            )
            .map_err(|source| Error::AgentFile {
                path: path.to_owned(),
                source,
            })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::AgentFile {
                path: path.to_owned(),
                source,
            });
        }
    }
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend(
        serde_json::to_vec(line)
            .map_err(|e| Error::Environment(format!("cannot write a line of {path}: {e}")))?,
    );
    bytes.push(b'\n');
    deploy_core::private::replace(path, &bytes)?;
    Ok(())
}

/// The JSON lines of a file (skipping any that do not parse); none if it does not exist.
pub(crate) fn read_jsonl(path: &Utf8Path) -> Vec<Value> {
    activity::agent_file::lines(path.as_std_path(), REPORTS_CAP)
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The most of an agent's progress or findings file fleet reads (the agent controls the file).
const REPORTS_CAP: usize = 16 << 20;

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
