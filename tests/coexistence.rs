//! Living beside the Python server, on real tmux: a workspace the Python server wrote (its
//! registries, from `tests/fixtures/python-orchestrator`) with its agents' sessions as it started
//! them — plain `tmux new-session -d -s agent_<id>` on the default server, untagged — and
//! fleet's own agents placed where the Python server's status check sees them.
//!
//! The "default server" is this test's own: `TMUX_TMPDIR` inside its temporary directory and no
//! `TMUX` (see `common`).

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::python::{
    AGENT, GONE, TASK, has_session, process_tree, python_session, python_workspace,
};
use common::{Fleet, stderr, wait_for};

fn agent<'a>(status: &'a Value, id: &str) -> &'a Value {
    status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {status}"))
}

#[test]
fn a_python_deployed_agent_is_seen_killed_and_recorded() {
    let f = Fleet::new();
    python_workspace(&f);
    let session = format!("agent_{AGENT}");
    python_session(&f, &session);
    // The user's own sessions on the same server — one even named like an agent.
    python_session(&f, "user-work");
    python_session(&f, "agent_stray-000000-000000");
    let tree = process_tree(&f, &session);
    assert!(tree.len() >= 3, "sh and two sleeps: {tree:?}");

    // Status looks where the Python server put it, read-only: the gone one is only reported.
    let before = f.files();
    let status = f.json(&["status", "--task", TASK]);
    assert_eq!(agent(&status, AGENT)["liveness"], "alive");
    assert_eq!(agent(&status, AGENT)["status"], "running");
    assert_eq!(agent(&status, GONE)["liveness"], "missing");
    assert_eq!(agent(&status, GONE)["status"], "running");
    assert_eq!(f.files(), before, "status wrote nothing");

    // Reconcile records the gone one, and only it; no session of that server is an orphan.
    let done = f.json(&["reconcile"]);
    let zombies = done["zombies"].as_array().unwrap();
    assert_eq!(zombies.len(), 1, "{done}");
    assert_eq!(zombies[0]["agent"], GONE);
    assert_eq!(zombies[0]["reason"], "session_not_found");
    assert!(zombies[0].get("placement").is_none(), "{done}");
    assert_eq!(done["orphans"], Value::Array(vec![]), "{done}");
    let status = f.json(&["status", "--task", TASK]);
    assert_eq!(agent(&status, GONE)["status"], "terminated");
    assert_eq!(agent(&status, AGENT)["status"], "running");
    assert_eq!(status[0]["active_count"], 1);

    // The kill ends exactly that session and its process tree, verified.
    let killed = f.json(&["kill", "--task", TASK, "--agent", AGENT]);
    assert_eq!(killed["session_killed"], true, "{killed}");
    assert_eq!(killed["status"], "terminated");
    let signalled: BTreeSet<u32> = killed["killed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap() as u32)
        .collect();
    assert!(
        tree.is_subset(&signalled),
        "every process of its tree is reported: {tree:?} in {signalled:?}"
    );
    assert!(!has_session(&f, &session));
    wait_for("its processes to be reaped", || {
        tree.iter().all(|p| !testkit::procs::is_running(*p))
    });
    assert!(
        has_session(&f, "user-work"),
        "the user's session is untouched"
    );
    assert!(has_session(&f, "agent_stray-000000-000000"));
    let status = f.json(&["status", "--task", TASK]);
    assert_eq!(agent(&status, AGENT)["status"], "terminated");
    assert_eq!(status[0]["active_count"], 0);
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
    assert!(has_session(&f, "user-work"));
}

#[test]
fn a_fleet_tagged_session_is_not_killed_as_a_python_agent() {
    let f = Fleet::new();
    python_workspace(&f);
    // The Python agent's session name is held by a fleet session on the default server: the
    // record says the Python server started it, the tag says fleet did — refused, untouched.
    let out = f.default_tmux(&[
        "new-session",
        "-d",
        "-s",
        &format!("agent_{AGENT}"),
        "sleep 300",
        ";",
        "set-option",
        "-t",
        &format!("=agent_{AGENT}:"),
        "@fleet_agent_id",
        "someone-000000-000000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = f.run(&["kill", "--task", TASK, "--agent", AGENT]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("someone-000000-000000"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(has_session(&f, &format!("agent_{AGENT}")));
    let status = f.json(&["status", "--task", TASK]);
    assert_eq!(agent(&status, AGENT)["status"], "running");
}

#[test]
fn fleet_agents_on_the_default_server_are_seen_by_the_python_servers_check() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let deploy = |args: &[&str]| {
        let mut c = f.command(args);
        c.env("FLEET_TMUX_SOCKET", "default");
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let id = deploy(&common::deploy_args(&task, "t", "50", &["sleep", "300"]))
        .trim()
        .to_owned();
    let session = format!("agent_{id}");
    // What the Python server's status call runs: `tmux has-session -t agent_<id>`.
    assert!(
        f.default_tmux(&["has-session", "-t", &session])
            .status
            .success(),
        "the Python server sees fleet's agent alive"
    );
    let status: Value =
        serde_json::from_str(&deploy(&["--json", "status", "--task", &task])).unwrap();
    assert_eq!(status[0]["agents"][0]["liveness"], "alive");
    // A fleet on its own socket does not judge it: it is elsewhere, not missing.
    let elsewhere = f.json(&["status", "--task", &task]);
    assert_eq!(elsewhere[0]["agents"][0]["liveness"], "elsewhere");
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
    let out = f.run(&["kill", "--task", &task, "--agent", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("tmux -L default"), "{}", stderr(&out));
    assert!(has_session(&f, &session), "refused, untouched");
    deploy(&["kill", "--task", &task, "--agent", &id]);
    assert!(
        !f.default_tmux(&["has-session", "-t", &session])
            .status
            .success()
    );
}
