//! Where files live under the fleet root, in the Python server's layout.

use camino::{Utf8Path, Utf8PathBuf};

use crate::id::{AgentId, TaskId};
use crate::record::TrackedFiles;

/// The file layout under a root directory (default `./.agent-workspace`).
///
/// ```text
/// <root>/registry/GLOBAL_REGISTRY.json
/// <root>/<task_id>/AGENT_REGISTRY.json
/// <root>/<task_id>/agent_prompt_<agent_id>.txt
/// <root>/<task_id>/logs/<agent_id>_stream.jsonl
/// <root>/<task_id>/progress/<agent_id>_progress.jsonl
/// <root>/<task_id>/findings/<agent_id>_findings.jsonl
/// <root>/<task_id>/worktrees/<agent_id>/      (with --worktree)
/// <root>/.fleet/intents/<agent_id>.json
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: Utf8PathBuf,
}

impl Layout {
    /// A layout under `root`. Give an absolute path: registries record absolute file paths.
    pub fn new(root: impl Into<Utf8PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The root.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// `<root>/<task_id>`.
    pub fn task_dir(&self, task: &TaskId) -> Utf8PathBuf {
        self.root.join(task.as_str())
    }

    /// `<root>/<task_id>/AGENT_REGISTRY.json`.
    pub fn task_registry(&self, task: &TaskId) -> Utf8PathBuf {
        self.task_dir(task).join("AGENT_REGISTRY.json")
    }

    /// `<root>/registry`.
    pub fn global_dir(&self) -> Utf8PathBuf {
        self.root.join("registry")
    }

    /// `<root>/registry/GLOBAL_REGISTRY.json`.
    pub fn global_registry(&self) -> Utf8PathBuf {
        self.global_dir().join("GLOBAL_REGISTRY.json")
    }

    /// `<root>/.fleet/intents`.
    pub fn intents_dir(&self) -> Utf8PathBuf {
        self.root.join(".fleet").join("intents")
    }

    /// `<root>/<task_id>/worktrees`.
    pub fn worktrees_dir(&self, task: &TaskId) -> Utf8PathBuf {
        self.task_dir(task).join("worktrees")
    }

    /// `<root>/<task_id>/worktrees/<agent_id>`: the agent's checkout.
    pub fn worktree(&self, task: &TaskId, agent: &AgentId) -> Utf8PathBuf {
        self.worktrees_dir(task).join(agent.as_str())
    }

    /// `<root>/<task_id>/archive`.
    pub fn archive_dir(&self, task: &TaskId) -> Utf8PathBuf {
        self.task_dir(task).join("archive")
    }

    /// Where one of an agent's files goes when it is archived: `<root>/<task_id>/archive/<its
    /// name>`.
    pub fn archived(&self, task: &TaskId, file: &Utf8Path) -> Utf8PathBuf {
        self.archive_dir(task)
            .join(file.file_name().unwrap_or("unnamed"))
    }

    /// An agent's log where it is now: in `logs/`, or in `archive/` once the agent ended.
    pub fn log_now(&self, task: &TaskId, agent: &AgentId) -> Utf8PathBuf {
        let log = self.tracked_files(task, agent).log_file;
        let archived = self.archived(task, &log);
        if !log.exists() && archived.exists() {
            archived
        } else {
            log
        }
    }

    /// The activity cache of a task's running agents: `<root>/.fleet/activity/<task_id>.json`.
    pub fn activity_cache(&self, task: &TaskId) -> Utf8PathBuf {
        self.root
            .join(".fleet")
            .join("activity")
            .join(format!("{task}.json"))
    }

    /// The workspace's Postgres database (0600: the URL may hold a password), when its registry
    /// is Postgres: `<root>/.fleet/database-url`. The `fleet mcp` of the agents fleet deploys
    /// reads the URL from it, never from a command line.
    pub fn database_url_file(&self) -> Utf8PathBuf {
        self.root.join(".fleet").join("database-url")
    }

    /// The workspace's other hosts (`fleet host add`): `<root>/.fleet/hosts.json`.
    pub fn hosts_file(&self) -> Utf8PathBuf {
        self.root.join(".fleet").join("hosts.json")
    }

    /// The directory of ssh's master connections to those hosts (0700): `<root>/.fleet/ssh`.
    pub fn ssh_dir(&self) -> Utf8PathBuf {
        self.root.join(".fleet").join("ssh")
    }

    /// The agent whose prompt file is named `name` (`agent_prompt_<id>.txt`), if it is one.
    pub fn prompt_owner(name: &str) -> Option<AgentId> {
        let id = name.strip_prefix("agent_prompt_")?.strip_suffix(".txt")?;
        AgentId::parse(id).ok()
    }

    /// The files of one agent.
    pub fn tracked_files(&self, task: &TaskId, agent: &AgentId) -> TrackedFiles {
        let dir = self.task_dir(task);
        TrackedFiles {
            prompt_file: dir.join(format!("agent_prompt_{agent}.txt")),
            log_file: dir.join("logs").join(format!("{agent}_stream.jsonl")),
            progress_file: dir.join("progress").join(format!("{agent}_progress.jsonl")),
            findings_file: dir.join("findings").join(format!("{agent}_findings.jsonl")),
            deploy_log: dir.join("logs").join(format!("deploy_{agent}.json")),
        }
    }
}
