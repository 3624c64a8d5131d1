//! The SQLite registry passes the suite every registry must pass, and refuses bad storage
//! without writing it.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use camino::Utf8PathBuf;
use deploy_core::Registry;
use sqlite_registry::{Error, SqliteRegistry, path_in};
use testkit::conformance::temp_workspace;

#[test]
fn the_sqlite_registry_conforms() {
    testkit::conformance::registry(|layout| SqliteRegistry::open(layout).unwrap());
}

/// Damages the database with `how`, closed, and opens it again.
fn damaged(how: impl FnOnce(&Utf8PathBuf)) {
    let (_dir, layout) = temp_workspace();
    let path = path_in(&layout);
    testkit::conformance::corrupt_storage(
        SqliteRegistry::open(layout.clone()).unwrap(),
        || {
            how(&path);
            path.clone()
        },
        || {
            SqliteRegistry::open_existing_with(layout.clone(), Duration::from_millis(200))
                .map_err(deploy_core::Error::from)
        },
    );
}

#[test]
fn a_truncated_database_is_reported_and_kept() {
    damaged(|path| {
        let bytes = fs_err::read(path).unwrap();
        fs_err::write(path, &bytes[..bytes.len() / 2]).unwrap();
    });
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_kept() {
    damaged(|path| fs_err::write(path, b"{\"agents\": []}\n".repeat(300)).unwrap());
}

#[test]
fn an_empty_file_is_not_taken_for_a_new_database() {
    damaged(|path| fs_err::write(path, b"").unwrap());
}

#[test]
fn a_newer_schema_is_refused_unwritten() {
    let (_dir, layout) = temp_workspace();
    drop(SqliteRegistry::open(layout.clone()).unwrap());
    let path = path_in(&layout);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", sqlite_registry::schema::VERSION + 1)
        .unwrap();
    drop(conn);
    let bytes = fs_err::read(&path).unwrap();
    let e = SqliteRegistry::open(layout).unwrap_err();
    assert!(matches!(e, Error::NewerSchema { .. }), "{e}");
    assert!(e.to_string().contains(path.as_str()), "{e}");
    assert_eq!(fs_err::read(&path).unwrap(), bytes);
}

#[test]
fn a_lock_held_past_the_timeout_is_busy_naming_the_file() {
    let (_dir, layout) = temp_workspace();
    let r = SqliteRegistry::open_with(layout.clone(), Duration::from_millis(100)).unwrap();
    let path = path_in(&layout);
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = r
        .create_task(&deploy_core::NewTask {
            description: "blocked".into(),
            ..Default::default()
        })
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("locked by another process") && text.contains(path.as_str()),
        "{text}"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(
        r.task_ids().unwrap().is_empty(),
        "the refused task left nothing"
    );
}

#[test]
fn the_database_and_its_wal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, layout) = temp_workspace();
    let r = SqliteRegistry::open(layout.clone()).unwrap();
    r.create_task(&deploy_core::NewTask {
        description: "private".into(),
        ..Default::default()
    })
    .unwrap();
    let db = path_in(&layout);
    for path in [db.to_string(), format!("{db}-wal"), format!("{db}-shm")] {
        let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
}

#[test]
fn temp_databases_of_dead_processes_are_swept_by_repair() {
    let (_dir, layout) = temp_workspace();
    let r = SqliteRegistry::open(layout.clone()).unwrap();
    let dir = layout.global_dir();
    // No process has this pid (above the kernel's pid_max), so its writer is dead.
    let dead = [
        ".fleet.sqlite3.99999999.new",
        ".fleet.sqlite3.99999999.new-wal",
    ];
    let alive = format!(".fleet.sqlite3.{}.new", std::process::id());
    for name in dead.iter().copied().chain([alive.as_str()]) {
        fs_err::write(dir.join(name), b"half a database").unwrap();
    }
    assert_eq!(r.repair(None, true).unwrap().temp_files, 2, "counted");
    assert!(
        dead.iter().all(|n| dir.join(n).exists()),
        "a dry run removes nothing"
    );
    assert_eq!(r.repair(None, false).unwrap().temp_files, 2);
    assert!(dead.iter().all(|n| !dir.join(n).exists()), "removed");
    assert!(
        dir.join(&alive).exists(),
        "a live process's temp file is its own"
    );
    assert_eq!(r.repair(None, false).unwrap().temp_files, 0);
}

