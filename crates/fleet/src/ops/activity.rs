//! What each agent is doing, from its own log (see the `activity` crate): read incrementally —
//! only what was appended since the last look — and, once the agent ended, recorded in its
//! registry entry (`fleet_activity`) with its end, so it reads the same after its log is
//! archived. The readers' places are kept per task in `.fleet/activity/<task>.json` (a
//! [`Book`]): one file read and at most one written per look at a task, whatever its size.

use std::collections::BTreeMap;

use activity::{Activity, Context, Tracker};
use camino::Utf8Path;
use deploy_core::{AgentId, AgentRecord, ExitStatus, TaskId};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::Services;

/// The registry field an ended agent's summary is recorded in.
pub(crate) const FIELD: &str = "fleet_activity";

/// An agent's activity, and what its stream told beyond it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub(crate) activity: Activity,
    pub(crate) context: Context,
}

/// The readers of a task's running agents' logs, by agent id: a cache — renamed into place,
/// not fsynced; lost or stale, the logs are read again. Two looks at once each write a
/// consistent book (every reader's place matches its summary); the last one stays.
#[derive(Debug)]
pub(crate) struct Book<'s> {
    services: &'s Services,
    task: TaskId,
    readers: BTreeMap<String, Tracker>,
    /// The agents whose logs this look has read already ([`read_ahead`](Book::read_ahead)).
    read: std::collections::HashSet<AgentId>,
    changed: bool,
}

/// A log's modification time, naive local ISO-8601 as the registry writes times.
fn modified(meta: &std::fs::Metadata) -> Option<String> {
    let local: chrono::DateTime<chrono::Local> = meta.modified().ok()?.into();
    Some(
        local
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
    )
}

impl<'s> Book<'s> {
    /// The book of `task` (empty if there is none, or it does not parse).
    pub(crate) fn open(services: &'s Services, task: &TaskId) -> Book<'s> {
        let readers = fs_err::read(services.layout.activity_cache(task))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Book {
            services,
            task: task.clone(),
            readers,
            read: std::collections::HashSet::new(),
            changed: false,
        }
    }

    /// Reads the logs of `agents` that have no recorded summary — what a look does while the
    /// backend lists its sessions. [`of`](Self::of) then reads again only the logs of agents
    /// that ended (their last lines may have come since).
    pub(crate) fn read_ahead<'a>(&mut self, agents: impl IntoIterator<Item = &'a AgentRecord>) {
        for record in agents {
            // Only a look at the field: one whose summary does not parse is read by `of`.
            if !record.extra.contains_key(FIELD) {
                self.read_log(record);
                self.read.insert(record.id.clone());
            }
        }
    }

    fn read_log(&mut self, record: &AgentRecord) {
        let tracker = self.readers.entry(record.id.to_string()).or_default();
        let log = self.services.layout.log_now(&self.task, &record.id);
        match tracker.read_file_stamped(log.as_std_path(), modified) {
            Ok(read) => self.changed |= read,
            Err(e) => tracing::warn!(agent = %record.id, "cannot read its log {log}: {e}"),
        }
    }

    /// `record`'s activity: as recorded at its end if it ended, else read from its log, settled
    /// with how its process ended (`ended`: `Some(success)`) if it did. Never an error: what
    /// cannot be read is logged, and the summary is what was read.
    pub(crate) fn of(&mut self, record: &AgentRecord, ended: Option<bool>) -> Seen {
        if let Some(recorded) = record.extra.parse::<Activity>(FIELD) {
            return Seen {
                activity: recorded,
                context: Context::default(),
            };
        }
        if ended.is_some() || !self.read.contains(&record.id) {
            self.read_log(record);
        }
        let tracker = self.readers.entry(record.id.to_string()).or_default();
        Seen {
            activity: tracker.settled(ended),
            context: tracker.context().clone(),
        }
    }

    /// `record`'s activity at its end, settled with how it ended, and its reader forgotten:
    /// its registry entry holds the summary from then on ([`end_fields`]).
    pub(crate) fn end(
        &mut self,
        record: &AgentRecord,
        exit: Option<ExitStatus>,
        success: bool,
    ) -> Seen {
        let ended = exit.map_or(Some(success), |e| Some(e.success()));
        let seen = self.of(record, ended);
        self.changed |= self.readers.remove(record.id.as_str()).is_some();
        seen
    }

    /// Writes the book if a look changed it (an empty book is removed). Failures are logged:
    /// the next look reads the logs again.
    pub(crate) fn close(self) {
        if !self.changed {
            return;
        }
        let path = self.services.layout.activity_cache(&self.task);
        if let Err(e) = keep(&path, &self.readers) {
            tracing::warn!(task = %self.task, "cannot keep the places in its agents' logs at {path}: {e}");
        }
    }
}

/// Replaces `path` with the readers by rename (no fsync: a cache), or removes it if there are
/// none.
fn keep(path: &Utf8Path, readers: &BTreeMap<String, Tracker>) -> Result<(), String> {
    if readers.is_empty() {
        return match fs_err::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        deploy_core::private::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let bytes = serde_json::to_vec(readers).map_err(|e| e.to_string())?;
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    deploy_core::private::write_new(&temp, &bytes).map_err(|e| e.to_string())?;
    fs_err::rename(&temp, path).map_err(|e| {
        let _ = fs_err::remove_file(&temp);
        e.to_string()
    })
}

/// The fields recorded with an agent's end: its activity.
pub(crate) fn end_fields(seen: &Seen) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(FIELD.into(), json!(seen.activity));
    fields
}

/// One agent's end fields, through its task's book (kill, reconcile: one agent at a time).
pub(crate) fn at_end(
    services: &Services,
    task: &TaskId,
    record: &AgentRecord,
    exit: Option<ExitStatus>,
    success: bool,
) -> Map<String, Value> {
    let mut book = Book::open(services, task);
    let seen = book.end(record, exit, success);
    book.close();
    end_fields(&seen)
}

/// One agent's activity, through its task's book.
pub(crate) fn of(services: &Services, task: &TaskId, record: &AgentRecord) -> Seen {
    let mut book = Book::open(services, task);
    let seen = book.of(record, None);
    book.close();
    seen
}

/// A task's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Totals {
    pub(crate) cost_usd: f64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
}

impl Totals {
    /// The sum over `activities`.
    pub(crate) fn of<'a>(activities: impl IntoIterator<Item = &'a Activity>) -> Totals {
        activities
            .into_iter()
            .fold(Totals::default(), |t, a| Totals {
                cost_usd: t.cost_usd + a.cost_usd.unwrap_or(0.0),
                input_tokens: t.input_tokens + a.input_tokens,
                output_tokens: t.output_tokens + a.output_tokens,
            })
    }
}
