//! The deployment transaction as a typestate.
//!
//! `Deployer::begin` → [`PromptWritten`] → [`SessionStarted`] → [`Registered`] → [`Live`].
//! Each state owns what the deployment has acquired so far. A transition takes `self` and
//! returns the next state, or a [`DeployFailure`] that has already rolled back, in reverse
//! order, everything the state owned. Dropping a state that is not Live rolls back too
//! (best effort, logged, never panics), so an early `?`, a panic or a forgotten value cannot
//! leak a resource.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use crate::backend::{Liveness, SessionBackend, SessionInfo, SessionSpec};
use crate::failure::{CleanupEntry, CleanupOutcome, CleanupReport, DeployFailure, Resource, Step};
use crate::id::{AgentId, SessionName, TaskId};
use crate::journal::{IntentJournal, IntentLease, IntentRecord};
use crate::layout::Layout;
use crate::limits::{self, Candidate};
use crate::prompt::{PromptStore, prompt_preview};
use crate::record::{AgentRecord, Registration, TrackedFiles};
use crate::registry::Registry;
use crate::request::DeployRequest;
use crate::{Error, failpoint, timestamp};

/// The services a deployment talks to. Copy it freely: it only borrows.
///
/// The services are trait objects, not generic parameters: a deployment's cost is process
/// starts and fsyncs (milliseconds), next to which a virtual call (nanoseconds) is nothing,
/// while generics would put four type parameters on every state type and make the backend a
/// compile-time choice; callers such as the CLI pick backends (and fault-injecting wrappers) at
/// run time.
#[derive(Clone, Copy)]
pub struct Deployer<'a> {
    /// Where files live.
    pub layout: &'a Layout,
    /// Where agents run.
    pub backend: &'a dyn SessionBackend,
    /// Where agents are recorded.
    pub registry: &'a dyn Registry,
    /// Where prompts are written.
    pub prompts: &'a dyn PromptStore,
    /// Where intents are journaled.
    pub journal: &'a dyn IntentJournal,
}

impl fmt::Debug for Deployer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployer")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// What a deployment (or a reconcile of an abandoned one) holds and must release.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) task: TaskId,
    pub(crate) agent: AgentId,
    pub(crate) session_name: SessionName,
    pub(crate) registered: bool,
    pub(crate) session: bool,
    pub(crate) prompt: Option<Utf8PathBuf>,
    pub(crate) intent: Option<Box<dyn IntentLease>>,
}

impl Held {
    fn is_empty(&self) -> bool {
        !self.registered && !self.session && self.prompt.is_none() && self.intent.is_none()
    }
}

/// How a guarded cleanup call went wrong.
#[derive(Debug)]
enum Fault {
    Failed(Error),
    Panicked(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Failed(e) => e.fmt(f),
            Fault::Panicked(msg) => write!(f, "panicked: {msg}"),
        }
    }
}

/// Runs `f`, catching a panic: cleanup runs in Drop, where a second panic would abort.
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Fault> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Fault::Failed(e)),
        Err(panic) => Err(Fault::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned()),
        )),
    }
}

/// Releases everything `held` names, in reverse creation order. The intent goes last, and only
/// if everything else was released: otherwise it is kept (unlocked) so that reconcile finishes
/// the job.
pub(crate) fn undo(env: &Deployer<'_>, held: &mut Held) -> CleanupReport {
    let mut report = CleanupReport::default();
    let mut push = |resource: Resource, outcome: CleanupOutcome| {
        report.entries.push(CleanupEntry { resource, outcome });
    };
    if std::mem::take(&mut held.registered) {
        let outcome = match guarded(|| env.registry.unregister(&held.task, &held.agent)) {
            Ok(true) => CleanupOutcome::Released,
            // A task that no longer exists holds no registration.
            Ok(false) | Err(Fault::Failed(Error::UnknownTask(_))) => CleanupOutcome::AlreadyGone,
            Err(e) => CleanupOutcome::NotReleased(e.to_string()),
        };
        push(
            Resource::Registration {
                task: held.task.clone(),
                agent: held.agent.clone(),
            },
            outcome,
        );
    }
    if std::mem::take(&mut held.session) {
        let outcome = match guarded(|| env.backend.kill(&held.session_name, &held.agent)) {
            Ok(r) if r.session_existed || !r.killed.is_empty() => CleanupOutcome::Released,
            Ok(_) => CleanupOutcome::AlreadyGone,
            Err(e) => CleanupOutcome::NotReleased(e.to_string()),
        };
        push(Resource::Session(held.session_name.clone()), outcome);
    }
    if let Some(path) = held.prompt.take() {
        let outcome = match guarded(|| env.prompts.remove(&path)) {
            Ok(true) => CleanupOutcome::Released,
            Ok(false) => CleanupOutcome::AlreadyGone,
            Err(e) => CleanupOutcome::NotReleased(e.to_string()),
        };
        push(Resource::PromptFile(path), outcome);
    }
    if let Some(lease) = held.intent.take() {
        let unreleased = report.unreleased().count();
        let outcome = if unreleased == 0 {
            match guarded(|| lease.finish()) {
                Ok(()) => CleanupOutcome::Released,
                Err(e) => CleanupOutcome::NotReleased(e.to_string()),
            }
        } else {
            drop(lease); // releases the lock, keeps the record: reconcile takes it from here
            CleanupOutcome::NotReleased(format!(
                "kept for `fleet reconcile`, which finishes the rollback: {unreleased} resource(s) above were not released"
            ))
        };
        report.entries.push(CleanupEntry {
            resource: Resource::Intent(held.agent.clone()),
            outcome,
        });
    }
    report
}

