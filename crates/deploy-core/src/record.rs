//! What registries hold about tasks and agents, as typed views of the Python server's format.

use std::fmt;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::extra::Extra;
use crate::id::{AgentId, AgentType, BatchId, HostName, SessionName, TaskId};
use crate::limits::Limits;

/// The parent of an agent: the orchestrator (depth 0) or another agent of the same task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Parent {
    /// The orchestrator, written `"orchestrator"` as by the Python server.
    Orchestrator,
    /// Another agent.
    Agent(AgentId),
}

impl Parent {
    /// The Python server's word for the orchestrator parent.
    pub const ORCHESTRATOR: &'static str = "orchestrator";

    /// Parses `"orchestrator"` or an agent id.
    pub fn parse(value: &str) -> Result<Self, crate::Error> {
        if value == Self::ORCHESTRATOR {
            Ok(Parent::Orchestrator)
        } else {
            AgentId::parse(value).map(Parent::Agent)
        }
    }

    /// The text written in registries.
    pub fn as_str(&self) -> &str {
        match self {
            Parent::Orchestrator => Self::ORCHESTRATOR,
            Parent::Agent(id) => id.as_str(),
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Parent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Parent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Parent::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An agent's status, with the Python server's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum AgentStatus {
    /// Deployed, not yet reporting.
    Running,
    /// Reporting progress.
    Working,
    /// Waiting on something.
    Blocked,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Error,
    /// Killed.
    Terminated,
    /// A word fleet does not know, kept as written.
    Other(String),
}

impl AgentStatus {
    /// Whether the agent counts against `max_concurrent`.
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            AgentStatus::Running | AgentStatus::Working | AgentStatus::Blocked
        )
    }

    /// The word written in registries.
    pub fn as_str(&self) -> &str {
        match self {
            AgentStatus::Running => "running",
            AgentStatus::Working => "working",
            AgentStatus::Blocked => "blocked",
            AgentStatus::Completed => "completed",
            AgentStatus::Error => "error",
            AgentStatus::Terminated => "terminated",
            AgentStatus::Other(s) => s,
        }
    }
}

impl From<String> for AgentStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "running" => AgentStatus::Running,
            "working" => AgentStatus::Working,
            "blocked" => AgentStatus::Blocked,
            "completed" => AgentStatus::Completed,
            "error" => AgentStatus::Error,
            "terminated" => AgentStatus::Terminated,
            _ => AgentStatus::Other(s),
        }
    }
}

impl From<AgentStatus> for String {
    fn from(s: AgentStatus) -> String {
        s.as_str().to_owned()
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ended, but its status could not be learned.
    Unknown,
}

impl ExitStatus {
    /// Whether it exited with status 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signal(sig) => match signal_name(*sig) {
                Some(name) => write!(f, "was killed by signal {sig} ({name})"),
                None => write!(f, "was killed by signal {sig}"),
            },
            ExitStatus::Unknown => write!(f, "exited with an unknown status"),
        }
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// The files the Python server tracked per agent (`tracked_files` in the task registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedFiles {
    /// The prompt, read by the agent.
    pub prompt_file: Utf8PathBuf,
    /// The agent's stdout and stderr.
    pub log_file: Utf8PathBuf,
    /// Progress reports, JSON lines.
    pub progress_file: Utf8PathBuf,
    /// Findings, JSON lines.
    pub findings_file: Utf8PathBuf,
    /// The deployment's own log.
    pub deploy_log: Utf8PathBuf,
}

