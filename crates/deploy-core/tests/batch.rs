//! Batches on the fakes: every member Live and confirmed, or nothing of the batch — whatever
//! member fails, at whatever step, and after a crash at any batch state.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deploy_core::reconcile::{self, Scope};
use deploy_core::{
    AgentStatus, AgentType, BatchRequest, DeployRequest, Error, LimitExceeded, Limits, Liveness,
    Registry, Step, TaskId,
};
use testkit::{FaultKind, FaultPlan, Op, World};

fn member(task: &TaskId, ty: &str, command: &[&str]) -> DeployRequest {
    let mut r = DeployRequest::new(
        task.clone(),
        AgentType::parse(ty).unwrap(),
        "work",
        command.iter().map(|s| (*s).to_owned()).collect(),
    );
    r.startup_grace = Duration::ZERO;
    r
}

fn batch(members: Vec<DeployRequest>) -> BatchRequest {
    BatchRequest {
        batch: None,
        members,
    }
}

/// Nothing of any deployment is left: no session, prompt file, intent or registered agent.
fn assert_nothing(world: &World, task: &TaskId) {
    assert_eq!(world.backend.inner().session_count(), 0, "sessions left");
    assert!(
        world.prompts.inner().files().is_empty(),
        "prompt files left"
    );
    assert!(world.journal.inner().is_empty(), "intents left");
    let t = world.registry.inner().snapshot().tasks[task].clone();
    assert!(t.agents.is_empty(), "agents left: {:?}", t.agents);
}

fn no_interrupt() -> Option<i32> {
    None
}

#[test]
fn a_batch_goes_live_whole_confirmed_and_tagged_with_its_id() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    let members = (0..3)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    let live = world
        .deployer()
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap();
    assert_eq!(live.members().len(), 3);
    let t = world.registry.inner().snapshot().tasks[&task].clone();
    assert_eq!(t.agents.len(), 3);
    for a in &t.agents {
        assert!(a.confirmed, "{} not confirmed", a.id);
        assert_eq!(a.batch().as_ref(), Some(live.batch()));
        assert_eq!(world.backend.inner().probe_now(&a.session), Liveness::Alive);
    }
    assert!(
        world.journal.inner().is_empty(),
        "intents left after commit"
    );
    // Best-of-N: the members after the first are its duplicates, all builders.
    assert!(t.agents.iter().all(|a| a.agent_type.as_str() == "builder"));
}

#[test]
fn a_batch_that_does_not_fit_is_refused_whole_saying_how_many_fit() {
    let world = World::new();
    let task = world.create_task(Limits {
        max_concurrent: 3,
        ..Limits::default()
    });
    let members = (0..5)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    let failure = world
        .deployer()
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap_err();
    assert_eq!(failure.failure.step, Step::Precheck);
    assert!(
        matches!(
            *failure.failure.cause,
            Error::Limit(LimitExceeded::Batch {
                members: 5,
                room: 3,
                ..
            })
        ),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("leaves room for 3 more"),
        "{failure}"
    );
    assert_nothing(&world, &task);
    assert_eq!(world.faults.calls(Op::Start), 0, "a session was started");
}

#[test]
fn the_registry_refuses_a_batch_that_stopped_fitting_after_its_precheck_and_no_member_ran() {
    let world = World::new();
    let task = world.create_task(Limits {
        max_concurrent: 3,
        ..Limits::default()
    });
    let members = (0..3)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    let deployer = world.deployer();
    let started = deployer
        .begin_batch(batch(members))
        .unwrap()
        .start_sessions()
        .unwrap();
    // Another deployer takes a place between the precheck and the registration.
    let other = deployer.deploy(member(&task, "fixer", &["agent"])).unwrap();
    let failure = started.register().unwrap_err();
    assert_eq!(failure.failure.step, Step::Register);
    assert!(
        failure.to_string().contains("leaves room for 2 more"),
        "{failure}"
    );
    assert!(failure.is_clean(), "{failure}");
    assert_eq!(
        world.faults.calls(Op::OpenGate),
        1,
        "only the other agent's gate opened: no member ran"
    );
    let sessions = world.backend.inner().sessions();
    assert_eq!(sessions.len(), 1, "only the other agent's session is left");
    assert_eq!(sessions[0].spec.agent, other.record().id);
    assert_eq!(
        world.registry.inner().snapshot().tasks[&task].agents.len(),
        1
    );
}

#[test]
fn a_member_dying_in_its_grace_rolls_back_every_member_and_each_cleanup_is_reported() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    let members = vec![
        member(&task, "investigator", &["agent"]),
        member(&task, "builder", &["agent"]),
        member(&task, "reviewer", &["fake-exit", "3"]),
    ];
    let failure = world
        .deployer()
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap_err();
    assert_eq!(failure.failure.step, Step::ConfirmLive);
    assert!(
        failure
            .failure
            .agent
            .as_ref()
            .is_some_and(|a| a.as_str().starts_with("reviewer")),
        "{failure}"
    );
    assert_eq!(failure.members.len(), 3, "{failure}");
    assert!(failure.is_clean(), "{failure}");
    assert!(
        failure.to_string().contains("exited with status 3"),
        "{failure}"
    );
    assert_nothing(&world, &task);
}

