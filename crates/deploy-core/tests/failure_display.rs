//! What a user reads when a deployment fails: one snapshot per kind of failure.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deploy_core::{AgentType, DeployFailure, DeployRequest, Limits, Parent};
use testkit::{FaultKind, FaultPlan, Op, World};

fn request(world: &World, command: &[&str]) -> DeployRequest {
    let task = world.create_task(Limits::default());
    let mut r = DeployRequest::new(
        task,
        AgentType::parse("investigator").unwrap(),
        "Find every unlocked registry write.",
        command.iter().map(|s| s.to_string()).collect(),
    );
    r.startup_grace = Duration::from_millis(0);
    r
}

fn fail(plan: FaultPlan, edit: impl FnOnce(&mut DeployRequest), command: &[&str]) -> DeployFailure {
    let world = World::with_plan(plan);
    let mut r = request(&world, command);
    edit(&mut r);
    world.deployer().deploy(r).unwrap_err()
}

macro_rules! snap {
    ($name:literal, $failure:expr) => {
        let failure = $failure;
        insta::with_settings!({filters => vec![(r"investigator-\d{6}-[0-9a-f]{6}", "[agent]")]}, {
            insta::assert_snapshot!($name, format!("{}\n---\nheadline: {}", failure, failure.headline()));
        });
    };
}

#[test]
fn invalid_request() {
    snap!(
        "invalid_request",
        fail(FaultPlan::new(), |r| r.prompt.clear(), &["agent"])
    );
}

#[test]
fn limit_refusal_before_any_work() {
    let world = World::new();
    let task = world.create_task(Limits {
        max_concurrent: 0,
        ..Limits::default()
    });
    let mut r = request(&world, &["agent"]);
    r.task = task;
    snap!("limit_concurrent", world.deployer().deploy(r).unwrap_err());
}

#[test]
fn unknown_parent_before_any_work() {
    snap!(
        "unknown_parent",
        fail(
            FaultPlan::new(),
            |r| r.parent = Parent::parse("no-such-parent").unwrap(),
            &["agent"]
        )
    );
}

#[test]
fn session_start_failure_releases_prompt_and_intent() {
    snap!(
        "start_failed",
        fail(
            FaultPlan::new().fail(Op::Start, 1, FaultKind::Transient),
            |_| {},
            &["agent"]
        )
    );
}

#[test]
fn agent_that_dies_at_start() {
    snap!(
        "agent_died",
        fail(FaultPlan::new(), |_| {}, &["fake-exit", "3"])
    );
}

#[test]
fn agent_killed_by_a_signal_at_start() {
    snap!(
        "agent_signalled",
        fail(FaultPlan::new(), |_| {}, &["fake-signal", "9"])
    );
}

#[test]
fn rollback_that_cannot_kill_the_session() {
    snap!(
        "kill_failed",
        fail(
            FaultPlan::new()
                .fail(Op::Register, 1, FaultKind::Transient)
                .fail(Op::Kill, 1, FaultKind::Persistent),
            |_| {},
            &["agent"]
        )
    );
}

#[test]
fn commit_failure() {
    snap!(
        "commit_failed",
        fail(
            FaultPlan::new().fail(Op::FinishIntent, 1, FaultKind::Transient),
            |_| {},
            &["agent"]
        )
    );
}
