//! The Python server's registry files as typed views. Only the fields fleet interprets are
//! typed; every other field is kept, in order, in `extra` and written back unchanged.

use deploy_core::checkout::{CHECKOUT_FIELD, Checkout};
use deploy_core::limits::{Candidate, Counted, LimitView};
use deploy_core::{
    AgentId, AgentRecord, AgentStatus, AgentType, Extra, Limits, Parent, RosterEntry, SessionName,
    TaskId, TaskRoster, TaskSnapshot, TaskSummary,
};
use serde::Serialize;
use serde_json::{Map, Value};

use deploy_core::deserialize_with_extra;

/// `<root>/<task_id>/AGENT_REGISTRY.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFile {
    /// The task.
    pub task_id: TaskId,
    /// What it is about.
    pub task_description: String,
    /// When it was created.
    pub created_at: String,
    /// `<root>/<task_id>`.
    pub workspace: String,
    /// `<root>`.
    pub workspace_base: String,
    /// The client's directory, or null.
    pub client_cwd: Value,
    /// `INITIALIZED`, ...
    pub status: String,
    /// `P0`..`P4`.
    pub priority: String,
    /// Every agent ever registered.
    pub agents: Vec<AgentEntry>,
    /// Parent id to child ids; `orchestrator` for the top.
    pub agent_hierarchy: Map<String, Value>,
    /// Limit on agents ever registered.
    pub max_agents: u32,
    /// Limit on depth.
    pub max_depth: u32,
    /// Limit on active agents.
    pub max_concurrent: u32,
    /// Derived: `agents.len()`.
    pub total_spawned: u64,
    /// Derived: agents running, working or blocked.
    pub active_count: u64,
    /// Derived: agents completed.
    pub completed_count: u64,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One element of `agents` in a task registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentEntry {
    /// The agent.
    pub id: AgentId,
    /// Its type.
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    /// Its session.
    pub tmux_session: SessionName,
    /// Its parent.
    pub parent: Parent,
    /// Its depth.
    pub depth: u32,
    /// Its status.
    pub status: AgentStatus,
    /// When it started.
    pub started_at: String,
    /// Every other field (`progress`, `last_update`, `prompt`, `tracked_files`, ...), each kept
    /// as its JSON text.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `<root>/registry/GLOBAL_REGISTRY.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalFile {
    /// When it was created.
    pub created_at: String,
    /// Derived: `tasks.len()`.
    pub total_tasks: u64,
    /// Tasks not finished (kept as counted at creation).
    pub active_tasks: u64,
    /// Derived: `agents.len()`.
    pub total_agents_spawned: u64,
    /// Derived: agents whose status is absent (running) or active.
    pub active_agents: u64,
    /// Kept as written.
    pub max_concurrent_agents: Value,
    /// Task id to summary.
    pub tasks: Map<String, Value>,
    /// Agent id to index entry.
    pub agents: Map<String, Value>,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One value of `agents` in the global registry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalAgent {
    /// Its task.
    pub task_id: TaskId,
    /// Its type.
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    /// Its parent.
    pub parent: Parent,
    /// When it started.
    pub started_at: String,
    /// Its session.
    pub tmux_session: SessionName,
    /// Its status; absent while running, as the Python server wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    /// Every other field, kept as written.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

deserialize_with_extra!(TaskFile {
    task_id: "task_id",
    task_description: "task_description",
    created_at: "created_at",
    workspace: "workspace",
    workspace_base: "workspace_base",
    client_cwd: "client_cwd",
    status: "status",
    priority: "priority",
    agents: "agents",
    agent_hierarchy: "agent_hierarchy",
    max_agents: "max_agents",
    max_depth: "max_depth",
    max_concurrent: "max_concurrent",
    total_spawned: "total_spawned",
    active_count: "active_count",
    completed_count: "completed_count",
});

deserialize_with_extra!(AgentEntry {
    id: "id",
    agent_type: "type",
    tmux_session: "tmux_session",
    parent: "parent",
    depth: "depth",
    status: "status",
    started_at: "started_at",
});

deserialize_with_extra!(GlobalFile {
    created_at: "created_at",
    total_tasks: "total_tasks",
    active_tasks: "active_tasks",
    total_agents_spawned: "total_agents_spawned",
    active_agents: "active_agents",
    max_concurrent_agents: "max_concurrent_agents",
    tasks: "tasks",
    agents: "agents",
});

deserialize_with_extra!(GlobalAgent {
    task_id: "task_id",
    agent_type: "type",
    parent: "parent",
    started_at: "started_at",
    tmux_session: "tmux_session",
    status: "status" = None,
});

impl TaskFile {
    /// Recomputes the counters from the agent list.
    pub fn recount(&mut self) {
        self.total_spawned = self.agents.len() as u64;
        self.active_count = self.agents.iter().filter(|a| a.status.is_active()).count() as u64;
        self.completed_count = self
            .agents
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .count() as u64;
    }

    /// The agent with this id.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentEntry> {
        self.agents.iter().find(|a| &a.id == id)
    }

    /// The agent with this id, mutably.
    pub fn agent_mut(&mut self, id: &AgentId) -> Option<&mut AgentEntry> {
        self.agents.iter_mut().find(|a| &a.id == id)
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_agents: self.max_agents,
            max_concurrent: self.max_concurrent,
            max_depth: self.max_depth,
        }
    }

    /// The task as a [`TaskSnapshot`], taking its fields rather than copying them.
    pub fn into_snapshot(self) -> TaskSnapshot {
        let limits = self.limits();
        TaskSnapshot {
            id: self.task_id,
            description: self.task_description,
            status: self.status,
            priority: self.priority,
            created_at: self.created_at,
            workspace: self.workspace,
            limits,
            agents: self
                .agents
                .into_iter()
                .map(AgentEntry::into_record)
                .collect(),
            extra: self.extra,
        }
    }

    /// What a limit check of `candidate` reads of the task ([`LimitView`]), counted over the
    /// entries without copying any: registering into a task of 10,000 agents checks its
    /// limits on every write.
    pub fn limit_view(&self, candidate: Candidate<'_>) -> LimitView<'_> {
        let agents = self.agents.iter().map(|a| Counted {
            id: &a.id,
            agent_type: &a.agent_type,
            status: &a.status,
            depth: a.depth,
        });
        LimitView::count(&self.task_id, self.limits(), agents, candidate)
    }

    /// The roster ([`TaskRoster`]): only the active agents' entries copied whole.
    pub fn roster(&self) -> TaskRoster {
        TaskRoster {
            id: self.task_id.clone(),
            agents: self
                .agents
                .iter()
                .map(|a| RosterEntry {
                    id: a.id.clone(),
                    status: a.status.clone(),
                    checkout: a.extra.parse::<Checkout>(CHECKOUT_FIELD),
                    host: a.extra.parse(deploy_core::HOST_FIELD),
                    record: a.status.is_active().then(|| a.record()),
                })
                .collect(),
        }
    }

    /// The typed view, copied.
    pub fn snapshot(&self) -> TaskSnapshot {
        self.clone().into_snapshot()
    }

    /// The one-line summary.
    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            id: self.task_id.clone(),
            description: self.task_description.clone(),
            status: self.status.clone(),
            priority: self.priority.clone(),
            created_at: self.created_at.clone(),
            active_count: self.active_count as usize,
            total_spawned: self.total_spawned as usize,
        }
    }
}

impl AgentEntry {
    /// The typed record, taking the entry's fields.
    pub fn into_record(self) -> AgentRecord {
        let mut extra = self.extra;
        let confirmed = extra.take::<bool>(crate::CONFIRMED);
        let placement = extra.take::<String>(crate::PLACEMENT);
        AgentRecord {
            id: self.id,
            agent_type: self.agent_type,
            session: self.tmux_session,
            parent: self.parent,
            depth: self.depth,
            status: self.status,
            started_at: self.started_at,
            confirmed: confirmed.unwrap_or(false),
            placement,
            extra,
        }
    }

    /// The typed record, copied.
    pub fn record(&self) -> AgentRecord {
        self.clone().into_record()
    }
}

impl GlobalFile {
    /// Recomputes the counters from the task and agent maps.
    pub fn recount(&mut self) {
        self.total_tasks = self.tasks.len() as u64;
        self.total_agents_spawned = self.agents.len() as u64;
        self.active_agents = self
            .agents
            .values()
            .filter(|a| match a.get("status").and_then(Value::as_str) {
                None => true,
                Some(s) => AgentStatus::from(s.to_owned()).is_active(),
            })
            .count() as u64;
    }
}
