//! The deployment transaction as a typestate.
//!
//! `Deployer::begin` → [`PromptWritten`] → [`SessionStarted`] → [`Registered`] → [`Live`].
//! Each state owns what the deployment has acquired so far. A transition takes `self` and
//! returns the next state, or a [`DeployFailure`] that has already rolled back, in reverse
//! order, everything the state owned. Dropping a state that is not Live rolls back too
//! (best effort, logged, never panics), so an early `?`, a panic or a forgotten value cannot
//! leak a resource.

use std::fmt;
use std::time::{Duration, Instant};

use crate::backend::{Liveness, SessionBackend, SessionInfo, SessionSpec};
use crate::checkout::{Checkout, CheckoutPlan, Checkouts};
use crate::failure::{CleanupEntry, CleanupOutcome, CleanupReport, DeployFailure, Resource, Step};
use crate::guard::{
    CheckoutGuard, IntentGuard, Ledger, PromptGuard, RegistrationGuard, SessionGuard, guarded,
};
use crate::id::{AgentId, BatchId, HostName, SessionName, TaskId};
use crate::journal::{IntentJournal, IntentRecord};
use crate::layout::Layout;
use crate::limits::Candidate;
use crate::prompt::{PromptStore, prompt_preview};
use crate::record::{AgentRecord, ExitStatus, Registration, TrackedFiles};
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
    /// Where agents another orchestrator started run, if fleet looks there: those whose record
    /// has no [`placement`](AgentRecord::placement) — the Python server's, on the user's
    /// default tmux server. Probed and killed there, never listed (see
    /// [`Deployer::locate`]).
    pub adopted: Option<&'a dyn SessionBackend>,
    /// Where agents' checkouts are made, for requests that ask for one
    /// ([`DeployRequest::checkout`]); such a request fails without it.
    pub checkouts: Option<&'a dyn Checkouts>,
    /// The host this deployer runs on, recorded with every agent it deploys. An agent recorded
    /// on another host is never judged from here — not found missing, not ended, not killed,
    /// not rolled back (see [`Deployer::locate`]). `None`: no host identity (every agent is
    /// looked at where it was placed, as on one machine).
    pub host: Option<&'a HostName>,
}

impl fmt::Debug for Deployer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployer")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// What a deployment knows, whatever its state: the request and the names derived from it.
#[derive(Debug)]
struct Plan {
    request: DeployRequest,
    task: TaskId,
    agent: AgentId,
    session_name: SessionName,
    files: TrackedFiles,
    started_at: String,
    checkout: Option<CheckoutPlan>,
    /// The checkout once made.
    made: Option<Checkout>,
    /// The batch it is deployed with.
    batch: Option<BatchId>,
}

impl Plan {
    fn failure(&self, step: Step, cause: Error, cleanup: CleanupReport) -> DeployFailure {
        DeployFailure {
            step,
            task: self.task.clone(),
            agent: Some(self.agent.clone()),
            cause: Box::new(cause),
            cleanup,
        }
    }

    /// Where the agent runs: its checkout, else the request's workdir.
    fn spec_workdir(&self) -> camino::Utf8PathBuf {
        match &self.made {
            Some(checkout) => checkout.path.clone(),
            None => self.request.workdir.clone(),
        }
    }

    fn spec(&self) -> SessionSpec {
        SessionSpec {
            session: self.session_name.clone(),
            agent: self.agent.clone(),
            task: self.task.clone(),
            argv: self.request.command.clone(),
            workdir: self.spec_workdir(),
            env: self.request.env.clone(),
            prompt_file: self.files.prompt_file.clone(),
            log_file: self.files.log_file.clone(),
        }
    }
}

macro_rules! state_accessors {
    ($state:ident) => {
        impl<'a> $state<'a> {
            /// The task.
            pub fn task(&self) -> &TaskId {
                &self.plan.task
            }

            /// The agent being deployed.
            pub fn agent(&self) -> &AgentId {
                &self.plan.agent
            }

            /// Its session name.
            pub fn session_name(&self) -> &SessionName {
                &self.plan.session_name
            }

            /// Its files.
            pub fn files(&self) -> &TrackedFiles {
                &self.plan.files
            }

            /// Rolls back now and says how it went (dropping does the same, but only logs).
            pub fn abort(self) -> CleanupReport {
                self.rollback().1
            }

            pub(crate) fn fail(self, step: Step, cause: Error) -> DeployFailure {
                let (plan, cleanup) = self.rollback();
                plan.failure(step, cause, cleanup)
            }
        }
    };
}

