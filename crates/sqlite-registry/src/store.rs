//! Rows: the transaction every operation runs in, and how tasks and agents are read from and
//! written to their rows.

use deploy_core::limits::{Candidate, LimitView};
use deploy_core::{AgentId, NewTask, Parent, TaskId, timestamp};
use registry::format::{AgentEntry, TaskFile};
use registry::shape;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};

use crate::{Error, SqliteRegistry};

impl SqliteRegistry {
    /// Runs `f` in one transaction — `BEGIN IMMEDIATE` when it writes — committed if it returns
    /// `Ok`, rolled back otherwise.
    pub(crate) fn transact<T>(
        &self,
        write: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut conn = self.conn();
        let behavior = if write {
            TransactionBehavior::Immediate
        } else {
            TransactionBehavior::Deferred
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| self.err(e))?;
        let out = f(&tx)?;
        if write {
            deploy_core::failpoint("sqlite::before_commit");
        }
        tx.commit().map_err(|e| self.err(e))?;
        if write {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            deploy_core::failpoint("sqlite::after_commit");
        }
        Ok(out)
    }

    /// The task's stored file (no agents), or `UnknownTask`.
    pub(crate) fn stored_task(
        &self,
        tx: &Transaction<'_>,
        task: &TaskId,
    ) -> Result<TaskFile, Error> {
        let file: Option<String> = tx
            .query_row(
                "SELECT file FROM tasks WHERE id = ?1",
                [task.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let file = file.ok_or_else(|| deploy_core::Error::UnknownTask(task.clone()))?;
        serde_json::from_str(&file).map_err(|e| Error::stored(&self.path, "a task's file", &e))
    }

    /// What a limit check of `candidate` reads of `task` (whose stored file is `file`),
    /// counted by the database: two counts and two indexed lookups, no agent read.
    pub(crate) fn limit_view<'t>(
        &self,
        tx: &Transaction<'_>,
        task: &'t TaskId,
        file: &TaskFile,
        candidate: Candidate<'_>,
    ) -> Result<LimitView<'t>, Error> {
        let q = |e| self.err(e);
        let count = |sql: &str| -> Result<usize, Error> {
            let n: i64 = tx
                .query_row(sql, [task.as_str()], |row| row.get(0))
                .map_err(q)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        };
        let total = count("SELECT COUNT(*) FROM agents WHERE task_id = ?1")?;
        let active = count("SELECT COUNT(*) FROM agents WHERE task_id = ?1 AND active = 1")?;
        let active_of_type: Option<String> = tx
            .query_row(
                "SELECT id FROM agents WHERE task_id = ?1 AND active = 1 AND agent_type = ?2
                 ORDER BY seq LIMIT 1",
                [task.as_str(), candidate.agent_type.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(q)?;
        let active_of_type = active_of_type
            .map(|id| AgentId::parse(&id))
            .transpose()
            .map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                message: format!("an agent's row: {e}"),
            })?;
        let parent_depth = match candidate.parent {
            Parent::Orchestrator => None,
            Parent::Agent(p) => tx
                .query_row(
                    "SELECT depth FROM agents WHERE id = ?1 AND task_id = ?2",
                    [p.as_str(), task.as_str()],
                    |row| row.get::<_, u32>(0),
                )
                .optional()
                .map_err(q)?,
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

    /// Every agent entry of `task`, in registration order, each made into a `T` by `then` as
    /// it is parsed (on every core: `parse.rs`).
    pub(crate) fn entries<T: Send>(
        &self,
        tx: &Transaction<'_>,
        task: &TaskId,
        then: impl Fn(AgentEntry) -> T + Sync,
    ) -> Result<Vec<T>, Error> {
        let mut stmt = tx
            .prepare_cached("SELECT entry FROM agents WHERE task_id = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        crate::parse::parse_rows(
            |each| {
                let mut rows = stmt.query([task.as_str()]).map_err(|e| self.err(e))?;
                while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                    // Borrowed from SQLite's buffer: `parse_rows` copies it once, into the
                    // chunk it hands to a parser.
                    let text = row
                        .get_ref(0)
                        .and_then(|v| v.as_str().map_err(Into::into))
                        .map_err(|e| self.err(e))?;
                    each(text);
                }
                Ok(())
            },
            |text| {
                serde_json::from_str::<AgentEntry>(text)
                    .map(&then)
                    .map_err(|e| Error::stored(&self.path, "an agent's entry", &e))
            },
        )
    }

    /// `task` whole, as the JSON registry would hold it: agents, counters, hierarchy.
    pub(crate) fn whole_task(
        &self,
        tx: &Transaction<'_>,
        task: &TaskId,
    ) -> Result<TaskFile, Error> {
        let stored = self.stored_task(tx, task)?;
        Ok(shape::whole_task(
            stored,
            self.entries(tx, task, |entry| entry)?,
        ))
    }

    /// Applies `change` to `agent`'s stored entry and index entry.
    pub(crate) fn change_agent(
        &self,
        tx: &Transaction<'_>,
        task: &TaskId,
        agent: &AgentId,
        change: impl FnOnce(&mut AgentEntry, &mut Map<String, Value>),
    ) -> Result<(), Error> {
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT entry, indexed FROM agents WHERE id = ?1 AND task_id = ?2",
                [agent.as_str(), task.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((entry, indexed)) = row else {
            self.stored_task(tx, task)?; // an unknown task is named as such
            return Err(deploy_core::Error::UnknownAgent {
                task: task.clone(),
                agent: agent.clone(),
            }
            .into());
        };
        let mut entry: AgentEntry = serde_json::from_str(&entry)
            .map_err(|e| Error::stored(&self.path, "an agent's entry", &e))?;
        let mut indexed: Map<String, Value> = serde_json::from_str(&indexed)
            .map_err(|e| Error::stored(&self.path, "an agent's index entry", &e))?;
        change(&mut entry, &mut indexed);
        tx.prepare_cached(
            "UPDATE agents SET status = ?1, active = ?2, entry = ?3, indexed = ?4, checkout = ?5
             WHERE id = ?6",
        )
        .and_then(|mut s| {
            s.execute(params![
                entry.status.as_str(),
                entry.status.is_active(),
                to_text(&entry),
                to_text(&indexed),
                checkout_of(&entry),
                agent.as_str()
            ])
        })
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
            ensure_global(tx).map_err(|e| self.err(e))?;
            insert_task(tx, &file, &summary).map_err(|e| self.err(e))
        });
        if let Err(e) = inserted {
            if new_dir {
                let _ = fs_err::remove_dir_all(&dir);
            }
            return Err(e);
        }
        Ok(file)
    }
}

