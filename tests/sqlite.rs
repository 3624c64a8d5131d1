//! `fleet --registry sqlite`, black-box, on real tmux: the whole cycle, limits and bad input as
//! with the JSON registry, the choice of registry, and `fleet migrate` both ways over the Python
//! server's files.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::python::python_workspace;
use common::{Fleet, stderr};

fn db(f: &Fleet) -> camino::Utf8PathBuf {
    f.root().join("registry/fleet.sqlite3")
}

fn read(path: &camino::Utf8Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).unwrap()).unwrap()
}

#[test]
fn the_whole_cycle_on_sqlite() {
    let f = Fleet::new();
    let task = f.task(&["--registry", "sqlite", "--max-concurrent", "1"]);
    assert!(db(&f).exists(), "the database is made on first use");
    assert!(
        !f.root().join(&task).join("AGENT_REGISTRY.json").exists(),
        "no JSON registry is written"
    );
    // From now on the workspace's database is found without the flag.
    let agent = f.deploy(&task, "builder", "0", &["sleep", "30"]);
    let status = f.json(&["status", "--task", &task])[0].clone();
    let agents = status["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{status}");
    assert_eq!(agents[0]["agent_id"], agent.as_str(), "{status}");
    assert_eq!(agents[0]["status"], "running");

    // max_concurrent 1: a second deployment is refused, naming the limit, leaving nothing.
    let refused = f.run(&common::deploy_args(&task, "other", "0", &["sleep", "30"]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("max_concurrent"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(f.sessions().len(), 1);

    f.ok(&["kill", "--task", &task, "--agent", &agent]);
    let status = f.json(&["status", "--task", &task])[0].clone();
    assert_eq!(status["agents"][0]["status"], "terminated", "{status}");
    assert!(f.sessions().is_empty());
    let reconciled = f.json(&["reconcile"]);
    assert_eq!(reconciled["nothing_to_do"], true, "{reconciled}");

    // Bad input: one line, exit 2 for usage, nothing left behind.
    let bad = f.run(&["--registry", "oracle", "task", "list"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("oracle"), "{}", stderr(&bad));
    // The Postgres registry without a database is a usage error too.
    let bad = f.run(&["--registry", "postgres", "task", "list"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--database-url"), "{}", stderr(&bad));
}

#[test]
fn sqlite_is_never_started_beside_a_json_registry() {
    let f = Fleet::new();
    f.task(&["--registry", "json"]);
    let before = f.files();
    let out = f.run(&["--registry", "sqlite", "task", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("fleet migrate --to sqlite"), "{err}");
    assert!(!db(&f).exists(), "no database was made");
    assert_eq!(f.files(), before, "nothing changed");
}

#[test]
fn a_damaged_database_is_one_line_naming_it_and_is_kept() {
    let f = Fleet::new();
    f.task(&["--registry", "sqlite"]);
    fs_err::write(
        db(&f),
        b"not a database at all, but long enough to look like one".repeat(100),
    )
    .unwrap();
    let before = fs_err::read(db(&f)).unwrap();
    let out = f.run(&["task", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(db(&f).as_str()), "{err}");
    assert_eq!(fs_err::read(db(&f)).unwrap(), before, "never written");
}

#[test]
fn migrate_round_trips_the_python_servers_files() {
    let f = Fleet::new();
    python_workspace(&f);
    let task_dirs: Vec<_> = fs_err::read_dir(f.root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("AGENT_REGISTRY.json").exists())
        .collect();
    let tasks_before: Vec<Value> = task_dirs
        .iter()
        .map(|d| read(camino::Utf8Path::from_path(&d.join("AGENT_REGISTRY.json")).unwrap()))
        .collect();
    let index = f.root().join("registry/GLOBAL_REGISTRY.json");
    let index_before = read(&index);
    let listed_before = f.json(&["task", "list"]);

    let moved = f.json(&["migrate", "--to", "sqlite"]);
    assert_eq!(moved["agents"], 2, "{moved}");
    assert_eq!(read(&index), index_before, "the JSON files are only read");
    assert_eq!(
        f.json(&["task", "list"]),
        listed_before,
        "the same tasks, from SQLite"
    );
    let again = f.run(&["migrate", "--to", "sqlite"]);
    assert_eq!(again.status.code(), Some(1), "a second import is refused");

    let back = f.json(&["migrate", "--to", "json"]);
    assert!(back["kept"].as_str().is_some(), "{back}");
    assert!(!db(&f).exists(), "the JSON files are the registry again");
    let tasks_after: Vec<Value> = task_dirs
        .iter()
        .map(|d| read(camino::Utf8Path::from_path(&d.join("AGENT_REGISTRY.json")).unwrap()))
        .collect();
    assert_eq!(
        tasks_after, tasks_before,
        "every task, agent and unknown field"
    );
    assert_eq!(
        read(&index),
        index_before,
        "the index the Python server reads"
    );
}

/// A batch's members keep their batch through `fleet migrate`, both ways: `--batch` finds them
/// in the SQLite registry, then in the JSON files again.
#[test]
fn migrate_keeps_each_member_s_batch_both_ways() {
    let f = Fleet::new();
    let task = f.task(&["--registry", "json"]);
    let out = f.json(&[
        "deploy",
        "--task",
        &task,
        "--type",
        "b",
        "--prompt",
        "p",
        "--count",
        "2",
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
        "300",
    ]);
    let batch = out["batch_id"].as_str().unwrap().to_owned();
    let members = |registry: &str| -> Vec<String> {
        let status = f.json(&["--registry", registry, "status", "--batch", &batch]);
        status[0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = members("json");
    assert_eq!(before.len(), 2);
    f.json(&["migrate", "--to", "sqlite"]);
    assert_eq!(members("sqlite"), before, "after migrate --to sqlite");
    f.json(&["migrate", "--to", "json"]);
    assert_eq!(members("json"), before, "after migrate --to json");
    for agent in &before {
        assert_eq!(f.entry(&task, agent)["fleet_batch"], batch.as_str());
    }
    f.ok(&["kill", "--task", &task, "--batch", &batch]);
}
