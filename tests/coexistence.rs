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

use camino::Utf8Path;
use serde_json::Value;

use common::{Fleet, stderr, wait_for};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/python-orchestrator"
);
/// The Python server's task with a running agent, and that agent.
const TASK: &str = "TASK-20261124-083259-3e71215b";
const AGENT: &str = "investigator-083259-204ad5";
/// A second Python agent, added to the same task, whose session is gone.
const GONE: &str = "builder-083301-43b8ea";

/// Writes the Python server's workspace (after its first deploy) under `f`'s root, its paths
/// moved there, with one more running agent whose session no longer exists.
fn python_workspace(f: &Fleet) {
    let root = f.root();
    let moved = |name: &str| -> Value {
        let text = fs_err::read_to_string(Utf8Path::new(FIXTURES).join(name)).unwrap();
        serde_json::from_str(&text.replace("/home/user/project/.agent-workspace", root.as_str()))
            .unwrap()
    };
    let mut task = moved("AGENT_REGISTRY.02_after_deploy.json");
    let mut gone = task["agents"][0].clone();
    gone["id"] = GONE.into();
    gone["type"] = "builder".into();
    gone["tmux_session"] = format!("agent_{GONE}").into();
    task["agents"].as_array_mut().unwrap().push(gone.clone());
    task["agent_hierarchy"]["orchestrator"]
        .as_array_mut()
        .unwrap()
        .push(GONE.into());
    task["total_spawned"] = 2.into();
    task["active_count"] = 2.into();
    let mut global = moved("GLOBAL_REGISTRY.02_after_deploy.json");
    let mut entry = global["agents"][AGENT].clone();
    entry["type"] = "builder".into();
    entry["tmux_session"] = gone["tmux_session"].clone();
    global["agents"][GONE] = entry;
    global["total_agents_spawned"] = 2.into();
    global["active_agents"] = 2.into();
    let plain = moved("AGENT_REGISTRY.plain_task_after_create.json");
    for (path, value) in [
        (root.join(TASK).join("AGENT_REGISTRY.json"), &task),
        (
            root.join(plain["task_id"].as_str().unwrap())
                .join("AGENT_REGISTRY.json"),
            &plain,
        ),
        (root.join("registry/GLOBAL_REGISTRY.json"), &global),
    ] {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    }
}

/// Starts `session` as the Python server did: plain tmux, default server, no tags — an agent
/// whose process has a child of its own.
fn python_session(f: &Fleet, session: &str) {
    let out = f.default_tmux(&[
        "new-session",
        "-d",
        "-s",
        session,
        "sh -c 'sleep 301 & sleep 302; wait'",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The pane's process and every descendant of it.
fn process_tree(f: &Fleet, session: &str) -> BTreeSet<u32> {
    let out = f.default_tmux(&[
        "list-panes",
        "-t",
        &format!("={session}:"),
        "-F",
        "#{pane_pid}",
    ]);
    let root: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let parents: Vec<(u32, u32)> = fs_err::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = BTreeSet::from([root]);
    loop {
        let more: Vec<u32> = parents
            .iter()
            .filter(|(pid, ppid)| tree.contains(ppid) && !tree.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        if more.is_empty() {
            return tree;
        }
        tree.extend(more);
    }
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn has_session(f: &Fleet, session: &str) -> bool {
    f.default_tmux(&["has-session", "-t", &format!("={session}")])
        .status
        .success()
}

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
        tree.iter().all(|p| !running(*p))
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