#[test]
fn a_version_one_database_is_migrated_with_its_checkouts() {
    let (_dir, layout) = temp_workspace();
    let r = SqliteRegistry::open(layout.clone()).unwrap();
    let task = r
        .create_task(&deploy_core::NewTask {
            description: "old".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    let mut reg =
        testkit::conformance::registration(&task, "builder", deploy_core::Parent::Orchestrator);
    let checkout = deploy_core::Checkout {
        repo: "/repo".into(),
        path: layout.worktree(&task, &reg.agent),
        branch: format!("fleet/{}", reg.agent),
        base: "0123abcd".into(),
        base_ref: "main".into(),
        state: deploy_core::CheckoutState::Active,
        keep: false,
    };
    reg.checkout = Some(checkout.clone());
    r.register(&reg).unwrap();
    drop(r);
    // Back to version 1: no checkout column.
    let path = path_in(&layout);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE agents DROP COLUMN checkout; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);

    let r = SqliteRegistry::open(layout).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, sqlite_registry::schema::VERSION);
    let roster = r.roster(&task).unwrap();
    assert_eq!(
        roster.agents[0].checkout.as_ref(),
        Some(&checkout),
        "backfilled"
    );
    assert_eq!(r.read_task(&task).unwrap().agents.len(), 1);
}

#[test]
fn a_roster_kept_from_an_earlier_read_follows_every_commit() {
    let (_dir, layout) = temp_workspace();
    let ours = SqliteRegistry::open(layout.clone()).unwrap();
    let theirs = SqliteRegistry::open(layout).unwrap(); // another connection, as another process
    let task = ours
        .create_task(&deploy_core::NewTask {
            description: "kept".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    let reg =
        |t: &str| testkit::conformance::registration(&task, t, deploy_core::Parent::Orchestrator);
    ours.prefetch();
    assert!(ours.roster(&task).unwrap().agents.is_empty());
    let mine = ours.register(&reg("a")).unwrap().id;
    assert_eq!(
        ours.roster(&task).unwrap().agents.len(),
        1,
        "after our own commit"
    );
    theirs.register(&reg("b")).unwrap();
    assert_eq!(
        ours.roster(&task).unwrap().agents.len(),
        2,
        "after another's commit"
    );
    theirs
        .update_status(
            &task,
            &mine,
            &deploy_core::StatusUpdate::now(deploy_core::AgentStatus::Completed),
        )
        .unwrap();
    let roster = ours.roster(&task).unwrap();
    assert_eq!(roster.agents[0].status, deploy_core::AgentStatus::Completed);
    assert!(roster.agents[0].record.is_none(), "ended: not read whole");
}

#[test]
fn no_database_is_made_beside_a_json_registry() {
    let (_dir, layout) = temp_workspace();
    registry::JsonRegistry::new(layout.clone())
        .create_task(&deploy_core::NewTask {
            description: "json".into(),
            ..Default::default()
        })
        .unwrap();
    let e = SqliteRegistry::open(layout.clone()).unwrap_err();
    assert!(matches!(e, Error::JsonRegistry(_)), "{e}");
    assert!(e.to_string().contains("fleet migrate --to sqlite"), "{e}");
    assert!(!path_in(&layout).exists(), "nothing was made");
    SqliteRegistry::import(
        &layout,
        &registry::JsonRegistry::new(layout.clone()).whole().unwrap(),
    )
    .unwrap();
    SqliteRegistry::open(layout).unwrap();
}
