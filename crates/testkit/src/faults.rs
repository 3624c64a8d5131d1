//! Fault plans and the [`Faulty`] wrapper.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use camino::Utf8Path;
use deploy_core::limits::Candidate;
use deploy_core::{
    AgentId, AgentRecord, Checkout, CheckoutPlan, CheckoutState, Checkouts, Error, FoundCheckout,
    IntentJournal, IntentLease, IntentRecord, KillReport, Liveness, NewTask, PromptStore,
    Registration, Registry, RepairReport, SessionBackend, SessionInfo, SessionListing, SessionName,
    SessionSpec, StatusUpdate, TaskId, TaskRoster, TaskSnapshot, TaskSummary,
};

use crate::lock;

/// A named operation of one of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`SessionBackend::start`].
    Start,
    /// [`SessionBackend::open_gate`].
    OpenGate,
    /// [`SessionBackend::probe`].
    Probe,
    /// [`SessionBackend::kill`].
    Kill,
    /// [`SessionBackend::list`].
    List,
    /// [`SessionBackend::capture`].
    Capture,
    /// [`Registry::create_task`].
    CreateTask,
    /// [`Registry::register`].
    Register,
    /// [`Registry::confirm`].
    Confirm,
    /// [`Registry::unregister`].
    Unregister,
    /// [`Registry::update_status`].
    UpdateStatus,
    /// [`Registry::read_task`].
    ReadTask,
    /// [`Registry::list_tasks`].
    ListTasks,
    /// [`Registry::repair`].
    Repair,
    /// [`PromptStore::write`].
    WritePrompt,
    /// [`PromptStore::remove`].
    RemovePrompt,
    /// [`PromptStore::found`].
    FoundPrompts,
    /// [`IntentJournal::begin`].
    BeginIntent,
    /// [`IntentLease::finish`].
    FinishIntent,
    /// [`IntentJournal::take_abandoned`].
    TakeAbandoned,
    /// [`IntentJournal::pending`].
    PendingIntents,
    /// [`Checkouts::create`].
    CreateCheckout,
    /// [`Checkouts::discard`].
    DiscardCheckout,
    /// [`Checkouts::retire`].
    RetireCheckout,
    /// [`Checkouts::found`].
    FoundCheckouts,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 25] = [
        Op::Start,
        Op::OpenGate,
        Op::Probe,
        Op::Kill,
        Op::List,
        Op::Capture,
        Op::CreateTask,
        Op::Register,
        Op::Confirm,
        Op::Unregister,
        Op::UpdateStatus,
        Op::ReadTask,
        Op::ListTasks,
        Op::Repair,
        Op::WritePrompt,
        Op::RemovePrompt,
        Op::FoundPrompts,
        Op::BeginIntent,
        Op::FinishIntent,
        Op::TakeAbandoned,
        Op::PendingIntents,
        Op::CreateCheckout,
        Op::DiscardCheckout,
        Op::RetireCheckout,
        Op::FoundCheckouts,
    ];

    /// `service.method`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "backend.start",
            Op::OpenGate => "backend.open_gate",
            Op::Probe => "backend.probe",
            Op::Kill => "backend.kill",
            Op::List => "backend.list",
            Op::Capture => "backend.capture",
            Op::CreateTask => "registry.create_task",
            Op::Register => "registry.register",
            Op::Confirm => "registry.confirm",
            Op::Unregister => "registry.unregister",
            Op::UpdateStatus => "registry.update_status",
            Op::ReadTask => "registry.read_task",
            Op::ListTasks => "registry.list_tasks",
            Op::Repair => "registry.repair",
            Op::WritePrompt => "prompts.write",
            Op::RemovePrompt => "prompts.remove",
            Op::FoundPrompts => "prompts.found",
            Op::BeginIntent => "journal.begin",
            Op::FinishIntent => "journal.finish",
            Op::TakeAbandoned => "journal.take_abandoned",
            Op::PendingIntents => "journal.pending",
            Op::CreateCheckout => "checkouts.create",
            Op::DiscardCheckout => "checkouts.discard",
            Op::RetireCheckout => "checkouts.retire",
            Op::FoundCheckouts => "checkouts.found",
        }
    }

    fn wrap(self, fault: InjectedFault) -> Error {
        match self {
            Op::Start | Op::OpenGate | Op::Probe | Op::Kill | Op::List | Op::Capture => {
                Error::Backend(Box::new(fault))
            }
            Op::CreateTask
            | Op::Register
            | Op::Confirm
            | Op::Unregister
            | Op::UpdateStatus
            | Op::ReadTask
            | Op::ListTasks
            | Op::Repair => Error::Registry(Box::new(fault)),
            Op::WritePrompt
            | Op::RemovePrompt
            | Op::FoundPrompts
            | Op::BeginIntent
            | Op::FinishIntent
            | Op::TakeAbandoned
            | Op::PendingIntents => Error::Store(Box::new(fault)),
            Op::CreateCheckout | Op::DiscardCheckout | Op::RetireCheckout | Op::FoundCheckouts => {
                Error::Checkout(Box::new(fault))
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a rule fails its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The k-th call fails; later ones succeed.
    Transient,
    /// The k-th call and every later one fail.
    Persistent,
    /// The k-th call panics.
    Panic,
}

/// Fail the `nth` (1-based) call of `op` as `kind` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultRule {
    /// The operation.
    pub op: Op,
    /// Which call, counting from 1.
    pub nth: u32,
    /// How.
    pub kind: FaultKind,
}

/// A set of [`FaultRule`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The rules.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// No faults.
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Adds a rule.
    pub fn fail(mut self, op: Op, nth: u32, kind: FaultKind) -> Self {
        self.rules.push(FaultRule { op, nth, kind });
        self
    }

    /// Whether some rule makes `op` fail persistently.
    pub fn is_persistent(&self, op: Op) -> bool {
        self.rules
            .iter()
            .any(|r| r.op == op && r.kind == FaultKind::Persistent)
    }
}