/// What a deployment asks the registry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The task.
    pub task: TaskId,
    /// The new agent.
    pub agent: AgentId,
    /// Its type.
    pub agent_type: AgentType,
    /// Its parent.
    pub parent: Parent,
    /// Its tmux session.
    pub session: SessionName,
    /// The prompt as the registry keeps it (see [`prompt_preview`](crate::prompt_preview)).
    pub prompt_preview: String,
    /// Its files.
    pub tracked_files: TrackedFiles,
    /// When it started (naive local ISO-8601, as the Python server wrote).
    pub started_at: String,
    /// Where its session is placed ([`SessionBackend::placement`](crate::SessionBackend::placement)).
    pub placement: String,
    /// Whether another active agent of the same type is allowed.
    pub allow_duplicate: bool,
    /// Its checkout, recorded as [`CHECKOUT_FIELD`](crate::checkout::CHECKOUT_FIELD).
    pub checkout: Option<crate::checkout::Checkout>,
    /// How it was started — its command and the directory it runs in — recorded as
    /// [`LAUNCH_COMMAND_FIELD`] and [`LAUNCH_WORKDIR_FIELD`]: where and how it is continued.
    pub launch: Option<Launch>,
    /// The batch it is deployed with, recorded as [`BATCH_FIELD`]; `None` when deployed alone.
    pub batch: Option<BatchId>,
    /// The host it runs on, recorded as [`HOST_FIELD`]; `None` for a deployer without a host
    /// identity.
    pub host: Option<HostName>,
}

/// How an agent was started: what continues its work later starts the same way, there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    /// Its command, as its deployer gave it.
    pub command: Vec<String>,
    /// The directory it ran in (its checkout's, when it had one).
    pub workdir: Utf8PathBuf,
}

/// The registry field of an agent's [`Launch::command`].
pub const LAUNCH_COMMAND_FIELD: &str = "fleet_command";
/// The registry field of an agent's [`Launch::workdir`].
pub const LAUNCH_WORKDIR_FIELD: &str = "fleet_workdir";
/// The registry field of the batch an agent was deployed with ([`Registration::batch`]).
pub const BATCH_FIELD: &str = "fleet_batch";
/// The registry field of the host an agent runs on ([`Registration::host`]).
pub const HOST_FIELD: &str = "fleet_host";

impl AgentRecord {
    /// How the agent was started, when its entry records it.
    pub fn launch(&self) -> Option<Launch> {
        Some(Launch {
            command: self.extra.parse(LAUNCH_COMMAND_FIELD)?,
            workdir: self.extra.parse(LAUNCH_WORKDIR_FIELD)?,
        })
    }

    /// The batch it was deployed with, when it was deployed with one.
    pub fn batch(&self) -> Option<BatchId> {
        self.extra.parse(BATCH_FIELD)
    }

    /// The host it runs on, when its deployer had a host identity.
    pub fn host(&self) -> Option<HostName> {
        self.extra.parse(HOST_FIELD)
    }
}

/// An agent as a registry holds it. Serialized with the Python server's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    /// Its id.
    pub id: AgentId,
    /// Its type.
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    /// Its tmux session.
    #[serde(rename = "tmux_session")]
    pub session: SessionName,
    /// Its parent.
    pub parent: Parent,
    /// 1 for children of the orchestrator, parent's depth + 1 below.
    pub depth: u32,
    /// Its status.
    pub status: AgentStatus,
    /// When it started.
    pub started_at: String,
    /// Whether its deployment was confirmed Live: written just before the deployment's intent
    /// is deleted, so reconcile never rolls back an agent that went Live, whatever intent names
    /// it. (`fleet_confirmed`, a field the Python server ignores.)
    #[serde(
        rename = "fleet_confirmed",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub confirmed: bool,
    /// Where its session was placed ([`SessionBackend::placement`](crate::SessionBackend::placement);
    /// `fleet_placement`, a field the Python server ignores). `None`: another orchestrator — the
    /// Python server — started it, on the user's default tmux server, untagged (see
    /// [`Deployer::locate`](crate::Deployer::locate)).
    #[serde(
        rename = "fleet_placement",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub placement: Option<String>,
    /// Every field fleet does not interpret (`progress`, `last_update`, `prompt`,
    /// `tracked_files`, `completed_at`, ...), kept as the registry holds it: each as its JSON
    /// text, parsed when asked for.
    #[serde(flatten)]
    pub extra: Extra,
}

