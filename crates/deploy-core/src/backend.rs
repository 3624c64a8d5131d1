//! The session backend: where agents run. tmux-backend implements it over tmux; testkit fakes it.

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::id::{AgentId, SessionName, TaskId};
use crate::record::ExitStatus;

/// An argument equal to this is replaced by the prompt file's path, and stdin is then not
/// redirected from the prompt file.
pub const PROMPT_FILE_PLACEHOLDER: &str = "{prompt_file}";

/// The environment variable every agent process carries, with its agent id.
pub const AGENT_ID_ENV: &str = "FLEET_AGENT_ID";

/// Everything a backend needs to start one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// The exact session name.
    pub session: SessionName,
    /// The agent (tagged on the session and in the environment).
    pub agent: AgentId,
    /// The task (tagged on the session).
    pub task: TaskId,
    /// The agent command as argv; never parsed by a shell.
    pub argv: Vec<String>,
    /// The working directory.
    pub workdir: Utf8PathBuf,
    /// Extra environment, besides [`AGENT_ID_ENV`].
    pub env: Vec<(String, String)>,
    /// The prompt: on stdin, or substituted for [`PROMPT_FILE_PLACEHOLDER`].
    pub prompt_file: Utf8PathBuf,
    /// Where stdout and stderr are kept.
    pub log_file: Utf8PathBuf,
}

impl SessionSpec {
    /// Whether an argument asks for the prompt file's path (then stdin is not the prompt).
    pub fn prompt_as_argument(&self) -> bool {
        self.argv.iter().any(|a| a == PROMPT_FILE_PLACEHOLDER)
    }

    /// The argv with [`PROMPT_FILE_PLACEHOLDER`] replaced by the prompt file's path.
    pub fn resolved_argv(&self) -> Vec<String> {
        self.argv
            .iter()
            .map(|a| {
                if a == PROMPT_FILE_PLACEHOLDER {
                    self.prompt_file.to_string()
                } else {
                    a.clone()
                }
            })
            .collect()
    }
}

/// A started session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Its name.
    pub session: SessionName,
    /// The backend's id for it (tmux: `$3`).
    pub session_id: String,
    /// The pane the agent runs in (tmux: `%3`).
    pub pane_id: String,
    /// The PID of the pane's first process.
    pub pane_pid: u32,
}

/// Whether an agent is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Liveness {
    /// Its process runs.
    Alive,
    /// Its process ended; the session keeps its status.
    Exited {
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its output.
        last_lines: Vec<String>,
    },
    /// No such session.
    Missing,
}

/// A process a kill signalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KilledProcess {
    /// Its PID.
    pub pid: u32,
    /// Its command name.
    pub name: String,
    /// The last signal fleet sent it, 15 or 9; or 1 when fleet did not have to: it ended with
    /// its session's hang-up, or its wrapper ended it as what its agent left running.
    pub signal: i32,
}

/// What a verified kill did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KillReport {
    /// Whether the session existed.
    pub session_existed: bool,
    /// The agent's processes that were signalled (none are left when the kill returns `Ok`).
    pub killed: Vec<KilledProcess>,
}

/// One fleet-tagged session, as [`SessionBackend::list`] sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionListing {
    /// Its name.
    pub session: SessionName,
    /// Its agent tag.
    pub agent: AgentId,
    /// Its task tag, if set.
    pub task: Option<TaskId>,
    /// `None` while alive, the exit status once its pane is dead.
    pub exited: Option<ExitStatus>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// Runs agents in named sessions.
///
/// Contract for implementations: a method that returns `Err` changed nothing it could undo
/// itself; `kill` and `probe` of a missing session are not errors; "no server" means no sessions.
pub trait SessionBackend: Send + Sync {
    /// Starts the session of `spec`, tagged with its agent and task, its agent **gated**: it
    /// does not execute until [`open_gate`](Self::open_gate). If the caller never opens the
    /// gate — a rollback, or the caller's death — the agent never runs.
    fn start(&self, spec: &SessionSpec) -> Result<SessionInfo, Error>;
    /// Lets the gated agent of a session this backend started run.
    fn open_gate(&self, session: &SessionName) -> Result<(), Error>;
    /// Whether the agent of `session` runs.
    fn probe(&self, session: &SessionName) -> Result<Liveness, Error>;
    /// Kills `session` and every process of `agent`, and verifies none is left.
    fn kill(&self, session: &SessionName, agent: &AgentId) -> Result<KillReport, Error>;
    /// [`kill`](Self::kill) of many agents at once (reconcile of many stale agents); a backend
    /// may do it in fewer calls. The reports are in the order of `targets`.
    fn kill_all(&self, targets: &[(SessionName, AgentId)]) -> Result<Vec<KillReport>, Error> {
        targets
            .iter()
            .map(|(session, agent)| self.kill(session, agent))
            .collect()
    }
    /// Removes what the agent of a session that is gone wrote — its log `log` and whatever the
    /// backend keeps beside it — and says whether there was anything. A rollback calls it after
    /// its kill: a deployment that failed leaves nothing (its error quotes the last lines). A
    /// backend that keeps no output has nothing to remove.
    fn discard_output(&self, log: &Utf8Path) -> Result<bool, Error> {
        let _ = log;
        Ok(false)
    }
    /// Every fleet-tagged session, in one call.
    fn list(&self) -> Result<Vec<SessionListing>, Error>;
    /// Runs `argv` detached from the caller and from every agent — outside every process tree a
    /// kill ends — named `label`; while one runs under `label`, another is not started (and that
    /// is not an error). What an agent asks for at its own end (its final report, through the
    /// `fleet mcp` it runs) is done by such a process: one inside the agent's tree would die with
    /// the agent it is ending.
    fn run_detached(&self, label: &SessionName, argv: &[String]) -> Result<(), Error>;
    /// Where this backend places sessions (tmux: `tmux -L fleet`), recorded with every agent it
    /// starts ([`AgentRecord::placement`](crate::AgentRecord::placement)) so that a later run
    /// looks for the agent where it is — and never judges an agent it cannot see.
    fn placement(&self) -> String;
    /// The last `lines` lines of the session's output.
    fn capture(&self, session: &SessionName, lines: usize) -> Result<Vec<String>, Error>;
}
