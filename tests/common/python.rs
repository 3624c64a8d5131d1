//! The Python server's workspace and sessions, as it left them: its registries from
//! `tests/fixtures/python-orchestrator`, and its agents' sessions started as it started them —
//! plain `tmux new-session -d -s agent_<id>` on the (test's own) default server, untagged.

use std::collections::BTreeSet;

use camino::Utf8Path;
use serde_json::Value;

use super::{Fleet, stderr};

pub const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/python-orchestrator"
);
/// The Python server's task with a running agent, and that agent.
pub const TASK: &str = "TASK-20261124-083259-3e71215b";
pub const AGENT: &str = "investigator-083259-204ad5";
/// A second Python agent, added to the same task, whose session is gone.
pub const GONE: &str = "builder-083301-43b8ea";

/// Writes the Python server's workspace (after its first deploy) under `f`'s root, its paths
/// moved there, with one more running agent whose session no longer exists.
pub fn python_workspace(f: &Fleet) {
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
pub fn python_session(f: &Fleet, session: &str) {
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
pub fn process_tree(f: &Fleet, session: &str) -> BTreeSet<u32> {
    let out = f.default_tmux(&[
        "list-panes",
        "-t",
        &format!("={session}:"),
        "-F",
        "#{pane_pid}",
    ]);
    let root: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    testkit::procs::tree(root)
}

pub fn has_session(f: &Fleet, session: &str) -> bool {
    f.default_tmux(&["has-session", "-t", &format!("={session}")])
        .status
        .success()
}