fn log_drop_rollback(agent: &AgentId, report: &CleanupReport) {
    if report.is_clean() {
        tracing::info!(%agent, "deployment dropped before Live; rolled back");
    } else {
        tracing::warn!(%agent, "deployment dropped before Live; rollback incomplete\n{report}");
    }
}

/// Everything a deployment knows, plus what it holds. Dropping it rolls back.
struct Txn<'a> {
    env: Deployer<'a>,
    request: DeployRequest,
    files: TrackedFiles,
    started_at: String,
    held: Held,
    session_info: Option<SessionInfo>,
    record: Option<AgentRecord>,
}

impl Txn<'_> {
    fn fail(mut self, step: Step, cause: Error) -> DeployFailure {
        let cleanup = undo(&self.env, &mut self.held);
        DeployFailure {
            step,
            task: self.held.task.clone(),
            agent: Some(self.held.agent.clone()),
            cause: Box::new(cause),
            cleanup,
        }
    }

    fn abort(mut self) -> CleanupReport {
        undo(&self.env, &mut self.held)
    }

    fn spec(&self) -> SessionSpec {
        SessionSpec {
            session: self.held.session_name.clone(),
            agent: self.held.agent.clone(),
            task: self.held.task.clone(),
            argv: self.request.command.clone(),
            workdir: self.request.workdir.clone(),
            env: self.request.env.clone(),
            prompt_file: self.files.prompt_file.clone(),
            log_file: self.files.log_file.clone(),
        }
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let report = undo(&self.env, &mut self.held);
        log_drop_rollback(&self.held.agent, &report);
    }
}

impl fmt::Debug for Txn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

macro_rules! state_accessors {
    ($state:ident) => {
        impl<'a> $state<'a> {
            /// The task.
            pub fn task(&self) -> &TaskId {
                &self.txn.held.task
            }

            /// The agent being deployed.
            pub fn agent(&self) -> &AgentId {
                &self.txn.held.agent
            }

            /// Its session name.
            pub fn session_name(&self) -> &SessionName {
                &self.txn.held.session_name
            }

            /// Its files.
            pub fn files(&self) -> &TrackedFiles {
                &self.txn.files
            }

            /// Rolls back now and says how it went (dropping does the same, but only logs).
            pub fn abort(self) -> CleanupReport {
                self.txn.abort()
            }
        }
    };
}

/// (type state) The intent is journaled and the prompt file written.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct PromptWritten<'a> {
    txn: Txn<'a>,
}

/// (type state) The agent runs in its session.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct SessionStarted<'a> {
    txn: Txn<'a>,
}

/// (type state) The agent is in the task registry and the global index.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct Registered<'a> {
    txn: Txn<'a>,
}

state_accessors!(PromptWritten);
state_accessors!(SessionStarted);
state_accessors!(Registered);

/// A deployed agent: alive after its startup grace, registered, its intent deleted. It owns
/// nothing: the agent now belongs to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    task: TaskId,
    record: AgentRecord,
    session: SessionInfo,
    files: TrackedFiles,
}

impl Live {
    /// The task.
    pub fn task(&self) -> &TaskId {
        &self.task
    }

    /// The committed agent record.
    pub fn record(&self) -> &AgentRecord {
        &self.record
    }

