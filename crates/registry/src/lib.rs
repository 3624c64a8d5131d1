//! # registry
//!
//! deploy-core's [`Registry`] over the Python orchestrator's JSON files, so a workspace either
//! program created works with the other:
//!
//! ```text
//! <root>/<task_id>/AGENT_REGISTRY.json      the task registry: the source of truth
//! <root>/registry/GLOBAL_REGISTRY.json      the global index, rebuildable from the tasks
//! ```
//!
//! - **Locks**: flock on sidecar `*.lock` files that are never renamed or deleted, through
//!   [`deploy_core::lock`]; one order, task before global.
//! - **Writes**: temp file in the same directory, fsync, rename over, fsync the directory
//!   ([`atomic`]); a reader never sees a torn file.
//! - **Transactions**: [`JsonRegistry::register`](Registry::register) checks every limit against
//!   the agent list while holding both locks, then writes both files; counters are recomputed
//!   from the lists on every write, so they cannot drift.
//! - **Corruption**: a file that does not parse is never overwritten; the error names the file,
//!   line and column. Unknown fields are kept on every rewrite.

#![warn(missing_docs)]

pub mod atomic;
mod cache;
mod checked;
pub mod format;
mod repair;
mod roster;
pub mod shape;
mod splice;
mod transact;
pub mod transfer;

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::limits::{self, Candidate};
use deploy_core::lock::{DEFAULT_LOCK_TIMEOUT, Flock};
use deploy_core::{
    AgentId, AgentRecord, AgentStatus, Layout, Parent, Registration, Registry, RepairReport,
    StatusUpdate, TaskId, TaskRoster, TaskSnapshot, TaskSummary, timestamp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::atomic::{sweep_temp, write_atomic};
use crate::format::{AgentEntry, GlobalAgent, GlobalFile, TaskFile};

/// The registry crate's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A registry file does not parse (or is not a registry). It is left untouched.
    #[error("corrupt registry {path}: {message}")]
    Corrupt {
        /// The file.
        path: Utf8PathBuf,
        /// 1-based line of the error (0 if unknown).
        line: usize,
        /// 1-based column of the error (0 if unknown).
        column: usize,
        /// What is wrong, with the position.
        message: String,
    },
    /// A task with this id exists.
    #[error("task {0} already exists")]
    TaskExists(TaskId),
    /// Limits, unknown ids, lock timeouts, file errors.
    #[error(transparent)]
    Core(#[from] deploy_core::Error),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Core(e.into())
    }
}

impl From<Error> for deploy_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            other => deploy_core::Error::Registry(Box::new(other)),
        }
    }
}

pub use deploy_core::{IndexRepair, NewTask, TaskContext};

/// The JSON registry under one root.
#[derive(Debug, Clone)]
pub struct JsonRegistry {
    layout: Layout,
    lock_timeout: Duration,
    parsed: cache::Parsed,
}

/// The agent field that records a confirmed deployment ([`AgentRecord::confirmed`]).
pub const CONFIRMED: &str = "fleet_confirmed";
/// The agent entry's field naming where its session was placed
/// ([`AgentRecord::placement`](deploy_core::AgentRecord::placement)); entries without it were
/// written by the Python server.
pub const PLACEMENT: &str = "fleet_placement";

/// Reads and parses a JSON file; `None` if it does not exist.
fn read_json<T: DeserializeOwned>(path: &Utf8Path) -> Result<Option<T>, Error> {
    let bytes = match fs_err::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    parse(&bytes, path).map(Some)
}

/// Parses the bytes of the registry file `path`; a parse error names the file and position.
fn parse<T: DeserializeOwned>(bytes: &[u8], path: &Utf8Path) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(path, &e))
}

/// `path` does not parse, as `e` says.
fn corrupt(path: &Utf8Path, e: &serde_json::Error) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

fn to_json<T: Serialize>(value: &T, path: &Utf8Path) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message: format!("cannot serialize: {e}"),
    })
}

fn lock_path(file: &Utf8Path) -> Utf8PathBuf {
    let name = file.file_name().unwrap_or("registry");
    file.with_file_name(format!("{name}.lock"))
}

impl JsonRegistry {
    /// The registry under `layout`'s root, with the default lock timeout (30 s).
    pub fn new(layout: Layout) -> Self {
        JsonRegistry {
            layout,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            parsed: cache::Parsed::default(),
        }
    }