// Every state declares its guards newest first: fields drop in declaration order, so dropping a
// state releases them in reverse creation order, the intent last — exactly what `rollback` does
// explicitly.

/// (type state) The intent is journaled and the prompt file written.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct PromptWritten<'a> {
    prompt: PromptGuard<'a>,
    checkout: Option<CheckoutGuard<'a>>,
    intent: IntentGuard,
    ledger: Ledger,
    plan: Box<Plan>,
    env: Deployer<'a>,
}

/// (type state) The agent runs in its session.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct SessionStarted<'a> {
    session: SessionGuard<'a>,
    info: SessionInfo,
    prompt: PromptGuard<'a>,
    checkout: Option<CheckoutGuard<'a>>,
    intent: IntentGuard,
    ledger: Ledger,
    plan: Box<Plan>,
    env: Deployer<'a>,
}

/// (type state) The agent is in the task registry and the global index.
#[derive(Debug)]
#[must_use = "dropping a deployment state rolls it back"]
pub struct Registered<'a> {
    registration: RegistrationGuard<'a>,
    record: Box<AgentRecord>,
    session: SessionGuard<'a>,
    info: SessionInfo,
    prompt: PromptGuard<'a>,
    checkout: Option<CheckoutGuard<'a>>,
    intent: IntentGuard,
    ledger: Ledger,
    plan: Box<Plan>,
    env: Deployer<'a>,
}

state_accessors!(PromptWritten);
state_accessors!(SessionStarted);
state_accessors!(Registered);

impl PromptWritten<'_> {
    fn rollback(self) -> (Box<Plan>, CleanupReport) {
        self.prompt.release();
        if let Some(c) = self.checkout {
            c.release();
        }
        self.intent.release();
        (self.plan, self.ledger.report())
    }
}

impl SessionStarted<'_> {
    fn rollback(self) -> (Box<Plan>, CleanupReport) {
        self.session.release();
        self.prompt.release();
        if let Some(c) = self.checkout {
            c.release();
        }
        self.intent.release();
        (self.plan, self.ledger.report())
    }
}

impl Registered<'_> {
    fn rollback(self) -> (Box<Plan>, CleanupReport) {
        self.registration.release();
        self.session.release();
        self.prompt.release();
        if let Some(c) = self.checkout {
            c.release();
        }
        self.intent.release();
        (self.plan, self.ledger.report())
    }
}

/// A deployed agent: alive after its startup grace, registered, its intent deleted. It owns
/// nothing: the agent now belongs to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    task: TaskId,
    record: AgentRecord,
    session: SessionInfo,
    files: TrackedFiles,
    checkout: Option<Checkout>,
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

    /// Its checkout, if it asked for one.
    pub fn checkout(&self) -> Option<&Checkout> {
        self.checkout.as_ref()
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

/// What a probe within the startup grace found, when it found nothing wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pulse {
    /// The agent runs (every member runs, or some still do): keep watching.
    Running,
    /// The agent (every member) already exited with status 0: it finished its work, which is
    /// no failed start — rolling it back would throw its result away. Nothing is left to watch.
    Finished,
}

/// How a startup grace ended before its time.
pub(crate) enum Cut<E> {
    /// A signal asked for a rollback.
    Interrupted(i32),
    /// A probe found the agent (or a member) dead, or failed.
    Died(E),
}

/// Waits out `grace`, probing with `check` — at once (an agent let run only now that fails at
/// once, a missing binary, is reported within milliseconds), then at pauses doubling up to
/// 250 ms, and at the end — and asking `interrupt` before each probe. It ends early, `Ok`, once
/// `check` finds nothing left running ([`Pulse::Finished`]).
pub(crate) fn wait_out_grace<E>(
    grace: Duration,
    interrupt: &dyn Fn() -> Option<i32>,
    mut check: impl FnMut() -> Result<Pulse, E>,
) -> Result<(), Cut<E>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(signal) = interrupt() {
            return Err(Cut::Interrupted(signal));
        }
        let remaining = grace.saturating_sub(start.elapsed());
        let pulse = check().map_err(Cut::Died)?;
        if remaining.is_zero() || pulse == Pulse::Finished {
            return Ok(());
        }
        std::thread::sleep(pause.min(remaining));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

impl<'a> Deployer<'a> {
    /// Deploys `request` all the way to [`Live`].
    pub fn deploy(&self, request: DeployRequest) -> Result<Live, DeployFailure> {
        self.deploy_interruptible(request, &|| None)
    }