    /// The session it runs in.
    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// Its files.
    pub fn files(&self) -> &TrackedFiles {
        &self.files
    }
}

/// A deployment in any state: the erased form, for reporting and for code that stops at a
/// state chosen at run time.
#[derive(Debug)]
pub enum AnyDeployment<'a> {
    /// See [`PromptWritten`].
    PromptWritten(PromptWritten<'a>),
    /// See [`SessionStarted`].
    SessionStarted(SessionStarted<'a>),
    /// See [`Registered`].
    Registered(Registered<'a>),
    /// See [`Live`].
    Live(Live),
}

impl AnyDeployment<'_> {
    /// The state's name.
    pub fn state(&self) -> &'static str {
        match self {
            AnyDeployment::PromptWritten(_) => "prompt_written",
            AnyDeployment::SessionStarted(_) => "session_started",
            AnyDeployment::Registered(_) => "registered",
            AnyDeployment::Live(_) => "live",
        }
    }

    /// The agent.
    pub fn agent(&self) -> &AgentId {
        match self {
            AnyDeployment::PromptWritten(s) => s.agent(),
            AnyDeployment::SessionStarted(s) => s.agent(),
            AnyDeployment::Registered(s) => s.agent(),
            AnyDeployment::Live(s) => &s.record.id,
        }
    }
}

impl<'a> Deployer<'a> {
    /// Deploys `request` all the way to [`Live`].
    pub fn deploy(&self, request: DeployRequest) -> Result<Live, DeployFailure> {
        self.begin(request)?
            .start_session()?
            .register()?
            .confirm_live()
    }

    /// Validates `request`, checks the task's limits cheaply, journals the intent and writes
    /// the prompt file.
    pub fn begin(&self, request: DeployRequest) -> Result<PromptWritten<'a>, DeployFailure> {
        let task = request.task.clone();
        let early = |step: Step, agent: Option<&AgentId>, cause: Error| DeployFailure {
            step,
            task: task.clone(),
            agent: agent.cloned(),
            cause: Box::new(cause),
            cleanup: CleanupReport::default(),
        };
        request
            .validate()
            .map_err(|e| early(Step::Validate, None, e))?;
        let snapshot = self
            .registry
            .read_task(&task)
            .map_err(|e| early(Step::Precheck, None, e))?;
        limits::check(
            &snapshot,
            Candidate {
                agent_type: &request.agent_type,
                parent: &request.parent,
                allow_duplicate: request.allow_duplicate,
            },
        )
        .map_err(|e| early(Step::Precheck, None, e))?;
        let agent = match &request.agent {
            Some(chosen) => chosen.clone(),
            None => AgentId::generate(&request.agent_type)
                .map_err(|e| early(Step::Precheck, None, e))?,
        };
        let session_name =
            SessionName::for_agent(&agent).map_err(|e| early(Step::Precheck, Some(&agent), e))?;
        let files = self.layout.tracked_files(&task, &agent);
        let intent = IntentRecord {
            version: 1,
            task: task.clone(),
            agent: agent.clone(),
            session: session_name.clone(),
            prompt_file: files.prompt_file.clone(),
            pid: std::process::id(),
            created_at: timestamp(),
        };
        let lease = self
            .journal
            .begin(&intent)
            .map_err(|e| early(Step::WriteIntent, Some(&agent), e))?;
        failpoint("deploy::after_intent");
        let mut txn = Txn {
            env: *self,
            started_at: intent.created_at,
            held: Held {
                task,
                agent,
                session_name,
                registered: false,
                session: false,
                prompt: None,
                intent: Some(lease),
            },
            files,
            request,
            session_info: None,
            record: None,
        };
        match self
            .prompts
            .write(&txn.files.prompt_file, &txn.request.prompt)
        {
            Ok(()) => txn.held.prompt = Some(txn.files.prompt_file.clone()),
            Err(e) => return Err(txn.fail(Step::WritePrompt, e)),
        }
        failpoint("deploy::after_prompt");
        Ok(PromptWritten { txn })
    }
}

impl<'a> PromptWritten<'a> {
    /// Starts the agent in its session.
    pub fn start_session(self) -> Result<SessionStarted<'a>, DeployFailure> {
        let mut txn = self.txn;
        let spec = txn.spec();
        // Held before the call: should the backend panic half-way, unwinding kills the session
        // by its exact name (a kill of a missing session is harmless).
        txn.held.session = true;
        match txn.env.backend.start(&spec) {
            Ok(info) => {
                txn.session_info = Some(info);
                failpoint("deploy::after_session");
                Ok(SessionStarted { txn })
            }
            Err(e) => {
                txn.held.session = false; // contract: an Err left nothing behind
                Err(txn.fail(Step::StartSession, e))
            }
        }
    }
}

