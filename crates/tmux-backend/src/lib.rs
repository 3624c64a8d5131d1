//! # tmux-backend
//!
//! deploy-core's [`SessionBackend`] over the tmux CLI.
//!
//! - **Its own server**: `-L fleet` (or `-S <path>`) and `-f /dev/null`, so fleet shares no
//!   options, environment or reaper with the user's tmux.
//! - **Exact targets**: every target is `=name` or `=name:`; tmux's prefix and glob matching
//!   never picks a session.
//! - **No parsing of user text**: the agent runs from argv through a fixed
//!   [`wrapper`]; arguments that end in `;` are escaped for tmux's argv parser; the workdir's `#`
//!   is doubled because tmux expands formats in `-c`; the prompt travels in its file, so no
//!   command line comes near tmux's 16 KiB limit.
//! - **One invocation starts an agent**: `new-session` with name, workdir, environment
//!   (`FLEET_AGENT_ID` plus the request's), then `remain-on-exit on` for its pane and the tags
//!   `@fleet_agent_id`, `@fleet_task_id`, `@fleet_log` — so even an agent that dies at once
//!   leaves its status readable.
//! - **Verified kills**: kill the session, then SIGTERM and after a grace SIGKILL every process
//!   of the agent — its tree and every process carrying its `FLEET_AGENT_ID` — through pidfds
//!   checked against start times, never the tmux server; then verify none is left.
//! - **"No server" means no sessions**; every other tmux failure is an error.

#![warn(missing_docs)]

mod cmd;
mod floor;
pub mod gate;
mod kill;
mod start;
pub mod wrapper;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{
    AgentId, ExitStatus, KillReport, Liveness, SessionBackend, SessionInfo, SessionListing,
    SessionName, SessionSpec, TaskId,
};

pub use crate::cmd::Server;
use crate::cmd::{MAX_COMMAND_BYTES, Reply};
pub use crate::floor::Floor;

/// The default socket name (`tmux -L fleet`).
pub const DEFAULT_SOCKET: &str = "fleet";
/// How many lines of output a dead agent's report carries.
pub const LAST_LINES: usize = 20;

