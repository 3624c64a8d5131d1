//! The [`Registry`] operations, each one transaction over the rows (`store.rs`).

use deploy_core::limits::{self, Candidate};
use deploy_core::{
    AgentId, AgentRecord, NewTask, Registration, Registry, RepairReport, StatusUpdate, TaskId,
    TaskSnapshot, TaskSummary,
};
use registry::format::{AgentEntry, TaskFile};
use registry::{CONFIRMED, shape};
use serde_json::{Map, Value, json};

use crate::store::Lock;
use crate::{Error, PostgresRegistry};

type Core<T> = Result<T, deploy_core::Error>;

impl Registry for PostgresRegistry {
    fn create_task(&self, new: &NewTask) -> Core<TaskSnapshot> {
        Ok(self.create(new)?.into_snapshot())
    }

    /// Under the task row's lock: every member checked as the members before it left the task,
    /// and inserted, or none.
    fn register_all(&self, registrations: &[Registration]) -> Core<Vec<AgentRecord>> {
        let Some(task) = registry::one_task(registrations)? else {
            return Ok(Vec::new());
        };
        Ok(self.transact(true, |tx| {
            let file = self.stored_task(tx, task, Lock::Task)?;
            let mut records = Vec::with_capacity(registrations.len());
            for (i, r) in registrations.iter().enumerate() {
                let taken: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM fleet_agents WHERE id = $1)",
                        &[&r.agent.as_str()],
                    )
                    .and_then(|row| row.try_get(0))
                    .map_err(|e| self.err(e))?;
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
                self.insert_agent(tx, task, &entry, &indexed)?;
                records.push(entry.into_record());
            }
            Ok(records)
        })?)
    }

    fn precheck(&self, task: &TaskId, candidate: Candidate<'_>) -> Core<u32> {
        Ok(self.transact(false, |tx| {
            let file = self.stored_task(tx, task, Lock::Read)?;
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
            self.stored_task(tx, task, Lock::Read)?;
            let removed = tx
                .execute(
                    "DELETE FROM fleet_agents WHERE id = $1 AND task_id = $2",
                    &[&agent.as_str(), &task.as_str()],
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
        Ok(self.transact(false, |tx| {
            let mut snapshot = self.stored_task(tx, task, Lock::Read)?.into_snapshot();
            snapshot.agents = self
                .entries(tx, task)?
                .into_iter()
                .map(AgentEntry::into_record)
                .collect();
            Ok(snapshot)
        })?)
    }

    fn list_tasks(&self) -> Core<Vec<TaskSummary>> {
        Ok(self.transact(false, |tx| {
            let rows = tx
                .query(
                    "SELECT t.file,
                        (SELECT COUNT(*) FROM fleet_agents a WHERE a.task_id = t.id),
                        (SELECT COUNT(*) FROM fleet_agents a WHERE a.task_id = t.id AND a.active)
                     FROM fleet_tasks t ORDER BY t.id",
                    &[],
                )
                .map_err(|e| self.err(e))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let file: &str = row.try_get(0).map_err(|e| self.err(e))?;
                let total: i64 = row.try_get(1).map_err(|e| self.err(e))?;
                let active: i64 = row.try_get(2).map_err(|e| self.err(e))?;
                let mut file: TaskFile =
                    serde_json::from_str(file).map_err(|e| self.stored("a task's file", &e))?;
                file.total_spawned = u64::try_from(total).unwrap_or(0);
                file.active_count = u64::try_from(active).unwrap_or(0);
                out.push(file.summary());
            }
            Ok(out)
        })?)
    }

    fn task_ids(&self) -> Core<Vec<TaskId>> {
        Ok(self.transact(false, |tx| {
            let rows = tx
                .query("SELECT id FROM fleet_tasks ORDER BY id", &[])
                .map_err(|e| self.err(e))?;
            rows.iter()
                .map(|row| {
                    let id: &str = row.try_get(0).map_err(|e| self.err(e))?;
                    TaskId::parse(id).map_err(|e| self.stored("a task's id", &e))
                })
                .collect::<Result<Vec<_>, Error>>()
        })?)
    }

    /// Counters and the index are derived, so nothing drifts and nothing is rewritten; the
    /// report says what the index holds.
    fn repair(&self, task: Option<&TaskId>, _dry_run: bool) -> Core<RepairReport> {
        let report = self.transact(false, |tx| {
            if let Some(t) = task {
                self.stored_task(tx, t, Lock::Read)?;
                return Ok(RepairReport::default());
            }
            let row = tx
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM fleet_tasks), (SELECT COUNT(*) FROM fleet_agents)",
                    &[],
                )
                .map_err(|e| self.err(e))?;
            let tasks: i64 = row.try_get(0).map_err(|e| self.err(e))?;
            let agents: i64 = row.try_get(1).map_err(|e| self.err(e))?;
            Ok(RepairReport {
                index: Some(deploy_core::IndexRepair {
                    tasks: usize::try_from(tasks).unwrap_or(0),
                    agents: usize::try_from(agents).unwrap_or(0),
                    ..deploy_core::IndexRepair::default()
                }),
                ..RepairReport::default()
            })
        })?;
        deploy_core::failpoint("reconcile::after_rebuild");
        Ok(report)
    }
}
