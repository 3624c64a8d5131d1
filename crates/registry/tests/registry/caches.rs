//! What is kept between reads — the repair marker, the rosters — is trusted only while every
//! file it stands for is unchanged.

use camino::Utf8Path;
use deploy_core::{AgentStatus, Error as CoreError, Parent, Registry, StatusUpdate, TaskId};

use crate::common::{FIXTURE_TASK, Root, assert_counters_match, json, registration, roomy_task};

fn set_status_in_place(path: &Utf8Path, agent: usize, status: &str) {
    let mut t = json(path);
    t["agents"][agent]["status"] = status.into();
    fs_err::write(path, serde_json::to_vec_pretty(&t).unwrap()).unwrap();
}

#[test]
fn what_repair_verified_is_trusted_only_while_every_file_is_unchanged() {
    let root = Root::with_fixture_stage("04_final");
    let layout = root.layout();
    let task = TaskId::parse(FIXTURE_TASK).unwrap();
    let checked = layout.global_dir().join("GLOBAL_REGISTRY.json.checked");
    let registry = root.registry();
    assert!(registry.repair(None, true).unwrap().is_empty());
    assert!(!checked.exists(), "a dry run keeps nothing");
    assert!(registry.repair(None, false).unwrap().is_empty());
    assert!(
        checked.exists(),
        "a repair that found nothing keeps what it verified"
    );
    assert!(registry.repair(None, false).unwrap().is_empty());

    // A completed agent set running again, in place: the counters and the index are stale.
    let done = json(&layout.task_registry(&task))["agents"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["status"] == "completed")
        .unwrap();
    set_status_in_place(&layout.task_registry(&task), done, "running");
    let report = registry.repair(None, false).unwrap();
    assert_eq!(report.counters_fixed, vec![task.clone()]);
    assert!(report.index.as_ref().unwrap().changed, "{report:?}");
    assert_counters_match(&root, &task);
    assert!(registry.repair(None, false).unwrap().is_empty());

    // The index alone edited in place: found stale although no task changed.
    let mut g = json(&layout.global_registry());
    g["active_agents"] = 99.into();
    fs_err::write(
        layout.global_registry(),
        serde_json::to_vec_pretty(&g).unwrap(),
    )
    .unwrap();
    assert!(registry.repair(None, false).unwrap().index.unwrap().changed);

    // What is kept, torn: ignored, and the check made in full.
    fs_err::write(&checked, b"{\"index\": [1,").unwrap();
    assert!(registry.repair(None, false).unwrap().is_empty());
}

#[test]
fn a_roster_read_again_says_what_the_file_says_now() {
    let root = Root::new();
    let layout = root.layout();
    let task = roomy_task(&root);
    let registry = root.registry();
    let first = registry
        .register(&registration(&layout, &task, "a", Parent::Orchestrator))
        .unwrap();
    registry.prefetch();
    let before = registry.roster(&task).unwrap();
    assert_eq!(before.agents.len(), 1);
    assert!(
        before.agents[0].record.is_some(),
        "a running agent is read whole"
    );

    let second = registry
        .register(&registration(&layout, &task, "b", Parent::Orchestrator))
        .unwrap();
    registry
        .update_status(&task, &first.id, &StatusUpdate::now(AgentStatus::Completed))
        .unwrap();
    let after = registry.roster(&task).unwrap();
    let fresh = root.registry().roster(&task).unwrap();
    assert_eq!(
        after, fresh,
        "what the cache serves is what a new read gives"
    );
    assert_eq!(
        after
            .agents
            .iter()
            .map(|a| (&a.id, a.record.is_some()))
            .collect::<Vec<_>>(),
        vec![(&first.id, false), (&second.id, true)]
    );
    assert!(matches!(
        registry.roster(&TaskId::parse("TASK-20260101-000000-00000000").unwrap()),
        Err(CoreError::UnknownTask(_))
    ));
}
