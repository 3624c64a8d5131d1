//! A registry wrapped in `Faulty` keeps its own `precheck`, `roster`, `prefetch` and `task_ids`
//! — a fault plan must not swap a backend's counting for a whole read — and each is faulted as
//! the read or listing it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use deploy_core::limits::Candidate;
use deploy_core::{
    AgentId, AgentRecord, AgentType, Error, NewTask, Parent, Registration, Registry, RepairReport,
    StatusUpdate, TaskId, TaskRoster, TaskSnapshot, TaskSummary,
};
use serde_json::{Map, Value};
use testkit::{FakeRegistry, FaultKind, FaultPlan, Faults, Faulty, Op};

/// The fake registry, with its own answers to the four reads that have defaults, counted.
#[derive(Debug, Default)]
struct Own {
    inner: FakeRegistry,
    prechecks: AtomicU32,
    rosters: AtomicU32,
    prefetches: AtomicU32,
    listings: AtomicU32,
}

/// What `Own::precheck` answers, which the default (a whole read) never would.
const OWN_DEPTH: u32 = 77;

impl Registry for Own {
    fn create_task(&self, new: &NewTask) -> Result<TaskSnapshot, Error> {
        Registry::create_task(&self.inner, new)
    }
    fn register_all(&self, r: &[Registration]) -> Result<Vec<AgentRecord>, Error> {
        self.inner.register_all(r)
    }
    fn confirm_all(&self, task: &TaskId, agents: &[AgentId]) -> Result<(), Error> {
        self.inner.confirm_all(task, agents)
    }
    fn unregister(&self, task: &TaskId, agent: &AgentId) -> Result<bool, Error> {
        self.inner.unregister(task, agent)
    }
    fn update_status(&self, t: &TaskId, a: &AgentId, u: &StatusUpdate) -> Result<(), Error> {
        self.inner.update_status(t, a, u)
    }
    fn update_statuses(&self, t: &TaskId, u: &[(AgentId, StatusUpdate)]) -> Result<(), Error> {
        self.inner.update_statuses(t, u)
    }
    fn annotate(&self, t: &TaskId, a: &AgentId, f: &Map<String, Value>) -> Result<(), Error> {
        self.inner.annotate(t, a, f)
    }
    fn read_task(&self, task: &TaskId) -> Result<TaskSnapshot, Error> {
        self.inner.read_task(task)
    }
    fn precheck(&self, _task: &TaskId, _candidate: Candidate<'_>) -> Result<u32, Error> {
        self.prechecks.fetch_add(1, Ordering::SeqCst);
        Ok(OWN_DEPTH)
    }
    fn roster(&self, task: &TaskId) -> Result<Arc<TaskRoster>, Error> {
        self.rosters.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(TaskRoster {
            id: task.clone(),
            agents: Vec::new(),
        }))
    }
    fn list_tasks(&self) -> Result<Vec<TaskSummary>, Error> {
        self.inner.list_tasks()
    }
    fn prefetch(&self) {
        self.prefetches.fetch_add(1, Ordering::SeqCst);
    }
    fn task_ids(&self) -> Result<Vec<TaskId>, Error> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
    fn repair(&self, task: Option<&TaskId>, dry_run: bool) -> Result<RepairReport, Error> {
        self.inner.repair(task, dry_run)
    }
}

#[test]
fn a_wrapped_registry_answers_its_own_reads_and_they_are_faulted_as_reads() {
    let faults = Faults::new(FaultPlan::new());
    let registry = Faulty::new(Own::default(), faults.clone());
    let task = registry
        .create_task(&NewTask {
            description: "faulty".into(),
            ..NewTask::default()
        })
        .expect("task created")
        .id;
    let agent_type = AgentType::parse("t").expect("valid type");
    let candidate = Candidate {
        agent_type: &agent_type,
        parent: &Parent::Orchestrator,
        allow_duplicate: false,
    };

    assert_eq!(registry.precheck(&task, candidate).ok(), Some(OWN_DEPTH));
    assert_eq!(registry.roster(&task).map(|r| r.agents.len()).ok(), Some(0));
    registry.prefetch();
    assert_eq!(registry.task_ids().ok(), Some(Vec::new()));
    let own = registry.inner();
    for (what, count) in [
        ("precheck", &own.prechecks),
        ("roster", &own.rosters),
        ("prefetch", &own.prefetches),
        ("task_ids", &own.listings),
    ] {
        assert_eq!(count.load(Ordering::SeqCst), 1, "{what}");
    }
    assert_eq!(
        faults.calls(Op::ReadTask),
        2,
        "precheck and roster are reads"
    );
    assert_eq!(faults.calls(Op::ListTasks), 1, "task_ids is a listing");

    // A persistent read fault (counted anew) fails both reads before they reach the registry.
    faults.set_plan(FaultPlan::new().fail(Op::ReadTask, 1, FaultKind::Persistent));
    assert!(registry.precheck(&task, candidate).is_err());
    assert!(registry.roster(&task).is_err());
    assert_eq!(own.prechecks.load(Ordering::SeqCst), 1);
    assert_eq!(own.rosters.load(Ordering::SeqCst), 1);
}
