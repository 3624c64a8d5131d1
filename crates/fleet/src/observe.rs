//! What fleet sees when it looks at a task: each agent's registry status beside its liveness in
//! tmux. An agent that ended by itself is recorded then and there (see
//! [`deploy_core::reconcile::record_ended`]); its logs are kept.

use std::collections::BTreeMap;

use deploy_core::reconcile::record_ended;
use deploy_core::{Deployer, ExitStatus, SessionListing, SessionName};
use registry::format::TaskFile;
use serde::Serialize;

use crate::Error;

/// One agent as `fleet status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentView {
    pub(crate) agent_id: String,
    #[serde(rename = "type")]
    pub(crate) agent_type: String,
    pub(crate) status: String,
    /// `alive`, `exited` or `missing`.
    pub(crate) liveness: &'static str,
    pub(crate) exit: Option<ExitStatus>,
    pub(crate) parent: String,
    pub(crate) depth: u32,
    pub(crate) session: String,
    pub(crate) started_at: String,
    pub(crate) age_seconds: Option<i64>,
}

fn age_seconds(started_at: &str) -> Option<i64> {
    let start = chrono::NaiveDateTime::parse_from_str(started_at, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some((chrono::Local::now().naive_local() - start).num_seconds())
}

/// Looks at one task: records agents that ended by themselves, and returns the views, and
/// whether anything was recorded (then the task's registry changed since `task` was read).
pub(crate) fn observe_task(
    env: &Deployer<'_>,
    task: &TaskFile,
    sessions: &BTreeMap<SessionName, SessionListing>,
) -> Result<(Vec<AgentView>, bool), Error> {
    let mut views = Vec::new();
    let mut recorded = false;
    for a in &task.agents {
        let (liveness, exit) = match sessions.get(&a.tmux_session) {
            None => ("missing", None),
            Some(s) => match s.exited {
                None => ("alive", None),
                Some(status) => ("exited", Some(status)),
            },
        };
        let mut status = a.status.clone();
        if let (true, Some(exit)) = (a.status.is_active(), exit) {
            status = record_ended(env, &task.task_id, &a.record(), exit)?;
            recorded = true;
            tracing::info!(agent = %a.id, %exit, "agent ended by itself; recorded as {status}");
        }
        views.push(AgentView {
            agent_id: a.id.to_string(),
            agent_type: a.agent_type.to_string(),
            status: status.to_string(),
            liveness,
            exit,
            parent: a.parent.to_string(),
            depth: a.depth,
            session: a.tmux_session.to_string(),
            started_at: a.started_at.clone(),
            age_seconds: age_seconds(&a.started_at),
        });
    }
    Ok((views, recorded))
}
