//! Every operation on testkit's fakes (`Services::from_parts`): what it does, and a fault that
//! fires in it — the operation fails with the fault, and what it did not finish is not
//! recorded. No tmux, no git, no process: the seam is the traits.

use std::time::Duration;

use camino::Utf8PathBuf;
use deploy_core::{AgentId, AgentStatus, AgentType, Limits, TaskId};
use testkit::{
    FakeBackend, FakeCheckouts, FakeJournal, FakePromptStore, FakeRegistry, FaultKind, FaultPlan,
    Faults, Faulty, Op,
};

use super::deploy::{DeployOptions, WorktreeOptions};
use super::task::TaskOptions;
use crate::config::{Config, Interrupts, Parts, RegistryKind, Services};
use crate::error::Error;

/// Services over the fakes, sharing `faults`, in a temporary workspace.
struct Fakes {
    _dir: tempfile::TempDir,
    services: Services,
    faults: Faults,
}

fn fakes() -> Fakes {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().join("ws")).unwrap();
    let config = Config {
        root,
        socket: "fake".into(),
        registry: RegistryKind::Json,
        database_url: None,
        host: None,
        agent_cmd: vec!["agent".into()],
        startup_grace: Duration::ZERO,
        finish_grace: Duration::ZERO,
        max_prompt_bytes: 1 << 20,
        model: None,
        permission_mode: "bypassPermissions".into(),
        serving: None,
    };
    let faults = Faults::new(FaultPlan::new());
    let parts = Parts {
        registry: Box::new(Faulty::new(FakeRegistry::new(), faults.clone())),
        backend: Box::new(Faulty::new(FakeBackend::new(), faults.clone())),
        adopted: Box::new(Faulty::new(FakeBackend::placed("adopted"), faults.clone())),
        prompts: Box::new(Faulty::new(FakePromptStore::new(), faults.clone())),
        journal: Box::new(Faulty::new(FakeJournal::new(), faults.clone())),
        checkouts: Box::new(Faulty::new(FakeCheckouts::new(), faults.clone())),
    };
    let services = Services::from_parts(&config, parts, Interrupts::default());
    Fakes {
        _dir: dir,
        services,
        faults,
    }
}

impl Fakes {
    /// From now on, every call of `op` fails (the plan's counters start again).
    fn fail(&self, op: Op) {
        self.faults
            .set_plan(FaultPlan::new().fail(op, 1, FaultKind::Persistent));
    }

    fn task(&self) -> TaskId {
        super::task::create(
            &self.services,
            TaskOptions {
                description: "fakes".into(),
                priority: None,
                limits: Limits::default(),
                context: None,
            },
        )
        .unwrap()
        .id
    }

    fn deploy(&self, task: &TaskId, agent_type: &str) -> Result<AgentId, Error> {
        let options = DeployOptions::new(
            task.clone(),
            AgentType::parse(agent_type).unwrap(),
            "do it".into(),
        );
        Ok(super::deploy::run(&self.services, options, &|| None)?.agent_id)
    }

    fn status_of(&self, task: &TaskId, agent: &AgentId) -> AgentStatus {
        super::agent_record(&self.services, task, agent)
            .unwrap()
            .status
    }

    fn sessions(&self) -> usize {
        self.services.backend.list().unwrap().len()
    }
}

/// The injected fault's message.
fn injected(e: &Error) -> bool {
    e.to_string().contains("injected fault")
}

#[test]
fn task_create_and_list_and_a_failing_create_leaves_no_task() {
    let f = fakes();
    let task = f.task();
    let listed = super::task::list(&f.services).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, task);
    f.fail(Op::CreateTask);
    let e = super::task::create(
        &f.services,
        TaskOptions {
            description: "x".into(),
            priority: None,
            limits: Limits::default(),
            context: None,
        },
    )
    .unwrap_err();
    assert!(injected(&e), "{e}");
    assert_eq!(super::task::list(&f.services).unwrap().len(), 1);
}

#[test]
fn deploy_goes_live_and_a_failing_start_leaves_nothing() {
    let f = fakes();
    let task = f.task();
    let agent = f.deploy(&task, "worker").unwrap();
    assert_eq!(f.status_of(&task, &agent), AgentStatus::Running);
    assert_eq!(f.sessions(), 1);
    f.fail(Op::Start);
    let e = f.deploy(&task, "other").unwrap_err();
    assert!(injected(&e), "{e}");
    let snapshot = f.services.registry.read_task(&task).unwrap();
    assert_eq!(snapshot.agents.len(), 1, "the failed one is not registered");
    assert_eq!(f.sessions(), 1);
}