impl<'a> SessionStarted<'a> {
    /// The session as the backend started it.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.txn.session_info.as_ref()
    }

    /// Registers the agent; the registry checks the limits again, authoritatively, under its
    /// lock.
    pub fn register(self) -> Result<Registered<'a>, DeployFailure> {
        let mut txn = self.txn;
        let registration = Registration {
            task: txn.held.task.clone(),
            agent: txn.held.agent.clone(),
            agent_type: txn.request.agent_type.clone(),
            parent: txn.request.parent.clone(),
            session: txn.held.session_name.clone(),
            prompt_preview: prompt_preview(&txn.request.prompt),
            tracked_files: txn.files.clone(),
            started_at: txn.started_at.clone(),
            allow_duplicate: txn.request.allow_duplicate,
        };
        txn.held.registered = true; // see start_session
        match txn.env.registry.register(&registration) {
            Ok(record) => {
                txn.record = Some(record);
                failpoint("deploy::after_register");
                Ok(Registered { txn })
            }
            Err(e) => {
                txn.held.registered = false;
                Err(txn.fail(Step::Register, e))
            }
        }
    }
}

impl Registered<'_> {
    /// The registered record.
    pub fn record(&self) -> Option<&AgentRecord> {
        self.txn.record.as_ref()
    }

    /// Waits out the startup grace, probing the agent, and commits: the agent is Live only if
    /// it is still alive at the end of the window. An agent that dies inside it fails the
    /// deployment with its exit status and last output.
    pub fn confirm_live(self) -> Result<Live, DeployFailure> {
        let txn = self.txn;
        let grace = txn.request.startup_grace;
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let remaining = grace.saturating_sub(start.elapsed());
            match txn.env.backend.probe(&txn.held.session_name) {
                Err(e) => return Err(txn.fail(Step::ConfirmLive, e)),
                Ok(Liveness::Exited { status, last_lines }) => {
                    let cause = Error::AgentDied {
                        agent: txn.held.agent.clone(),
                        status,
                        last_lines,
                        grace,
                    };
                    return Err(txn.fail(Step::ConfirmLive, cause));
                }
                Ok(Liveness::Missing) => {
                    let cause = Error::SessionVanished {
                        agent: txn.held.agent.clone(),
                        grace,
                    };
                    return Err(txn.fail(Step::ConfirmLive, cause));
                }
                Ok(Liveness::Alive) if remaining.is_zero() => break,
                Ok(Liveness::Alive) => {
                    std::thread::sleep(pause.min(remaining));
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
            }
        }
        commit(txn)
    }
}

fn commit(mut txn: Txn<'_>) -> Result<Live, DeployFailure> {
    let (Some(record), Some(session)) = (txn.record.clone(), txn.session_info.clone()) else {
        let cause = Error::InvalidRequest(
            "invariant broken: a Registered state has a record and a session".into(),
        );
        return Err(txn.fail(Step::Commit, cause));
    };
    failpoint("deploy::before_commit");
    if let Some(lease) = txn.held.intent.take()
        && let Err(e) = lease.finish()
    {
        // The intent is still on disk, so the deployment is not committed: roll back the rest
        // now rather than leave reconcile to undo a running agent later. (A panic in `finish`
        // propagates like one in any forward step; Drop then rolls back the rest.)
        let mut cleanup = undo(&txn.env, &mut txn.held);
        cleanup.entries.push(CleanupEntry {
            resource: Resource::Intent(txn.held.agent.clone()),
            outcome: CleanupOutcome::NotReleased(format!("{e}; `fleet reconcile` removes it")),
        });
        return Err(DeployFailure {
            step: Step::Commit,
            task: txn.held.task.clone(),
            agent: Some(txn.held.agent.clone()),
            cause: Box::new(e),
            cleanup,
        });
    }
    // Committed: the resources now belong to the registry, not to this deployment.
    txn.held.registered = false;
    txn.held.session = false;
    txn.held.prompt = None;
    failpoint("deploy::after_commit");
    Ok(Live {
        task: txn.held.task.clone(),
        record,
        session,
        files: txn.files.clone(),
    })
}
