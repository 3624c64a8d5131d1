//! The [`Registry`] operations, each one transaction over the rows (`store.rs`).

use std::sync::Arc;

use deploy_core::limits::{self, Candidate};
use deploy_core::{
    AgentId, AgentRecord, NewTask, Registration, Registry, RepairReport, StatusUpdate, TaskId,
    TaskRoster, TaskSnapshot, TaskSummary,
};
use registry::format::{AgentEntry, TaskFile};
use registry::{CONFIRMED, shape};
use serde_json::{Map, Value, json};

use crate::store::insert_agent;
use crate::{Error, SqliteRegistry};

type Core<T> = Result<T, deploy_core::Error>;

impl Registry for SqliteRegistry {
    fn create_task(&self, new: &NewTask) -> Core<TaskSnapshot> {
        Ok(self.create(new)?.into_snapshot())
    }

    fn register_all(&self, registrations: &[Registration]) -> Core<Vec<AgentRecord>> {
        let Some(task) = registry::one_task(registrations)? else {
            return Ok(Vec::new());
        };
        Ok(self.transact(true, |tx| {
            let file = self.stored_task(tx, task)?;
            let q = |e| self.err(e);
            let mut records = Vec::with_capacity(registrations.len());
            for (i, r) in registrations.iter().enumerate() {
                let taken: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM agents WHERE id = ?1)",
                        [r.agent.as_str()],
                        |row| row.get(0),
                    )
                    .map_err(q)?;
                if taken {
                    return Err(deploy_core::Error::DuplicateAgent {
                        task: r.task.clone(),
                        agent: r.agent.clone(),
                    }
                    .into());
                }
                let candidate = Candidate::of(r);
                let view = self.limit_view(tx, task, &file, candidate)?;
                if i == 0 && registrations.len() > 1 {
                    limits::check_room(&view, registrations.len())?;
                }
                let depth = limits::check_view(&view, candidate)?;
                let entry = shape::new_entry(r, depth);
                let indexed = serde_json::to_value(shape::index_entry(r)).unwrap_or(Value::Null);
                insert_agent(tx, task, &entry, &indexed).map_err(q)?;
                records.push(entry.into_record());
            }
            Ok(records)
        })?)
    }

    /// Two counts and two indexed lookups in one read transaction: no agent is read.
    fn precheck(&self, task: &TaskId, candidate: Candidate<'_>) -> Core<u32> {
        Ok(self.transact(false, |tx| {
            let file = self.stored_task(tx, task)?;
            let view = self.limit_view(tx, task, &file, candidate)?;
            Ok(limits::check_view(&view, candidate)?)
        })?)
    }

    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Core<()> {
        Ok(self.transact(true, |tx| {
            for agent in agents {
                self.change_agent(tx, task, agent, |entry, _| {
                    entry.extra.insert(CONFIRMED, &json!(true));
                })?;
            }
            Ok(())
        })?)
    }

    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Core<bool> {
        Ok(self.transact(true, |tx| {
            self.stored_task(tx, task)?;
            let removed = tx
                .execute(
                    "DELETE FROM agents WHERE id = ?1 AND task_id = ?2",
                    [agent.as_str(), task.as_str()],
                )
                .map_err(|e| self.err(e))?;
            Ok(removed > 0)
        })?)
    }

    fn update_status(&self, task: &TaskId, agent: &AgentId, update: &StatusUpdate) -> Core<()> {
        self.update_statuses(task, &[(agent.clone(), update.clone())])
    }

    fn update_statuses(&self, task: &TaskId, updates: &[(AgentId, StatusUpdate)]) -> Core<()> {
        if updates.is_empty() {
            return Ok(());
        }
        Ok(self.transact(true, |tx| {
            for (agent, update) in updates {
                self.change_agent(tx, task, agent, |entry, indexed| {
                    shape::apply_status(entry, indexed, update);
                })?;
            }
            Ok(())
        })?)
    }

    fn annotate(&self, task: &TaskId, agent: &AgentId, fields: &Map<String, Value>) -> Core<()> {
        Ok(self.transact(true, |tx| {
            self.change_agent(tx, task, agent, |entry, _| {
                entry.extra.extend(fields);
            })
        })?)
    }

    fn read_task(&self, task: &TaskId) -> Core<TaskSnapshot> {
        // A snapshot has no counters or hierarchy to derive: the file and its agents only.
        Ok(self.transact(false, |tx| {
            let mut snapshot = self.stored_task(tx, task)?.into_snapshot();
            snapshot.agents = self.entries(tx, task, AgentEntry::into_record)?;
            Ok(snapshot)
        })?)
    }

    /// The ended agents' ids, statuses and checkouts are columns; only the active agents'
    /// entries are parsed (`roster.rs`, which keeps what it read while nothing changed).
    fn roster(&self, task: &TaskId) -> Core<Arc<TaskRoster>> {
        Ok(self.read_roster(task)?)
    }

    /// Every task's roster, read while tmux lists sessions, for reconcile's reads after.
    fn prefetch(&self) {
        for task in self.task_ids().unwrap_or_default() {
            let _ = self.read_roster(&task);
        }
    }

    fn list_tasks(&self) -> Core<Vec<TaskSummary>> {
        Ok(self.transact(false, |tx| {
            let q = |e| self.err(e);
            let mut stmt = tx
                .prepare_cached(
                    "SELECT t.file,
                        (SELECT COUNT(*) FROM agents a WHERE a.task_id = t.id),
                        (SELECT COUNT(*) FROM agents a WHERE a.task_id = t.id AND a.active = 1)
                     FROM tasks t ORDER BY t.id",
                )
                .map_err(q)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(q)?;
            let mut out = Vec::new();
            for row in rows {
                let (file, total, active) = row.map_err(q)?;
                let mut file: TaskFile = serde_json::from_str(&file)
                    .map_err(|e| Error::stored(&self.path, "a task's file", &e))?;
                file.total_spawned = u64::try_from(total).unwrap_or(0);
                file.active_count = u64::try_from(active).unwrap_or(0);
                out.push(file.summary());
            }
            Ok(out)
        })?)
    }

    fn task_ids(&self) -> Core<Vec<TaskId>> {
        Ok(self.transact(false, |tx| {
            let q = |e| self.err(e);
            let mut stmt = tx
                .prepare_cached("SELECT id FROM tasks ORDER BY id")
                .map_err(q)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(q)?;
            let mut out = Vec::new();
            for row in rows {
                let id = row.map_err(q)?;
                out.push(TaskId::parse(&id).map_err(|e| Error::Corrupt {
                    path: self.path.clone(),
                    message: format!("a task's row: {e}"),
                })?);
            }
            Ok(out)
        })?)
    }

    /// Counters and the index are derived, so nothing drifts and nothing is rewritten; the
    /// report says what the index holds, and counts the temp databases dead processes left
    /// (removed unless `dry_run`). A damaged database fails here, naming the file.
    fn repair(&self, task: Option<&TaskId>, dry_run: bool) -> Core<RepairReport> {
        let mut report = self.transact(false, |tx| {
            let q = |e| self.err(e);
            if let Some(t) = task {
                self.stored_task(tx, t)?;
                return Ok(RepairReport::default());
            }
            let (tasks, agents): (i64, i64) = tx
                .query_row(
                    "SELECT (SELECT COUNT(*) FROM tasks), (SELECT COUNT(*) FROM agents)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(q)?;
            Ok(RepairReport {
                index: Some(deploy_core::IndexRepair {
                    tasks: usize::try_from(tasks).unwrap_or(0),
                    agents: usize::try_from(agents).unwrap_or(0),
                    ..deploy_core::IndexRepair::default()
                }),
                ..RepairReport::default()
            })
        })?;
        if task.is_none() {
            // A directory listing: outside the transaction, which it has nothing to do with.
            report.temp_files = crate::schema::sweep_dead_temps(&self.path, dry_run);
        }
        deploy_core::failpoint("reconcile::after_rebuild");
        Ok(report)
    }
}
