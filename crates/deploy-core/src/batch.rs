//! Batches: agents of one task deployed together, all Live or none.
//!
//! A batch is the single deployment's transaction, member by member, with three changes:
//!
//! - **Limits for all at once.** Before anything exists the task must have room for every
//!   member ([`Registry::precheck_all`](crate::Registry::precheck_all)); the registry checks
//!   again, authoritatively, when it registers all members in one transaction
//!   ([`Registry::register_all`](crate::Registry::register_all)).
//! - **The gates open together.** Every member's session starts gated; no gate opens until
//!   every member is registered, so a refused batch never ran a member's code.
//! - **One commit.** Every member keeps its flock-held intent (naming the batch) until the
//!   registry has confirmed all members in one transaction
//!   ([`Registry::confirm_all`](crate::Registry::confirm_all)). Before that transaction a
//!   SIGKILL leaves every member unconfirmed, and reconcile rolls each back; after it, every
//!   member is confirmed, and reconcile only deletes their intents.
//!
//! The states mirror the single ones — [`BatchWritten`] → [`BatchStarted`] →
//! [`BatchRegistered`] → [`LiveBatch`] — each a list of member states: a failure of any member
//! at any step rolls back every member ([`BatchFailure`] reports each one's cleanup), and
//! dropping a batch state rolls it back too.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::deploy::{
    Cut, Deployer, Live, PromptWritten, Pulse, Registered, SessionStarted, wait_out_grace,
};
use crate::failure::{CleanupReport, DeployFailure, Step};
use crate::id::{AgentId, BatchId, TaskId};
use crate::limits::Candidate;
use crate::request::DeployRequest;
use crate::{Error, failpoint};

/// The most members one batch takes.
pub const MAX_MEMBERS: usize = 1000;

/// A request to deploy agents of one task together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// The batch's id; generated when `None`.
    pub batch: Option<BatchId>,
    /// The members, each a deployment of the same task. A member whose type an earlier member
    /// has is deployed as a duplicate of it (best-of-N): only the first of each type is held to
    /// the one-active-agent-per-type rule.
    pub members: Vec<DeployRequest>,
}

/// A batch that failed: every member has been rolled back.
#[derive(Debug)]
pub struct BatchFailure {
    /// The batch.
    pub batch: BatchId,
    /// The failure: its step and cause, and the member that failed (`agent` is `None` when the
    /// batch failed as a whole: its validation, its limits, its registration or its commit).
    /// Boxed to keep `Result<_, BatchFailure>` small.
    pub failure: Box<DeployFailure>,
    /// Every member that had begun, with what its rollback did, in member order (the failed
    /// member's own cleanup included).
    pub members: Vec<(AgentId, CleanupReport)>,
}

impl BatchFailure {
    /// One line: the batch, the step, the member and the cause.
    pub fn headline(&self) -> String {
        format!("batch {}: {}", self.batch, self.failure.headline())
    }

    /// Whether every member's resources are gone.
    pub fn is_clean(&self) -> bool {
        self.failure.cleanup.is_clean() && self.members.iter().all(|(_, c)| c.is_clean())
    }
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch {}: {}", self.batch, self.failure.headline())?;
        if self.members.is_empty() {
            return f.write_str("\ncleanup: no member had begun");
        }
        for (agent, cleanup) in &self.members {
            write!(f, "\nmember {agent}: {cleanup}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BatchFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.failure.cause)
    }
}

/// What every batch state knows.
#[derive(Debug)]
struct Header {
    batch: BatchId,
    task: TaskId,
}

impl Header {
    /// A failure of the whole batch (`agent` `None`) or of one member, with each member's
    /// cleanup.
    fn failure(
        &self,
        step: Step,
        agent: Option<AgentId>,
        cause: Error,
        members: Vec<(AgentId, CleanupReport)>,
    ) -> BatchFailure {
        BatchFailure {
            batch: self.batch.clone(),
            failure: Box::new(DeployFailure {
                step,
                task: self.task.clone(),
                agent,
                cause: Box::new(cause),
                cleanup: CleanupReport::default(),
            }),
            members,
        }
    }

