//! Workspaces for the tests: empty, or holding a stage of the Python server's fixtures.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{
    AgentId, AgentStatus, AgentType, Layout, Limits, Parent, Registration, SessionName, TaskId,
    timestamp,
};
use registry::format::{GlobalFile, TaskFile};
use registry::{JsonRegistry, NewTask};
use serde_json::Value;

pub(crate) const STRESS: &str = env!("CARGO_BIN_EXE_registry-stress");
pub(crate) const FIXTURE_TASK: &str = "TASK-20261124-083259-3e71215b";
pub(crate) const PLAIN_TASK: &str = "TASK-20261124-083259-e00e2d0d";

pub(crate) fn fixtures() -> Utf8PathBuf {
    let dir = Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/python-orchestrator");
    assert!(
        dir.is_dir(),
        "the Python server's fixtures are expected at {dir}"
    );
    dir
}

pub(crate) struct Root {
    _dir: tempfile::TempDir,
    pub(crate) path: Utf8PathBuf,
}

impl Root {
    pub(crate) fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        Root { _dir: dir, path }
    }
    pub(crate) fn layout(&self) -> Layout {
        Layout::new(self.path.clone())
    }
    pub(crate) fn registry(&self) -> JsonRegistry {
        JsonRegistry::new(self.layout()).with_lock_timeout(Duration::from_secs(20))
    }
    /// Puts the fixtures of one stage where the layout expects them.
    pub(crate) fn with_fixture_stage(stage: &str) -> Root {
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

pub(crate) fn json(path: &Utf8Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

pub(crate) fn registration(
    layout: &Layout,
    task: &TaskId,
    agent_type: &str,
    parent: Parent,
) -> Registration {
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
        launch: None,
        batch: None,
        host: None,
    }
}

/// A task whose limits are far away: races there are about lost updates, not refusals.
pub(crate) fn roomy_task(root: &Root) -> TaskId {
    task_with(
        root,
        Limits {
            max_agents: 1000,
            max_concurrent: 1000,
            max_depth: 5,
        },
    )
}

pub(crate) fn task_with(root: &Root, limits: Limits) -> TaskId {
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

pub(crate) fn assert_counters_match(root: &Root, task: &TaskId) -> (TaskFile, GlobalFile) {
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
