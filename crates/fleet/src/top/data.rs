//! What `fleet top` shows, gathered off the drawing thread — a slow tmux call delays the next
//! snapshot, never a key or a redraw.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deploy_core::{AgentId, TaskId};
use serde_json::Value;

use crate::config::Services;
use crate::ops::output;
use crate::ops::reports;
use crate::ops::status::{self, TaskStatus};

/// How often a snapshot is taken.
pub(crate) const REFRESH: Duration = Duration::from_millis(500);
/// How many lines of the selected agent's output a snapshot carries.
const TAIL: usize = 200;

/// The agent whose details are gathered.
pub(crate) type Selected = Arc<Mutex<Option<(TaskId, AgentId)>>>;

/// Everything on screen but the keys' effects.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) tasks: Vec<TaskStatus>,
    /// The selected agent's details.
    pub(crate) detail: Option<Detail>,
    /// Why the tasks could not be read, if they could not.
    pub(crate) error: Option<String>,
}

/// The selected agent's output tail, progress and findings.
#[derive(Debug, Default)]
pub(crate) struct Detail {
    pub(crate) agent: Option<AgentId>,
    pub(crate) output: Vec<String>,
    pub(crate) progress: Vec<String>,
    pub(crate) findings: Vec<String>,
}

fn line_of(v: &Value, fields: &[&str]) -> String {
    fields
        .iter()
        .filter_map(|f| match &v[*f] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// One snapshot: every task's status (recording agents that ended, as `fleet status` does),
/// and the selected agent's details.
pub(crate) fn take(services: &Services, selected: Option<&(TaskId, AgentId)>) -> Snapshot {
    let tasks = match status::run(services, None, crate::ops::status::Only::Every) {
        Ok(t) => t,
        Err(e) => {
            return Snapshot {
                error: Some(e.line()),
                ..Snapshot::default()
            };
        }
    };
    let detail = selected.map(|(task, agent)| {
        let mine = |v: &Value| v["agent_id"].as_str() == Some(agent.as_str());
        let reports = reports::task_reports(services, task);
        Detail {
            agent: Some(agent.clone()),
            output: output::tail(services, task, agent, TAIL)
                .map(|o| o.lines)
                .unwrap_or_default(),
            progress: reports
                .recent_updates
                .iter()
                .filter(|v| mine(v))
                .map(|v| line_of(v, &["status", "progress", "message"]))
                .collect(),
            findings: reports
                .recent_findings
                .iter()
                .filter(|v| mine(v))
                .map(|v| line_of(v, &["severity", "finding_type", "message"]))
                .collect(),
        }
    });
    Snapshot {
        tasks,
        detail,
        error: None,
    }
}

/// Takes snapshots every [`REFRESH`] until the receiver goes.
pub(crate) fn gather(services: Arc<Services>, selected: Selected, out: Sender<Snapshot>) {
    loop {
        let which = selected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if out.send(take(&services, which.as_ref())).is_err() {
            return;
        }
        std::thread::sleep(REFRESH);
    }
}

/// The newest snapshot waiting, if any.
pub(crate) fn newest(rx: &Receiver<Snapshot>) -> Option<Snapshot> {
    rx.try_iter().last()
}