    /// A member's failure, with the other members' rollbacks added in member order.
    fn member_failed(
        &self,
        failed: DeployFailure,
        at: usize,
        others: Vec<(AgentId, CleanupReport)>,
    ) -> BatchFailure {
        let mut members = others;
        let agent = failed.agent.clone();
        if let Some(agent) = &agent {
            members.insert(
                at.min(members.len()),
                (agent.clone(), failed.cleanup.clone()),
            );
        }
        BatchFailure {
            batch: self.batch.clone(),
            failure: Box::new(DeployFailure {
                cleanup: CleanupReport::default(),
                ..failed
            }),
            members,
        }
    }
}

macro_rules! batch_state {
    ($(#[$doc:meta])* $name:ident, $member:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[must_use = "dropping a batch state rolls every member back"]
        pub struct $name<'a> {
            members: Vec<$member<'a>>,
            header: Header,
            env: Deployer<'a>,
        }

        impl<'a> $name<'a> {
            /// The batch.
            pub fn batch(&self) -> &BatchId {
                &self.header.batch
            }

            /// Its members' ids, in order.
            pub fn agents(&self) -> Vec<AgentId> {
                self.members.iter().map(|m| m.agent().clone()).collect()
            }

            /// Rolls every member back now and says how each went.
            pub fn abort(self) -> Vec<(AgentId, CleanupReport)> {
                abort_all(self.members)
            }

            fn fail(self, step: Step, cause: Error) -> BatchFailure {
                let members = abort_all(self.members);
                self.header.failure(step, None, cause, members)
            }
        }
    };
}

/// A member state that can roll back.
trait Member {
    fn agent_id(&self) -> AgentId;
    fn roll_back(self) -> CleanupReport;
}

macro_rules! member {
    ($state:ident) => {
        impl Member for $state<'_> {
            fn agent_id(&self) -> AgentId {
                self.agent().clone()
            }
            fn roll_back(self) -> CleanupReport {
                self.abort()
            }
        }
    };
}
member!(PromptWritten);
member!(SessionStarted);
member!(Registered);

/// Rolls back every member, newest first (as a single deployment releases its resources);
/// reports them in member order.
fn abort_all<M: Member>(members: Vec<M>) -> Vec<(AgentId, CleanupReport)> {
    let mut out: Vec<_> = members
        .into_iter()
        .rev()
        .map(|m| (m.agent_id(), m.roll_back()))
        .collect();
    out.reverse();
    out
}

batch_state!(
    /// (type state) Every member's intent is journaled and its prompt file (and checkout)
    /// written.
    BatchWritten,
    PromptWritten
);
batch_state!(
    /// (type state) Every member runs in its session, gated.
    BatchStarted,
    SessionStarted
);
batch_state!(
    /// (type state) Every member is registered and let run.
    BatchRegistered,
    Registered
);

/// A deployed batch: every member Live and confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBatch {
    batch: BatchId,
    members: Vec<Live>,
}

impl LiveBatch {
    /// The batch.
    pub fn batch(&self) -> &BatchId {
        &self.batch
    }

    /// Its members, in order.
    pub fn members(&self) -> &[Live] {
        &self.members
    }
}

/// A valid id, for a failure that has none to name (an empty batch's task).
fn none_id<T: std::str::FromStr>() -> T {
    match "none".parse() {
        Ok(id) => id,
        Err(_) => unreachable!("\"none\" is a valid id"),
    }
}

impl<'a> Deployer<'a> {
    /// Deploys every member of `request` to Live, or none; asks `interrupt` as
    /// [`deploy_interruptible`](Self::deploy_interruptible) does.
    pub fn deploy_batch(
        &self,
        request: BatchRequest,
        interrupt: &dyn Fn() -> Option<i32>,
    ) -> Result<LiveBatch, BatchFailure> {
        let stop = |signal| Error::Interrupted { signal };
        let written = self.begin_batch(request)?;
        if let Some(signal) = interrupt() {
            return Err(written.fail(Step::StartSession, stop(signal)));
        }
        let started = written.start_sessions()?;
        if let Some(signal) = interrupt() {
            return Err(started.fail(Step::Register, stop(signal)));
        }
        started.register()?.confirm_live_with(interrupt)
    }