    /// [`deploy`](Self::deploy), asking `interrupt` between steps and while waiting out the
    /// startup grace: when it names a signal, the deployment is rolled back and fails at the step
    /// it had reached with [`Error::Interrupted`]. (The CLI passes SIGINT and SIGTERM here.)
    pub fn deploy_interruptible(
        &self,
        request: DeployRequest,
        interrupt: &dyn Fn() -> Option<i32>,
    ) -> Result<Live, DeployFailure> {
        let stop = |signal| Error::Interrupted { signal };
        let p = self.begin(request)?;
        if let Some(signal) = interrupt() {
            return Err(p.fail(Step::StartSession, stop(signal)));
        }
        let s = p.start_session()?;
        if let Some(signal) = interrupt() {
            return Err(s.fail(Step::Register, stop(signal)));
        }
        let r = s.register()?;
        r.confirm_live_with(interrupt)
    }

    /// Validates `request`, checks the task's limits cheaply, journals the intent and writes
    /// the prompt file.
    pub fn begin(&self, request: DeployRequest) -> Result<PromptWritten<'a>, DeployFailure> {
        self.begin_in(request, None)
    }

    /// [`begin`](Self::begin) of a deployment alone (`batch` `None`: its limits checked here)
    /// or of a member of `batch` (whose limits were checked for the whole batch).
    pub(crate) fn begin_in(
        &self,
        request: DeployRequest,
        batch: Option<&BatchId>,
    ) -> Result<PromptWritten<'a>, DeployFailure> {
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
        if batch.is_none() {
            self.registry
                .precheck(&task, Candidate::of_request(&request))
                .map_err(|e| early(Step::Precheck, None, e))?;
        }
        let agent = match &request.agent {
            Some(chosen) => chosen.clone(),
            None => AgentId::generate(&request.agent_type)
                .map_err(|e| early(Step::Precheck, None, e))?,
        };
        let session_name =
            SessionName::for_agent(&agent).map_err(|e| early(Step::Precheck, Some(&agent), e))?;
        let files = self.layout.tracked_files(&task, &agent);
        let checkout = match (&request.checkout, self.checkouts) {
            (None, _) => None,
            (Some(wanted), Some(_)) => {
                Some(CheckoutPlan::for_agent(self.layout, &task, &agent, wanted))
            }
            (Some(_), None) => {
                let cause = Error::InvalidRequest(
                    "a worktree was asked for, but this deployer makes no checkouts".into(),
                );
                return Err(early(Step::Validate, Some(&agent), cause));
            }
        };
        let intent = IntentRecord {
            version: 1,
            task: task.clone(),
            agent: agent.clone(),
            session: session_name.clone(),
            prompt_file: files.prompt_file.clone(),
            pid: std::process::id(),
            created_at: timestamp(),
            placement: Some(self.backend.placement()),
            checkout: checkout.clone(),
            batch: batch.cloned(),
        };
        let lease = self
            .journal
            .begin(&intent)
            .map_err(|e| early(Step::WriteIntent, Some(&agent), e))?;
        let ledger = Ledger::default();
        let intent_guard = IntentGuard::arm(lease, &ledger);
        failpoint("deploy::after_intent");
        let mut plan = Box::new(Plan {
            request,
            task,
            agent,
            session_name,
            files,
            started_at: intent.created_at,
            checkout,
            made: None,
            batch: batch.cloned(),
        });
        let checkout = match (&plan.checkout, self.checkouts) {
            (Some(wanted), Some(checkouts)) => {
                let guard = CheckoutGuard::arm(
                    checkouts,
                    wanted.repo.clone(),
                    wanted.branch.clone(),
                    wanted.path.clone(),
                    &ledger,
                );
                match checkouts.create(wanted) {
                    Ok(made) => {
                        plan.made = Some(made);
                        failpoint("deploy::after_checkout");
                        Some(guard)
                    }
                    Err(e) => {
                        guard.disarm(); // the contract: an Err left nothing
                        intent_guard.release();
                        return Err(plan.failure(Step::Checkout, e, ledger.report()));
                    }
                }
            }
            _ => None,
        };
        if let Err(e) = self
            .prompts
            .write(&plan.files.prompt_file, &plan.request.prompt)
        {
            // The store's contract: on `Err` no file was left, so there is nothing to own.
            if let Some(c) = checkout {
                c.release();
            }
            intent_guard.release();
            return Err(plan.failure(Step::WritePrompt, e, ledger.report()));
        }
        let prompt = PromptGuard::arm(self.prompts, plan.files.prompt_file.clone(), &ledger);
        failpoint("deploy::after_prompt");
        Ok(PromptWritten {
            prompt,
            checkout,
            intent: intent_guard,
            ledger,
            plan,
            env: *self,
        })
    }
}

