//! Each operation once, typed: the CLI (`cmd/`) and the MCP server (`mcp/`) only parse their
//! input into these functions' arguments and render their results. Every operation goes through
//! deploy-core's traits ([`Services`]), never a concrete backend.
//!
//! [`Services`]: crate::config::Services

pub(crate) mod activity;
pub(crate) mod claude;
pub(crate) mod deploy;
pub(crate) mod kill;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod preamble;
pub(crate) mod reconcile;
pub(crate) mod remote;
pub(crate) mod reports;
pub(crate) mod resume;
pub(crate) mod status;
pub(crate) mod task;
pub(crate) mod wait;
pub(crate) mod worktree;

#[cfg(test)]
mod tests;

use deploy_core::{AgentId, AgentRecord, BatchId, TaskId};

use crate::config::Services;
use crate::error::Error;

/// The registry record of `agent` in `task`; an error if it has none.
pub(crate) fn agent_record(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<AgentRecord, Error> {
    match services.registry.read_task(task)?.agent(agent) {
        Some(record) => Ok(record.clone()),
        None => Err(deploy_core::Error::UnknownAgent {
            task: task.clone(),
            agent: agent.clone(),
        }
        .into()),
    }
}

/// The members of `batch` in `task` (or in any task), from the registry, in registration
/// order; an error if it has none.
pub(crate) fn batch_members(
    services: &Services,
    task: Option<&TaskId>,
    batch: &BatchId,
) -> Result<Vec<(TaskId, AgentRecord)>, Error> {
    let tasks = match task {
        Some(t) => vec![t.clone()],
        None => services.registry.task_ids()?,
    };
    let mut members = Vec::new();
    for id in tasks {
        let snapshot = services.registry.read_task(&id)?;
        members.extend(
            snapshot
                .agents
                .into_iter()
                .filter(|a| a.batch().as_ref() == Some(batch))
                .map(|a| (id.clone(), a)),
        );
    }
    if members.is_empty() {
        return Err(Error::Refused(match task {
            Some(t) => format!("no agent of batch {batch} in task {t}"),
            None => format!("no agent of batch {batch} in any task"),
        }));
    }
    Ok(members)
}
