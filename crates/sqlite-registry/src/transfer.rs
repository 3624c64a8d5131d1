//! `fleet migrate` into and out of a database: a whole registry ([`Whole`]) into a new one
//! ([`SqliteRegistry::import`], built in a temp file renamed into place, so a killed import
//! leaves nothing), the database read whole ([`SqliteRegistry::whole`]), and moved aside once
//! the registry it moved to is whole ([`SqliteRegistry::set_aside`]).

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{Layout, Registry, TaskId, timestamp};
use registry::format::{GlobalFile, TaskFile};
use registry::shape;
use registry::transfer::{Transferred, Whole};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::store::{ensure_global, hierarchy, insert_agent, insert_task, to_text};
use crate::{Error, SqliteRegistry, path_in, schema};

impl SqliteRegistry {
    /// Imports `whole` — every task, agent and unknown field, and what the index keeps
    /// besides — into a new database in `layout`. Refused if one exists.
    pub fn import(layout: &Layout, whole: &Whole) -> Result<Transferred, Error> {
        let path = path_in(layout);
        let exists = |path: Utf8PathBuf| Error::Corrupt {
            path,
            message: "a database exists already: nothing imported (export it first, or move it)"
                .into(),
        };
        if path.exists() {
            return Err(exists(path));
        }
        let agents = schema::build(&path, |conn| fill(conn, &path, whole))?
            .ok_or_else(|| exists(path.clone()))?;
        Ok(Transferred {
            tasks: whole.tasks.len(),
            agents,
            to: path.to_string(),
            kept: None,
        })
    }

    /// The database whole, as the JSON registry would hold it.
    pub fn whole(&self) -> Result<Whole, Error> {
        let ids = self.task_ids()?;
        let mut tasks = Vec::with_capacity(ids.len());
        for id in &ids {
            tasks.push(self.task_file(id)?);
        }
        Ok(Whole {
            tasks,
            global: self.global_file()?,
        })
    }

    /// Task `task` as the JSON registry would hold it (its `AGENT_REGISTRY.json`): its agents,
    /// counters and `agent_hierarchy` derived from the rows.
    pub fn task_file(&self, task: &TaskId) -> Result<TaskFile, Error> {
        self.transact(false, |tx| self.whole_task(tx, task))
    }

    /// The global index as the JSON registry would hold it (`GLOBAL_REGISTRY.json`): what it
    /// keeps besides, with every task's summary and every agent's entry, counters derived.
    pub fn global_file(&self) -> Result<GlobalFile, Error> {
        self.transact(false, |tx| {
            let g: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = 'global'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.err(e))?;
            let mut global = match g {
                Some(text) => serde_json::from_str::<GlobalFile>(&text)
                    .map_err(|e| Error::stored(&self.path, "the index's row", &e))?,
                None => shape::new_global(),
            };
            let mut stmt = tx
                .prepare("SELECT id, status FROM tasks ORDER BY id")
                .map_err(|e| self.err(e))?;
            let tasks = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| self.err(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err(e))?;
            for (id, _) in &tasks {
                let id = TaskId::parse(id).map_err(|e| Error::Corrupt {
                    path: self.path.clone(),
                    message: format!("a task's row: {e}"),
                })?;
                let (summary, indexed) = self.index_rows(tx, &id)?;
                global.tasks.insert(id.to_string(), summary);
                global.agents.extend(indexed);
            }
            global.active_tasks = tasks
                .iter()
                .filter(|(_, s)| shape::task_is_active(s))
                .count() as u64;
            global.recount();
            Ok(global)
        })
    }

    /// Moves the database aside (`fleet.sqlite3.exported-<time>`), so that it is no longer the
    /// workspace's registry; returns where it went. `fleet migrate` does this last, once the
    /// new registry is whole.
    pub fn set_aside(self) -> Result<Utf8PathBuf, Error> {
        let aside = self.path.with_file_name(format!(
            "{}.exported-{}",
            crate::DB_FILE,
            timestamp().replace([':', '.'], "-")
        ));
        let db = self.path.clone();
        drop(self); // closes the connection, checkpointing the WAL
        fs_err::rename(&db, &aside).map_err(|e| Error::Io(db.clone(), e))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{db}{suffix}"));
        }
        Ok(aside)
    }

    /// The task's summary in the index and its agents' index entries, in registration order.
    fn index_rows(
        &self,
        tx: &rusqlite::Transaction<'_>,
        task: &TaskId,
    ) -> Result<(Value, Map<String, Value>), Error> {
        let q = |e| self.err(e);
        let summary: String = tx
            .query_row(
                "SELECT summary FROM tasks WHERE id = ?1",
                [task.as_str()],
                |r| r.get(0),
            )
            .map_err(q)?;
        let summary = serde_json::from_str(&summary)
            .map_err(|e| Error::stored(&self.path, "a task's summary", &e))?;
        let mut stmt = tx
            .prepare("SELECT id, indexed FROM agents WHERE task_id = ?1 ORDER BY seq")
            .map_err(q)?;
        let rows = stmt
            .query_map([task.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(q)?;
        let mut indexed = Map::new();
        for row in rows {
            let (id, entry) = row.map_err(q)?;
            let entry = serde_json::from_str(&entry)
                .map_err(|e| Error::stored(&self.path, "an agent's index entry", &e))?;
            indexed.insert(id, entry);
        }
        Ok((summary, indexed))
    }
}

/// Fills the new database at `path` with `whole` in one transaction; returns how many agents
/// it holds.
fn fill(conn: &mut Connection, path: &Utf8Path, whole: &Whole) -> Result<usize, Error> {
    let err = |e| Error::from_sqlite(path, std::time::Duration::ZERO, e);
    let tx = conn.transaction().map_err(err)?;
    let mut meta = whole.global.clone();
    meta.tasks = Map::new();
    meta.agents = Map::new();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('global', ?1)",
        [to_text(&meta)],
    )
    .map_err(err)?;
    ensure_global(&tx).map_err(err)?;
    let mut agents = 0;
    for t in &whole.tasks {
        insert_task(&tx, t, &whole.summary_of(t)).map_err(err)?;
        if t.agent_hierarchy != hierarchy(&t.agents) {
            tracing::warn!(task = %t.task_id, "its agent_hierarchy differs from its agents' parents; it is derived from them from now on");
        }
        for a in &t.agents {
            insert_agent(&tx, &t.task_id, a, &whole.indexed_of(t, a)).map_err(err)?;
            agents += 1;
        }
        deploy_core::failpoint("migrate::after_task");
    }
    tx.commit().map_err(err)?;
    deploy_core::failpoint("migrate::before_rename");
    Ok(agents)
}