    /// Validates the batch, checks that all its members fit the task's limits, then begins
    /// each member: its intent (naming the batch), its checkout, its prompt file.
    pub fn begin_batch(&self, request: BatchRequest) -> Result<BatchWritten<'a>, BatchFailure> {
        let mut members = request.members;
        let task = members
            .first()
            .map_or_else(none_id, |m: &DeployRequest| m.task.clone());
        let header = match request.batch {
            Some(batch) => Header { batch, task },
            None => match BatchId::generate() {
                Ok(batch) => Header { batch, task },
                Err(e) => {
                    let header = Header {
                        batch: none_id(),
                        task,
                    };
                    return Err(header.failure(Step::Validate, None, e, Vec::new()));
                }
            },
        };
        let invalid = |why: String| {
            Err(header.failure(Step::Validate, None, Error::InvalidRequest(why), Vec::new()))
        };
        if members.is_empty() {
            return invalid("a batch needs at least one member".into());
        }
        if members.len() > MAX_MEMBERS {
            return invalid(format!(
                "a batch of {} members is over the maximum of {MAX_MEMBERS}",
                members.len()
            ));
        }
        for (i, m) in members.iter().enumerate() {
            if m.task != header.task {
                return invalid(format!(
                    "member {} is for task {}, the batch for task {}",
                    i + 1,
                    m.task,
                    header.task
                ));
            }
            if let Err(e) = m.validate() {
                return invalid(format!("member {}: {e}", i + 1));
            }
        }
        // Ids first, unique within the batch: each member's intent is named by its id.
        let mut ids: Vec<AgentId> = Vec::with_capacity(members.len());
        for m in &mut members {
            let id = match &m.agent {
                Some(id) if ids.contains(id) => {
                    return invalid(format!("agent id {id} is given to two members"));
                }
                Some(id) => id.clone(),
                None => loop {
                    let id = AgentId::generate(&m.agent_type)
                        .map_err(|e| header.failure(Step::Precheck, None, e, Vec::new()))?;
                    if !ids.contains(&id) {
                        break id;
                    }
                },
            };
            m.agent = Some(id.clone());
            ids.push(id);
        }
        // Best-of-N: a later member of a type an earlier one has is its duplicate.
        for i in 1..members.len() {
            let (earlier, rest) = members.split_at_mut(i);
            if earlier.iter().any(|m| m.agent_type == rest[0].agent_type) {
                rest[0].allow_duplicate = true;
            }
        }
        let candidates: Vec<Candidate<'_>> = members.iter().map(Candidate::of_request).collect();
        if let Err(e) = self.registry.precheck_all(&header.task, &candidates) {
            return Err(header.failure(Step::Precheck, None, e, Vec::new()));
        }
        let mut begun: Vec<PromptWritten<'a>> = Vec::with_capacity(members.len());
        for (i, member) in members.into_iter().enumerate() {
            match self.begin_in(member, Some(&header.batch)) {
                Ok(p) => begun.push(p),
                Err(failed) => {
                    let others = abort_all(begun);
                    return Err(header.member_failed(failed, i, others));
                }
            }
        }
        failpoint("batch::after_prompts");
        Ok(BatchWritten {
            members: begun,
            header,
            env: *self,
        })
    }
}

/// Runs `step` on every member in parallel: one thread each, the first member on the calling
/// thread, and a member whose thread cannot be started on the calling thread after the others.
/// Results come back in member order.
fn each_in_parallel<T: Send, U: Send>(members: Vec<T>, step: impl Fn(T) -> U + Sync) -> Vec<U> {
    let slots: Vec<Mutex<Option<T>>> = members.into_iter().map(|m| Mutex::new(Some(m))).collect();
    let take = |i: usize| {
        slots[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    };
    let step = &step;
    let ran: Vec<Option<U>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..slots.len())
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("batch-member-{i}"))
                    .spawn_scoped(scope, move || take(i).map(step))
                    .map_err(|e| tracing::warn!("no thread for batch member {i}, run in turn: {e}"))
                    .ok()
            })
            .collect();
        let mut out = vec![take(0).map(step)];
        for handle in handles {
            out.push(match handle.map(|h| h.join()) {
                Some(Ok(u)) => u,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => None,
            });
        }
        out
    });
    ran.into_iter()
        .enumerate()
        .map(|(i, done)| match done.or_else(|| take(i).map(step)) {
            Some(u) => u,
            None => unreachable!("each member is taken once: by its thread or here"),
        })
        .collect()
}

/// Member states that succeeded, the first failure with its member's position, and the
/// cleanups of members that failed after it.
type Sorted<S> = (
    Vec<S>,
    Option<(usize, DeployFailure)>,
    Vec<(AgentId, CleanupReport)>,
);

/// Sorts member results: the states that succeeded, and the first failure with its position;
/// a later failure's cleanup (its member rolled itself back) joins the others' cleanups.
fn sorted<S>(results: Vec<Result<S, DeployFailure>>) -> Sorted<S> {
    let mut ok = Vec::with_capacity(results.len());
    let mut first = None;
    let mut more = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(s) => ok.push(s),
            Err(f) if first.is_none() => first = Some((i, f)),
            Err(f) => {
                if let Some(agent) = f.agent {
                    more.push((agent, f.cleanup));
                }
            }
        }
    }
    (ok, first, more)
}

