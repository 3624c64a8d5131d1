//! The one error type of deploy-core, shared by the traits so that every implementation reports
//! limits, unknown ids and dead agents the same way.

use std::time::Duration;

use camino::Utf8PathBuf;

use crate::id::{AgentId, HostName, IdKind, TaskId};
use crate::limits::LimitExceeded;
use crate::record::ExitStatus;

/// A boxed error from an implementation of one of the traits.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in deploy-core and in the implementations of its traits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An id did not match `^[A-Za-z0-9_-]{1,64}$`.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// Which id.
        kind: IdKind,
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The request is malformed (empty command, empty prompt, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A limit of the task refused the agent.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The task does not exist.
    #[error("unknown task {0}")]
    UnknownTask(TaskId),
    /// The agent does not exist in the task.
    #[error("unknown agent {agent} in task {task}")]
    UnknownAgent {
        /// The task looked in.
        task: TaskId,
        /// The agent looked for.
        agent: AgentId,
    },
    /// The parent named by a request does not exist in the task.
    #[error("unknown parent agent {parent} in task {task}")]
    UnknownParent {
        /// The task looked in.
        task: TaskId,
        /// The missing parent.
        parent: AgentId,
    },
    /// An agent id is already registered in the task.
    #[error("agent {agent} is already registered in task {task}")]
    DuplicateAgent {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent ended inside its startup grace window.
    #[error("agent {agent} {status} within its startup grace of {} ms{}", grace.as_millis(), format_lines(last_lines))]
    AgentDied {
        /// The agent.
        agent: AgentId,
        /// Its exit status or signal.
        status: ExitStatus,
        /// The last lines it printed.
        last_lines: Vec<String>,
        /// The grace window it died in.
        grace: Duration,
    },
    /// The agent's session disappeared inside its startup grace window.
    #[error("agent {agent}: its session vanished within its startup grace of {} ms", grace.as_millis())]
    SessionVanished {
        /// The agent.
        agent: AgentId,
        /// The grace window.
        grace: Duration,
    },
    /// An agent's session is placed where this deployer does not look: it is not judged.
    #[error(
        "agent {agent} runs on {placement}, where this fleet ({looking}) does not look: run fleet with that server's socket"
    )]
    Elsewhere {
        /// The agent.
        agent: AgentId,
        /// Where its session was placed.
        placement: String,
        /// Where this fleet looks.
        looking: String,
    },
    /// The agent runs on another host than this fleet's: only that host acts on it.
    #[error(
        "agent {agent} runs on host {host}; this fleet runs on host {here} and acts only on its own agents: run fleet on {host}"
    )]
    OtherHost {
        /// The agent.
        agent: AgentId,
        /// The host it runs on.
        host: HostName,
        /// This fleet's host.
        here: HostName,
    },
    /// A signal asked the deploying process to stop; the deployment was rolled back.
    #[error("interrupted by signal {signal}{}", signal_suffix(*signal))]
    Interrupted {
        /// The signal (2 for SIGINT, 15 for SIGTERM).
        signal: i32,
    },
    /// A file operation failed; the message names the path (fs-err).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A lock could not be taken in time.
    #[error("timed out after {} ms waiting for the lock on {path}", waited.as_millis())]
    LockTimeout {
        /// The lock file.
        path: Utf8PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// A journal record could not be read.
    #[error("corrupt intent {path}: {reason}")]
    CorruptIntent {
        /// The intent file.
        path: Utf8PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The OS random source failed while generating an id.
    #[error("cannot generate an id: the random source failed: {0}")]
    Random(String),
    /// A session backend failed.
    #[error("session backend: {0}")]
    Backend(#[source] BoxError),
    /// A registry failed.
    #[error("registry: {0}")]
    Registry(#[source] BoxError),
    /// A checkout (git worktree and branch) could not be made or removed.
    #[error("worktree: {0}")]
    Checkout(#[source] BoxError),
    /// A prompt store or intent journal failed.
    #[error("store: {0}")]
    Store(#[source] BoxError),
}

fn signal_suffix(signal: i32) -> &'static str {
    match signal {
        2 => " (SIGINT)",
        15 => " (SIGTERM)",
        1 => " (SIGHUP)",
        _ => "",
    }
}

fn format_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it printed nothing".to_owned();
    }
    let mut out = String::from("; its last output:");
    for line in lines {
        out.push_str("\n    | ");
        out.push_str(line);
    }
    out
}