    /// Sets how long a lock is waited for before [`deploy_core::Error::LockTimeout`].
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn lock(&self, file: &Utf8Path) -> Result<Flock, Error> {
        Ok(Flock::open(&lock_path(file), self.lock_timeout)?)
    }

    /// Takes the global index's lock (creating its directory if needed); returns the lock and
    /// the index's path. (A temp file a dead writer left is harmless: the next write truncates
    /// it; `sweep_temps` removes it.)
    fn lock_global(&self) -> Result<(Flock, Utf8PathBuf), Error> {
        let path = self.layout.global_registry();
        deploy_core::private::create_dir_all(&self.layout.global_dir())?;
        let lock = self.lock(&path)?;
        Ok((lock, path))
    }

    /// [`lock_global`](Self::lock_global), then reads the index (a new one if there is none).
    /// A corrupt index says how it is repaired: it is derived data.
    #[allow(clippy::type_complexity)] // the lock, the path, the index and its bytes as read
    fn open_global(&self) -> Result<(Flock, Utf8PathBuf, GlobalFile, Option<Vec<u8>>), Error> {
        let (lock, path) = self.lock_global()?;
        let bytes = match fs_err::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let parsed = match &bytes {
            Some(b) => parse::<GlobalFile>(b, &path).map(Some),
            None => Ok(None),
        };
        let global = match parsed {
            Ok(g) => g.unwrap_or_else(shape::new_global),
            Err(Error::Corrupt {
                path,
                line,
                column,
                message,
            }) => {
                return Err(Error::Corrupt {
                    path,
                    line,
                    column,
                    message: format!(
                        "{message}; it is left as it is: `fleet reconcile` moves it aside and rebuilds the index from the task registries"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        Ok((lock, path, global, bytes))
    }

    /// Reads a task registry without locking (files are replaced atomically).
    pub fn read_task_file(&self, task: &TaskId) -> Result<TaskFile, Error> {
        Ok((*self.task_file(task)?).clone())
    }

    /// A task registry as parsed (once per version of the file: see `cache`).
    fn task_file(&self, task: &TaskId) -> Result<std::sync::Arc<TaskFile>, Error> {
        self.parsed
            .task(&self.layout.task_registry(task))?
            .ok_or_else(|| Error::Core(deploy_core::Error::UnknownTask(task.clone())))
    }

    /// Reads the global registry without locking; `None` if there is none yet.
    pub fn read_global_file(&self) -> Result<Option<GlobalFile>, Error> {
        read_json(&self.layout.global_registry())
    }

    /// Creates a task: its directory (with `logs/`, `progress/`, `findings/`), its registry, and
    /// its entry in the global index, with the fields the Python server writes.
    pub fn create_task(&self, new: &NewTask) -> Result<TaskFile, Error> {
        let id = TaskId::generate()?;
        self.create_task_with_id(id, new)
    }

    /// [`create_task`](Self::create_task) with a chosen id.
    ///
    /// The index is read first, so that a corrupt one refuses the task before anything of it
    /// exists; should writing the index fail, the task is removed again. (It takes the index's
    /// lock before the new task's — the other order than `transact` — which cannot deadlock:
    /// nobody else takes the lock of a task that does not exist yet.)
    pub fn create_task_with_id(&self, id: TaskId, new: &NewTask) -> Result<TaskFile, Error> {
        new.validate()?;
        let dir = self.layout.task_dir(&id);
        let task_path = self.layout.task_registry(&id);
        if task_path.exists() {
            return Err(Error::TaskExists(id));
        }
        let (_global_lock, global_path, mut global, _) = self.open_global()?;
        let new_dir = !dir.exists();
        for sub in ["logs", "progress", "findings"] {
            deploy_core::private::create_dir_all(&dir.join(sub))?;
        }
        let _task_lock = self.lock(&task_path)?;
        if task_path.exists() {
            return Err(Error::TaskExists(id));
        }
        let now = timestamp();
        let task_file = shape::new_task_file(&self.layout, &id, new, &now);
        let undo = |e: Error| {
            let gone = if new_dir {
                fs_err::remove_dir_all(&dir)
            } else {
                fs_err::remove_file(&task_path)
            };
            if let Err(cleanup) = gone {
                tracing::error!(task = %id, error = %cleanup, "cannot remove the task whose creation failed");
            }
            e
        };
        write_atomic(&task_path, &to_json(&task_file, &task_path)?).map_err(undo)?;
        let entry = shape::task_summary(new, &now);
        global.tasks.insert(id.to_string(), entry);
        global.active_tasks += 1;
        global.recount();
        write_atomic(&global_path, &to_json(&global, &global_path)?).map_err(undo)?;
        Ok(task_file)
    }

    /// Every task id with a registry under the root, sorted.
    pub fn task_ids(&self) -> Result<Vec<TaskId>, Error> {
        let entries = match fs_err::read_dir(self.layout.root()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Ok(id) = TaskId::parse(&name)
                && self.layout.task_registry(&id).exists()
            {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Changes an agent's fields in its task registry and the global index under the locks:
    /// `task_fields` and `global_fields` are set on the agent's entries (kept in order).
    pub fn update_agent_fields(
        &self,
        task: &TaskId,
        agent: &AgentId,
        status: Option<AgentStatus>,
        task_fields: Map<String, Value>,
        global_fields: Map<String, Value>,
    ) -> Result<(), Error> {
        self.change(
            task,
            &[splice::Change {
                agent: agent.clone(),
                status,
                task_fields,
                index_fields: global_fields,
            }],
        )
    }
}

/// The one task of `registrations` (`None` for none); registering agents of several tasks
/// together is refused, changing nothing.
pub fn one_task(registrations: &[Registration]) -> Result<Option<&TaskId>, deploy_core::Error> {
    let Some(first) = registrations.first() else {
        return Ok(None);
    };
    match registrations.iter().find(|r| r.task != first.task) {
        Some(other) => Err(deploy_core::Error::InvalidRequest(format!(
            "agents of tasks {} and {} cannot be registered together",
            first.task, other.task
        ))),
        None => Ok(Some(&first.task)),
    }
}

impl Registry for JsonRegistry {
    fn create_task(&self, new: &NewTask) -> Result<TaskSnapshot, deploy_core::Error> {
        Ok(JsonRegistry::create_task(self, new)?.into_snapshot())
    }

    fn register_all(
        &self,
        registrations: &[Registration],
    ) -> Result<Vec<AgentRecord>, deploy_core::Error> {
        let Some(task_id) = one_task(registrations)? else {
            return Ok(Vec::new());
        };
        Ok(self.transact(task_id, |task, global| {
            let mut records = Vec::with_capacity(registrations.len());
            for (i, r) in registrations.iter().enumerate() {
                if task.agent(&r.agent).is_some() || global.agents.contains_key(r.agent.as_str()) {
                    return Err(deploy_core::Error::DuplicateAgent {
                        task: r.task.clone(),
                        agent: r.agent.clone(),
                    }
                    .into());
                }
                let candidate = Candidate::of(r);
                let view = task.limit_view(candidate);
                if i == 0 && registrations.len() > 1 {
                    limits::check_room(&view, registrations.len())?;
                }
                let depth = limits::check_view(&view, candidate)?;
                let entry = shape::new_entry(r, depth);
                records.push(entry.record());
                task.agents.push(entry);
                let children = task
                    .agent_hierarchy
                    .entry(r.parent.as_str().to_owned())
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = children {
                    list.push(json!(r.agent));
                }
                let index = shape::index_entry(r);
                global.agents.insert(
                    r.agent.to_string(),
                    serde_json::to_value(index)
                        .map_err(|e| deploy_core::Error::Registry(Box::new(e)))?,
                );
            }
            Ok((records, true))
        })?)
    }

    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Result<(), deploy_core::Error> {
        let changes: Vec<splice::Change> = agents
            .iter()
            .map(|agent| {
                let mut task_fields = Map::new();
                task_fields.insert(CONFIRMED.into(), json!(true));
                splice::Change {
                    agent: agent.clone(),
                    status: None,
                    task_fields,
                    index_fields: Map::new(),
                }
            })
            .collect();
        Ok(self.change(task, &changes)?)
    }

    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Result<bool, deploy_core::Error> {
        Ok(self.transact(task, |t, g| {
            let before = t.agents.len();
            t.agents.retain(|a| &a.id != agent);
            let in_task = t.agents.len() != before;
            let mut emptied = Vec::new();
            for (parent, children) in t.agent_hierarchy.iter_mut() {
                if let Value::Array(list) = children {
                    list.retain(|c| c.as_str() != Some(agent.as_str()));
                    if list.is_empty() && parent != Parent::ORCHESTRATOR {
                        emptied.push(parent.clone());
                    }
                }
            }
            if in_task {
                // Registration created a parent's list; undoing it removes the list again.
                for parent in emptied {
                    t.agent_hierarchy.shift_remove(&parent);
                }
            }
            let in_index = g.agents.shift_remove(agent.as_str()).is_some();
            let changed = in_task || in_index;
            Ok((changed, changed))
        })?)
    }

    fn update_status(
        &self,
        task: &TaskId,
        agent: &AgentId,
        update: &StatusUpdate,
    ) -> Result<(), deploy_core::Error> {
        self.update_statuses(task, &[(agent.clone(), update.clone())])
    }

    fn update_statuses(
        &self,
        task: &TaskId,
        updates: &[(AgentId, StatusUpdate)],
    ) -> Result<(), deploy_core::Error> {
        if updates.is_empty() {
            return Ok(());
        }
        let changes: Vec<splice::Change> = updates
            .iter()
            .map(|(agent, update)| {
                let (task_fields, index_fields) = shape::status_fields(update);
                splice::Change {
                    agent: agent.clone(),
                    status: Some(update.status.clone()),
                    task_fields,
                    index_fields,
                }
            })
            .collect();
        Ok(self.change(task, &changes)?)
    }

    fn annotate(
        &self,
        task: &TaskId,
        agent: &AgentId,
        fields: &Map<String, Value>,
    ) -> Result<(), deploy_core::Error> {
        Ok(self.update_agent_fields(task, agent, None, fields.clone(), Map::new())?)
    }

    fn read_task(&self, task: &TaskId) -> Result<TaskSnapshot, deploy_core::Error> {
        Ok(self
            .parsed
            .snapshot(&self.layout.task_registry(task))?
            .ok_or_else(|| Error::Core(deploy_core::Error::UnknownTask(task.clone())))?)
    }

    /// Counted on the task file as parsed (once per version of the file: see `cache`), with no
    /// record built from it.
    fn precheck(&self, task: &TaskId, candidate: Candidate<'_>) -> Result<u32, deploy_core::Error> {
        let file = self.task_file(task)?;
        limits::check_view(&file.limit_view(candidate), candidate)
    }

    /// Ended agents are skipped, not built: one light pass over the file (the `roster` module).
    fn roster(&self, task: &TaskId) -> Result<std::sync::Arc<TaskRoster>, deploy_core::Error> {
        Ok(self
            .parsed
            .roster(&self.layout.task_registry(task))?
            .ok_or_else(|| Error::Core(deploy_core::Error::UnknownTask(task.clone())))?)
    }

    /// Every task's roster, and with it its brief (what `repair` reads when the files are not
    /// the ones it last verified), into the cache.
    fn prefetch(&self) {
        for task in self.task_ids().unwrap_or_default() {
            let _ = self.parsed.roster(&self.layout.task_registry(&task));
        }
    }

    /// The task directories holding a registry: nothing is parsed.
    fn task_ids(&self) -> Result<Vec<TaskId>, deploy_core::Error> {
        Ok(JsonRegistry::task_ids(self)?)
    }

    fn list_tasks(&self) -> Result<Vec<TaskSummary>, deploy_core::Error> {
        let mut out = Vec::new();
        for id in self.task_ids()? {
            out.push(self.task_file(&id)?.summary());
        }
        Ok(out)
    }

    /// Counters first (task by task), then — for an unscoped repair only, so that one task can
    /// be repaired while another's registry cannot be read — the global index, then temp files.
    fn repair(
        &self,
        task: Option<&TaskId>,
        dry_run: bool,
    ) -> Result<RepairReport, deploy_core::Error> {
        let counters_fixed = self.recount_tasks(task, dry_run)?;
        let index = match task {
            None => Some(self.rebuild_global_with(dry_run)?),
            Some(_) => None,
        };
        deploy_core::failpoint("reconcile::after_rebuild");
        let temp_files = self.sweep_temps_with(dry_run)?;
        Ok(RepairReport {
            counters_fixed,
            index,
            temp_files,
        })
    }
}
