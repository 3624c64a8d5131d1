//! Creating tasks and repairing a registry: the parts of the [`Registry`](crate::Registry)
//! trait that are not about one deployment.

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::Error;
use crate::id::{AgentId, TaskId};
use crate::limits::Limits;

/// What a new task is created with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTask {
    /// What it is about (not empty).
    pub description: String,
    /// `P0`..`P4`; empty means the Python server's default, `P1`.
    pub priority: String,
    /// Its limits.
    pub limits: Limits,
    /// The client's directory, if known.
    pub client_cwd: Option<String>,
    /// The optional context of the Python server's enhanced tasks.
    pub context: Option<TaskContext>,
}

impl NewTask {
    /// The priorities the Python server knows.
    pub const PRIORITIES: [&'static str; 5] = ["P0", "P1", "P2", "P3", "P4"];

    /// Checks the description is not blank and the priority is one of [`Self::PRIORITIES`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.description.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "the task description is empty".into(),
            ));
        }
        if !self.priority.is_empty() && !Self::PRIORITIES.contains(&self.priority.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "priority {:?} is not one of P0, P1, P2, P3, P4",
                self.priority
            )));
        }
        Ok(())
    }

    /// The priority to record: the given one, or `P1`.
    pub fn priority_or_default(&self) -> &str {
        if self.priority.is_empty() {
            "P1"
        } else {
            &self.priority
        }
    }
}

/// The enhanced context of a task (`task_context`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskContext {
    /// Background for the agents.
    pub background_context: Option<String>,
    /// What must be delivered.
    pub expected_deliverables: Vec<String>,
    /// How success is judged.
    pub success_criteria: Vec<String>,
    /// What must not be done.
    pub constraints: Vec<String>,
    /// Files to look at.
    pub relevant_files: Vec<String>,
}

impl TaskContext {
    /// Whether it holds anything.
    pub fn is_empty(&self) -> bool {
        self.background_context.is_none()
            && self.expected_deliverables.is_empty()
            && self.success_criteria.is_empty()
            && self.constraints.is_empty()
            && self.relevant_files.is_empty()
    }
}

/// What rebuilding a registry's global index did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IndexRepair {
    /// Tasks read.
    pub tasks: usize,
    /// Agents indexed.
    pub agents: usize,
    /// Index entries added (agents missing from the index).
    pub added: Vec<AgentId>,
    /// Index entries removed (agents no task has).
    pub removed: Vec<String>,
    /// Whether the index changed.
    pub changed: bool,
    /// Where a corrupt index was moved before being rebuilt.
    pub moved_corrupt: Option<Utf8PathBuf>,
}

/// What [`Registry::repair`](crate::Registry::repair) found and fixed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RepairReport {
    /// Tasks whose stored counters differed from their agent lists.
    pub counters_fixed: Vec<TaskId>,
    /// The global index, when the repair covered every task (`None` for one task, or for a
    /// registry with no separate index).
    pub index: Option<IndexRepair>,
    /// Temp files left by dead writers.
    pub temp_files: usize,
}

impl RepairReport {
    /// Whether there was nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.counters_fixed.is_empty()
            && !self.index.as_ref().is_some_and(|i| i.changed)
            && self.temp_files == 0
    }
}