/// Found by the real Claude Code: a member one reply long finished (exit 0) inside the batch's
/// grace, and the whole batch was rolled back, its result with it. A member that finished is no
/// failed start: the batch goes Live, and the member's end is recorded as completed.
#[test]
fn a_member_that_finishes_in_its_grace_goes_live_with_its_batch_and_completes() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    let members = vec![
        member(&task, "investigator", &["agent"]),
        member(&task, "reviewer", &["fake-exit", "0"]),
    ];
    let deployer = world.deployer();
    let live = deployer
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap();
    assert_eq!(live.members().len(), 2);
    let t = world.registry.inner().snapshot().tasks[&task].clone();
    assert!(t.agents.iter().all(|a| a.confirmed), "{:?}", t.agents);
    reconcile::reconcile(&deployer, Scope::everything()).unwrap();
    let t = world.registry.inner().snapshot().tasks[&task].clone();
    let status = |ty: &str| {
        t.agents
            .iter()
            .find(|a| a.agent_type.as_str() == ty)
            .map(|a| a.status.clone())
    };
    assert_eq!(status("reviewer"), Some(AgentStatus::Completed));
    assert_eq!(status("investigator"), Some(AgentStatus::Running));
}

#[test]
fn a_failed_commit_rolls_back_every_member() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    world
        .faults
        .set_plan(FaultPlan::new().fail(Op::Confirm, 1, FaultKind::Transient));
    let members = (0..2)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    let failure = world
        .deployer()
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap_err();
    assert_eq!(failure.failure.step, Step::Commit);
    assert_nothing(&world, &task);
}

#[test]
fn an_interrupted_batch_rolls_back_every_member() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    let mut members: Vec<_> = (0..3)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    for m in &mut members {
        m.startup_grace = Duration::from_secs(60);
    }
    let failure = world
        .deployer()
        .deploy_batch(batch(members), &|| Some(15))
        .unwrap_err();
    assert!(matches!(
        *failure.failure.cause,
        Error::Interrupted { signal: 15 }
    ));
    assert_nothing(&world, &task);
}

#[test]
fn a_crash_at_any_batch_state_then_reconcile_leaves_nothing_of_the_batch() {
    for stop in 0..3 {
        let world = World::new();
        let task = world.create_task(Limits::default());
        let members = (0..3)
            .map(|_| member(&task, "builder", &["agent"]))
            .collect();
        let deployer = world.deployer();
        let written = deployer.begin_batch(batch(members)).unwrap();
        match stop {
            0 => std::mem::forget(written),
            1 => std::mem::forget(written.start_sessions().unwrap()),
            _ => std::mem::forget(written.start_sessions().unwrap().register().unwrap()),
        }
        world.journal.inner().crash(); // SIGKILL: no destructor ran, every lock released
        reconcile::reconcile(&deployer, Scope::everything()).unwrap();
        assert_nothing(&world, &task);
    }
}

#[test]
fn an_existing_agent_of_the_type_refuses_the_batch_but_the_batch_s_own_duplicates_do_not() {
    let world = World::new();
    let task = world.create_task(Limits::default());
    let deployer = world.deployer();
    deployer
        .deploy(member(&task, "builder", &["agent"]))
        .unwrap();
    let members = (0..2)
        .map(|_| member(&task, "builder", &["agent"]))
        .collect();
    let failure = deployer
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap_err();
    assert!(
        failure.to_string().contains("one active agent per type"),
        "{failure}"
    );
    let members = (0..2).map(|_| member(&task, "fixer", &["agent"])).collect();
    deployer
        .deploy_batch(batch(members), &no_interrupt)
        .unwrap();
    let t = Registry::read_task(&world.registry, &task).unwrap();
    assert_eq!(t.agents.len(), 3);
}

#[test]
fn a_batch_of_members_of_two_tasks_or_of_none_is_refused_as_bad_input() {
    let world = World::new();
    let a = world.create_task(Limits::default());
    let b = world.create_task(Limits::default());
    let failure = world
        .deployer()
        .deploy_batch(
            batch(vec![
                member(&a, "x", &["agent"]),
                member(&b, "y", &["agent"]),
            ]),
            &no_interrupt,
        )
        .unwrap_err();
    assert_eq!(failure.failure.step, Step::Validate);
    assert!(
        failure.to_string().contains("member 2 is for task"),
        "{failure}"
    );
    let failure = world
        .deployer()
        .deploy_batch(batch(Vec::new()), &no_interrupt)
        .unwrap_err();
    assert!(
        failure.to_string().contains("at least one member"),
        "{failure}"
    );
    assert_nothing(&world, &a);
}
