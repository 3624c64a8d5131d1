//! The behaviours every [`Registry`] must have, as functions a crate runs against its own
//! implementation — fleet runs them against its JSON registry, its SQLite registry and
//! [`FakeRegistry`](crate::FakeRegistry):
//!
//! ```
//! // In a downstream crate's tests, with a registry of its own (the fake stands in for it):
//! testkit::conformance::registry(|_workspace| testkit::FakeRegistry::new());
//! ```
//!
//! `make` returns a new, empty registry keeping its storage in the workspace it is given (a
//! temporary directory of its own, removed after the behaviour). Each behaviour panics, naming
//! itself and what differed, at the first thing that fails. [`corrupt_storage`] needs a way to
//! damage the implementation's storage and open it again, so it is separate.

use camino::Utf8PathBuf;
use deploy_core::{
    AgentId, AgentStatus, AgentType, Error, Layout, LimitExceeded, Limits, NewTask, Parent,
    Registration, Registry, SessionName, StatusUpdate, TaskId, TaskRoster, timestamp,
};
use serde_json::{Map, json};

/// Runs every behaviour below, each against a registry `make` makes in a new temporary
/// workspace.
pub fn registry<R: Registry>(make: impl Fn(Layout) -> R) {
    let behaviours: [fn(&R); 10] = [
        round_trip,
        unknown_ids,
        exact_unregister,
        each_limit_refuses,
        limits_hold_under_eight_threads,
        concurrent_updates_lose_nothing,
        dry_run_repair_changes_nothing,
        roster_says_what_read_task_says,
        precheck_decides_as_a_whole_read,
        batches_register_and_confirm_whole,
    ];
    for behaviour in behaviours {
        let (_dir, layout) = temp_workspace();
        behaviour(&make(layout));
    }
}

/// A new, empty workspace in a temporary directory (removed when the `TempDir` drops).
pub fn temp_workspace() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    let root = Utf8PathBuf::from_path_buf(dir.path().to_owned())
        .unwrap_or_else(|p| panic!("a temporary directory is not UTF-8: {}", p.display()));
    (dir, Layout::new(root))
}

fn new_task(r: &impl Registry, limits: Limits) -> TaskId {
    r.create_task(&NewTask {
        description: "conformance".into(),
        limits,
        ..NewTask::default()
    })
    .unwrap_or_else(|e| panic!("create_task: {e}"))
    .id
}

fn roomy() -> Limits {
    Limits {
        max_agents: 10_000,
        max_concurrent: 10_000,
        max_depth: 5,
    }
}

/// A registration of a new agent of `agent_type` under `parent` in `task`.
pub fn registration(task: &TaskId, agent_type: &str, parent: Parent) -> Registration {
    let agent_type = AgentType::parse(agent_type).unwrap_or_else(|e| panic!("{e}"));
    let agent = AgentId::generate(&agent_type).unwrap_or_else(|e| panic!("{e}"));
    let layout = Layout::new(Utf8PathBuf::from("/conformance"));
    Registration {
        task: task.clone(),
        session: SessionName::for_agent(&agent).unwrap_or_else(|e| panic!("{e}")),
        tracked_files: layout.tracked_files(task, &agent),
        agent,
        agent_type,
        parent,
        prompt_preview: "conformance".into(),
        started_at: timestamp(),
        placement: "conformance".into(),
        allow_duplicate: true,
        checkout: None,
        launch: None,
        batch: None,
        host: None,
    }
}

fn register(r: &impl Registry, reg: &Registration) -> AgentId {
    r.register(reg)
        .unwrap_or_else(|e| panic!("register {}: {e}", reg.agent))
        .id
}

