//! The Python server's format: its fixtures round-trip, and fleet writes its fields.

use deploy_core::{AgentId, AgentStatus, Limits, Parent, Registry, StatusUpdate, TaskId};
use registry::format::{GlobalFile, TaskFile};
use registry::{NewTask, TaskContext};
use serde_json::Value;

use crate::common::{
    FIXTURE_TASK, PLAIN_TASK, Root, assert_counters_match, fixtures, json, registration, task_with,
};

#[test]
fn every_fixture_parses_and_round_trips_exactly() {
    let mut names: Vec<String> = fs_err::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 9, "{names:?}");
    for name in names {
        let path = fixtures().join(&name);
        let original = json(&path);
        let normalized = if name.starts_with("AGENT_REGISTRY") {
            let mut t: TaskFile = serde_json::from_value(original.clone()).unwrap();
            t.recount();
            serde_json::to_value(&t).unwrap()
        } else {
            let mut g: GlobalFile = serde_json::from_value(original.clone()).unwrap();
            g.recount();
            serde_json::to_value(&g).unwrap()
        };
        assert_eq!(
            normalized, original,
            "{name}: every field kept, counters equal"
        );
        insta::assert_json_snapshot!(name.trim_end_matches(".json"), normalized);
    }
}

#[test]
fn read_modify_write_keeps_unknown_fields_and_unregister_undoes_exactly() {
    let root = Root::with_fixture_stage("04_final");
    let layout = root.layout();
    let task = TaskId::parse(FIXTURE_TASK).unwrap();
    let task_before = json(&layout.task_registry(&task));
    let global_before = json(&layout.global_registry());
    let registry = root.registry();

    let parent = Parent::parse("tester-083308-f0642e").unwrap();
    let r = registration(&layout, &task, "reviewer", parent);
    let record = registry.register(&r).unwrap();
    assert_eq!(record.depth, 2);
    let after = json(&layout.task_registry(&task));
    for key in ["orchestration_guidance", "spiral_checks", "task_context"] {
        assert_eq!(after[key], task_before[key], "{key} kept");
    }
    assert_eq!(
        after["agents"][0]["completion_validation"],
        task_before["agents"][0]["completion_validation"]
    );
    assert_eq!(after["agents"][4]["id"], r.agent.as_str());
    assert_eq!(
        after["agent_hierarchy"]["tester-083308-f0642e"][0],
        r.agent.as_str()
    );
    assert_eq!(after["total_spawned"], 5);
    assert_eq!(after["active_count"], 2);
    let global_after = json(&layout.global_registry());
    assert_eq!(global_after["active_agents"], 2);
    assert_eq!(
        global_after["agents"][r.agent.as_str()]["task_id"],
        FIXTURE_TASK
    );

    assert!(registry.unregister(&task, &r.agent).unwrap());
    assert_eq!(json(&layout.task_registry(&task)), task_before);
    assert_eq!(json(&layout.global_registry()), global_before);
    assert!(
        !registry.unregister(&task, &r.agent).unwrap(),
        "a second unregister finds nothing"
    );
}

#[test]
fn create_task_writes_the_python_servers_fields() {
    let root = Root::new();
    let registry = root.registry();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };

    let plain = registry
        .create_task(&NewTask {
            description: "Investigate flaky login test in auth module".into(),
            priority: "P2".into(),
            ..NewTask::default()
        })
        .unwrap();
    let written = json(&root.layout().task_registry(&plain.task_id));
    let fixture = json(&fixtures().join("AGENT_REGISTRY.plain_task_after_create.json"));
    assert_eq!(keys(&written), keys(&fixture));
    assert_eq!(written["agent_hierarchy"], fixture["agent_hierarchy"]);
    assert_eq!(
        written["orchestration_guidance"],
        fixture["orchestration_guidance"]
    );
    for sub in ["logs", "progress", "findings"] {
        assert!(root.layout().task_dir(&plain.task_id).join(sub).is_dir());
    }

    let enhanced = registry
        .create_task(&NewTask {
            description: "Fix race condition".into(),
            priority: "P1".into(),
            context: Some(TaskContext {
                background_context: Some("Concurrent deploys".into()),
                expected_deliverables: vec!["Patch".into(), "Test".into()],
                success_criteria: vec!["8 concurrent deploys".into(), "No lost updates".into()],
                constraints: vec!["Keep signatures".into()],
                relevant_files: vec!["real_mcp_server.py".into()],
            }),
            ..NewTask::default()
        })
        .unwrap();
    let written = json(&root.layout().task_registry(&enhanced.task_id));
    let fixture = json(&fixtures().join("AGENT_REGISTRY.01_after_create.json"));
    assert_eq!(keys(&written), keys(&fixture));
    let mut ctx_keys = keys(&fixture["task_context"]);
    ctx_keys.retain(|k| k != "conversation_history");
    assert_eq!(keys(&written["task_context"]), ctx_keys);

    let global = json(&root.layout().global_registry());
    let gfix = json(&fixtures().join("GLOBAL_REGISTRY.01_after_create.json"));
    assert_eq!(keys(&global), keys(&gfix));
    assert_eq!(
        keys(&global["tasks"][plain.task_id.as_str()]),
        keys(&gfix["tasks"][PLAIN_TASK])
    );
    assert_eq!(
        keys(&global["tasks"][enhanced.task_id.as_str()]),
        keys(&gfix["tasks"][FIXTURE_TASK])
    );
    assert_eq!(global["total_tasks"], 2);
    assert_eq!(global["active_tasks"], 2);
}

#[test]
fn status_updates_write_the_python_servers_fields_in_both_files() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let registry = root.registry();
    let layout = root.layout();
    let a = registration(&layout, &task, "fixer", Parent::Orchestrator);
    registry.register(&a).unwrap();
    let mut update = StatusUpdate::now(AgentStatus::Terminated);
    update.reason = Some("Superseded".into());
    registry.update_status(&task, &a.agent, &update).unwrap();
    let t = json(&layout.task_registry(&task));
    let entry = &t["agents"][0];
    assert_eq!(entry["status"], "terminated");
    assert_eq!(entry["termination_reason"], "Superseded");
    assert_eq!(entry["terminated_at"], update.at);
    assert_eq!(t["active_count"], 0);
    let g = json(&layout.global_registry());
    assert_eq!(g["agents"][a.agent.as_str()]["status"], "terminated");
    assert_eq!(
        g["agents"][a.agent.as_str()]["termination_reason"],
        "Superseded"
    );
    assert_eq!(g["active_agents"], 0);
    assert_counters_match(&root, &task);

    let err = registry
        .update_status(&task, &AgentId::parse("nobody").unwrap(), &update)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unknown agent nobody in task {task}")
    );
}