/// The error an injected fault returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected fault: call {call} of {op}")]
pub struct InjectedFault {
    /// The operation.
    pub op: Op,
    /// Its call number.
    pub call: u32,
}

/// A fault that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// The operation.
    pub op: Op,
    /// Its call number.
    pub call: u32,
    /// How it failed.
    pub kind: FaultKind,
}

#[derive(Debug, Default)]
struct FaultState {
    plan: FaultPlan,
    calls: HashMap<Op, u32>,
    fired: Vec<Fired>,
}

/// A plan plus call counters, shared by every wrapper of one [`crate::World`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Faults {
    /// Counters at zero, following `plan`.
    pub fn new(plan: FaultPlan) -> Self {
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                plan,
                ..FaultState::default()
            })),
        }
    }

    /// Replaces the plan and resets the counters.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut s = lock(&self.state);
        s.plan = plan;
        s.calls.clear();
        s.fired.clear();
    }

    /// Counts a call of `op` and fails or panics it if the plan says so.
    pub fn check(&self, op: Op) -> Result<(), Error> {
        let fire = {
            let mut s = lock(&self.state);
            let call = {
                let n = s.calls.entry(op).or_insert(0);
                *n += 1;
                *n
            };
            let kind = s.plan.rules.iter().find_map(|r| {
                let hit = r.op == op
                    && match r.kind {
                        FaultKind::Persistent => call >= r.nth,
                        FaultKind::Transient | FaultKind::Panic => call == r.nth,
                    };
                hit.then_some(r.kind)
            });
            if let Some(kind) = kind {
                s.fired.push(Fired { op, call, kind });
            }
            kind.map(|kind| (kind, call))
        }; // the lock is released before panicking: the fakes stay usable afterwards
        match fire {
            None => Ok(()),
            Some((FaultKind::Panic, call)) => panic!("injected panic: call {call} of {op}"),
            Some((_, call)) => Err(op.wrap(InjectedFault { op, call })),
        }
    }

    /// The faults that fired so far.
    pub fn fired(&self) -> Vec<Fired> {
        lock(&self.state).fired.clone()
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: Op) -> u32 {
        lock(&self.state).calls.get(&op).copied().unwrap_or(0)
    }
}

/// Wraps an implementation of a deploy-core trait and injects the faults of a [`Faults`] plan
/// before delegating. Works on the fakes of this crate and on real implementations alike.
#[derive(Debug)]
pub struct Faulty<T> {
    inner: T,
    faults: Faults,
}

