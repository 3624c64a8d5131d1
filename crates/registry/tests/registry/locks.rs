//! The registry's locks: a timeout names the path; a SIGKILLed holder, a child and deleted lock
//! files never leave one held or unguarded.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use camino::Utf8PathBuf;
use deploy_core::{Error as CoreError, Limits, Parent, Registry};
use registry::JsonRegistry;

use crate::common::{Root, assert_counters_match, registration, roomy_task, task_with};
use crate::stress::{assert_all_recorded, output, race, spawn};

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
