//! What each agent is doing, from its own log (see the `activity` crate): read incrementally —
//! only what was appended since the last look, the reader's state kept in
//! `.fleet/activity/<task>/<agent>.json` — and, once the agent ended, recorded in its registry
//! entry (`fleet_activity`) with its end, so it reads the same after its log is archived.

use activity::{Activity, Context, Tracker};
use camino::Utf8PathBuf;
use deploy_core::{AgentRecord, ExitStatus, TaskId};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::Services;

/// The registry field an ended agent's summary is recorded in.
pub(crate) const FIELD: &str = "fleet_activity";
/// The registry field an ended agent's working directory is recorded in, when it said it
/// (where its conversation resumes).
pub(crate) const WORKDIR: &str = "fleet_workdir";

/// An agent's activity, and what its stream told beyond it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    pub(crate) activity: Activity,
    pub(crate) context: Context,
}

/// Where the reader of `agent`'s log keeps its place.
fn state_file(services: &Services, task: &TaskId, agent: &str) -> Utf8PathBuf {
    services
        .layout
        .root()
        .join(".fleet/activity")
        .join(task.as_str())
        .join(format!("{agent}.json"))
}

/// The log's modification time, naive local ISO-8601 as the registry writes times.
fn modified(path: &camino::Utf8Path) -> Option<String> {
    let at = fs_err::metadata(path).ok()?.modified().ok()?;
    let local: chrono::DateTime<chrono::Local> = at.into();
    Some(
        local
            .naive_local()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
    )
}

/// `record`'s activity: as recorded at its end if it ended, else read from its log, settled
/// with how its process ended (`ended`: `Some(success)`) if it did. Never an error: what
/// cannot be read is logged and the summary is what was read.
pub(crate) fn of(
    services: &Services,
    task: &TaskId,
    record: &AgentRecord,
    ended: Option<bool>,
) -> Seen {
    if let Some(recorded) = record
        .extra
        .get(FIELD)
        .and_then(|v| serde_json::from_value::<Activity>(v.clone()).ok())
    {
        let cwd = record.extra.get(WORKDIR).and_then(Value::as_str);
        return Seen {
            activity: recorded,
            context: Context {
                cwd: cwd.map(str::to_owned),
                ..Context::default()
            },
        };
    }
    let state = state_file(services, task, record.id.as_str());
    let mut tracker: Tracker = fs_err::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let log = super::output::log_file(services, task, &record.id);
    match tracker.read_file(log.as_std_path(), modified(&log).as_deref()) {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = keep(&state, &tracker) {
                tracing::warn!(agent = %record.id, "cannot keep the place in its log at {state}: {e}");
            }
        }
        Err(e) => tracing::warn!(agent = %record.id, "cannot read its log {log}: {e}"),
    }
    Seen {
        activity: tracker.settled(ended),
        context: tracker.context().clone(),
    }
}

/// Keeps a reader's place: replaced by rename, so a concurrent look reads the old place or the
/// new one, both consistent. Not fsynced: it is a cache — lost, the log is read again.
fn keep(state: &camino::Utf8Path, tracker: &Tracker) -> Result<(), String> {
    if let Some(dir) = state.parent() {
        deploy_core::private::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let bytes = serde_json::to_vec(tracker).map_err(|e| e.to_string())?;
    let temp = state.with_extension(format!("{}.tmp", std::process::id()));
    fs_err::write(&temp, bytes).map_err(|e| e.to_string())?;
    fs_err::rename(&temp, state).map_err(|e| {
        let _ = fs_err::remove_file(&temp);
        e.to_string()
    })
}

/// Removes a reader's place, and any temp file a killed look left beside it.
fn forget(state: &camino::Utf8Path) {
    let _ = fs_err::remove_file(state);
    let (Some(dir), Some(stem)) = (state.parent(), state.file_stem()) else {
        return;
    };
    let prefix = format!("{stem}.");
    for entry in fs_err::read_dir(dir).into_iter().flatten().flatten() {
        if let Some(name) = entry.file_name().to_str()
            && name.starts_with(&prefix)
            && name.ends_with(".tmp")
        {
            let _ = fs_err::remove_file(dir.join(name));
        }
    }
}

/// The fields recorded with `record`'s end: its settled activity. The reader's state is not
/// needed afterwards and goes.
pub(crate) fn at_end(
    services: &Services,
    task: &TaskId,
    record: &AgentRecord,
    exit: Option<ExitStatus>,
    success: bool,
) -> Map<String, Value> {
    let ended = exit.map_or(Some(success), |e| Some(e.success()));
    let seen = of(services, task, record, ended);
    forget(&state_file(services, task, record.id.as_str()));
    let mut fields = Map::new();
    fields.insert(FIELD.into(), json!(seen.activity));
    if let Some(cwd) = seen.context.cwd {
        fields.insert(WORKDIR.into(), json!(cwd));
    }
    fields
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
