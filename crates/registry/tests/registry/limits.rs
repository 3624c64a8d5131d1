//! Every limit, checked under the lock.

use deploy_core::{
    AgentStatus, Error as CoreError, Limits, Parent, Registry, StatusUpdate, TaskId,
};

use crate::common::{Root, assert_counters_match, registration, task_with};

#[test]
fn register_enforces_every_limit_under_the_lock() {
    let root = Root::new();
    let layout = root.layout();
    let task = task_with(
        &root,
        Limits {
            max_agents: 3,
            max_concurrent: 2,
            max_depth: 2,
        },
    );
    let registry = root.registry();
    let a = registration(&layout, &task, "a", Parent::Orchestrator);
    registry.register(&a).unwrap();
    let dup = registration(&layout, &task, "a", Parent::Orchestrator);
    let err = registry.register(&dup).unwrap_err();
    assert!(matches!(err, CoreError::Limit(_)), "{err}");
    let child = registration(&layout, &task, "b", Parent::Agent(a.agent.clone()));
    assert_eq!(registry.register(&child).unwrap().depth, 2);
    let grandchild = registration(&layout, &task, "c", Parent::Agent(child.agent.clone()));
    assert!(
        registry
            .register(&grandchild)
            .unwrap_err()
            .to_string()
            .contains("max_depth = 2")
    );
    let third = registration(&layout, &task, "c", Parent::Orchestrator);
    assert!(
        registry
            .register(&third)
            .unwrap_err()
            .to_string()
            .contains("max_concurrent = 2")
    );
    registry
        .update_status(&task, &a.agent, &StatusUpdate::now(AgentStatus::Completed))
        .unwrap();
    registry.register(&third).unwrap();
    let fourth = registration(&layout, &task, "d", Parent::Orchestrator);
    assert!(
        registry
            .register(&fourth)
            .unwrap_err()
            .to_string()
            .contains("max_agents = 3")
    );
    let orphan = registration(&layout, &task, "e", Parent::parse("ghost").unwrap());
    assert!(
        registry
            .register(&orphan)
            .unwrap_err()
            .to_string()
            .contains("unknown parent agent ghost")
    );
    let missing = TaskId::parse("TASK-NONE").unwrap();
    let r = registration(&layout, &missing, "x", Parent::Orchestrator);
    assert_eq!(
        registry.register(&r).unwrap_err().to_string(),
        "unknown task TASK-NONE"
    );
    assert!(
        !layout.task_dir(&missing).exists(),
        "an unknown task gets no directory"
    );
    assert_counters_match(&root, &task);
}
