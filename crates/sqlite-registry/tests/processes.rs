//! The SQLite registry across OS processes: concurrent registrations lose nothing, a limit
//! holds across processes, and a writer killed with SIGKILL releases its lock.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deploy_core::{Layout, Limits, NewTask, Registry, TaskId};
use sqlite_registry::SqliteRegistry;
use testkit::conformance::temp_workspace;

const STRESS: &str = env!("CARGO_BIN_EXE_sqlite-stress");

fn task(layout: &Layout, limits: Limits) -> TaskId {
    SqliteRegistry::open(layout.clone())
        .unwrap()
        .create_task(&NewTask {
            description: "processes".into(),
            limits,
            ..NewTask::default()
        })
        .unwrap()
        .id
}

fn spawn(args: &[&str]) -> Child {
    Command::new(STRESS)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// `processes` racers, started together, each registering `each` agents; every line printed.
fn race(layout: &Layout, task: &TaskId, processes: usize, each: usize) -> Vec<String> {
    let each = each.to_string();
    let root = layout.root().to_string();
    let args = ["register", &root, task.as_str(), &each, "racer"];
    let workers: Vec<Child> = (0..processes).map(|_| spawn(&args)).collect();
    workers
        .into_iter()
        .flat_map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{:?}", out.status);
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn eight_processes_times_fifty_registrations_lose_nothing() {
    let (_dir, layout) = temp_workspace();
    let limits = Limits {
        max_agents: 1000,
        max_concurrent: 1000,
        max_depth: 5,
    };
    let task = task(&layout, limits);
    let lines = race(&layout, &task, 8, 50);
    let ok: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("ok ")
                .unwrap_or_else(|| panic!("refused: {l}"))
        })
        .collect();
    assert_eq!(ok.len(), 400);
    let registry = SqliteRegistry::open(layout.clone()).unwrap();
    let snap = registry.read_task(&task).unwrap();
    assert_eq!(snap.agents.len(), 400);
    for id in ok {
        assert!(snap.agents.iter().any(|a| a.id.as_str() == id), "{id} lost");
    }
    let index = registry.global_file().unwrap();
    assert_eq!((index.agents.len(), index.total_agents_spawned), (400, 400));
}

#[test]
fn eight_processes_racing_under_max_concurrent_three() {
    let (_dir, layout) = temp_workspace();
    let task = task(
        &layout,
        Limits {
            max_agents: 45,
            max_concurrent: 3,
            max_depth: 5,
        },
    );
    let lines = race(&layout, &task, 8, 1);
    let ok = lines.iter().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok, 3, "{lines:?}");
    let refused: Vec<&String> = lines.iter().filter(|l| l.starts_with("refused ")).collect();
    assert_eq!(refused.len(), 5, "{lines:?}");
    for r in refused {
        assert!(r.contains("limit max_concurrent = 3 reached"), "{r}");
    }
    let snap = SqliteRegistry::open(layout)
        .unwrap()
        .read_task(&task)
        .unwrap();
    assert_eq!((snap.agents.len(), snap.active_count()), (3, 3));
}

#[test]
fn a_writer_killed_with_sigkill_releases_the_lock() {
    let (_dir, layout) = temp_workspace();
    let task = task(&layout, Limits::default());
    let mut holder = spawn(&["hold", layout.root().as_str()]);
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let quick = SqliteRegistry::open_with(layout.clone(), Duration::from_millis(100)).unwrap();
    let r = testkit::conformance::registration(&task, "a", deploy_core::Parent::Orchestrator);
    let e = quick.register(&r).unwrap_err();
    assert!(e.to_string().contains("locked by another process"), "{e}");
    holder.kill().unwrap(); // SIGKILL: its transaction is never committed or rolled back
    holder.wait().unwrap();
    let patient = SqliteRegistry::open_with(layout, Duration::from_secs(5)).unwrap();
    patient.register(&r).unwrap();
    assert_eq!(patient.read_task(&task).unwrap().agents.len(), 1);
}
