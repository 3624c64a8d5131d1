//! An in-memory session backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use deploy_core::{
    AgentId, Error, ExitStatus, KillReport, KilledProcess, Liveness, SessionBackend, SessionInfo,
    SessionListing, SessionName, SessionSpec,
};

use crate::lock;

/// One fake session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSession {
    /// What it was started with.
    pub spec: SessionSpec,
    /// What `start` returned.
    pub info: SessionInfo,
    /// Its state.
    pub liveness: Liveness,
    /// Whether its gate was opened: the agent's program ran.
    pub ran: bool,
}

/// Sessions in a map. A session starts gated (alive, its agent not yet run); once its gate is
/// opened the agent's behaviour is chosen by its program (`argv[0]`):
///
/// - `fake-exit N`: it has exited with status N by the first probe, printing `exiting with N`;
/// - `fake-signal N`: a signal N ended it;
/// - anything else: it stays alive until killed.
#[derive(Debug)]
pub struct FakeBackend {
    sessions: Mutex<BTreeMap<SessionName, FakeSession>>,
    next_id: Mutex<u32>,
    placement: String,
    detached: Mutex<Vec<(SessionName, Vec<String>)>>,
}

impl Default for FakeBackend {
    fn default() -> Self {
        FakeBackend::placed("fake")
    }
}

impl FakeBackend {
    /// No sessions; placement `fake`.
    pub fn new() -> Self {
        FakeBackend::default()
    }

    /// No sessions, with its own [`placement`](SessionBackend::placement): a second fake stands
    /// for another server (the Python server's default tmux server, say).
    pub fn placed(placement: &str) -> Self {
        FakeBackend {
            sessions: Mutex::default(),
            next_id: Mutex::default(),
            placement: placement.to_owned(),
            detached: Mutex::default(),
        }
    }

    /// The liveness of `session`, without counting a call.
    pub fn probe_now(&self, session: &SessionName) -> Liveness {
        lock(&self.sessions)
            .get(session)
            .map_or(Liveness::Missing, |s| s.liveness.clone())
    }

    /// What [`SessionBackend::run_detached`] was asked to run (never run: a fake runs nothing).
    pub fn detached(&self) -> Vec<(SessionName, Vec<String>)> {
        lock(&self.detached).clone()
    }

    /// How many sessions exist.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Every session.
    pub fn sessions(&self) -> Vec<FakeSession> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Makes the agent of `session` exit now (as if it finished or crashed).
    pub fn end_agent(&self, session: &SessionName, status: ExitStatus) {
        if let Some(s) = lock(&self.sessions).get_mut(session) {
            s.liveness = Liveness::Exited {
                status,
                last_lines: vec![format!("ended: {status}")],
            };
        }
    }
}

fn behaviour(argv: &[String]) -> Liveness {
    let code = || argv.get(1).and_then(|a| a.parse::<i32>().ok()).unwrap_or(1);
    match argv.first().map(String::as_str) {
        Some("fake-exit") => Liveness::Exited {
            status: ExitStatus::Code(code()),
            last_lines: vec![format!("exiting with {}", code())],
        },
        Some("fake-signal") => Liveness::Exited {
            status: ExitStatus::Signal(code()),
            last_lines: Vec::new(),
        },
        _ => Liveness::Alive,
    }
}

impl SessionBackend for FakeBackend {
    fn start(&self, spec: &SessionSpec) -> Result<SessionInfo, Error> {
        let mut sessions = lock(&self.sessions);
        if sessions.contains_key(&spec.session) {
            return Err(Error::Backend(
                format!("duplicate session: {}", spec.session).into(),
            ));
        }
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            *next
        };
        let info = SessionInfo {
            session: spec.session.clone(),
            session_id: format!("${id}"),
            pane_id: format!("%{id}"),
            pane_pid: 10_000 + id,
        };
        sessions.insert(
            spec.session.clone(),
            FakeSession {
                spec: spec.clone(),
                info: info.clone(),
                liveness: Liveness::Alive,
                ran: false,
            },
        );
        Ok(info)
    }

    fn open_gate(&self, session: &SessionName) -> Result<(), Error> {
        match lock(&self.sessions).get_mut(session) {
            Some(s) if !s.ran && s.liveness == Liveness::Alive => {
                s.ran = true;
                s.liveness = behaviour(&s.spec.argv);
                Ok(())
            }
            Some(s) if s.ran => Err(Error::Backend(
                format!("the gate of {session} was already opened").into(),
            )),
            Some(_) => Err(Error::Backend(
                format!("the wrapper of {session} ended before its gate").into(),
            )),
            None => Err(Error::Backend(format!("no session {session}").into())),
        }
    }

    fn probe(&self, session: &SessionName) -> Result<Liveness, Error> {
        Ok(self.probe_now(session))
    }

    fn kill(&self, session: &SessionName, agent: &AgentId) -> Result<KillReport, Error> {
        let mut sessions = lock(&self.sessions);
        match sessions.get(session) {
            Some(s) if &s.spec.agent != agent => {
                return Err(Error::Backend(
                    format!("session {session} belongs to {}, not {agent}", s.spec.agent).into(),
                ));
            }
            _ => {}
        }
        let removed = sessions.remove(session);
        let killed = match &removed {
            Some(s) if s.liveness == Liveness::Alive => vec![KilledProcess {
                pid: s.info.pane_pid,
                name: s.spec.argv.first().cloned().unwrap_or_default(),
                signal: 15,
            }],
            _ => Vec::new(),
        };
        Ok(KillReport {
            session_existed: removed.is_some(),
            killed,
        })
    }

    fn list(&self) -> Result<Vec<SessionListing>, Error> {
        Ok(lock(&self.sessions)
            .values()
            .map(|s| SessionListing {
                session: s.spec.session.clone(),
                agent: s.spec.agent.clone(),
                task: Some(s.spec.task.clone()),
                exited: match &s.liveness {
                    Liveness::Exited { status, .. } => Some(*status),
                    _ => None,
                },
                created: 0,
            })
            .collect())
    }

    fn placement(&self) -> String {
        self.placement.clone()
    }

    fn run_detached(&self, label: &SessionName, argv: &[String]) -> Result<(), Error> {
        lock(&self.detached).push((label.clone(), argv.to_vec()));
        Ok(())
    }

    fn capture(&self, session: &SessionName, lines: usize) -> Result<Vec<String>, Error> {
        Ok(match self.probe_now(session) {
            Liveness::Exited { last_lines, .. } => {
                let skip = last_lines.len().saturating_sub(lines);
                last_lines.into_iter().skip(skip).collect()
            }
            _ => Vec::new(),
        })
    }
}
