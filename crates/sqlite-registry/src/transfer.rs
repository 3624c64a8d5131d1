//! `fleet migrate`: the Python server's JSON files into a new database ([`SqliteRegistry::import`])
//! and the database back into those files ([`SqliteRegistry::export`]). Each leaves its source
//! as it was until the new copy is whole: the import builds the database in a temp file renamed
//! into place; the export replaces each JSON file atomically and moves the database aside last.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{Layout, Registry, TaskId, timestamp};
use registry::JsonRegistry;
use registry::format::{GlobalFile, TaskFile};
use registry::shape;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{ensure_global, hierarchy, insert_agent, to_text};
use crate::{Error, SqliteRegistry, path_in, schema};

/// What a migration carried over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transferred {
    /// Tasks.
    pub tasks: usize,
    /// Agents.
    pub agents: usize,
    /// Where it wrote: the database, or the global index.
    pub to: Utf8PathBuf,
    /// Where the database was moved after an export (the JSON files are the registry again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_aside: Option<Utf8PathBuf>,
}

impl SqliteRegistry {
    /// Imports the JSON workspace of `layout` — every task, agent and unknown field, and what
    /// the index keeps besides — into a new database. Refused if one exists. The JSON files are
    /// only read.
    pub fn import(layout: &Layout) -> Result<Transferred, Error> {
        let path = path_in(layout);
        let exists = |path: Utf8PathBuf| Error::Corrupt {
            path,
            message: "a database exists already: nothing imported (export it first, or move it)"
                .into(),
        };
        if path.exists() {
            return Err(exists(path));
        }
        let json = JsonRegistry::new(layout.clone());
        let ids = json.task_ids()?;
        let mut tasks = Vec::with_capacity(ids.len());
        for id in &ids {
            tasks.push(json.read_task_file(id)?);
        }
        let global = json.read_global_file()?.unwrap_or_else(shape::new_global);
        let agents = schema::build(&path, |conn| fill(conn, &path, &tasks, &global))?
            .ok_or_else(|| exists(path.clone()))?;
        Ok(Transferred {
            tasks: tasks.len(),
            agents,
            to: path,
            moved_aside: None,
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

    /// Writes every task registry and the global index of this database as the Python server's
    /// files (each replaced atomically), then moves the database aside, so that the JSON files
    /// are the registry again. Killed before the move, the database is still the registry.
    pub fn export(self) -> Result<Transferred, Error> {
        let ids = self.task_ids()?;
        let mut agents = 0;
        for id in &ids {
            let file = self.task_file(id)?;
            let path = self.layout.task_registry(id);
            deploy_core::private::create_dir_all(&self.layout.task_dir(id))?;
            write(&path, &file)?;
            deploy_core::failpoint("migrate::after_task");
            agents += file.agents.len();
        }
        let global = self.global_file()?;
        let index = self.layout.global_registry();
        deploy_core::private::create_dir_all(&self.layout.global_dir())?;
        write(&index, &global)?;
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
        Ok(Transferred {
            tasks: ids.len(),
            agents,
            to: index,
            moved_aside: Some(aside),
        })
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

/// Fills the new database at `path` with `tasks` and what `global` keeps besides, in one
/// transaction; returns how many agents it holds.
fn fill(
    conn: &mut Connection,
    path: &Utf8Path,
    tasks: &[registry::format::TaskFile],
    global: &GlobalFile,
) -> Result<usize, Error> {
    let err = |e| Error::from_sqlite(path, std::time::Duration::ZERO, e);
    let tx = conn.transaction().map_err(err)?;
    let mut meta = global.clone();
    meta.tasks = Map::new();
    meta.agents = Map::new();
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('global', ?1)",
        [to_text(&meta)],
    )
    .map_err(err)?;
    ensure_global(&tx).map_err(err)?;
    let mut agents = 0;
    for t in tasks {
        let summary = global
            .tasks
            .get(t.task_id.as_str())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({
                "description": t.task_description, "created_at": t.created_at, "status": t.status,
            }));
        tx.execute(
            "INSERT INTO tasks (id, status, file, summary) VALUES (?1, ?2, ?3, ?4)",
            params![
                t.task_id.as_str(),
                t.status,
                to_text(&shape::stored_task(t)),
                to_text(&summary)
            ],
        )
        .map_err(err)?;
        if t.agent_hierarchy != hierarchy(&t.agents) {
            tracing::warn!(task = %t.task_id, "its agent_hierarchy differs from its agents' parents; it is derived from them from now on");
        }
        for a in &t.agents {
            let indexed = global
                .agents
                .get(a.id.as_str())
                .cloned()
                .unwrap_or_else(|| {
                    serde_json::json!({
                        "task_id": t.task_id, "type": a.agent_type, "parent": a.parent,
                        "started_at": a.started_at, "tmux_session": a.tmux_session,
                    })
                });
            insert_agent(&tx, &t.task_id, a, &indexed).map_err(err)?;
            agents += 1;
        }
        deploy_core::failpoint("migrate::after_task");
    }
    tx.commit().map_err(err)?;
    deploy_core::failpoint("migrate::before_rename");
    Ok(agents)
}

/// `value` written to `path` as the Python server writes it, atomically.
fn write<T: Serialize>(path: &Utf8Path, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt {
        path: path.to_owned(),
        message: format!("cannot serialize: {e}"),
    })?;
    registry::atomic::write_atomic(path, &bytes)?;
    Ok(())
}