/// What is registered, updated, annotated and confirmed reads back; depths follow parents.
pub fn round_trip(r: &impl Registry) {
    let task = new_task(r, roomy());
    assert!(
        r.task_ids().unwrap_or_default().contains(&task),
        "round trip: task_ids lists a new task"
    );
    let parent = register(r, &registration(&task, "lead", Parent::Orchestrator));
    let child = register(
        r,
        &registration(&task, "helper", Parent::Agent(parent.clone())),
    );
    r.confirm(&task, &parent)
        .unwrap_or_else(|e| panic!("confirm: {e}"));
    let mut update = StatusUpdate::now(AgentStatus::Completed);
    update.fields.insert("note".into(), json!("done"));
    r.update_status(&task, &child, &update)
        .unwrap_or_else(|e| panic!("update_status: {e}"));
    let fields: Map<_, _> = [("fleet_extra".to_owned(), json!({"k": 1}))]
        .into_iter()
        .collect();
    r.annotate(&task, &child, &fields)
        .unwrap_or_else(|e| panic!("annotate: {e}"));
    let snap = r
        .read_task(&task)
        .unwrap_or_else(|e| panic!("read_task: {e}"));
    let ids: Vec<_> = snap.agents.iter().map(|a| a.id.clone()).collect();
    assert_eq!(
        ids,
        vec![parent.clone(), child.clone()],
        "round trip: registration order"
    );
    let (p, c) = (&snap.agents[0], &snap.agents[1]);
    assert!(
        p.confirmed && p.status == AgentStatus::Running,
        "round trip: confirmed, running"
    );
    assert_eq!((p.depth, c.depth), (1, 2), "round trip: depths");
    assert_eq!(
        c.status,
        AgentStatus::Completed,
        "round trip: the status update"
    );
    assert_eq!(
        c.extra.value("note"),
        Some(json!("done")),
        "round trip: update fields"
    );
    assert_eq!(
        c.extra.value("fleet_extra"),
        Some(json!({"k": 1})),
        "round trip: annotation"
    );
    assert_eq!(
        (snap.active_count(), snap.completed_count()),
        (1, 1),
        "round trip: counts"
    );
    let summary = r.list_tasks().unwrap_or_else(|e| panic!("list_tasks: {e}"));
    let s = summary
        .iter()
        .find(|s| s.id == task)
        .unwrap_or_else(|| panic!("list_tasks lists {task}"));
    assert_eq!(
        (s.total_spawned, s.active_count),
        (2, 1),
        "round trip: the summary's counters"
    );
}

/// Unknown tasks and agents are typed errors that change nothing; a duplicate id is refused.
pub fn unknown_ids(r: &impl Registry) {
    let task = new_task(r, roomy());
    let ghost_task =
        TaskId::parse("TASK-20000101-000000-00000000").unwrap_or_else(|e| panic!("{e}"));
    let ghost = AgentId::parse("ghost-000000-000000").unwrap_or_else(|e| panic!("{e}"));
    let unknown_task = |res: Result<(), Error>, what: &str| {
        assert!(
            matches!(res, Err(Error::UnknownTask(_))),
            "unknown ids: {what} on an unknown task: {res:?}"
        );
    };
    unknown_task(r.read_task(&ghost_task).map(drop), "read_task");
    unknown_task(r.roster(&ghost_task).map(drop), "roster");
    unknown_task(
        r.register(&registration(&ghost_task, "a", Parent::Orchestrator))
            .map(drop),
        "register",
    );
    let unknown_agent = |res: Result<(), Error>, what: &str| {
        assert!(
            matches!(res, Err(Error::UnknownAgent { .. })),
            "unknown ids: {what} of an unknown agent: {res:?}"
        );
    };
    unknown_agent(r.confirm(&task, &ghost), "confirm");
    unknown_agent(
        r.update_status(&task, &ghost, &StatusUpdate::now(AgentStatus::Completed)),
        "update_status",
    );
    unknown_agent(r.annotate(&task, &ghost, &Map::new()), "annotate");
    let reg = registration(&task, "a", Parent::Orchestrator);
    register(r, &reg);
    let again = r.register(&reg);
    assert!(
        matches!(again, Err(Error::DuplicateAgent { .. })),
        "unknown ids: a duplicate id: {again:?}"
    );
    let orphan = r.register(&registration(&task, "b", Parent::Agent(ghost)));
    assert!(
        matches!(orphan, Err(Error::UnknownParent { .. })),
        "unknown ids: an unknown parent: {orphan:?}"
    );
    // A batch naming one unknown agent changes none.
    let known = r
        .read_task(&task)
        .map(|t| t.agents[0].id.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let ghost = AgentId::parse("ghost-000000-000001").unwrap_or_else(|e| panic!("{e}"));
    let batch = [known, ghost].map(|a| (a, StatusUpdate::now(AgentStatus::Error)));
    assert!(
        r.update_statuses(&task, &batch).is_err(),
        "unknown ids: a batch with an unknown agent fails"
    );
    let snap = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        snap.agents[0].status,
        AgentStatus::Running,
        "unknown ids: a failed batch changed nothing"
    );
    assert_eq!(
        snap.agents.len(),
        1,
        "unknown ids: refused registrations left nothing"
    );
}

