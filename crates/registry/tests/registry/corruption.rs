//! Damaged registries are named and never overwritten; ids never escape a path.

use deploy_core::{AgentId, Limits, Parent, Registry, TaskId};
use serde_json::Value;

use crate::common::{FIXTURE_TASK, Root, json, registration, task_with};

#[test]
fn a_truncated_registry_is_named_with_its_position_and_never_overwritten() {
    let root = Root::with_fixture_stage("02_after_deploy");
    let layout = root.layout();
    let task = TaskId::parse(FIXTURE_TASK).unwrap();
    let path = layout.task_registry(&task);
    let bytes = fs_err::read(&path).unwrap();
    let truncated = &bytes[..bytes.len() / 2];
    fs_err::write(&path, truncated).unwrap();
    let global_before = fs_err::read(layout.global_registry()).unwrap();

    let registry = root.registry();
    let r = registration(&layout, &task, "builder", Parent::Orchestrator);
    let err = registry.register(&r).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("registry: corrupt registry {path}: ")),
        "{err}"
    );
    assert!(
        err.contains(" at line ") && err.contains(" column "),
        "{err}"
    );
    assert_eq!(fs_err::read(&path).unwrap(), truncated, "never overwritten");
    assert_eq!(
        fs_err::read(layout.global_registry()).unwrap(),
        global_before
    );
    let err = registry.read_task(&task).unwrap_err().to_string();
    assert!(err.contains("corrupt registry"), "{err}");
}

#[test]
fn an_empty_object_is_invalid_not_healthy() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let layout = root.layout();
    fs_err::write(layout.task_registry(&task), b"{}").unwrap();
    let err = root.registry().read_task(&task).unwrap_err().to_string();
    assert!(
        err.contains("missing field `task_id`") && err.contains("line 1 column 2"),
        "{err}"
    );

    fs_err::write(layout.task_registry(&task), b"").unwrap();
    let err = root.registry().read_task(&task).unwrap_err().to_string();
    assert!(err.contains("EOF while parsing"), "{err}");
}

#[test]
fn a_corrupt_global_index_blocks_writes_and_rebuild_moves_it_aside() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let layout = root.layout();
    let registry = root.registry();
    let a = registration(&layout, &task, "a", Parent::Orchestrator);
    registry.register(&a).unwrap();
    fs_err::write(layout.global_registry(), b"{\"created_at\": ").unwrap();
    let task_before = fs_err::read(layout.task_registry(&task)).unwrap();
    let b = registration(&layout, &task, "b", Parent::Orchestrator);
    let err = registry.register(&b).unwrap_err().to_string();
    assert!(
        err.contains("GLOBAL_REGISTRY.json") && err.contains("line 1"),
        "{err}"
    );
    assert_eq!(
        fs_err::read(layout.task_registry(&task)).unwrap(),
        task_before
    );

    let report = registry.rebuild_global().unwrap();
    let aside = report.moved_corrupt.clone().unwrap();
    assert_eq!(fs_err::read(&aside).unwrap(), b"{\"created_at\": ");
    assert_eq!(report.added, vec![a.agent.clone()]);
    let g = json(&layout.global_registry());
    assert_eq!(g["agents"][a.agent.as_str()]["task_id"], task.as_str());
    assert_eq!(g["total_tasks"], 1);
    registry.register(&b).unwrap();
}

#[test]
fn ids_that_would_escape_a_path_are_rejected_before_any_file_is_touched() {
    let root = Root::new();
    let long = "x".repeat(65);
    for bad in ["../x", "/etc/passwd", "a/b", "", long.as_str(), "a\0b"] {
        let task = TaskId::parse(bad).unwrap_err().to_string();
        assert!(task.starts_with("invalid task id"), "{bad:?}: {task}");
        let agent = AgentId::parse(bad).unwrap_err().to_string();
        assert!(agent.starts_with("invalid agent id"), "{bad:?}: {agent}");
        let from_json = serde_json::from_value::<TaskId>(Value::String(bad.into()));
        assert!(from_json.is_err(), "{bad:?} must not deserialize");
    }
    assert_eq!(
        fs_err::read_dir(&root.path).unwrap().count(),
        0,
        "nothing was created"
    );
}

#[test]
fn a_registry_file_naming_an_invalid_id_is_corrupt() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let path = root.layout().task_registry(&task);
    let mut v = json(&path);
    v["agents"] = serde_json::json!([{
        "id": "../../etc", "type": "x", "tmux_session": "agent_x", "parent": "orchestrator",
        "depth": 1, "status": "running", "started_at": ""
    }]);
    fs_err::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let err = root.registry().read_task(&task).unwrap_err().to_string();
    assert!(err.contains("invalid agent id \"../../etc\""), "{err}");
}
