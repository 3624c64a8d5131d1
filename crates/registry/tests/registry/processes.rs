//! Concurrent OS processes: no update lost, no limit broken, no torn file read.

use deploy_core::Limits;

use crate::common::{Root, assert_counters_match, roomy_task, task_with};
use crate::stress::{assert_all_recorded, assert_reader_saw_no_torn_file, race, reader};

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
