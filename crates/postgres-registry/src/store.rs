//! Rows: how tasks and agents are read from and written to their rows, inside the transaction
//! `PostgresRegistry::transact` runs.

use deploy_core::limits::{Candidate, LimitView};
use deploy_core::{AgentId, NewTask, Parent, TaskId, timestamp};
use postgres::Transaction;
use registry::format::{AgentEntry, GlobalFile, TaskFile};
use registry::shape;
use serde_json::{Map, Value};

use crate::{Error, PostgresRegistry};

/// How a transaction reads its task's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// A plain read.
    Read,
    /// `FOR UPDATE`: every write of the task waits for this transaction's end.
    Task,
}

impl PostgresRegistry {
    /// The task's stored file (no agents), or `UnknownTask`; its row locked with `Lock::Task`.
    pub(crate) fn stored_task(
        &self,
        tx: &mut Transaction<'_>,
        task: &TaskId,
        lock: Lock,
    ) -> Result<TaskFile, Error> {
        let sql = match lock {
            Lock::Read => "SELECT file FROM fleet_tasks WHERE id = $1",
            Lock::Task => "SELECT file FROM fleet_tasks WHERE id = $1 FOR UPDATE",
        };
        let row = tx
            .query_opt(sql, &[&task.as_str()])
            .map_err(|e| self.err(e))?;
        let row = row.ok_or_else(|| deploy_core::Error::UnknownTask(task.clone()))?;
        let file: String = row.try_get(0).map_err(|e| self.err(e))?;
        serde_json::from_str(&file).map_err(|e| self.stored("a task's file", &e))
    }

    /// A stored value that does not parse.
    pub(crate) fn stored(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::Corrupt {
            target: self.target.clone(),
            message: format!("{what} does not parse: {e}"),
        }
    }