/// `unregister` removes exactly its agent, once.
pub fn exact_unregister(r: &impl Registry) {
    let task = new_task(r, roomy());
    let a = register(r, &registration(&task, "a", Parent::Orchestrator));
    let b = register(r, &registration(&task, "b", Parent::Orchestrator));
    let before = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.unregister(&task, &a).ok(),
        Some(true),
        "exact unregister: removed"
    );
    assert_eq!(
        r.unregister(&task, &a).ok(),
        Some(false),
        "exact unregister: not there any more"
    );
    let after = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        after.agents,
        before.agents[1..].to_vec(),
        "exact unregister: {b} is as it was"
    );
    register(
        r,
        &Registration {
            agent: a.clone(),
            ..registration(&task, "a", Parent::Orchestrator)
        },
    );
}

/// Each limit refuses with its own error: one active agent per type (naming it), depth, total.
pub fn each_limit_refuses(r: &impl Registry) {
    let task = new_task(
        r,
        Limits {
            max_agents: 3,
            max_concurrent: 10,
            max_depth: 2,
        },
    );
    let lead = register(r, &registration(&task, "lead", Parent::Orchestrator));
    let twin = Registration {
        allow_duplicate: false,
        ..registration(&task, "lead", Parent::Orchestrator)
    };
    match r.register(&twin) {
        Err(Error::Limit(LimitExceeded::DuplicateType { existing, .. })) => {
            assert_eq!(
                existing, lead,
                "each limit: the active agent of the type is named"
            );
        }
        other => panic!("each limit: a second active lead: {other:?}"),
    }
    let child = register(
        r,
        &registration(&task, "child", Parent::Agent(lead.clone())),
    );
    let deep = r.register(&registration(&task, "deep", Parent::Agent(child)));
    assert!(
        matches!(
            deep,
            Err(Error::Limit(LimitExceeded::Depth { depth: 3, .. }))
        ),
        "each limit: depth: {deep:?}"
    );
    r.update_status(&task, &lead, &StatusUpdate::now(AgentStatus::Completed))
        .unwrap_or_else(|e| panic!("{e}"));
    let again = Registration {
        allow_duplicate: false,
        ..registration(&task, "lead", Parent::Orchestrator)
    };
    register(r, &again); // the first lead has ended: a lead may run again
    let over = r.register(&registration(&task, "extra", Parent::Orchestrator));
    assert!(
        matches!(
            over,
            Err(Error::Limit(LimitExceeded::Total { total: 3, .. }))
        ),
        "each limit: total: {over:?}"
    );
}

/// 8 threads register into a task of `max_concurrent` 3: exactly 3 succeed, the others are
/// refused by the limit.
pub fn limits_hold_under_eight_threads(r: &impl Registry) {
    let task = new_task(
        r,
        Limits {
            max_agents: 100,
            max_concurrent: 3,
            max_depth: 5,
        },
    );
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let task = &task;
                s.spawn(move || {
                    r.register(&registration(task, &format!("t{i}"), Parent::Orchestrator))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("a registering thread panicked"))
            })
            .collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "limits under 8 threads: {results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::Limit(LimitExceeded::Concurrent { .. }))),
        "limits under 8 threads: every refusal is the limit: {results:?}"
    );
    let snap = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (snap.agents.len(), snap.active_count()),
        (3, 3),
        "limits under 8 threads: what is recorded"
    );
}

/// 8 threads update different agents of one task at once, statuses and annotations: every
/// change is there after.
pub fn concurrent_updates_lose_nothing(r: &impl Registry) {
    let task = new_task(r, roomy());
    let agents: Vec<AgentId> = (0..16)
        .map(|i| {
            register(
                r,
                &registration(&task, &format!("u{i}"), Parent::Orchestrator),
            )
        })
        .collect();
    std::thread::scope(|s| {
        for chunk in agents.chunks(2) {
            let task = &task;
            s.spawn(move || {
                for (n, a) in chunk.iter().enumerate() {
                    let status = if n == 0 {
                        AgentStatus::Completed
                    } else {
                        AgentStatus::Working
                    };
                    r.update_status(task, a, &StatusUpdate::now(status))
                        .unwrap_or_else(|e| panic!("update {a}: {e}"));
                    let fields = [("mark".to_owned(), json!(a.as_str()))]
                        .into_iter()
                        .collect();
                    r.annotate(task, a, &fields)
                        .unwrap_or_else(|e| panic!("annotate {a}: {e}"));
                }
            });
        }
    });
    let snap = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    for (i, a) in snap.agents.iter().enumerate() {
        let want = if i % 2 == 0 {
            AgentStatus::Completed
        } else {
            AgentStatus::Working
        };
        assert_eq!(a.status, want, "concurrent updates: {}'s status", a.id);
        assert_eq!(
            a.extra.value("mark"),
            Some(json!(a.id.as_str())),
            "concurrent updates: {}'s annotation",
            a.id
        );
    }
    assert_eq!(
        (snap.active_count(), snap.completed_count()),
        (8, 8),
        "concurrent updates: counts"
    );
}