crate::deserialize_with_extra!(AgentRecord {
    id: "id",
    agent_type: "type",
    session: "tmux_session",
    parent: "parent",
    depth: "depth",
    status: "status",
    started_at: "started_at",
    confirmed: "fleet_confirmed" = false,
    placement: "fleet_placement" = None,
});

/// Parent to children of `agents` (each agent's parent and id, in registration order), with
/// `orchestrator` always present: the Python server's `agent_hierarchy`, as every registry
/// derives it.
pub fn hierarchy<'a>(
    agents: impl IntoIterator<Item = (&'a Parent, &'a AgentId)>,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(Parent::ORCHESTRATOR.to_owned(), Value::Array(Vec::new()));
    for (parent, id) in agents {
        if let Value::Array(children) = out
            .entry(parent.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            children.push(Value::String(id.to_string()));
        }
    }
    out
}

/// A task as a registry holds it: enough to check limits and to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// Its id.
    pub id: TaskId,
    /// What it is about.
    pub description: String,
    /// Its status word (`INITIALIZED`, ...).
    pub status: String,
    /// `P0` (highest) to `P4`.
    pub priority: String,
    /// When it was created (naive local ISO-8601).
    pub created_at: String,
    /// Its directory.
    pub workspace: String,
    /// Its limits.
    pub limits: Limits,
    /// Every agent ever registered in it, in registration order.
    pub agents: Vec<AgentRecord>,
    /// Every task field fleet does not interpret (`spiral_checks`, `task_context`, ...).
    pub extra: Map<String, Value>,
}

impl TaskSnapshot {
    /// The agent with this id.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentRecord> {
        self.agents.iter().find(|a| &a.id == id)
    }

    /// How many agents count against `max_concurrent`.
    pub fn active_count(&self) -> usize {
        self.agents.iter().filter(|a| a.status.is_active()).count()
    }

    /// How many agents completed.
    pub fn completed_count(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .count()
    }

    /// Parent to children, in registration order, as the Python server's `agent_hierarchy`:
    /// derived from the agents, so it cannot drift.
    pub fn hierarchy(&self) -> Map<String, Value> {
        hierarchy(self.agents.iter().map(|a| (&a.parent, &a.id)))
    }

    /// The one-line summary.
    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            id: self.id.clone(),
            description: self.description.clone(),
            status: self.status.clone(),
            priority: self.priority.clone(),
            created_at: self.created_at.clone(),
            active_count: self.active_count(),
            total_spawned: self.agents.len(),
        }
    }
}

/// A change of an agent's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The new status.
    pub status: AgentStatus,
    /// Progress in percent, if reported.
    pub progress: Option<u8>,
    /// Why (written as `termination_reason` for terminated agents).
    pub reason: Option<String>,
    /// How the agent's process ended, if known.
    pub exit: Option<ExitStatus>,
    /// When (naive local ISO-8601).
    pub at: String,
    /// More fields for the agent's entry, which deploy-core does not interpret (fleet: its
    /// activity summary), written with the status.
    pub fields: Map<String, Value>,
}

impl StatusUpdate {
    /// An update to `status` now, with nothing else.
    pub fn now(status: AgentStatus) -> Self {
        StatusUpdate {
            status,
            progress: None,
            reason: None,
            exit: None,
            at: crate::timestamp(),
            fields: Map::new(),
        }
    }
}

/// One line of `list_tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Its id.
    #[serde(rename = "task_id")]
    pub id: TaskId,
    /// What it is about.
    pub description: String,
    /// Its status word.
    pub status: String,
    /// `P0` (highest) to `P4`.
    pub priority: String,
    /// When it was created.
    pub created_at: String,
    /// Agents running, working or blocked.
    pub active_count: usize,
    /// Agents ever registered.
    pub total_spawned: usize,
}
