//! The JSON registry against the Python server's files and against concurrent OS processes.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{
    AgentId, AgentStatus, AgentType, Error as CoreError, Layout, Limits, Parent, Registration,
    Registry, SessionName, StatusUpdate, TaskId, timestamp,
};
use registry::format::{GlobalFile, TaskFile};
use registry::{JsonRegistry, NewTask, TaskContext};
use serde_json::Value;

const STRESS: &str = env!("CARGO_BIN_EXE_registry-stress");
const FIXTURE_TASK: &str = "TASK-20261124-083259-3e71215b";
const PLAIN_TASK: &str = "TASK-20261124-083259-e00e2d0d";

fn fixtures() -> Utf8PathBuf {
    let dir = Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/python-orchestrator");
    assert!(
        dir.is_dir(),
        "the Python server's fixtures are expected at {dir}"
    );
    dir
}

struct Root {
    _dir: tempfile::TempDir,
    path: Utf8PathBuf,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        Root { _dir: dir, path }
    }
    fn layout(&self) -> Layout {
        Layout::new(self.path.clone())
    }
    fn registry(&self) -> JsonRegistry {
        JsonRegistry::new(self.layout()).with_lock_timeout(Duration::from_secs(20))
    }
    /// Puts the fixtures of one stage where the layout expects them.
    fn with_fixture_stage(stage: &str) -> Root {
        let root = Root::new();
        let layout = root.layout();
        let task = TaskId::parse(FIXTURE_TASK).unwrap();
        fs_err::create_dir_all(layout.task_dir(&task)).unwrap();
        fs_err::create_dir_all(layout.global_dir()).unwrap();
        fs_err::copy(
            fixtures().join(format!("AGENT_REGISTRY.{stage}.json")),
            layout.task_registry(&task),
        )
        .unwrap();
        fs_err::copy(
            fixtures().join(format!("GLOBAL_REGISTRY.{stage}.json")),
            layout.global_registry(),
        )
        .unwrap();
        // The global index also names the plain task created in the same run.
        let plain = TaskId::parse(PLAIN_TASK).unwrap();
        fs_err::create_dir_all(layout.task_dir(&plain)).unwrap();
        fs_err::copy(
            fixtures().join("AGENT_REGISTRY.plain_task_after_create.json"),
            layout.task_registry(&plain),
        )
        .unwrap();
        root
    }
}

fn json(path: &Utf8Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

fn registration(layout: &Layout, task: &TaskId, agent_type: &str, parent: Parent) -> Registration {
    let agent_type = AgentType::parse(agent_type).unwrap();
    let agent = AgentId::generate(&agent_type).unwrap();
    Registration {
        task: task.clone(),
        agent: agent.clone(),
        agent_type,
        parent,
        session: SessionName::for_agent(&agent).unwrap(),
        prompt_preview: "p".into(),
        tracked_files: layout.tracked_files(task, &agent),
        started_at: timestamp(),
        placement: "test".into(),
        allow_duplicate: false,
        checkout: None,
    }
}

/// A task whose limits are far away: races there are about lost updates, not refusals.
fn roomy_task(root: &Root) -> TaskId {
    task_with(
        root,
        Limits {
            max_agents: 1000,
            max_concurrent: 1000,
            max_depth: 5,
        },
    )
}

fn task_with(root: &Root, limits: Limits) -> TaskId {
    let t = root
        .registry()
        .create_task(&NewTask {
            description: "stress".into(),
            limits,
            ..NewTask::default()
        })
        .unwrap();
    t.task_id
}

fn assert_counters_match(root: &Root, task: &TaskId) -> (TaskFile, GlobalFile) {
    let registry = root.registry();
    let t = registry.read_task_file(task).unwrap();
    let g = registry.read_global_file().unwrap().unwrap();
    assert_eq!(t.total_spawned, t.agents.len() as u64);
    assert_eq!(
        t.active_count,
        t.agents.iter().filter(|a| a.status.is_active()).count() as u64
    );
    assert_eq!(
        t.completed_count,
        t.agents
            .iter()
            .filter(|a| a.status == AgentStatus::Completed)
            .count() as u64
    );
    assert_eq!(g.total_agents_spawned, g.agents.len() as u64);
    let mut copy = g.clone();
    copy.recount();
    assert_eq!(copy, g, "global counters equal their lists");
    (t, g)
}

// ---- the Python server's format ------------------------------------------------------------

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

// ---- corruption and ids --------------------------------------------------------------------

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

// ---- limits, rebuild, sweeping -------------------------------------------------------------

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

#[test]
fn a_held_lock_times_out_with_a_typed_error_naming_the_path() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let layout = root.layout();
    let lock_path = layout.task_dir(&task).join("AGENT_REGISTRY.json.lock");
    let _held = deploy_core::lock::Flock::open(&lock_path, Duration::from_secs(1)).unwrap();
    let registry = JsonRegistry::new(layout.clone()).with_lock_timeout(Duration::from_millis(50));
    let r = registration(&layout, &task, "a", Parent::Orchestrator);
    let err = registry.register(&r).unwrap_err();
    assert!(matches!(err, CoreError::LockTimeout { .. }), "{err}");
    assert!(err.to_string().contains(lock_path.as_str()), "{err}");
}

