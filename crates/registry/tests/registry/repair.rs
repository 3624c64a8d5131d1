//! Rebuilding the index from the task registries, and sweeping dead writers' temp files.

use deploy_core::{AgentId, Limits, Parent, Registry};

use crate::common::{FIXTURE_TASK, Root, json, registration, task_with};

#[test]
fn rebuild_global_restores_the_index_from_the_task_registries() {
    let root = Root::with_fixture_stage("04_final");
    let layout = root.layout();
    let registry = root.registry();
    let before = json(&layout.global_registry());
    let nothing = registry.rebuild_global().unwrap();
    assert!(
        !nothing.changed,
        "a consistent index is left alone: {nothing:?}"
    );

    let mut g = before.clone();
    g["agents"]
        .as_object_mut()
        .unwrap()
        .remove("builder-083301-43b8ea");
    g["agents"]["ghost-000000-000000"] = g["agents"]["fixer-083303-4f32ab"].clone();
    g["active_agents"] = 99.into();
    fs_err::write(
        layout.global_registry(),
        serde_json::to_vec_pretty(&g).unwrap(),
    )
    .unwrap();
    let report = registry.rebuild_global().unwrap();
    assert_eq!(
        report.added,
        vec![AgentId::parse("builder-083301-43b8ea").unwrap()]
    );
    assert_eq!(report.removed, vec!["ghost-000000-000000".to_owned()]);
    let mut after = json(&layout.global_registry());
    assert_eq!(
        after["agents"]["builder-083301-43b8ea"]["task_id"],
        FIXTURE_TASK
    );
    // Re-added from the task registry, so without the index-only fields it had before.
    after["agents"]["builder-083301-43b8ea"] = before["agents"]["builder-083301-43b8ea"].clone();
    assert_eq!(after["active_agents"], 1);
    assert_eq!(after["agents"].as_object().unwrap().len(), 4);
    assert_eq!(
        after["agents"]["fixer-083303-4f32ab"],
        before["agents"]["fixer-083303-4f32ab"]
    );
    assert_eq!(
        after, before,
        "everything else is as the Python server wrote it"
    );
}

/// Python-style: the file rewritten in place, one agent's status changed by hand.

#[test]
fn temp_files_of_dead_writers_are_swept() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let layout = root.layout();
    let tmp = registry::atomic::temp_path(&layout.task_registry(&task));
    let gtmp = registry::atomic::temp_path(&layout.global_registry());
    fs_err::write(&tmp, b"half a regis").unwrap();
    fs_err::write(&gtmp, b"half").unwrap();
    assert_eq!(root.registry().sweep_temps().unwrap(), 2);
    assert!(!tmp.exists() && !gtmp.exists());
    fs_err::write(&tmp, b"half a regis").unwrap();
    let r = registration(&layout, &task, "a", Parent::Orchestrator);
    root.registry().register(&r).unwrap();
    assert_eq!(
        fs_err::read(&tmp).unwrap(),
        b"half a regis",
        "a write uses a temp name of its own, never a dead writer's"
    );
    assert_eq!(root.registry().sweep_temps().unwrap(), 1);
}