    /// What a limit check of `candidate` reads of `task`, counted by the database.
    pub(crate) fn limit_view<'t>(
        &self,
        tx: &mut Transaction<'_>,
        task: &'t TaskId,
        file: &TaskFile,
        candidate: Candidate<'_>,
    ) -> Result<LimitView<'t>, Error> {
        let row = tx
            .query_one(
                "SELECT
                    (SELECT COUNT(*) FROM fleet_agents WHERE task_id = $1),
                    (SELECT COUNT(*) FROM fleet_agents WHERE task_id = $1 AND active),
                    (SELECT id FROM fleet_agents WHERE task_id = $1 AND active
                        AND agent_type = $2 ORDER BY seq LIMIT 1)",
                &[&task.as_str(), &candidate.agent_type.as_str()],
            )
            .map_err(|e| self.err(e))?;
        let count = |i: usize| -> Result<usize, Error> {
            let n: i64 = row.try_get(i).map_err(|e| self.err(e))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        };
        let (total, active) = (count(0)?, count(1)?);
        let active_of_type: Option<String> = row.try_get(2).map_err(|e| self.err(e))?;
        let active_of_type = active_of_type
            .map(|id| AgentId::parse(&id))
            .transpose()
            .map_err(|e| self.stored("an agent's id", &e))?;
        let parent_depth = match candidate.parent {
            Parent::Orchestrator => None,
            Parent::Agent(p) => tx
                .query_opt(
                    "SELECT depth FROM fleet_agents WHERE id = $1 AND task_id = $2",
                    &[&p.as_str(), &task.as_str()],
                )
                .map_err(|e| self.err(e))?
                .map(|r| r.try_get::<_, i32>(0))
                .transpose()
                .map_err(|e| self.err(e))?
                .map(|d| u32::try_from(d).unwrap_or(0)),
        };
        Ok(LimitView {
            task,
            limits: file.limits(),
            total,
            active,
            active_of_type,
            parent_depth,
        })
    }

    /// Every agent entry of `task`, in registration order.
    pub(crate) fn entries(
        &self,
        tx: &mut Transaction<'_>,
        task: &TaskId,
    ) -> Result<Vec<AgentEntry>, Error> {
        let rows = tx
            .query(
                "SELECT entry FROM fleet_agents WHERE task_id = $1 ORDER BY seq",
                &[&task.as_str()],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                let text: &str = row.try_get(0).map_err(|e| self.err(e))?;
                serde_json::from_str(text).map_err(|e| self.stored("an agent's entry", &e))
            })
            .collect()
    }

    /// Applies `change` to `agent`'s stored entry and index entry, its row locked.
    pub(crate) fn change_agent(
        &self,
        tx: &mut Transaction<'_>,
        task: &TaskId,
        agent: &AgentId,
        change: impl FnOnce(&mut AgentEntry, &mut Map<String, Value>),
    ) -> Result<(), Error> {
        let row = tx
            .query_opt(
                "SELECT entry, indexed FROM fleet_agents WHERE id = $1 AND task_id = $2
                 FOR UPDATE",
                &[&agent.as_str(), &task.as_str()],
            )
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            self.stored_task(tx, task, Lock::Read)?; // an unknown task is named as such
            return Err(deploy_core::Error::UnknownAgent {
                task: task.clone(),
                agent: agent.clone(),
            }
            .into());
        };
        let entry: &str = row.try_get(0).map_err(|e| self.err(e))?;
        let indexed: &str = row.try_get(1).map_err(|e| self.err(e))?;
        let mut entry: AgentEntry =
            serde_json::from_str(entry).map_err(|e| self.stored("an agent's entry", &e))?;
        let mut indexed: Map<String, Value> =
            serde_json::from_str(indexed).map_err(|e| self.stored("an agent's index entry", &e))?;
        change(&mut entry, &mut indexed);
        tx.execute(
            "UPDATE fleet_agents SET status = $1, active = $2, entry = $3, indexed = $4
             WHERE id = $5",
            &[
                &entry.status.as_str(),
                &entry.status.is_active(),
                &to_text(&entry),
                &to_text(&indexed),
                &agent.as_str(),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Creates a task: its directories (`logs/`, `progress/`, `findings/`) and its row.
    pub fn create(&self, new: &NewTask) -> Result<TaskFile, Error> {
        new.validate()?;
        let id = TaskId::generate()?;
        let dir = self.layout.task_dir(&id);
        let new_dir = !dir.exists();
        for sub in ["logs", "progress", "findings"] {
            deploy_core::private::create_dir_all(&dir.join(sub))?;
        }
        let now = timestamp();
        let file = shape::new_task_file(&self.layout, &id, new, &now);
        let summary = shape::task_summary(new, &now);
        let inserted = self.transact(true, |tx| {
            let mut g = shape::new_global();
            g.created_at = timestamp();
            self.ensure_global(tx, &g)?;
            self.insert_task(tx, &file, &summary)
        });
        if let Err(e) = inserted {
            if new_dir {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
        Ok(file)
    }

    /// The `global` row — the index without its tasks, agents and counters — as `global`, unless
    /// the database has one.
    pub(crate) fn ensure_global(
        &self,
        tx: &mut Transaction<'_>,
        global: &GlobalFile,
    ) -> Result<(), Error> {
        tx.execute(
            "INSERT INTO fleet_meta (key, value) VALUES ('global', $1)
             ON CONFLICT (key) DO NOTHING",
            &[&to_text(global)],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Inserts task `file` (its agents are rows of their own) with its index entry `summary`.
    pub(crate) fn insert_task(
        &self,
        tx: &mut Transaction<'_>,
        file: &TaskFile,
        summary: &Value,
    ) -> Result<(), Error> {
        tx.execute(
            "INSERT INTO fleet_tasks (id, status, file, summary) VALUES ($1, $2, $3, $4)",
            &[
                &file.task_id.as_str(),
                &file.status,
                &to_text(&shape::stored_task(file)),
                &to_text(summary),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Inserts `entry` of `task` with its index entry.
    pub(crate) fn insert_agent(
        &self,
        tx: &mut Transaction<'_>,
        task: &TaskId,
        entry: &AgentEntry,
        indexed: &Value,
    ) -> Result<(), Error> {
        let depth = i32::try_from(entry.depth).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO fleet_agents
                (id, task_id, agent_type, parent, depth, status, active, entry, indexed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &entry.id.as_str(),
                &task.as_str(),
                &entry.agent_type.as_str(),
                &entry.parent.as_str(),
                &depth,
                &entry.status.as_str(),
                &entry.status.is_active(),
                &to_text(entry),
                &to_text(indexed),
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// `value` as stored. Serializing these types (strings, numbers, maps with string keys) cannot
/// fail.
pub(crate) fn to_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}