// ---- across processes ----------------------------------------------------------------------

fn spawn(args: &[&str]) -> Child {
    Command::new(STRESS)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn output(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn reader(root: &Root, task: &TaskId) -> Child {
    spawn(&["read", root.path.as_str(), task.as_str(), "3000"])
}

/// `processes` OS processes, started together, each registering `each` agents of
/// `agent_type` into `task`; returns every line they printed (`ok <agent>` / `refused <why>`).
fn race(
    root: &Root,
    task: &TaskId,
    processes: usize,
    each: usize,
    agent_type: &str,
) -> Vec<String> {
    let each = each.to_string();
    let args = [
        "register",
        root.path.as_str(),
        task.as_str(),
        &each,
        agent_type,
        "--allow-duplicate",
    ];
    let workers: Vec<Child> = (0..processes).map(|_| spawn(&args)).collect();
    workers.into_iter().flat_map(output).collect()
}

/// Every agent in `ok` is in the task registry and in the index: no update was lost.
fn assert_all_recorded(t: &TaskFile, g: &GlobalFile, ok: &[impl AsRef<str>]) {
    for id in ok.iter().map(AsRef::as_ref) {
        assert!(
            t.agent(&AgentId::parse(id).unwrap()).is_some(),
            "{id} lost from the task"
        );
        assert!(g.agents.contains_key(id), "{id} lost from the index");
    }
}

fn assert_reader_saw_no_torn_file(reader: Child) {
    let lines = output(reader);
    let last = lines.last().unwrap();
    let reads: u64 = last.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(last.ends_with(" errors 0"), "{lines:?}");
    assert!(reads > 100, "the reader ran alongside: {last}");
}

#[test]
fn eight_processes_times_fifty_registrations_lose_nothing() {
    let root = Root::new();
    let task = roomy_task(&root);
    let reader = reader(&root, &task);
    let mut ok = Vec::new();
    for line in race(&root, &task, 8, 50, "worker") {
        let agent = line
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("refused: {line}"));
        ok.push(agent.to_owned());
    }
    assert_eq!(ok.len(), 400);
    let (t, g) = assert_counters_match(&root, &task);
    assert_eq!(t.agents.len(), 400);
    assert_eq!(g.agents.len(), 400);
    assert_eq!(t.total_spawned, 400);
    assert_eq!(t.active_count, 400);
    assert_all_recorded(&t, &g, &ok);
    assert_reader_saw_no_torn_file(reader);
}

#[test]
fn eight_processes_racing_under_max_concurrent_three() {
    let root = Root::new();
    let task = task_with(
        &root,
        Limits {
            max_agents: 45,
            max_concurrent: 3,
            max_depth: 5,
        },
    );
    let reader = reader(&root, &task);
    let lines = race(&root, &task, 8, 1, "racer");
    let ok = lines.iter().filter(|l| l.starts_with("ok ")).count();
    let refused: Vec<&String> = lines.iter().filter(|l| l.starts_with("refused ")).collect();
    assert_eq!(ok, 3, "{lines:?}");
    assert_eq!(refused.len(), 5, "{lines:?}");
    for r in refused {
        assert!(r.contains("limit max_concurrent = 3 reached"), "{r}");
    }
    let (t, g) = assert_counters_match(&root, &task);
    assert_eq!((t.agents.len(), g.agents.len()), (3, 3));
    assert_reader_saw_no_torn_file(reader);
}

#[test]
fn a_lock_holder_killed_with_sigkill_releases_the_lock() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let mut holder = spawn(&["hold", root.path.as_str(), task.as_str()]);
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let layout = root.layout();
    let quick = JsonRegistry::new(layout.clone()).with_lock_timeout(Duration::from_millis(100));
    let r = registration(&layout, &task, "a", Parent::Orchestrator);
    assert!(
        matches!(quick.register(&r), Err(CoreError::LockTimeout { .. })),
        "the holder has it"
    );
    holder.kill().unwrap(); // SIGKILL: no destructor runs
    holder.wait().unwrap();
    let patient = JsonRegistry::new(layout.clone()).with_lock_timeout(Duration::from_secs(5));
    patient.register(&r).unwrap();
    assert_counters_match(&root, &task);
}