/// The `global` row: the index without its tasks, agents and counters; made if missing.
pub(crate) fn ensure_global(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut g = shape::new_global();
    g.created_at = timestamp();
    tx.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('global', ?1)",
        [to_text(&g)],
    )?;
    Ok(())
}

/// Inserts task `file` (its agents are rows of their own) with its index entry `summary`.
pub(crate) fn insert_task(
    tx: &Transaction<'_>,
    file: &TaskFile,
    summary: &Value,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tasks (id, status, file, summary) VALUES (?1, ?2, ?3, ?4)",
        params![
            file.task_id.as_str(),
            file.status,
            to_text(&shape::stored_task(file)),
            to_text(summary)
        ],
    )?;
    Ok(())
}

/// `agent_hierarchy` of `agents` ([`deploy_core::hierarchy`]).
pub(crate) fn hierarchy(agents: &[AgentEntry]) -> Map<String, Value> {
    deploy_core::hierarchy(agents.iter().map(|a| (&a.parent, &a.id)))
}

/// `value` as stored. Serializing these types (strings, numbers, maps with string keys) cannot
/// fail.
pub(crate) fn to_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// The `checkout` column of `entry`: its `fleet_worktree` field, as stored.
fn checkout_of(entry: &AgentEntry) -> Option<String> {
    entry
        .extra
        .value(deploy_core::checkout::CHECKOUT_FIELD)
        .map(|v| to_text(&v))
}

/// Inserts `entry` of `task` with its index entry.
pub(crate) fn insert_agent(
    tx: &Transaction<'_>,
    task: &TaskId,
    entry: &AgentEntry,
    indexed: &Value,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO agents
            (id, task_id, agent_type, parent, depth, status, active, entry, indexed, checkout)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        entry.id.as_str(),
        task.as_str(),
        entry.agent_type.as_str(),
        entry.parent.as_str(),
        entry.depth,
        entry.status.as_str(),
        entry.status.is_active(),
        to_text(entry),
        to_text(indexed),
        checkout_of(entry),
    ])?;
    Ok(())
}
