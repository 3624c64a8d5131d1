//! An agent's end, one implementation for every trigger: `fleet kill`, an agent's own final
//! report, a look (`status`, `wait`) that sees it exited, reconcile's zombies — and batches and
//! other hosts after them.
//!
//! The order is the safety of it: everything of the agent is released first — its session and
//! every process carrying its tag (one [`SessionBackend::kill_all`] per backend it was placed
//! on), its prompt file, its checkout retired (work kept, the rest removed) — and only then is
//! the end recorded, for all the agents of a call in one registry transaction. Should a step
//! fail, nothing is recorded: the agents stay active with whatever is left, zombies the next
//! look or reconcile finishes. An end recorded first would hide a leftover.
//!
//! [`SessionBackend::kill_all`]: crate::SessionBackend::kill_all

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use serde_json::{Map, Value};

use crate::checkout::{CHECKOUT_FIELD, Checkout};
use crate::{
    AgentId, AgentRecord, AgentStatus, Deployer, Error, ExitStatus, HostName, KillReport,
    SessionName, StatusUpdate, TaskId,
};

/// Why an agent ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// It ended by itself, with this status (`None`: its session vanished without one):
    /// completed for exit 0, error for any other, terminated (`session_not_found`) for none.
    Exited(Option<ExitStatus>),
    /// fleet ends it: a kill, or the agent's own final report — recorded with this status and
    /// reason.
    Ended {
        /// The status recorded.
        status: AgentStatus,
        /// Why (`termination_reason`, or the final report's message).
        reason: String,
    },
}

impl Cause {
    /// The status and reason recorded, and the exit status with them.
    fn recorded(&self) -> (AgentStatus, String, Option<ExitStatus>) {
        match self {
            Cause::Exited(Some(status)) if status.success() => (
                AgentStatus::Completed,
                format!("the agent {status}"),
                Some(*status),
            ),
            Cause::Exited(Some(status)) => (
                AgentStatus::Error,
                format!("the agent {status}"),
                Some(*status),
            ),
            Cause::Exited(None) => (AgentStatus::Terminated, "session_not_found".into(), None),
            Cause::Ended { status, reason } => (status.clone(), reason.clone(), None),
        }
    }

    /// The status an agent that exited so is recorded with.
    pub fn status(&self) -> AgentStatus {
        self.recorded().0
    }
}

/// One agent to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Its id.
    pub agent: AgentId,
    /// Its session.
    pub session: SessionName,
    /// Where its session was placed, as its record says.
    pub placement: Option<String>,
    /// The host it runs on, as its record says.
    pub host: Option<HostName>,
    /// Its checkout, retired with its end.
    pub checkout: Option<Checkout>,
    /// Why it ends.
    pub cause: Cause,
    /// More fields recorded with its end ([`StatusUpdate::fields`]: its activity, say).
    pub fields: Map<String, Value>,
    /// Its status as recorded: an agent whose end is already recorded (not active) keeps its
    /// record (its leftovers are released all the same, and a checkout it left active is
    /// retired and recorded beside it).
    pub was: AgentStatus,
}

impl Ending {
    /// The end of `record`'s agent, for `cause`.
    pub fn of(record: &AgentRecord, cause: Cause) -> Ending {
        Ending {
            agent: record.id.clone(),
            session: record.session.clone(),
            placement: record.placement.clone(),
            host: record.host(),
            checkout: Checkout::of(record),
            cause,
            fields: Map::new(),
            was: record.status.clone(),
        }
    }
}

/// What became of an agent's files at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// They stay in `logs/`, `progress/`, `findings/`.
    Keep,
    /// They move to `<task>/archive/`, as the Python server did.
    Archive,
}

/// What an end did to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The agent.
    pub agent: AgentId,
    /// Its status afterwards: the one recorded, or the one it kept.
    pub status: AgentStatus,
    /// What the kill of its session and processes did (none of them is left).
    pub kill: KillReport,
    /// Whether its prompt file was there to remove.
    pub prompt_removed: bool,
    /// Its checkout after its end.
    pub checkout: Option<Checkout>,
    /// Its files moved to `archive/`, with [`Files::Archive`].
    pub archived: Vec<Utf8PathBuf>,
}