#[test]
fn deploy_with_a_worktree_asks_the_checkouts_and_a_failing_checkout_leaves_nothing() {
    let f = fakes();
    let task = f.task();
    let repo = f.services.config.root.parent().unwrap().to_owned();
    let mut options = DeployOptions::new(task.clone(), AgentType::parse("w").unwrap(), "p".into());
    options.allow_duplicate = true;
    options.worktree = Some(WorktreeOptions {
        repo: Some(repo.clone()),
        ..WorktreeOptions::default()
    });
    let deployed = super::deploy::run(&f.services, options.clone(), &|| None).unwrap();
    let listed = super::worktree::list(&f.services, Some(&task)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].agent_id, deployed.agent_id);
    let diff = super::worktree::diff(&f.services, &task, &deployed.agent_id, true).unwrap();
    assert!(diff.contains("0 commit(s)"), "{diff}");
    f.fail(Op::CreateCheckout);
    let e = super::deploy::run(&f.services, options, &|| None).unwrap_err();
    assert!(injected(&e), "{e}");
    assert_eq!(
        super::worktree::list(&f.services, Some(&task))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn kill_ends_the_agent_and_a_failing_kill_records_no_end() {
    let f = fakes();
    let task = f.task();
    let (a, b) = (f.deploy(&task, "a").unwrap(), f.deploy(&task, "b").unwrap());
    let killed = super::kill::run(
        &f.services,
        &task,
        &a,
        "done",
        deploy_core::end::Files::Keep,
    )
    .unwrap();
    assert_eq!(killed.status, AgentStatus::Terminated);
    assert_eq!(f.status_of(&task, &a), AgentStatus::Terminated);
    f.fail(Op::Kill);
    let e =
        super::kill::run(&f.services, &task, &b, "x", deploy_core::end::Files::Keep).unwrap_err();
    assert!(injected(&e), "{e}");
    assert_eq!(
        f.status_of(&task, &b),
        AgentStatus::Running,
        "nothing recorded before everything is released"
    );
}

#[test]
fn status_shows_each_agent_and_a_failing_listing_is_an_error() {
    let f = fakes();
    let task = f.task();
    let agent = f.deploy(&task, "worker").unwrap();
    let status =
        super::status::run(&f.services, Some(&task), crate::ops::status::Only::Every).unwrap();
    assert_eq!(status[0].agents.len(), 1);
    assert_eq!(status[0].agents[0].agent_id, agent);
    assert_eq!(status[0].agents[0].liveness.as_str(), "alive");
    f.fail(Op::List);
    let e =
        super::status::run(&f.services, Some(&task), crate::ops::status::Only::Every).unwrap_err();
    assert!(injected(&e), "{e}");
}

#[test]
fn reports_are_recorded_and_a_failing_update_is_an_error() {
    let f = fakes();
    let task = f.task();
    let agent = f.deploy(&task, "worker").unwrap();
    let reported =
        super::reports::progress(&f.services, &task, &agent, "working", "half", 50).unwrap();
    assert_eq!(reported.own_update.progress, 50);
    let file = f.services.layout.tracked_files(&task, &agent).progress_file;
    let lines = super::reports::read_jsonl(&file);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "half");
    super::reports::finding(
        &f.services,
        &task,
        &agent,
        "issue",
        "high",
        "found it",
        serde_json::json!({"line": 1}),
    )
    .unwrap();
    let filter = super::reports::FindingFilter {
        agent: None,
        severity: None,
        finding_type: None,
        limit: None,
    };
    let found = super::reports::findings(&f.services, &task, &filter).unwrap();
    assert_eq!(found.findings.len(), 1);
    f.fail(Op::UpdateStatus);
    let e =
        super::reports::progress(&f.services, &task, &agent, "working", "more", 60).unwrap_err();
    assert!(injected(&e), "{e}");
}

#[test]
fn reconcile_finds_nothing_to_do_and_a_failing_repair_is_an_error() {
    let f = fakes();
    let task = f.task();
    f.deploy(&task, "worker").unwrap();
    let r = super::reconcile::run(&f.services, None, false).unwrap();
    assert!(r.nothing_to_do, "{r:?}");
    f.fail(Op::Repair);
    let e = super::reconcile::run(&f.services, None, false).unwrap_err();
    assert!(injected(&e), "{e}");
}

#[test]
fn wait_returns_once_none_is_active_and_a_failing_read_is_an_error() {
    let f = fakes();
    let task = f.task();
    let agent = f.deploy(&task, "worker").unwrap();
    super::kill::run(
        &f.services,
        &task,
        &agent,
        "stop",
        deploy_core::end::Files::Keep,
    )
    .unwrap();
    let ended = super::wait::run(
        &f.services,
        Some(&task),
        super::status::Only::Every,
        Some(Duration::ZERO),
    )
    .unwrap();
    assert_eq!(ended.len(), 1);
    f.fail(Op::ReadTask);
    let e = super::wait::run(
        &f.services,
        Some(&task),
        super::status::Only::Every,
        Some(Duration::ZERO),
    )
    .unwrap_err();
    assert!(injected(&e), "{e}");
}

#[test]
fn output_and_resume_read_the_record_and_a_failing_read_is_an_error() {
    let f = fakes();
    let task = f.task();
    let agent = f.deploy(&task, "worker").unwrap();
    let out = super::output::tail(&f.services, &task, &agent, 10).unwrap();
    assert!(out.lines.is_empty(), "a fake writes no log");
    let e = super::resume::options(&f.services, &task, &agent, "go on".into()).unwrap_err();
    assert!(e.to_string().contains("is still running"), "{e}");
    f.fail(Op::ReadTask);
    let e = super::output::tail(&f.services, &task, &agent, 10).unwrap_err();
    assert!(injected(&e), "{e}");
}

/// The detached `fleet end-agent` gets none of this process's environment: it is told the
/// registry, and this fleet's host, so that it acts on the agent as its own.
#[test]
fn the_ender_runs_on_this_host_and_registry() {
    let mut f = fakes();
    let task = TaskId::parse("TASK-20260101-000000-00000000").unwrap();
    let agent = AgentId::parse("builder-000000-000000").unwrap();
    let argv = super::kill::ender_argv(&f.services, &task, &agent).unwrap();
    assert!(
        argv[0].ends_with("fleet") || argv[0].contains("fleet-"),
        "{argv:?}"
    );
    assert!(
        argv.windows(2).any(|w| w == ["--registry", "json"]),
        "{argv:?}"
    );
    f.services.config.host = Some(deploy_core::HostName::parse("host-a").unwrap());
    let argv = super::kill::ender_argv(&f.services, &task, &agent).unwrap();
    assert_eq!(argv[..2], ["env", "FLEET_HOST=host-a"], "{argv:?}");
}
