//! Hosts sharing one registry, on the fakes: each records its agents with its host, and judges,
//! ends and retires only its own — another host's agent is never found missing, recorded gone
//! or killed from here, even when this host cannot see its session.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deploy_core::end::{self, Cause, Ending, Files};
use deploy_core::reconcile::{self, Scope};
use deploy_core::{
    AgentStatus, AgentType, DeployRequest, Error, ExitStatus, HostName, Limits, Registry, TaskId,
    Whereabouts,
};
use testkit::World;

/// A builder of `task` that must live no time to be Live.
fn builder(task: &TaskId) -> DeployRequest {
    let mut request = DeployRequest::new(
        task.clone(),
        AgentType::parse("builder").unwrap(),
        "work",
        vec!["agent".into()],
    );
    request.startup_grace = Duration::ZERO;
    request
}

#[test]
fn a_host_judges_and_ends_only_its_own_agents() {
    let world = World::new();
    let (a, b) = (
        HostName::parse("host-a").unwrap(),
        HostName::parse("host-b").unwrap(),
    );
    let task = world.create_task(Limits::default());
    let live = world.deployer_on(&a).deploy(builder(&task)).unwrap();
    let record = live.record().clone();
    let stored = world.registry.read_task(&task).unwrap().agents[0].clone();
    assert_eq!(stored.host(), Some(a.clone()), "the agent records its host");

    // Its process ends: host b, which shares the registry, neither records its end nor ends it.
    world
        .backend
        .inner()
        .end_agent(&record.session, ExitStatus::Code(0));
    let on_b = world.deployer_on(&b);
    assert!(
        matches!(on_b.locate(&stored), Whereabouts::Elsewhere(Some(ref p)) if p == "host host-a")
    );
    let report = reconcile::reconcile(&on_b, Scope::everything()).unwrap();
    assert!(report.zombies.is_empty(), "{report:?}");
    assert!(report.orphans.is_empty(), "{report:?}");
    let kill = Cause::Ended {
        status: AgentStatus::Terminated,
        reason: "killed".into(),
    };
    let e = end::end(&on_b, &task, &[Ending::of(&stored, kill)], Files::Keep).unwrap_err();
    assert!(
        matches!(&e, Error::OtherHost { host, here, .. } if *host == a && *here == b),
        "{e}"
    );
    assert!(e.to_string().contains("run fleet on host-a"), "{e}");
    let refused = on_b.backend_of(&stored).err();
    assert!(
        matches!(refused, Some(Error::OtherHost { .. })),
        "kill looks on host b"
    );
    let now = world.registry.read_task(&task).unwrap().agents[0].clone();
    assert_eq!(now.status, AgentStatus::Running, "untouched from host b");
    assert_eq!(world.backend.inner().session_count(), 1);

    // Its own host records it.
    let report = reconcile::reconcile(&world.deployer_on(&a), Scope::everything()).unwrap();
    assert_eq!(report.zombies.len(), 1, "{report:?}");
    let now = world.registry.read_task(&task).unwrap().agents[0].clone();
    assert_eq!(now.status, AgentStatus::Completed);
}

#[test]
fn a_deployer_without_a_host_judges_every_agent_as_before() {
    let world = World::new();
    let a = HostName::parse("host-a").unwrap();
    let task = world.create_task(Limits::default());
    let live = world.deployer_on(&a).deploy(builder(&task)).unwrap();
    world
        .backend
        .inner()
        .end_agent(&live.record().session, ExitStatus::Code(3));
    let report = reconcile::reconcile(&world.deployer(), Scope::everything()).unwrap();
    assert_eq!(report.zombies.len(), 1, "{report:?}");
    let now = world.registry.read_task(&task).unwrap().agents[0].clone();
    assert_eq!(now.status, AgentStatus::Error);
}
