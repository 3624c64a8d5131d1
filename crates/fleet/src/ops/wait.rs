//! Waiting until agents end, for scripts and pipelines.

use std::time::{Duration, Instant};

use deploy_core::{AgentStatus, TaskId};
use serde::Serialize;

use super::status::{self, AgentView, Only, Sighting};
use crate::config::Services;
use crate::error::Error;

/// How often the agents are looked at.
const POLL: Duration = Duration::from_millis(200);

/// One agent at its end.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ended {
    pub(crate) task_id: TaskId,
    #[serde(flatten)]
    pub(crate) agent: AgentView,
}

impl Ended {
    /// Whether it completed (not error, not terminated).
    pub(crate) fn completed(&self) -> bool {
        self.agent.status == AgentStatus::Completed
    }
}

/// Blocks until no agent in scope — `only` those, of `task`'s (those it spawns meanwhile included),
/// or every task's — is active, and returns each one's final view. An active agent whose
/// session is gone is recorded as reconcile records it; after `timeout`, an error that exits
/// 124 naming those still active.
pub(crate) fn run(
    services: &Services,
    task: Option<&TaskId>,
    only: Only<'_>,
    timeout: Option<Duration>,
) -> Result<Vec<Ended>, Error> {
    let start = Instant::now();
    loop {
        let views: Vec<Ended> = status::run(services, task, only)?
            .into_iter()
            .flat_map(|t| {
                let id = t.task_id;
                t.agents.into_iter().map(move |a| Ended {
                    task_id: id.clone(),
                    agent: a,
                })
            })
            .collect();
        let active: Vec<&Ended> = views
            .iter()
            .filter(|e| e.agent.status.is_active())
            .collect();
        if active.is_empty() {
            return Ok(views);
        }
        let mut gone_tasks: Vec<&TaskId> = active
            .iter()
            .filter(|e| e.agent.liveness == Sighting::Missing)
            .map(|e| &e.task_id)
            .collect();
        gone_tasks.dedup();
        for t in gone_tasks {
            super::reconcile::record_zombies(services, t)?;
        }
        if let Some(limit) = timeout
            && start.elapsed() >= limit
        {
            let ids: Vec<&str> = active.iter().map(|e| e.agent.agent_id.as_str()).collect();
            return Err(Error::TimedOut(format!(
                "timed out after {} s: {} agent(s) still active: {}",
                limit.as_secs(),
                ids.len(),
                ids.join(", ")
            )));
        }
        std::thread::sleep(POLL);
    }
}