/// The tmux backend's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// tmux could not be run at all.
    #[error("cannot run tmux ({binary}): {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// tmux did not answer in time.
    #[error("tmux {command} timed out after {} ms", waited.as_millis())]
    Timeout {
        /// The tmux command(s).
        command: String,
        /// How long we waited.
        waited: Duration,
    },
    /// tmux answered with an error.
    #[error("tmux {command} failed (exit {}): {stderr}", code.map_or("signal".into(), |c| c.to_string()))]
    Tmux {
        /// The tmux command(s).
        command: String,
        /// Its exit status.
        code: Option<i32>,
        /// What it printed.
        stderr: String,
    },
    /// tmux printed something we do not understand.
    #[error("unexpected output from tmux {command}: {output:?}")]
    Parse {
        /// The tmux command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// `open_gate` for a session this backend did not start gated (or already let run).
    #[error(
        "no gate is held for session {session}: it was not started by this process, or already let run"
    )]
    NoGate {
        /// The session.
        session: SessionName,
    },
    /// The agent's wrapper never reached its gate.
    #[error("the wrapper of session {session} did not reach its gate within {} ms (it ended, or never started)", waited.as_millis())]
    GateNotReached {
        /// The session.
        session: SessionName,
        /// How long we waited.
        waited: Duration,
    },
    /// The working directory is not a directory.
    #[error("workdir {path} does not exist or is not a directory")]
    Workdir {
        /// The path.
        path: Utf8PathBuf,
    },
    /// The command line would exceed what tmux accepts.
    #[error(
        "the tmux command line for session {session} would be {bytes} bytes, over the {MAX_COMMAND_BYTES}-byte limit (shorten the command or its environment)"
    )]
    TooLong {
        /// The session.
        session: SessionName,
        /// Its size.
        bytes: usize,
    },
    /// A backend for adopted sessions was asked to start one.
    #[error(
        "the backend for sessions another orchestrator started ({server}) never starts one (session {session})"
    )]
    Adopting {
        /// Its server.
        server: String,
        /// The session.
        session: SessionName,
    },
    /// The session exists but belongs to another agent (or to no fleet agent).
    #[error("session {session} is tagged for agent {tagged:?}, not {agent}: refusing to kill it")]
    NotOurs {
        /// The session.
        session: SessionName,
        /// Its tag (empty: untagged).
        tagged: String,
        /// The agent we were asked to kill.
        agent: AgentId,
    },
    /// Processes survived SIGKILL.
    #[error("agent {agent}: processes still alive after SIGKILL: {pids:?}")]
    Survivors {
        /// The agent.
        agent: AgentId,
        /// The survivors.
        pids: Vec<u32>,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<Error> for deploy_core::Error {
    fn from(e: Error) -> Self {
        deploy_core::Error::Backend(Box::new(e))
    }
}

/// The session backend over tmux.
#[derive(Debug, Clone)]
pub struct TmuxBackend {
    tmux: OsString,
    server: Server,
    wrapper: Vec<String>,
    kill_grace: Duration,
    timeout: Duration,
    /// The writer's end of the gate of every session this backend started and has not yet let
    /// run (see [`gate`]): closed with the process, so a dead deployer's agents never run.
    /// Clones share them.
    gates: std::sync::Arc<std::sync::Mutex<Gates>>,
    /// Whether this backend looks at sessions another orchestrator started (see
    /// [`TmuxBackend::adopting`]).
    adopting: bool,
    /// The pane process (PID and start time) of every session this backend started and has not
    /// seen end: while it runs, the session is there and its pane alive — a probe needs no tmux
    /// call (a session's kill ends its pane's process; the wrapper installs no handler).
    started: std::sync::Arc<std::sync::Mutex<Started>>,
}

/// The pane process of each session started here.
type Started = std::collections::HashMap<SessionName, procs::Proc>;

/// The held gates, by session: the writer's end and the FIFO's path.
type Gates = std::collections::HashMap<SessionName, (std::fs::File, std::path::PathBuf)>;

/// What one tmux line of `list-panes` tells about a session's pane.
struct PaneState {
    dead: bool,
    status: Option<i32>,
    signal: Option<i32>,
    pane_pid: u32,
    server_pid: u32,
    agent_tag: String,
    log: String,
}

impl TmuxBackend {
    /// A backend on `server`, starting agents under `wrapper` (program and leading arguments:
    /// `["/path/tmux-agent-wrap"]`, `["/path/fleet-agent-wrap"]`, or `["/path/fleet",
    /// "agent-wrap"]` — any program that calls [`wrapper::main`]).
    pub fn new(server: Server, wrapper: Vec<String>) -> Self {
        TmuxBackend {
            tmux: OsString::from("tmux"),
            server,
            wrapper,
            kill_grace: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            gates: std::sync::Arc::default(),
            adopting: false,
            started: std::sync::Arc::default(),
        }
    }

    /// A backend for the sessions another orchestrator started on `server` — the Python
    /// server's `agent_<id>` sessions, untagged, on the user's default tmux server
    /// ([`Server::Default`]). It touches only the session it is named, by exact name: `probe`
    /// reads it; `kill` ends that session and its pane's process tree, verified, and refuses a
    /// session fleet tagged (that one is fleet's own, on its own backend); `list` is empty, so
    /// no other session of that server is ever looked at, let alone killed as an orphan; it
    /// never starts a session nor removes a file.
    pub fn adopting(server: Server) -> Self {
        TmuxBackend {
            adopting: true,
            ..TmuxBackend::new(server, Vec::new())
        }
    }

    fn started(&self) -> std::sync::MutexGuard<'_, Started> {
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `session` was started here and its pane process still runs (`false`: not
    /// started here, or seen ended — ask tmux).
    fn runs_here(&self, session: &SessionName) -> bool {
        let mut started = self.started();
        let alive = started.get(session).is_some_and(procs::alive);
        if !alive {
            started.remove(session);
        }
        alive
    }

    fn gates(&self) -> std::sync::MutexGuard<'_, Gates> {
        self.gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets the gated agent of `session` run, once its wrapper holds the gate.
    fn do_open_gate(&self, session: &SessionName) -> Result<(), Error> {
        let Some((writer, path)) = self.gates().remove(session) else {
            return Err(Error::NoGate {
                session: session.clone(),
            });
        };
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        while !gate::reached(&path) {
            if start.elapsed() > self.timeout {
                let _ = fs_err::remove_file(&path);
                return Err(Error::GateNotReached {
                    session: session.clone(),
                    waited: start.elapsed(),
                });
            }
            // A wrapper that died before its gate will never reach it.
            if start.elapsed() > Duration::from_millis(50)
                && self.pane_state(session)?.is_none_or(|p| p.dead)
            {
                let _ = fs_err::remove_file(&path);
                return Err(Error::GateNotReached {
                    session: session.clone(),
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        gate::open(writer).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot open the gate {}: {e}", path.display()),
            ))
        })
    }

    /// Uses this tmux binary instead of `tmux` from `PATH`.
    pub fn with_tmux_binary(mut self, tmux: impl Into<OsString>) -> Self {
        self.tmux = tmux.into();
        self
    }

    /// How long a killed agent has between SIGTERM and SIGKILL (default 2 s).
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How long one tmux call may take (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server this backend talks to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    fn tmux(&self, args: &[String]) -> Result<Reply, Error> {
        cmd::run(&self.tmux, &self.server, args, self.timeout)
    }

    fn failed(args: &[String], code: Option<i32>, stderr: String) -> Error {
        Error::Tmux {
            command: cmd::describe(args),
            code,
            stderr,
        }
    }

    /// Runs a command about one target: its output, or `None` when there is no server or no
    /// such target.
    fn query(&self, args: &[String]) -> Result<Option<String>, Error> {
        match self.tmux(args)? {
            Reply::Ok(out) => Ok(Some(out)),
            Reply::NoServer | Reply::NotFound(_) => Ok(None),
            Reply::Failed { code, stderr, .. } => Err(Self::failed(args, code, stderr)),
        }
    }

    /// Runs a command about the server: its output, or `None` when there is no server. Having
    /// no target, it cannot miss one: "can't find" is an error here.
    fn query_server(&self, args: &[String]) -> Result<Option<String>, Error> {
        match self.tmux(args)? {
            Reply::Ok(out) => Ok(Some(out)),
            Reply::NoServer => Ok(None),
            Reply::NotFound(e) => Err(Self::failed(args, Some(1), e)),
            Reply::Failed { code, stderr, .. } => Err(Self::failed(args, code, stderr)),
        }
    }

    /// Kills this backend's whole tmux server (tests and teardown only). No server is fine.
    pub fn kill_server(&self) -> Result<(), Error> {
        self.query_server(&["kill-server".to_owned()])?;
        Ok(())
    }

    /// The PID of the tmux server, if one runs.
    pub fn server_pid(&self) -> Result<Option<u32>, Error> {
        let args = vec!["display-message".into(), "-p".into(), "#{pid}".into()];
        self.query_server(&args)?
            .map(|out| {
                out.trim().parse().map_err(|_| Error::Parse {
                    command: "display-message".into(),
                    output: out,
                })
            })
            .transpose()
    }

    /// The probe of one session: its pane's state and tags.
    pub(crate) fn probe_args(session: &SessionName) -> Vec<String> {
        vec![
            "list-panes".into(),
            "-s".into(),
            "-t".into(),
            // list-panes takes a window target: `=name` alone would fall back to matching
            // window names (and find `agent_a-10` for `agent_a-1`); `=name:` is exact.
            format!("={session}:"),
            "-F".into(),
            "#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{pane_pid}\t#{pid}\t#{@fleet_agent_id}\t#{@fleet_log}".into(),
        ]
    }

    fn pane_state(&self, session: &SessionName) -> Result<Option<PaneState>, Error> {
        let args = Self::probe_args(session);
        let Some(out) = self.query(&args)? else {
            return Ok(None);
        };
        let line = out.lines().next().unwrap_or_default();
        let f: Vec<&str> = line.splitn(7, '\t').collect();
        let parse_err = || Error::Parse {
            command: "list-panes".into(),
            output: out.clone(),
        };
        if f.len() != 7 {
            return Err(parse_err());
        }
        Ok(Some(PaneState {
            dead: f[0] == "1",
            status: f[1].parse().ok(),
            signal: f[2].parse().ok(),
            pane_pid: f[3].parse().map_err(|_| parse_err())?,
            server_pid: f[4].parse().map_err(|_| parse_err())?,
            agent_tag: f[5].to_owned(),
            log: decode_log_tag(f[6]),
        }))
    }

    /// The one listing of every session, with its tags and its pane's state.
    pub(crate) fn list_args() -> Vec<String> {
        vec![
            "list-sessions".into(),
            "-F".into(),
            "#{session_name}\t#{@fleet_agent_id}\t#{@fleet_task_id}\t#{session_created}\t#{pane_dead}\t#{pane_dead_status}\t#{pane_dead_signal}\t#{@fleet_log}".into(),
        ]
    }

    fn do_list(&self) -> Result<Vec<SessionListing>, Error> {
        let args = Self::list_args();
        let Some(out) = self.query_server(&args)? else {
            return Ok(Vec::new());
        };
        let mut sessions = Vec::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 8 || f[1].is_empty() {
                continue; // not a fleet session
            }
            let (Ok(session), Ok(agent)) = (SessionName::parse(f[0]), AgentId::parse(f[1])) else {
                continue;
            };
            sessions.push(SessionListing {
                session,
                agent,
                task: TaskId::parse(f[2]).ok(),
                exited: (f[4] == "1").then(|| {
                    let log = decode_log_tag(f[7]);
                    exit_of(f[5].parse().ok(), f[6].parse().ok(), Utf8Path::new(&log))
                }),
                created: f[3].parse().unwrap_or(0),
            });
        }
        Ok(sessions)
    }

    fn do_capture(&self, session: &SessionName, lines: usize) -> Result<Vec<String>, Error> {
        let args = vec![
            "capture-pane".into(),
            "-p".into(),
            "-J".into(),
            "-t".into(),
            format!("={session}:"),
            "-S".into(),
            format!("-{lines}"),
        ];
        let Some(out) = self.query(&args)? else {
            return Ok(Vec::new());
        };
        let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
        while v.last().is_some_and(|l| l.trim().is_empty()) {
            v.pop();
        }
        let skip = v.len().saturating_sub(lines);
        Ok(v.split_off(skip))
    }
}

fn exit_status(status: Option<i32>, signal: Option<i32>) -> ExitStatus {
    match (signal, status) {
        (Some(sig), _) => ExitStatus::Signal(sig),
        (None, Some(code)) => ExitStatus::Code(code),
        (None, None) => ExitStatus::Unknown,
    }
}

/// How a dead pane's agent ended: tmux's record, else the wrapper's status file beside `log`.
fn exit_of(status: Option<i32>, signal: Option<i32>, log: &Utf8Path) -> ExitStatus {
    match exit_status(status, signal) {
        ExitStatus::Unknown => {
            wrapper::read_status(log.as_std_path()).unwrap_or(ExitStatus::Unknown)
        }
        known => known,
    }
}

/// The log path as its tag holds it: hex, so that no byte a path can hold (a tab, a newline)
/// ever reaches the tab-separated, line-based output fleet parses from tmux.
fn encode_log_tag(log: &Utf8Path) -> String {
    log.as_str().bytes().map(|b| format!("{b:02x}")).collect()
}

/// The log path from its tag: hex as [`encode_log_tag`] writes it, or — tags written by an
/// earlier fleet — the path itself (absolute, so never valid hex).
fn decode_log_tag(tag: &str) -> String {
    if tag.starts_with('/') || !tag.len().is_multiple_of(2) {
        return tag.to_owned();
    }
    let bytes: Option<Vec<u8>> = (0..tag.len())
        .step_by(2)
        .map(|i| {
            tag.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| tag.to_owned())
}

/// How long a probe waits for tmux to learn the status of a pane it already shows as dead.
const STATUS_WAIT: Duration = Duration::from_secs(1);

impl SessionBackend for TmuxBackend {
    fn start(&self, spec: &SessionSpec) -> Result<SessionInfo, deploy_core::Error> {
        if self.adopting {
            return Err(Error::Adopting {
                server: self.server.to_string(),
                session: spec.session.clone(),
            }
            .into());
        }
        Ok(self.do_start(spec)?)
    }

    fn probe(&self, session: &SessionName) -> Result<Liveness, deploy_core::Error> {
        // A session started here whose pane process runs is alive: no tmux call.
        if self.runs_here(session) {
            return Ok(Liveness::Alive);
        }
        // tmux marks a pane dead when its terminal closes and learns the exit status when it
        // reaps the process, a moment later (and, rarely, never): the wrapper's status file
        // answers first; otherwise wait briefly for tmux's.
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let Some(p) = self.pane_state(session)? else {
                return Ok(Liveness::Missing);
            };
            if !p.dead {
                return Ok(Liveness::Alive);
            }
            let log = Utf8Path::new(&p.log);
            let status = exit_of(p.status, p.signal, log);
            if status != ExitStatus::Unknown || start.elapsed() >= STATUS_WAIT {
                return Ok(Liveness::Exited {
                    status,
                    last_lines: activity::agent_file::tail_lines(log.as_std_path(), LAST_LINES),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn open_gate(&self, session: &SessionName) -> Result<(), deploy_core::Error> {
        Ok(self.do_open_gate(session)?)
    }

    fn kill(
        &self,
        session: &SessionName,
        agent: &AgentId,
    ) -> Result<KillReport, deploy_core::Error> {
        Ok(self.do_kill(session, agent)?)
    }

    fn discard_output(&self, log: &Utf8Path) -> Result<bool, deploy_core::Error> {
        if self.adopting {
            return Ok(false); // another orchestrator's files are its own
        }
        let mut any = false;
        let gate = gate::path_for(log.as_std_path());
        let exit = wrapper::status_file(log.as_std_path());
        for path in [log.as_std_path(), exit.as_path(), gate.as_path()] {
            match std::fs::remove_file(path) {
                Ok(()) => any = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("cannot remove {}: {e}", path.display()),
                    ))
                    .into());
                }
            }
        }
        Ok(any)
    }

    fn kill_all(
        &self,
        targets: &[(SessionName, AgentId)],
    ) -> Result<Vec<KillReport>, deploy_core::Error> {
        Ok(self.do_kill_all(targets)?)
    }

    fn list(&self) -> Result<Vec<SessionListing>, deploy_core::Error> {
        if self.adopting {
            return Ok(Vec::new());
        }
        Ok(self.do_list()?)
    }

    fn run_detached(&self, label: &SessionName, argv: &[String]) -> Result<(), deploy_core::Error> {
        if self.adopting {
            return Err(Error::Adopting {
                server: self.server.to_string(),
                session: label.clone(),
            }
            .into());
        }
        Ok(self.do_run_detached(label, argv)?)
    }

    fn placement(&self) -> String {
        if self.adopting {
            format!("{} (adopted)", self.server)
        } else {
            self.server.to_string()
        }
    }

    fn capture(
        &self,
        session: &SessionName,
        lines: usize,
    ) -> Result<Vec<String>, deploy_core::Error> {
        Ok(self.do_capture(session, lines)?)
    }
}
