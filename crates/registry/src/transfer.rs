//! A whole registry in the Python server's shape, as `fleet migrate` carries it between
//! implementations: read from the JSON files ([`JsonRegistry::whole`]) or a database, written
//! back as the JSON files ([`write_json`]) or into a database.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::Layout;
use serde::Serialize;
use serde_json::{Value, json};

use crate::format::{AgentEntry, GlobalFile, TaskFile};
use crate::{Error, JsonRegistry, shape};

/// Every task registry of a workspace and its global index.
#[derive(Debug, Clone)]
pub struct Whole {
    /// Every task, sorted by id, with its agents.
    pub tasks: Vec<TaskFile>,
    /// The global index (with what it keeps besides the tasks and agents).
    pub global: GlobalFile,
}

impl Whole {
    /// How many agents it holds.
    pub fn agents(&self) -> usize {
        self.tasks.iter().map(|t| t.agents.len()).sum()
    }

    /// `task`'s entry in the index, or the one the Python server would write for it.
    pub fn summary_of(&self, task: &TaskFile) -> Value {
        self.global
            .tasks
            .get(task.task_id.as_str())
            .cloned()
            .unwrap_or_else(|| {
                json!({
                    "description": task.task_description,
                    "created_at": task.created_at,
                    "status": task.status,
                })
            })
    }

    /// `agent`'s entry in the index, or the one the Python server would write for it.
    pub fn indexed_of(&self, task: &TaskFile, agent: &AgentEntry) -> Value {
        self.global
            .agents
            .get(agent.id.as_str())
            .cloned()
            .unwrap_or_else(|| {
                json!({
                    "task_id": task.task_id,
                    "type": agent.agent_type,
                    "parent": agent.parent,
                    "started_at": agent.started_at,
                    "tmux_session": agent.tmux_session,
                })
            })
    }
}

/// What a migration carried over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transferred {
    /// Tasks.
    pub tasks: usize,
    /// Agents.
    pub agents: usize,
    /// Where it wrote: a database (its path or `postgres://host:port/dbname`), or the global
    /// index.
    pub to: String,
    /// Where the source database is kept after the move, when it is kept (an exported SQLite
    /// file moved aside, a Postgres database left as it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

impl JsonRegistry {
    /// The workspace's JSON files, whole: every task registry and the index (a new index when
    /// there is none). Only reads.
    pub fn whole(&self) -> Result<Whole, Error> {
        let ids = deploy_core::Registry::task_ids(self)?;
        let mut tasks = Vec::with_capacity(ids.len());
        for id in &ids {
            tasks.push(self.read_task_file(id)?);
        }
        let global = self.read_global_file()?.unwrap_or_else(shape::new_global);
        Ok(Whole { tasks, global })
    }
}

/// Writes `whole` as the Python server's files of `layout` — each task registry, then the
/// index — each replaced atomically. Returns the index's path. Passes the failpoint
/// `migrate::after_task` after each task.
pub fn write_json(layout: &Layout, whole: &Whole) -> Result<Utf8PathBuf, Error> {
    for file in &whole.tasks {
        let id = &file.task_id;
        deploy_core::private::create_dir_all(&layout.task_dir(id))?;
        write(&layout.task_registry(id), file)?;
        deploy_core::failpoint("migrate::after_task");
    }
    let index = layout.global_registry();
    deploy_core::private::create_dir_all(&layout.global_dir())?;
    write(&index, &whole.global)?;
    Ok(index)
}

/// `value` written to `path` as the Python server writes it, atomically.
fn write<T: Serialize>(path: &Utf8Path, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message: format!("cannot serialize: {e}"),
    })?;
    crate::atomic::write_atomic(path, &bytes)?;
    Ok(())
}
