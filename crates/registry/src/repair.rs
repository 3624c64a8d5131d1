//! Repairs of what crashes leave in the JSON files themselves: drifted counters, a stale or
//! corrupt global index, temp files of dead writers. `Registry::repair` runs them in order.

use super::*;
use crate::checked::{self, Verified};

impl JsonRegistry {
    /// Rebuilds the global index from the task registries (the source of truth), keeping what
    /// the index knows that the tasks do not (task summaries, extra fields), under the global
    /// lock. A corrupt index is moved aside, never overwritten in place.
    pub fn rebuild_global(&self) -> Result<IndexRepair, Error> {
        self.rebuild_global_with(false)
    }

    /// [`rebuild_global`](Self::rebuild_global), or with `dry_run` only the report of what it
    /// would change.
    pub fn rebuild_global_with(&self, dry_run: bool) -> Result<IndexRepair, Error> {
        // Only the index's lock is held, and the tasks are read one at a time, so the number of
        // open files does not grow with the tasks. That is enough: every change to a task's
        // agents is made under the index's lock too (`transact`), so none is under way while
        // it is held, and each task file is replaced atomically.
        let (_global_lock, global_path) = self.lock_global()?;
        let ids = self.task_ids()?;
        // Stamped before anything is read: what is kept as verified is never newer than what
        // was read (a file that changed since is read again next time).
        let now = checked::stamps(&global_path, &self.task_paths(&ids));
        if let Some(now) = &now
            && let Some(verified) = Verified::load(&global_path)
            && verified.matches(now)
        {
            return Ok(IndexRepair {
                tasks: ids.len(),
                agents: verified.agents,
                ..IndexRepair::default()
            });
        }
        if let Some((agents, counters_right)) = self.index_is_current(&ids, &global_path) {
            if let Some(now) = now
                && counters_right
                && !dry_run
            {
                now.save(&global_path, agents);
            }
            return Ok(IndexRepair {
                tasks: ids.len(),
                agents,
                ..IndexRepair::default()
            });
        }
        let mut tasks = Vec::with_capacity(ids.len());
        for id in &ids {
            tasks.push(self.task_file(id)?);
        }
        let mut report = IndexRepair {
            tasks: tasks.len(),
            ..IndexRepair::default()
        };
        let old = match read_json::<GlobalFile>(&global_path) {
            Ok(g) => g,
            Err(Error::Corrupt { message, .. }) => {
                let aside = global_path.with_file_name(format!(
                    "GLOBAL_REGISTRY.json.corrupt-{}",
                    timestamp().replace([':', '.'], "-")
                ));
                if !dry_run {
                    tracing::warn!(path = %global_path, %message, moved_to = %aside, "moving corrupt global index aside");
                    fs_err::rename(&global_path, &aside)?;
                }
                report.moved_corrupt = Some(aside);
                None
            }
            Err(e) => return Err(e),
        };
        let old_bytes = old.as_ref().map(|g| to_json(g, &global_path)).transpose()?;
        let mut global = old.unwrap_or_else(shape::new_global);
        // What the tasks say, keyed by agent id; and their agents in task order.
        let mut in_tasks: Vec<String> = Vec::new();
        let mut owner: std::collections::HashMap<String, (&TaskFile, &AgentEntry)> =
            std::collections::HashMap::new();
        for t in &tasks {
            for a in &t.agents {
                owner.insert(a.id.to_string(), (t, a));
                in_tasks.push(a.id.to_string());
            }
        }
        // Keep the index's order: its surviving entries first, then what it lacked.
        let old_agents = std::mem::take(&mut global.agents);
        let mut order: Vec<String> = old_agents
            .keys()
            .filter(|k| owner.contains_key(*k))
            .cloned()
            .collect();
        order.extend(in_tasks.into_iter().filter(|k| !old_agents.contains_key(k)));
        for key in order {
            let Some((t, a)) = owner.get(&key) else {
                continue;
            };
            let status = (a.status != AgentStatus::Running).then(|| a.status.clone());
            let existing = old_agents
                .get(&key)
                .cloned()
                .and_then(|v| serde_json::from_value::<GlobalAgent>(v).ok())
                .filter(|g| g.task_id == t.task_id);
            let entry = match existing {
                Some(mut g) => {
                    if g.status.as_ref().unwrap_or(&AgentStatus::Running) != &a.status {
                        g.status = status;
                    }
                    g
                }
                None => {
                    report.added.push(a.id.clone());
                    GlobalAgent {
                        task_id: t.task_id.clone(),
                        agent_type: a.agent_type.clone(),
                        parent: a.parent.clone(),
                        started_at: a.started_at.clone(),
                        tmux_session: a.tmux_session.clone(),
                        status,
                        extra: Map::new(),
                    }
                }
            };
            global.agents.insert(
                key,
                serde_json::to_value(entry)
                    .map_err(|e| deploy_core::Error::Registry(Box::new(e)))?,
            );
        }
        let mut task_map = Map::new();
        let mut task_order: Vec<&str> = global
            .tasks
            .keys()
            .map(String::as_str)
            .filter(|k| tasks.iter().any(|t| t.task_id.as_str() == *k))
            .collect();
        task_order.extend(
            tasks
                .iter()
                .map(|t| t.task_id.as_str())
                .filter(|k| !global.tasks.contains_key(*k)),
        );
        for key in task_order {
            let Some(t) = tasks.iter().find(|t| t.task_id.as_str() == key) else {
                continue;
            };
            let entry = global.tasks.get(key).cloned().unwrap_or_else(|| {
                json!({
                    "description": t.task_description,
                    "created_at": t.created_at,
                    "status": t.status,
                    "has_enhanced_context": t.extra.contains_key("task_context"),
                })
            });
            task_map.insert(key.to_owned(), entry);
        }
        let old_agents: Map<String, Value> = old_agents
            .into_iter()
            .filter(|(k, _)| !owner.contains_key(k))
            .collect();
        report.removed = old_agents.keys().cloned().collect();
        report.agents = global.agents.len();
        global.tasks = task_map;
        global.active_tasks = tasks
            .iter()
            .filter(|t| shape::task_is_active(&t.status))
            .count() as u64;
        global.recount();
        let new_bytes = to_json(&global, &global_path)?;
        report.changed = old_bytes.as_deref() != Some(new_bytes.as_slice());
        if report.changed && !dry_run {
            write_atomic(&global_path, &new_bytes)?;
        }
        Ok(report)
    }