impl<T> Faulty<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, faults: Faults) -> Self {
        Faulty { inner, faults }
    }

    /// The wrapped implementation (calls on it inject nothing).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The shared fault state.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl<B: SessionBackend> SessionBackend for Faulty<B> {
    fn start(&self, spec: &SessionSpec) -> Result<SessionInfo, Error> {
        self.faults.check(Op::Start)?;
        self.inner.start(spec)
    }
    fn open_gate(&self, session: &SessionName) -> Result<(), Error> {
        self.faults.check(Op::OpenGate)?;
        self.inner.open_gate(session)
    }
    fn probe(&self, session: &SessionName) -> Result<Liveness, Error> {
        self.faults.check(Op::Probe)?;
        self.inner.probe(session)
    }
    fn kill(&self, session: &SessionName, agent: &AgentId) -> Result<KillReport, Error> {
        self.faults.check(Op::Kill)?;
        self.inner.kill(session, agent)
    }
    fn list(&self) -> Result<Vec<SessionListing>, Error> {
        self.faults.check(Op::List)?;
        self.inner.list()
    }
    fn capture(&self, session: &SessionName, lines: usize) -> Result<Vec<String>, Error> {
        self.faults.check(Op::Capture)?;
        self.inner.capture(session, lines)
    }
    fn placement(&self) -> String {
        self.inner.placement()
    }
    fn run_detached(&self, label: &SessionName, argv: &[String]) -> Result<(), Error> {
        self.inner.run_detached(label, argv)
    }
}

