//! The registry: which agents exist in which task. `registry` implements it over the Python
//! server's JSON files; testkit fakes it.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::Error;
use crate::id::{AgentId, TaskId};
use crate::limits::Candidate;
use crate::record::{AgentRecord, Registration, StatusUpdate, TaskSnapshot, TaskSummary};
use crate::roster::TaskRoster;
use crate::task::{NewTask, RepairReport};

/// Records tasks and agents. Everything the binary needs of a registry is here, in core types,
/// so a new implementation plugs in without touching the binary's operations.
///
/// Contract for implementations: `register_all` checks every limit with
/// [`crate::limits::check_all`] (or, on what it counts, [`check_room`](crate::limits::check_room)
/// then [`check_view`](crate::limits::check_view) for each agent as those before it left the
/// task) and inserts every agent into the task and the global index as one atomic step under
/// the lock, failing with [`Error::Limit`] when a limit refuses; `confirm_all` marks its agents
/// confirmed as one atomic step; `unregister` undoes exactly one registration and is
/// `Ok(false)` for an agent that is not there; a method that returns `Err` changed nothing.
pub trait Registry: Send + Sync {
    /// Creates a task (after [`NewTask::validate`]) and returns it.
    fn create_task(&self, new: &NewTask) -> Result<TaskSnapshot, Error>;
    /// Registers agents of one task together, under the task's limits for all of them at
    /// once: all or none. Returns their records with their depths, in order. (A batch's
    /// members; a single deployment registers one.)
    fn register_all(&self, registrations: &[Registration]) -> Result<Vec<AgentRecord>, Error>;
    /// Registers one agent: [`register_all`](Self::register_all) of one.
    fn register(&self, registration: &Registration) -> Result<AgentRecord, Error> {
        self.register_all(std::slice::from_ref(registration))?
            .pop()
            .ok_or_else(|| Error::Registry("registering one agent returned no record".into()))
    }
    /// Records that the deployments of `agents` of `task` are confirmed Live
    /// ([`AgentRecord::confirmed`]), all in one atomic step: a batch's commit.
    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Result<(), Error>;
    /// Records that one agent's deployment is confirmed Live.
    fn confirm(&self, task: &TaskId, agent: &AgentId) -> Result<(), Error> {
        self.confirm_all(task, std::slice::from_ref(agent))
    }
    /// Removes an agent from its task and from the global index.
    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Result<bool, Error>;
    /// Changes an agent's status.
    fn update_status(
        &self,
        task: &TaskId,
        agent: &AgentId,
        update: &StatusUpdate,
    ) -> Result<(), Error>;
    /// Changes the status of several agents of one task in one transaction (reconcile records
    /// every stale agent of a task at once). Atomic: on `Err` none changed.
    fn update_statuses(
        &self,
        task: &TaskId,
        updates: &[(AgentId, StatusUpdate)],
    ) -> Result<(), Error>;
    /// Adds `fields` to an agent's entry — which deploy-core does not interpret beyond
    /// [`CHECKOUT_FIELD`](crate::checkout::CHECKOUT_FIELD) — leaving its status and everything
    /// else as they are (an ended agent's checkout, retired late).
    fn annotate(
        &self,
        task: &TaskId,
        agent: &AgentId,
        fields: &Map<String, Value>,
    ) -> Result<(), Error>;
    /// Reads one task.
    fn read_task(&self, task: &TaskId) -> Result<TaskSnapshot, Error>;
    /// Checks the task's limits for `candidate` as they stand, and returns the depth it would
    /// have: a deployment's cheap check before anything exists, outside any lock
    /// ([`register`](Self::register) checks again, authoritatively). The default reads the
    /// task whole ([`limits::check`](crate::limits::check)); an implementation that can count
    /// without building every agent's record should.
    fn precheck(&self, task: &TaskId, candidate: Candidate<'_>) -> Result<u32, Error> {
        crate::limits::check(&self.read_task(task)?, candidate)
    }
    /// [`precheck`](Self::precheck) for agents deployed together: whether all of them fit, as
    /// [`limits::check_all`](crate::limits::check_all) decides. The default reads the task whole.
    fn precheck_all(&self, task: &TaskId, candidates: &[Candidate<'_>]) -> Result<(), Error> {
        crate::limits::check_all(&self.read_task(task)?, candidates).map(drop)
    }
    /// Reads one task as reconcile needs it: every agent's id, status and checkout, and the
    /// active agents whole. The default takes it from [`read_task`](Self::read_task); an
    /// implementation that can read less should (reconcile reads every task, every time).
    /// Shared: an implementation may keep what it read.
    fn roster(&self, task: &TaskId) -> Result<Arc<TaskRoster>, Error> {
        Ok(Arc::new(TaskRoster::of(self.read_task(task)?)))
    }
    /// Lists every task, by id.
    fn list_tasks(&self) -> Result<Vec<TaskSummary>, Error>;
    /// Reads ahead, where an implementation keeps what it reads, what an unscoped reconcile
    /// will read — every task's [`roster`](Self::roster), and what [`repair`](Self::repair)
    /// reads first — so that it runs while the backend lists sessions. Every read made after
    /// must still give the storage's content at that time (a cache checked against it), never
    /// this read's. Errors are left for those reads to report. The default does nothing.
    fn prefetch(&self) {}
    /// Every task's id, sorted, for callers that read the tasks one by one afterwards. The
    /// default takes them from [`list_tasks`](Self::list_tasks); an implementation that can
    /// list ids without reading every task should.
    fn task_ids(&self) -> Result<Vec<TaskId>, Error> {
        Ok(self.list_tasks()?.into_iter().map(|t| t.id).collect())
    }
    /// Repairs what crashes leave in the storage itself: stored counters that differ from the
    /// agent lists, a stale global index (rebuilt only when `task` is `None`), temp files of dead
    /// writers. With `dry_run`, reports what it would do and changes nothing.
    fn repair(&self, task: Option<&TaskId>, dry_run: bool) -> Result<RepairReport, Error>;
}