impl<'a> PromptWritten<'a> {
    /// Starts the agent in its session.
    pub fn start_session(self) -> Result<SessionStarted<'a>, DeployFailure> {
        let session = SessionGuard::arm(
            self.env.backend,
            self.plan.session_name.clone(),
            self.plan.agent.clone(),
            self.plan.files.log_file.clone(),
            &self.ledger,
        );
        match self.env.backend.start(&self.plan.spec()) {
            Ok(info) => {
                failpoint("deploy::after_session");
                Ok(SessionStarted {
                    session,
                    info,
                    prompt: self.prompt,
                    checkout: self.checkout,
                    intent: self.intent,
                    ledger: self.ledger,
                    plan: self.plan,
                    env: self.env,
                })
            }
            Err(e) => {
                session.disarm(); // the backend's contract: an Err left nothing behind
                Err(self.fail(Step::StartSession, e))
            }
        }
    }
}

impl<'a> SessionStarted<'a> {
    /// The session as the backend started it.
    pub fn session(&self) -> &SessionInfo {
        &self.info
    }

    /// Registers the agent — the registry checks the limits again, authoritatively, under its
    /// lock — then lets it run: until then it waited at its gate, so an agent a limit refuses
    /// never executes.
    pub fn register(self) -> Result<Registered<'a>, DeployFailure> {
        let registration = self.registration();
        let guard = self.registration_guard();
        match self.env.registry.register(&registration) {
            Ok(record) => {
                failpoint("deploy::after_register");
                self.registered(guard, record).open_gate()
            }
            Err(e) => {
                guard.disarm(); // the registry's contract: an Err changed nothing
                Err(self.fail(Step::Register, e))
            }
        }
    }

    /// What registering the agent records.
    pub(crate) fn registration(&self) -> Registration {
        let plan = &self.plan;
        Registration {
            task: plan.task.clone(),
            agent: plan.agent.clone(),
            agent_type: plan.request.agent_type.clone(),
            parent: plan.request.parent.clone(),
            session: plan.session_name.clone(),
            prompt_preview: prompt_preview(&plan.request.prompt),
            tracked_files: plan.files.clone(),
            started_at: plan.started_at.clone(),
            placement: self.env.backend.placement(),
            allow_duplicate: plan.request.allow_duplicate,
            checkout: plan.made.clone(),
            launch: Some(crate::record::Launch {
                command: plan
                    .request
                    .recorded_command
                    .clone()
                    .unwrap_or_else(|| plan.request.command.clone()),
                workdir: plan.spec_workdir(),
            }),
            batch: plan.batch.clone(),
            host: self.env.host.cloned(),
        }
    }

    /// The guard of the registration, armed before the registry is called: disarmed if the
    /// call fails (its contract: nothing changed), else handed to [`registered`](Self::registered).
    pub(crate) fn registration_guard(&self) -> RegistrationGuard<'a> {
        RegistrationGuard::arm(
            self.env.registry,
            self.plan.task.clone(),
            self.plan.agent.clone(),
            &self.ledger,
        )
    }

    /// The state once the registry recorded the agent as `record`; its gate still closed.
    pub(crate) fn registered(
        self,
        registration: RegistrationGuard<'a>,
        record: AgentRecord,
    ) -> Registered<'a> {
        Registered {
            registration,
            record: Box::new(record),
            session: self.session,
            info: self.info,
            prompt: self.prompt,
            checkout: self.checkout,
            intent: self.intent,
            ledger: self.ledger,
            plan: self.plan,
            env: self.env,
        }
    }
}