impl<R: Registry> Registry for Faulty<R> {
    fn create_task(&self, new: &NewTask) -> Result<TaskSnapshot, Error> {
        self.faults.check(Op::CreateTask)?;
        self.inner.create_task(new)
    }
    fn register_all(&self, registrations: &[Registration]) -> Result<Vec<AgentRecord>, Error> {
        self.faults.check(Op::Register)?;
        self.inner.register_all(registrations)
    }
    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Result<(), Error> {
        self.faults.check(Op::Confirm)?;
        self.inner.confirm_all(task, agents)
    }
    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Result<bool, Error> {
        self.faults.check(Op::Unregister)?;
        self.inner.unregister(task, agent)
    }
    fn update_status(
        &self,
        task: &TaskId,
        agent: &AgentId,
        update: &StatusUpdate,
    ) -> Result<(), Error> {
        self.faults.check(Op::UpdateStatus)?;
        self.inner.update_status(task, agent, update)
    }
    fn update_statuses(
        &self,
        task: &TaskId,
        updates: &[(AgentId, StatusUpdate)],
    ) -> Result<(), Error> {
        self.faults.check(Op::UpdateStatus)?;
        self.inner.update_statuses(task, updates)
    }
    fn annotate(
        &self,
        task: &TaskId,
        agent: &AgentId,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Error> {
        self.faults.check(Op::UpdateStatus)?;
        self.inner.annotate(task, agent, fields)
    }
    fn read_task(&self, task: &TaskId) -> Result<TaskSnapshot, Error> {
        self.faults.check(Op::ReadTask)?;
        self.inner.read_task(task)
    }
    /// A read, as far as faults go: the inner registry's own precheck runs.
    fn precheck_all(&self, task: &TaskId, candidates: &[Candidate<'_>]) -> Result<(), Error> {
        self.faults.check(Op::ReadTask)?;
        self.inner.precheck_all(task, candidates)
    }
    /// A read, as far as faults go: the inner registry's own precheck (its counting) runs.
    fn precheck(&self, task: &TaskId, candidate: Candidate<'_>) -> Result<u32, Error> {
        self.faults.check(Op::ReadTask)?;
        self.inner.precheck(task, candidate)
    }
    /// A read, as far as faults go: the inner registry's own roster (its cache) answers.
    fn roster(&self, task: &TaskId) -> Result<Arc<TaskRoster>, Error> {
        self.faults.check(Op::ReadTask)?;
        self.inner.roster(task)
    }
    fn list_tasks(&self) -> Result<Vec<TaskSummary>, Error> {
        self.faults.check(Op::ListTasks)?;
        self.inner.list_tasks()
    }
    /// Never fails: reading ahead reports nothing (the reads after do).
    fn prefetch(&self) {
        self.inner.prefetch();
    }
    /// A listing, as far as faults go.
    fn task_ids(&self) -> Result<Vec<TaskId>, Error> {
        self.faults.check(Op::ListTasks)?;
        self.inner.task_ids()
    }
    fn repair(&self, task: Option<&TaskId>, dry_run: bool) -> Result<RepairReport, Error> {
        self.faults.check(Op::Repair)?;
        self.inner.repair(task, dry_run)
    }
}

impl<P: PromptStore> PromptStore for Faulty<P> {
    fn write(&self, path: &Utf8Path, prompt: &str) -> Result<(), Error> {
        self.faults.check(Op::WritePrompt)?;
        self.inner.write(path, prompt)
    }
    fn remove(&self, path: &Utf8Path) -> Result<bool, Error> {
        self.faults.check(Op::RemovePrompt)?;
        self.inner.remove(path)
    }
    fn found(&self, dir: &Utf8Path) -> Result<Vec<camino::Utf8PathBuf>, Error> {
        self.faults.check(Op::FoundPrompts)?;
        self.inner.found(dir)
    }
}

impl<J: IntentJournal> IntentJournal for Faulty<J> {
    fn begin(&self, record: &IntentRecord) -> Result<Box<dyn IntentLease>, Error> {
        self.faults.check(Op::BeginIntent)?;
        let inner = self.inner.begin(record)?;
        Ok(Box::new(FaultyLease {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn take_abandoned(&self) -> Result<Vec<Box<dyn IntentLease>>, Error> {
        self.faults.check(Op::TakeAbandoned)?;
        Ok(self
            .inner
            .take_abandoned()?
            .into_iter()
            .map(|inner| {
                Box::new(FaultyLease {
                    inner,
                    faults: self.faults.clone(),
                }) as Box<dyn IntentLease>
            })
            .collect())
    }
    fn pending(&self) -> Result<Vec<IntentRecord>, Error> {
        self.faults.check(Op::PendingIntents)?;
        self.inner.pending()
    }
}

impl<C: Checkouts> Checkouts for Faulty<C> {
    fn create(&self, plan: &CheckoutPlan) -> Result<Checkout, Error> {
        self.faults.check(Op::CreateCheckout)?;
        self.inner.create(plan)
    }
    fn discard(
        &self,
        repo: &Utf8Path,
        branch: Option<&str>,
        path: Option<&Utf8Path>,
    ) -> Result<bool, Error> {
        self.faults.check(Op::DiscardCheckout)?;
        self.inner.discard(repo, branch, path)
    }
    fn retire(&self, checkout: &Checkout) -> Result<CheckoutState, Error> {
        self.faults.check(Op::RetireCheckout)?;
        self.inner.retire(checkout)
    }
    fn found(&self, repo: &Utf8Path, workspace: &Utf8Path) -> Result<Vec<FoundCheckout>, Error> {
        self.faults.check(Op::FoundCheckouts)?;
        self.inner.found(repo, workspace)
    }
    /// Faulted as a listing of checkouts is.
    fn repository_of(&self, dir: &Utf8Path) -> Result<Option<camino::Utf8PathBuf>, Error> {
        self.faults.check(Op::FoundCheckouts)?;
        self.inner.repository_of(dir)
    }
    /// Faulted as a listing of checkouts is.
    fn diff(&self, checkout: &Checkout, stat: bool) -> Result<Option<String>, Error> {
        self.faults.check(Op::FoundCheckouts)?;
        self.inner.diff(checkout, stat)
    }
}

/// A lease whose `finish` can fail. A failed finish drops the inner lease: the lock is released
/// and the record kept, as when a real unlink fails.
#[derive(Debug)]
struct FaultyLease {
    inner: Box<dyn IntentLease>,
    faults: Faults,
}

impl IntentLease for FaultyLease {
    fn record(&self) -> &IntentRecord {
        self.inner.record()
    }
    fn finish(self: Box<Self>) -> Result<(), Error> {
        self.faults.check(Op::FinishIntent)?;
        self.inner.finish()
    }
}

/// Keeps the panics a [`FaultKind::Panic`] rule injects out of the test output (they are
/// expected); every other panic is reported by the hook that was installed before. Installs the
/// hook once per process.
pub fn silence_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or("");
            if !msg.starts_with("injected panic") {
                default(info);
            }
        }));
    });
}