/// A dry-run repair reports and changes nothing.
pub fn dry_run_repair_changes_nothing(r: &impl Registry) {
    let task = new_task(r, roomy());
    let a = register(r, &registration(&task, "a", Parent::Orchestrator));
    r.update_status(&task, &a, &StatusUpdate::now(AgentStatus::Completed))
        .unwrap_or_else(|e| panic!("{e}"));
    let before = r.read_task(&task).unwrap_or_else(|e| panic!("{e}"));
    let report = r
        .repair(None, true)
        .unwrap_or_else(|e| panic!("repair: {e}"));
    assert!(
        report.is_empty(),
        "dry-run repair: nothing to repair in a sound registry: {report:?}"
    );
    assert_eq!(
        r.read_task(&task).ok(),
        Some(before),
        "dry-run repair: changed nothing"
    );
}

/// The roster says, of every agent, what `read_task` says.
pub fn roster_says_what_read_task_says(r: &impl Registry) {
    let task = new_task(r, roomy());
    let a = register(r, &registration(&task, "a", Parent::Orchestrator));
    register(r, &registration(&task, "b", Parent::Orchestrator));
    r.update_status(&task, &a, &StatusUpdate::now(AgentStatus::Terminated))
        .unwrap_or_else(|e| panic!("{e}"));
    let roster = r.roster(&task).unwrap_or_else(|e| panic!("roster: {e}"));
    let whole = TaskRoster::of(r.read_task(&task).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(*roster, whole, "roster: as read_task");
}

/// `precheck` decides every candidate as [`limits::check`](deploy_core::limits::check) on the
/// task read whole: the depth, or the same refusal — through a task filling up, a parent
/// ending, unknown parents and an unknown task.
pub fn precheck_decides_as_a_whole_read(r: &impl Registry) {
    use deploy_core::limits::{Candidate, check};
    let task = new_task(
        r,
        Limits {
            max_agents: 5,
            max_concurrent: 3,
            max_depth: 2,
        },
    );
    let types =
        ["lead", "child", "other"].map(|t| AgentType::parse(t).unwrap_or_else(|e| panic!("{e}")));
    let same = |step: &str| {
        let whole = r
            .read_task(&task)
            .unwrap_or_else(|e| panic!("precheck: read_task: {e}"));
        let mut parents = vec![
            Parent::Orchestrator,
            Parent::parse("nobody-000000-000000").unwrap_or_else(|e| panic!("{e}")),
        ];
        parents.extend(whole.agents.iter().map(|a| Parent::Agent(a.id.clone())));
        for agent_type in &types {
            for parent in &parents {
                for allow_duplicate in [false, true] {
                    let candidate = Candidate {
                        agent_type,
                        parent,
                        allow_duplicate,
                    };
                    let expected = format!("{:?}", check(&whole, candidate));
                    let got = format!("{:?}", r.precheck(&task, candidate));
                    assert_eq!(
                        got, expected,
                        "precheck, {step}: {agent_type} under {parent}, duplicates {allow_duplicate}"
                    );
                }
            }
        }
    };
    same("empty task");
    let lead = register(r, &registration(&task, "lead", Parent::Orchestrator));
    same("one lead");
    let child = register(
        r,
        &registration(&task, "child", Parent::Agent(lead.clone())),
    );
    same("a child at the depth limit");
    register(r, &registration(&task, "other", Parent::Orchestrator));
    same("the concurrency limit reached");
    r.update_status(&task, &lead, &StatusUpdate::now(AgentStatus::Completed))
        .unwrap_or_else(|e| panic!("{e}"));
    r.update_status(&task, &child, &StatusUpdate::now(AgentStatus::Error))
        .unwrap_or_else(|e| panic!("{e}"));
    same("the lead and its child ended");
    register(r, &registration(&task, "lead", Parent::Orchestrator));
    register(r, &registration(&task, "child", Parent::Orchestrator));
    same("the total limit reached");
    let unknown = TaskId::parse("TASK-20260101-000000-00000000").unwrap_or_else(|e| panic!("{e}"));
    let candidate = Candidate {
        agent_type: &types[0],
        parent: &Parent::Orchestrator,
        allow_duplicate: false,
    };
    assert!(
        matches!(r.precheck(&unknown, candidate), Err(Error::UnknownTask(t)) if t == unknown),
        "precheck: an unknown task is named"
    );
}

/// With a task and an agent in the storage of `r` and `r` closed, `damage` damages that storage
/// (and returns the file it damaged), then `reopen` opens it again, as a new process would:
/// either opening fails, or every read and write of the task does, with an error naming the
/// file — and the file is never written.
pub fn corrupt_storage<R: Registry>(
    r: R,
    damage: impl FnOnce() -> Utf8PathBuf,
    reopen: impl FnOnce() -> Result<R, Error>,
) {
    let task = new_task(&r, roomy());
    register(&r, &registration(&task, "a", Parent::Orchestrator));
    drop(r);
    let file = damage();
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("corrupt storage: {file}: {e}"));
    let names_file = |e: &Error, what: &str| {
        assert!(
            e.to_string().contains(file.as_str()),
            "corrupt storage: {what}'s error names {file}: {e}"
        );
    };
    match reopen() {
        Err(e) => names_file(&e, "opening"),
        Ok(r) => {
            let failed = |res: Result<(), Error>, what: &str| match res {
                Ok(()) => panic!("corrupt storage: {what} succeeded on {file}"),
                Err(e) => names_file(&e, what),
            };
            failed(r.read_task(&task).map(drop), "read_task");
            failed(
                r.register(&registration(&task, "b", Parent::Orchestrator))
                    .map(drop),
                "register",
            );
            failed(r.repair(None, false).map(drop), "repair");
        }
    }
    let unchanged = std::fs::read(&file).is_ok_and(|now| now == bytes);
    assert!(unchanged, "corrupt storage: {file} was written");
}