/// Ends `endings`' agents of `task` (see the module): releases everything of theirs, then
/// records every end in one registry transaction, then, with [`Files::Archive`], moves their
/// files to `archive/`. On `Err` no end was recorded; an agent placed where this deployer does
/// not look is an error (it was never judged ended).
pub fn end(
    env: &Deployer<'_>,
    task: &TaskId,
    endings: &[Ending],
    files: Files,
) -> Result<Vec<Ended>, Error> {
    let mut by_placement: BTreeMap<Option<&str>, Vec<(SessionName, AgentId)>> = BTreeMap::new();
    for e in endings {
        env.refuse_other_host(&e.agent, e.host.as_ref())?;
        by_placement
            .entry(e.placement.as_deref())
            .or_default()
            .push((e.session.clone(), e.agent.clone()));
    }
    let mut kills: BTreeMap<AgentId, KillReport> = BTreeMap::new();
    for (placement, targets) in &by_placement {
        let Some(backend) = env.locate_placement(*placement).backend() else {
            return Err(Error::Elsewhere {
                agent: targets[0].1.clone(),
                placement: placement
                    .unwrap_or("another orchestrator's tmux server")
                    .to_owned(),
                looking: env.backend.placement(),
            });
        };
        let reports = backend.kill_all(targets)?;
        kills.extend(targets.iter().map(|(_, a)| a.clone()).zip(reports));
    }
    let mut prompts = Vec::with_capacity(endings.len());
    for e in endings {
        prompts.push(
            env.prompts
                .remove(&env.layout.tracked_files(task, &e.agent).prompt_file)?,
        );
    }
    let retired: Vec<Option<Checkout>> = endings
        .iter()
        .map(|e| {
            e.checkout
                .as_ref()
                .and_then(|c| crate::reconcile::retire(env, task, &e.agent, c))
        })
        .collect();
    let mut updates = Vec::new();
    for (e, retired) in endings.iter().zip(&retired) {
        let mut fields = e.fields.clone();
        if let Some(c) = retired {
            fields.insert(CHECKOUT_FIELD.to_owned(), c.to_value());
        }
        if e.was.is_active() {
            let (status, reason, exit) = e.cause.recorded();
            let mut update = StatusUpdate::now(status);
            update.exit = exit;
            update.reason = Some(reason);
            update.fields = fields;
            updates.push((e.agent.clone(), update));
        } else if retired.is_some() {
            let checkout: Map<String, Value> = fields
                .into_iter()
                .filter(|(k, _)| k == CHECKOUT_FIELD)
                .collect();
            env.registry.annotate(task, &e.agent, &checkout)?;
        }
    }
    if !updates.is_empty() {
        env.registry.update_statuses(task, &updates)?;
    }
    let mut ended = Vec::with_capacity(endings.len());
    for ((e, retired), prompt_removed) in endings.iter().zip(retired).zip(prompts) {
        let archived = match files {
            Files::Archive => archive(env, task, &e.agent)?,
            Files::Keep => Vec::new(),
        };
        ended.push(Ended {
            agent: e.agent.clone(),
            status: if e.was.is_active() {
                e.cause.status()
            } else {
                e.was.clone()
            },
            kill: kills.remove(&e.agent).unwrap_or_default(),
            prompt_removed,
            checkout: retired.or_else(|| e.checkout.clone()),
            archived,
        });
    }
    Ok(ended)
}

/// Moves `agent`'s log, progress and findings files into `<task>/archive/`.
fn archive(env: &Deployer<'_>, task: &TaskId, agent: &AgentId) -> Result<Vec<Utf8PathBuf>, Error> {
    let files = env.layout.tracked_files(task, agent);
    let mut moved = Vec::new();
    for path in [files.log_file, files.progress_file, files.findings_file] {
        if !path.exists() {
            continue;
        }
        crate::private::create_dir_all(&env.layout.archive_dir(task))?;
        let to = env.layout.archived(task, &path);
        fs_err::rename(&path, &to)?;
        moved.push(to);
    }
    Ok(moved)
}
