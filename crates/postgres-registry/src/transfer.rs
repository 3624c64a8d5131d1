//! `fleet migrate` into and out of the database: a whole registry ([`Whole`]) imported in one
//! transaction ([`PostgresRegistry::import`]) — so a killed import leaves nothing — and the
//! database read whole ([`PostgresRegistry::whole`]) in one snapshot.

use deploy_core::TaskId;
use postgres::Transaction;
use registry::format::{GlobalFile, TaskFile};
use registry::shape;
use registry::transfer::{Transferred, Whole};
use serde_json::{Map, Value};

use crate::store::Lock;
use crate::{Error, PostgresRegistry};

impl PostgresRegistry {
    /// Imports `whole` — every task, agent and unknown field — in one transaction. What the
    /// index keeps besides its tasks and agents is taken from `whole` when the database has no
    /// index yet. If the database holds every task of `whole` exactly as `whole` has it (an
    /// import committed by a migration killed before it switched the workspace), nothing is
    /// written and the import is done; if it holds any of its tasks or agents otherwise, it is
    /// refused with nothing written.
    pub fn import(&self, whole: &Whole) -> Result<Transferred, Error> {
        let tasks: Vec<&str> = whole.tasks.iter().map(|t| t.task_id.as_str()).collect();
        let agents: Vec<&str> = whole
            .tasks
            .iter()
            .flat_map(|t| t.agents.iter().map(|a| a.id.as_str()))
            .collect();
        self.transact(true, |tx| {
            // Imports (from any number of hosts) one at a time, so the checks below hold.
            tx.execute("LOCK TABLE fleet_tasks IN EXCLUSIVE MODE", &[])
                .map_err(|e| self.err(e))?;
            let present: i64 = tx
                .query_one(
                    "SELECT count(*) FROM fleet_tasks WHERE id = ANY($1)",
                    &[&tasks],
                )
                .and_then(|r| r.try_get(0))
                .map_err(|e| self.err(e))?;
            let all_present = usize::try_from(present).is_ok_and(|n| n == tasks.len());
            if !tasks.is_empty() && all_present && self.holds(tx, whole)? {
                return Ok(());
            }
            for (table, ids, what) in [
                ("fleet_tasks", &tasks, "task"),
                ("fleet_agents", &agents, "agent"),
            ] {
                let sql = format!("SELECT id FROM {table} WHERE id = ANY($1) ORDER BY id LIMIT 1");
                if let Some(row) = tx.query_opt(&sql, &[ids]).map_err(|e| self.err(e))? {
                    let id: String = row.try_get(0).map_err(|e| self.err(e))?;
                    return Err(Error::Exists {
                        target: self.target.clone(),
                        what: format!("{what} {id}"),
                    });
                }
            }
            let mut meta = whole.global.clone();
            meta.tasks = Map::new();
            meta.agents = Map::new();
            self.ensure_global(tx, &meta)?;
            for t in &whole.tasks {
                self.insert_task(tx, t, &whole.summary_of(t))?;
                for a in &t.agents {
                    self.insert_agent(tx, &t.task_id, a, &whole.indexed_of(t, a))?;
                }
                deploy_core::failpoint("migrate::after_task");
            }
            Ok(())
        })?;
        self.analyze()?;
        Ok(Transferred {
            tasks: tasks.len(),
            agents: agents.len(),
            to: self.target.clone(),
            kept: None,
        })
    }

    /// Brings the planner's statistics and the visibility map up to the rows an import wrote
    /// (`VACUUM ANALYZE`, which cannot run inside a transaction), rather than waiting for
    /// autovacuum: a limit check's counts then read the indexes alone (on one machine, the
    /// precheck of a 10,000-agent task fell from 8.4 to 2.4 ms).
    fn analyze(&self) -> Result<(), Error> {
        let mut slot = self.slot();
        let client = self.client(&mut slot)?;
        client
            .batch_execute("VACUUM ANALYZE fleet_tasks, fleet_agents")
            .map_err(|e| self.err(e))
    }

    /// The database whole, as the JSON registry would hold it, read in one snapshot.
    pub fn whole(&self) -> Result<Whole, Error> {
        self.transact(false, |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(|e| self.err(e))?;
            let mut global = match tx
                .query_opt("SELECT value FROM fleet_meta WHERE key = 'global'", &[])
                .map_err(|e| self.err(e))?
            {
                Some(row) => {
                    let text: &str = row.try_get(0).map_err(|e| self.err(e))?;
                    serde_json::from_str::<GlobalFile>(text)
                        .map_err(|e| self.stored("the index's row", &e))?
                }
                None => shape::new_global(),
            };
            let rows = tx
                .query(
                    "SELECT id, status, summary FROM fleet_tasks ORDER BY id",
                    &[],
                )
                .map_err(|e| self.err(e))?;
            let mut tasks = Vec::with_capacity(rows.len());
            let mut active_tasks = 0;
            for row in rows {
                let id: &str = row.try_get(0).map_err(|e| self.err(e))?;
                let status: &str = row.try_get(1).map_err(|e| self.err(e))?;
                let summary: &str = row.try_get(2).map_err(|e| self.err(e))?;
                let id = TaskId::parse(id).map_err(|e| self.stored("a task's id", &e))?;
                let summary: Value = serde_json::from_str(summary)
                    .map_err(|e| self.stored("a task's summary", &e))?;
                global.tasks.insert(id.to_string(), summary);
                global.agents.extend(self.indexed(tx, &id)?);
                active_tasks += u64::from(shape::task_is_active(status));
                tasks.push(self.task_file_in(tx, &id)?);
            }
            global.active_tasks = active_tasks;
            global.recount();
            Ok(Whole { tasks, global })
        })
    }

    /// Whether the database, which holds every task of `whole`, holds each exactly as `whole`
    /// has it once its counters and hierarchy are derived as the database derives them.
    fn holds(&self, tx: &mut Transaction<'_>, whole: &Whole) -> Result<bool, Error> {
        for t in &whole.tasks {
            let derived = shape::whole_task(shape::stored_task(t), t.agents.clone());
            if self.task_file_in(tx, &t.task_id)? != derived {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Task `task` as the JSON registry would hold it (its `AGENT_REGISTRY.json`).
    pub fn task_file(&self, task: &TaskId) -> Result<TaskFile, Error> {
        self.transact(false, |tx| self.task_file_in(tx, task))
    }

    fn task_file_in(&self, tx: &mut Transaction<'_>, task: &TaskId) -> Result<TaskFile, Error> {
        let stored = self.stored_task(tx, task, Lock::Read)?;
        Ok(shape::whole_task(stored, self.entries(tx, task)?))
    }

    /// The index entries of `task`'s agents, in registration order.
    fn indexed(
        &self,
        tx: &mut Transaction<'_>,
        task: &TaskId,
    ) -> Result<Map<String, Value>, Error> {
        let rows = tx
            .query(
                "SELECT id, indexed FROM fleet_agents WHERE task_id = $1 ORDER BY seq",
                &[&task.as_str()],
            )
            .map_err(|e| self.err(e))?;
        let mut out = Map::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(|e| self.err(e))?;
            let text: &str = row.try_get(1).map_err(|e| self.err(e))?;
            let entry = serde_json::from_str(text)
                .map_err(|e| self.stored("an agent's index entry", &e))?;
            out.insert(id, entry);
        }
        Ok(out)
    }
}