/// Agents registered together are registered all or none: a batch the task has no room for is
/// refused whole, naming the room; one whose later member a limit refuses (a duplicate type)
/// changes nothing; one that fits is registered in order with the batch recorded, and
/// `confirm_all` confirms every member.
pub fn batches_register_and_confirm_whole(r: &impl Registry) {
    let task = new_task(
        r,
        Limits {
            max_agents: 10,
            max_concurrent: 3,
            max_depth: 5,
        },
    );
    let batch = deploy_core::BatchId::generate().unwrap_or_else(|e| panic!("{e}"));
    let member = |ty: &str, duplicate: bool| Registration {
        batch: Some(batch.clone()),
        host: None,
        allow_duplicate: duplicate,
        ..registration(&task, ty, Parent::Orchestrator)
    };
    let before = r
        .read_task(&task)
        .unwrap_or_else(|e| panic!("read_task: {e}"));
    let too_many: Vec<_> = (0..4).map(|_| member("w", true)).collect();
    match r.register_all(&too_many) {
        Err(Error::Limit(LimitExceeded::Batch {
            members: 4,
            room: 3,
            ..
        })) => {}
        other => panic!("batches: 4 members under max_concurrent 3 gave {other:?}"),
    }
    let refused_late = [member("x", false), member("x", false)];
    match r.register_all(&refused_late) {
        Err(Error::Limit(LimitExceeded::DuplicateType { .. })) => {}
        other => panic!("batches: a second x without allow_duplicate gave {other:?}"),
    }
    assert_eq!(
        r.read_task(&task)
            .unwrap_or_else(|e| panic!("read_task: {e}")),
        before,
        "batches: a refused batch changed the task"
    );
    let fits = [member("x", false), member("x", true), member("y", false)];
    let records = r
        .register_all(&fits)
        .unwrap_or_else(|e| panic!("batches: register_all: {e}"));
    let ids: Vec<AgentId> = records.iter().map(|a| a.id.clone()).collect();
    let wanted: Vec<AgentId> = fits.iter().map(|m| m.agent.clone()).collect();
    assert_eq!(ids, wanted, "batches: the records come back in order");
    r.confirm_all(&task, &ids)
        .unwrap_or_else(|e| panic!("batches: confirm_all: {e}"));
    let snap = r
        .read_task(&task)
        .unwrap_or_else(|e| panic!("read_task: {e}"));
    for id in &ids {
        let a = snap
            .agent(id)
            .unwrap_or_else(|| panic!("batches: member {id} is not registered"));
        assert!(a.confirmed, "batches: member {id} is not confirmed");
        assert_eq!(a.batch().as_ref(), Some(&batch), "batches: {id}'s batch");
    }
}