impl<'a> Registered<'a> {
    /// Lets the registered agent run.
    pub(crate) fn open_gate(self) -> Result<Registered<'a>, DeployFailure> {
        match self.env.backend.open_gate(&self.plan.session_name) {
            Ok(()) => Ok(self),
            Err(e) => Err(self.fail(Step::OpenGate, e)),
        }
    }

    /// How long the agent must stay alive to be Live.
    pub(crate) fn startup_grace(&self) -> Duration {
        self.plan.request.startup_grace
    }

    /// Probes the agent once: `Ok` while it runs or once it has exited with status 0 (it
    /// finished), else why it failed (its exit status and last output, a vanished session, or
    /// the probe's own error).
    pub(crate) fn check_alive(&self) -> Result<Pulse, Error> {
        let agent = self.plan.agent.clone();
        let grace = self.plan.request.startup_grace;
        match self.env.backend.probe(&self.plan.session_name)? {
            Liveness::Alive => Ok(Pulse::Running),
            Liveness::Exited {
                status: ExitStatus::Code(0),
                ..
            } => Ok(Pulse::Finished),
            Liveness::Exited { status, last_lines } => Err(Error::AgentDied {
                agent,
                status,
                last_lines,
                grace,
            }),
            Liveness::Missing => Err(Error::SessionVanished { agent, grace }),
        }
    }

    /// Commits a batch member whose confirmation the registry already holds (the batch's one
    /// commit): disarms every guard and deletes the intent. An intent that cannot be deleted
    /// is left for reconcile, which removes it without touching the agent, confirmed Live.
    pub(crate) fn committed(self) -> Live {
        let Registered {
            registration,
            record,
            session,
            info,
            prompt,
            checkout,
            intent,
            ledger: _,
            plan,
            env: _,
        } = self;
        registration.commit();
        session.commit();
        prompt.commit();
        if let Some(c) = checkout {
            c.commit();
        }
        // Past the batch's commit a failure (or a panic) here changes nothing: the member is
        // Live, and reconcile removes an intent left behind without touching it.
        if let Err(e) = guarded(|| intent.commit()) {
            tracing::warn!(agent = %plan.agent, "live and confirmed, but its intent could not be deleted (reconcile removes it): {e}");
        }
        Live {
            task: plan.task,
            record: AgentRecord {
                confirmed: true,
                ..*record
            },
            session: info,
            files: plan.files,
            checkout: plan.made,
        }
    }
}

impl Registered<'_> {
    /// The registered record.
    pub fn record(&self) -> &AgentRecord {
        &self.record
    }

    /// The session as the backend started it.
    pub fn session(&self) -> &SessionInfo {
        &self.info
    }

    /// Waits out the startup grace, probing the agent, and commits: the agent is Live only if
    /// it is still alive at the end of the window, or already finished (exited with status 0:
    /// its end is then recorded like any other). An agent that dies inside it — any other exit
    /// status, a signal, its session gone — fails the deployment with its exit status and last
    /// output.
    pub fn confirm_live(self) -> Result<Live, DeployFailure> {
        self.confirm_live_with(&|| None)
    }

    /// [`confirm_live`](Self::confirm_live), rolling back as soon as `interrupt` names a signal.
    pub fn confirm_live_with(
        self,
        interrupt: &dyn Fn() -> Option<i32>,
    ) -> Result<Live, DeployFailure> {
        let grace = self.plan.request.startup_grace;
        match wait_out_grace(grace, interrupt, || self.check_alive()) {
            Ok(()) => {}
            Err(Cut::Interrupted(signal)) => {
                return Err(self.fail(Step::ConfirmLive, Error::Interrupted { signal }));
            }
            Err(Cut::Died(cause)) => return Err(self.fail(Step::ConfirmLive, cause)),
        }
        self.commit()
    }

    /// Deletes the intent — the commit record — and disarms every guard, then records the agent
    /// as confirmed Live in the registry, so that no reconcile ever rolls it back, whatever
    /// intent names it. If the intent cannot be deleted, the deployment is not committed:
    /// everything is rolled back now rather than leaving reconcile to undo a running agent later.
    /// (A panic in the deletion propagates like one in any forward step; the guards then roll
    /// back as they drop.) Once committed the deployment is Live: a failed confirmation is
    /// logged, and the agent is reported unconfirmed.
    fn commit(self) -> Result<Live, DeployFailure> {
        failpoint("deploy::before_commit");
        let Registered {
            registration,
            record,
            session,
            info,
            prompt,
            checkout,
            intent,
            ledger,
            plan,
            env,
        } = self;
        if let Err(e) = intent.commit() {
            registration.release();
            session.release();
            prompt.release();
            if let Some(c) = checkout {
                c.release();
            }
            let mut cleanup = ledger.report();
            cleanup.entries.push(CleanupEntry {
                resource: Resource::Intent(plan.agent.clone()),
                outcome: CleanupOutcome::NotReleased(format!("{e}; `fleet reconcile` removes it")),
            });
            return Err(plan.failure(Step::Commit, e, cleanup));
        }
        registration.commit();
        session.commit();
        prompt.commit();
        if let Some(c) = checkout {
            c.commit();
        }
        failpoint("deploy::after_commit");
        let confirmed = match guarded(|| env.registry.confirm(&plan.task, &plan.agent)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(agent = %plan.agent, "live, but its confirmation could not be recorded: {e}");
                false
            }
        };
        failpoint("deploy::after_confirm");
        Ok(Live {
            task: plan.task,
            record: AgentRecord {
                confirmed,
                ..*record
            },
            session: info,
            files: plan.files,
            checkout: plan.made,
        })
    }
}