impl<'a> BatchWritten<'a> {
    /// Starts every member's session, in parallel; every gate stays closed.
    pub fn start_sessions(self) -> Result<BatchStarted<'a>, BatchFailure> {
        let BatchWritten {
            members,
            header,
            env,
        } = self;
        let results = each_in_parallel(members, PromptWritten::start_session);
        let (started, failed, more) = sorted(results);
        if let Some((at, f)) = failed {
            let mut others = abort_all(started);
            others.extend(more);
            return Err(header.member_failed(f, at, others));
        }
        failpoint("batch::after_sessions");
        Ok(BatchStarted {
            members: started,
            header,
            env,
        })
    }
}

impl<'a> BatchStarted<'a> {
    /// Registers every member in one registry transaction, under the task's limits for all of
    /// them at once, then opens every gate: no member's agent ran before all were registered.
    pub fn register(self) -> Result<BatchRegistered<'a>, BatchFailure> {
        let registrations: Vec<_> = self.members.iter().map(|m| m.registration()).collect();
        let guards: Vec<_> = self
            .members
            .iter()
            .map(|m| m.registration_guard())
            .collect();
        let records = match self.env.registry.register_all(&registrations) {
            Ok(records) if records.len() == guards.len() => records,
            Ok(records) => {
                // Not what was asked: undone through the guards, which drop armed first.
                drop(guards);
                let cause = Error::Registry(
                    format!(
                        "registering {} members returned {} records",
                        registrations.len(),
                        records.len()
                    )
                    .into(),
                );
                return Err(self.fail(Step::Register, cause));
            }
            Err(e) => {
                for g in guards {
                    g.disarm(); // the registry's contract: an Err changed nothing
                }
                return Err(self.fail(Step::Register, e));
            }
        };
        let BatchStarted {
            members,
            header,
            env,
        } = self;
        let registered: Vec<Registered<'a>> = members
            .into_iter()
            .zip(guards)
            .zip(records)
            .map(|((m, g), r)| m.registered(g, r))
            .collect();
        failpoint("batch::after_register");
        let mut open = Vec::with_capacity(registered.len());
        let mut rest = registered.into_iter();
        while let Some(member) = rest.next() {
            match member.open_gate() {
                Ok(m) => open.push(m),
                Err(f) => {
                    let at = open.len();
                    let mut others = abort_all(open);
                    others.extend(abort_all(rest.collect()));
                    return Err(header.member_failed(f, at, others));
                }
            }
        }
        failpoint("batch::after_gates");
        Ok(BatchRegistered {
            members: open,
            header,
            env,
        })
    }
}

impl BatchRegistered<'_> {
    /// Waits out the longest startup grace of the members, probing each, then commits the
    /// batch: Live only if every member is alive at the end of the window.
    pub fn confirm_live(self) -> Result<LiveBatch, BatchFailure> {
        self.confirm_live_with(&|| None)
    }

    /// [`confirm_live`](Self::confirm_live), rolling back every member as soon as `interrupt`
    /// names a signal.
    pub fn confirm_live_with(
        self,
        interrupt: &dyn Fn() -> Option<i32>,
    ) -> Result<LiveBatch, BatchFailure> {
        let grace = self
            .members
            .iter()
            .map(Registered::startup_grace)
            .max()
            .unwrap_or_default();
        let waited = wait_out_grace(grace, interrupt, || {
            let mut pulse = Pulse::Finished;
            for (i, m) in self.members.iter().enumerate() {
                if m.check_alive().map_err(|e| (i, e))? == Pulse::Running {
                    pulse = Pulse::Running;
                }
            }
            Ok(pulse)
        });
        match waited {
            Ok(()) => {}
            Err(Cut::Interrupted(signal)) => {
                return Err(self.fail(Step::ConfirmLive, Error::Interrupted { signal }));
            }
            Err(Cut::Died((at, cause))) => {
                let BatchRegistered {
                    mut members,
                    header,
                    ..
                } = self;
                let dead = members.remove(at);
                let failed = dead.fail(Step::ConfirmLive, cause);
                let others = abort_all(members);
                return Err(header.member_failed(failed, at, others));
            }
        }
        self.commit()
    }

    /// The batch's one commit: the registry confirms every member in one transaction. Until
    /// it has, every member is undone (here on an error; by reconcile after a SIGKILL); once it
    /// has, every member is Live, and each member's intent is deleted.
    fn commit(self) -> Result<LiveBatch, BatchFailure> {
        failpoint("batch::before_confirm");
        let agents = self.agents();
        if let Err(e) = self.env.registry.confirm_all(&self.header.task, &agents) {
            return Err(self.fail(Step::Commit, e));
        }
        failpoint("batch::after_confirm");
        let BatchRegistered {
            members, header, ..
        } = self;
        let members = members.into_iter().map(Registered::committed).collect();
        failpoint("batch::after_commit");
        Ok(LiveBatch {
            batch: header.batch,
            members,
        })
    }
}