    /// Removes temp files left by dead writers next to every registry file. Returns how many.
    pub fn sweep_temps(&self) -> Result<usize, Error> {
        self.sweep_temps_with(false)
    }

    /// [`sweep_temps`](Self::sweep_temps), or with `dry_run` only the count.
    pub fn sweep_temps_with(&self, dry_run: bool) -> Result<usize, Error> {
        let mut paths: Vec<Utf8PathBuf> = self
            .task_ids()?
            .iter()
            .map(|id| self.layout.task_registry(id))
            .collect();
        let global = self.layout.global_registry();
        if global.parent().is_some_and(Utf8Path::exists) {
            paths.push(global);
        }
        let mut swept = 0;
        for path in paths {
            let _lock = self.lock(&path)?;
            swept += if dry_run {
                atomic::stale_temps(&path)?.len()
            } else {
                sweep_temp(&path)?
            };
        }
        Ok(swept)
    }

    /// Rewrites every task registry (or just `only`) whose counters differ from its agent
    /// list, and returns those tasks; with `dry_run`, only returns them.
    pub fn recount_tasks(
        &self,
        only: Option<&TaskId>,
        dry_run: bool,
    ) -> Result<Vec<TaskId>, Error> {
        let ids = match only {
            Some(t) => vec![t.clone()],
            None => self.task_ids()?,
        };
        let verified = Verified::load(&self.layout.global_registry());
        let mut fixed = Vec::new();
        for id in ids {
            // Counters live in the task file alone: only its lock is needed, so a corrupt
            // global index does not stand in the way.
            let path = self.layout.task_registry(&id);
            if !path.exists() {
                return Err(deploy_core::Error::UnknownTask(id).into());
            }
            let _lock = self.lock(&path)?;
            // The common case, counters right, is told by the file's stamp when it is the one
            // last verified, else by a light read; the full one fixes them.
            if verified
                .as_ref()
                .zip(crate::cache::stamp_of(&path))
                .is_some_and(|(v, stamp)| v.holds(&id, stamp))
                || self.brief(&id).is_some_and(|b| b.counted() == b.stored())
            {
                continue;
            }
            let mut task = (*self.task_file(&id)?).clone();
            let stored = (task.total_spawned, task.active_count, task.completed_count);
            task.recount();
            if stored != (task.total_spawned, task.active_count, task.completed_count) {
                if !dry_run {
                    write_atomic(&path, &to_json(&task, &path)?)?;
                }
                fixed.push(id);
            }
        }
        Ok(fixed)
    }
}

/// The index as far as its consistency with the tasks goes; every other field is skipped
/// unread, and an entry missing a field the index has is not this shape (the full rebuild then
/// replaces it).
#[derive(serde::Deserialize)]
struct LightIndex<'a> {
    total_tasks: u64,
    active_tasks: u64,
    total_agents_spawned: u64,
    active_agents: u64,
    #[serde(borrow)]
    tasks: std::collections::HashMap<std::borrow::Cow<'a, str>, serde::de::IgnoredAny>,
    #[serde(borrow)]
    agents: std::collections::HashMap<std::borrow::Cow<'a, str>, LightAgent<'a>>,
}

