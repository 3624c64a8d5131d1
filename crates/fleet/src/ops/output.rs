//! An agent's output: the tail of its log, wherever the log is now.

use camino::Utf8PathBuf;
use deploy_core::{AgentId, AgentStatus, SessionName, TaskId};
use serde::Serialize;

use crate::config::Services;
use crate::error::Error;

/// The last lines of an agent's log.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentOutput {
    pub(crate) agent_id: AgentId,
    pub(crate) log_file: Utf8PathBuf,
    pub(crate) lines: Vec<String>,
    #[serde(skip)]
    pub(crate) status: AgentStatus,
    #[serde(skip)]
    pub(crate) session: SessionName,
}

/// The last `lines` lines of a registered agent's log.
pub(crate) fn tail(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    lines: usize,
) -> Result<AgentOutput, Error> {
    let record = super::agent_record(services, task, agent)?;
    let log_file = services.layout.log_now(task, agent);
    Ok(AgentOutput {
        agent_id: agent.clone(),
        lines: activity::agent_file::tail_lines(log_file.as_std_path(), lines),
        log_file,
        status: record.status,
        session: record.session,
    })
}
