//! Reconcile's read of a task ([`Registry::roster`](deploy_core::Registry::roster)): ids,
//! statuses and checkouts from their columns, the active agents' entries parsed. What is read is
//! kept while the database is unchanged — no commit by another connection (`PRAGMA
//! data_version`) and none by this one — so the rosters `prefetch` reads while tmux lists
//! sessions serve reconcile's reads after.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use deploy_core::checkout::Checkout;
use deploy_core::{AgentId, AgentRecord, AgentStatus, RosterEntry, TaskId, TaskRoster};
use registry::format::AgentEntry;
use rusqlite::Transaction;

use crate::{Error, SqliteRegistry};

/// The rosters read at one version of the database.
#[derive(Debug, Default)]
pub(crate) struct Rosters {
    /// `PRAGMA data_version` and this registry's own count of commits when they were read.
    version: Option<(i64, u64)>,
    read: HashMap<TaskId, Arc<TaskRoster>>,
}

impl SqliteRegistry {
    /// `task`'s roster: kept from an earlier read at this version of the database, or read now.
    pub(crate) fn read_roster(&self, task: &TaskId) -> Result<Arc<TaskRoster>, Error> {
        self.transact(false, |tx| {
            let data_version: i64 = tx
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            let version = (data_version, self.writes.load(Ordering::SeqCst));
            {
                let kept = self.rosters.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.version == Some(version)
                    && let Some(roster) = kept.read.get(task)
                {
                    return Ok(Arc::clone(roster));
                }
            }
            let roster = Arc::new(self.query_roster(tx, task)?);
            let mut kept = self.rosters.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.version != Some(version) {
                *kept = Rosters {
                    version: Some(version),
                    read: HashMap::new(),
                };
            }
            kept.read.insert(task.clone(), Arc::clone(&roster));
            Ok(roster)
        })
    }

    fn query_roster(&self, tx: &Transaction<'_>, task: &TaskId) -> Result<TaskRoster, Error> {
        self.stored_task(tx, task)?;
        let q = |e| self.err(e);
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, status, checkout, CASE WHEN active THEN entry END
                 FROM agents WHERE task_id = ?1 ORDER BY seq",
            )
            .map_err(q)?;
        let rows = stmt
            .query_map([task.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(q)?;
        let mut agents = Vec::new();
        for row in rows {
            let (id, status, checkout, entry) = row.map_err(q)?;
            let record = match entry {
                Some(text) => Some(
                    serde_json::from_str::<AgentEntry>(&text)
                        .map_err(|e| Error::stored(&self.path, "an agent's entry", &e))?
                        .into_record(),
                ),
                None => None,
            };
            agents.push(RosterEntry {
                id: AgentId::parse(&id).map_err(|e| Error::Corrupt {
                    path: self.path.clone(),
                    message: format!("an agent's row: {e}"),
                })?,
                status: AgentStatus::from(status),
                // Read leniently, as `Checkout::of` does: a malformed one is no checkout.
                checkout: checkout.and_then(|c| serde_json::from_str::<Checkout>(&c).ok()),
                // An ended agent's host is not read: a SQLite registry is one machine's.
                host: record.as_ref().and_then(AgentRecord::host),
                record,
            });
        }
        Ok(TaskRoster {
            id: task.clone(),
            agents,
        })
    }
}