#[test]
fn a_child_spawned_while_the_lock_is_held_does_not_inherit_it() {
    let root = Root::new();
    let task = task_with(&root, Limits::default());
    let layout = root.layout();
    let lock_path = layout.task_dir(&task).join("AGENT_REGISTRY.json.lock");
    let held = deploy_core::lock::Flock::open(&lock_path, Duration::from_secs(1)).unwrap();
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let fds: Vec<Utf8PathBuf> = fs_err::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .filter_map(|e| fs_err::read_link(e.unwrap().path()).ok())
        .filter_map(|p| Utf8PathBuf::from_path_buf(p).ok())
        .collect();
    assert!(!fds.is_empty(), "the child's fds are readable");
    assert!(!fds.iter().any(|p| p == &lock_path), "{fds:?}");
    drop(held);
    // With our lock released, another process takes it at once though the child still runs.
    let lines = output(spawn(&[
        "register",
        root.path.as_str(),
        task.as_str(),
        "1",
        "after",
    ]));
    assert!(lines[0].starts_with("ok "), "{lines:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child is still running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Break 7 of the hostile review: lock files deleted while in use. A waiter that then takes the
/// lock of a file no longer at its path guards nothing; it now takes the file at the path
/// instead. 8 processes x 25 registrations while the lock files are deleted over and over:
/// nothing is lost.
#[test]
fn lock_files_deleted_while_in_use_lose_no_update() {
    let root = Root::new();
    let task = roomy_task(&root);
    let layout = root.layout();
    let locks = [
        layout
            .task_registry(&task)
            .with_file_name("AGENT_REGISTRY.json.lock"),
        layout.global_dir().join("GLOBAL_REGISTRY.json.lock"),
    ];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deleter = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut deleted = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for lock in &locks {
                    if std::fs::remove_file(lock).is_ok() {
                        deleted += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            deleted
        })
    };
    let lines = race(&root, &task, 8, 25, "worker");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let deleted = deleter.join().unwrap();
    assert!(
        deleted > 10,
        "the lock files were deleted while in use ({deleted} times)"
    );
    let ok: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("ok ")).collect();
    assert_eq!(ok.len(), 200, "{lines:?}");
    let (t, g) = assert_counters_match(&root, &task);
    assert_all_recorded(&t, &g, &ok);
}