#[derive(serde::Deserialize)]
struct LightAgent<'a> {
    #[serde(borrow)]
    task_id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    status: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "type")]
    _agent_type: serde::de::IgnoredAny,
    #[serde(rename = "parent")]
    _parent: serde::de::IgnoredAny,
    #[serde(rename = "started_at")]
    _started_at: serde::de::IgnoredAny,
    #[serde(rename = "tmux_session")]
    _tmux_session: serde::de::IgnoredAny,
}

/// `Some(agents indexed)` when the index at `bytes` says what a rebuild from `tasks` would:
/// the same agents, each in its task with its status, the same tasks, the same counters.
fn index_is_current(bytes: &[u8], tasks: &[std::sync::Arc<TaskBrief>]) -> Option<usize> {
    let index: LightIndex<'_> = serde_json::from_slice(bytes).ok()?;
    let agents: usize = tasks.iter().map(|t| t.agents.len()).sum();
    if index.agents.len() != agents
        || index.tasks.len() != tasks.len()
        || index.total_tasks != tasks.len() as u64
        || index.total_agents_spawned != agents as u64
        || index.active_tasks
            != tasks
                .iter()
                .filter(|t| shape::task_is_active(&t.status))
                .count() as u64
    {
        return None;
    }
    let mut active = 0u64;
    for t in tasks {
        if !index.tasks.contains_key(t.task_id.as_str()) {
            return None;
        }
        for a in &t.agents {
            let entry = index.agents.get(a.id.as_str())?;
            let status = entry
                .status
                .as_deref()
                .unwrap_or(AgentStatus::Running.as_str());
            if entry.task_id != t.task_id.as_str() || status != a.status.as_str() {
                return None;
            }
            active += u64::from(a.status.is_active());
        }
    }
    (index.active_agents == active).then_some(agents)
}

/// A task registry as far as counters and the index go: every other field skipped unread.
#[derive(Debug, PartialEq, serde::Deserialize)]
pub(crate) struct TaskBrief {
    task_id: TaskId,
    status: String,
    total_spawned: u64,
    active_count: u64,
    completed_count: u64,
    agents: Vec<AgentBrief>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct AgentBrief {
    id: AgentId,
    status: AgentStatus,
}

impl TaskBrief {
    /// The brief of the task `roster`, whose status and stored counters are these.
    pub(crate) fn new(roster: &TaskRoster, status: String, stored: (u64, u64, u64)) -> Self {
        TaskBrief {
            task_id: roster.id.clone(),
            status,
            total_spawned: stored.0,
            active_count: stored.1,
            completed_count: stored.2,
            agents: roster
                .agents
                .iter()
                .map(|a| AgentBrief {
                    id: a.id.clone(),
                    status: a.status.clone(),
                })
                .collect(),
        }
    }

    fn stored(&self) -> (u64, u64, u64) {
        (self.total_spawned, self.active_count, self.completed_count)
    }

    fn counted(&self) -> (u64, u64, u64) {
        (
            self.agents.len() as u64,
            self.agents.iter().filter(|a| a.status.is_active()).count() as u64,
            self.agents
                .iter()
                .filter(|a| a.status == AgentStatus::Completed)
                .count() as u64,
        )
    }
}

impl JsonRegistry {
    /// `Some((agents indexed, every task's counters right))` when the index at `path` is current
    /// against the tasks `ids`: the common case, nothing to repair, told from light reads of the
    /// tasks (from the cache when `prefetch` read the same contents) and the index, no entry
    /// built, nothing serialized. `None` when it is not, or cannot be told so.
    fn index_is_current(&self, ids: &[TaskId], path: &Utf8Path) -> Option<(usize, bool)> {
        let briefs: Vec<std::sync::Arc<TaskBrief>> =
            ids.iter().map(|id| self.brief(id)).collect::<Option<_>>()?;
        let agents = index_is_current(&fs_err::read(path).ok()?, &briefs)?;
        Some((agents, briefs.iter().all(|b| b.counted() == b.stored())))
    }

    /// Each task's id with the path of its registry.
    fn task_paths(&self, ids: &[TaskId]) -> Vec<(TaskId, Utf8PathBuf)> {
        ids.iter()
            .map(|id| (id.clone(), self.layout.task_registry(id)))
            .collect()
    }

    /// `task`'s brief, or `None` when it cannot be read so (the full read reports why).
    fn brief(&self, task: &TaskId) -> Option<std::sync::Arc<TaskBrief>> {
        self.parsed
            .brief(&self.layout.task_registry(task))
            .ok()
            .flatten()
    }
}
