//! What every agent is doing, on every surface, from its own events: `fleet status` (table and
//! JSON), an ended agent's summary recorded with its end, `fleet wait`, `fleet resume` — with
//! stub agents that replay stream-json fixtures, on real tmux.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use camino::Utf8PathBuf;
use serde_json::Value;

use common::{Fleet, stderr, wait_for};

fn fixture(name: &str) -> String {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../activity/tests/fixtures")
        .join(name)
        .to_string()
}

/// An agent that prints `fixture` and then runs `then` (shell).
fn replaying(f: &Fleet, task: &str, fixture_name: &str, then: &str) -> String {
    let script = format!("cat '{}'; {then}", fixture(fixture_name));
    f.deploy(task, "replay", "50", &["sh", "-c", &script])
}

fn agent_status(f: &Fleet, task: &str, agent: &str) -> Value {
    let status = f.json(&["status", "--task", task]);
    status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == agent)
        .cloned()
        .unwrap()
}

#[test]
fn status_shows_what_each_agent_is_doing() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = replaying(&f, &task, "claude_success_with_tools.jsonl", "sleep 60");
    wait_for("its result to be read", || {
        agent_status(&f, &task, &agent)["activity"]["state"] == "finished"
    });
    let status = f.json(&["status", "--task", &task]);
    let a = &status[0]["agents"][0];
    let keys: Vec<&str> = a["activity"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "state",
            "session_id",
            "model",
            "turns",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "last_tool",
            "last_event_at",
            "result",
            "is_error"
        ]
    );
    assert_eq!(a["activity"]["turns"], 4);
    assert_eq!(a["activity"]["cost_usd"], 0.04215);
    assert_eq!(
        a["activity"]["last_tool"]["name"],
        "mcp__fleet__update_agent_progress"
    );
    assert_eq!(
        a["liveness"], "alive",
        "finished by its word, still running"
    );
    assert_eq!(status[0]["totals"]["cost_usd"], 0.04215);
    assert_eq!(status[0]["totals"]["output_tokens"], 239);

    let text = f.ok(&["status", "--task", &task]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("$0.04") && lines[0].contains("8.6k tokens"),
        "{text}"
    );
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "AGENT", "TYPE", "STATUS", "STATE", "AGE", "TURNS", "TOKENS", "COST", "LAST",
            "ACTIVITY"
        ]
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(row[..4], [agent.as_str(), "replay", "running", "finished"]);
    assert_eq!(row[5..8], ["4", "8.6k", "$0.04"]);
    assert!(lines[2].contains("Fixed: every registry write"), "{text}");
}

#[test]
fn an_ended_agents_summary_and_exit_are_recorded_and_outlive_its_log() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = replaying(&f, &task, "claude_error_max_turns.jsonl", "sleep 1; exit 3");
    wait_for("its end to be recorded", || {
        agent_status(&f, &task, &agent)["status"] == "error"
    });
    let first = agent_status(&f, &task, &agent);
    assert_eq!(first["activity"]["state"], "failed");
    assert_eq!(first["activity"]["result"], "error_max_turns");
    assert_eq!(first["exit"], serde_json::json!({ "code": 3 }));
    let registry = f.task_registry(&task);
    let entry = &registry["agents"][0];
    assert_eq!(entry["fleet_activity"], first["activity"]);
    assert_eq!(entry["exit_status"], serde_json::json!({ "code": 3 }));

    // Its log goes (archived, or removed by hand): the summary reads the same.
    fs_err::remove_file(
        f.root()
            .join(&task)
            .join("logs")
            .join(format!("{agent}_stream.jsonl")),
    )
    .unwrap();
    let later = agent_status(&f, &task, &agent);
    assert_eq!(later["activity"], first["activity"]);
    assert_eq!(later["exit"], first["exit"]);
    assert!(
        !f.root()
            .join(".fleet/activity")
            .join(format!("{task}.json"))
            .exists(),
        "the reader's place goes with the end (its task's book, empty, with it)"
    );
}

fn wait(f: &Fleet, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--json", "wait"];
    all.extend_from_slice(args);
    f.run(&all)
}

#[test]
fn wait_exits_by_how_the_agents_ended() {
    let f = Fleet::new();
    let good = f.task(&[]);
    f.deploy(&good, "a", "50", &["sh", "-c", "sleep 1; exit 0"]);
    let out = wait(&f, &["--task", &good, "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended[0]["status"], "completed");

    let mixed = f.task(&[]);
    f.deploy(&mixed, "a", "50", &["sh", "-c", "sleep 1; exit 0"]);
    let failing = f.deploy(&mixed, "b", "50", &["sh", "-c", "sleep 1; exit 2"]);
    let out = wait(&f, &["--task", &mixed, "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(1));
    let ended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ended.as_array().unwrap().len(),
        2,
        "each agent's final summary"
    );
    assert!(
        stderr(&out).contains(&format!("{failing} error")),
        "{}",
        stderr(&out)
    );

    // A session that vanishes is recorded as reconcile records it.
    let vanished = f.task(&[]);
    let gone = f.deploy(&vanished, "v", "50", &["sleep", "300"]);
    f.tmux(&["kill-session", "-t", &format!("=agent_{gone}")]);
    let out = wait(&f, &["--agent", &gone, "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{gone} terminated")),
        "{}",
        stderr(&out)
    );

    let slow = f.task(&[]);
    let sleeper = f.deploy(&slow, "s", "50", &["sleep", "300"]);
    let out = wait(&f, &["--task", &slow, "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124));
    assert!(stderr(&out).contains(&sleeper), "{}", stderr(&out));
}

/// A stand-in for Claude Code: it records its argv, prints an init event (session id: its
/// `--resume`, else `sess-1`; its cwd) and a result, and ends.
fn fake_claude(f: &Fleet) -> Utf8PathBuf {
    let bin = Utf8PathBuf::from_path_buf(f.dir.path().join("bin")).unwrap();
    fs_err::create_dir_all(&bin).unwrap();
    let argv = f.dir.path().join("argv");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> '{argv}'
session=sess-1
for a in "$@"; do case "$a" in --resume=*) session="${{a#--resume=}}-next";; esac; done
cat > /dev/null
printf '{{"type":"system","subtype":"init","session_id":"%s","cwd":"%s","model":"m"}}\n' "$session" "$(pwd)"
sleep 0.5
printf '{{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok","session_id":"%s","total_cost_usd":0.01}}\n' "$session"
"#,
        argv = argv.display()
    );
    fs_err::write(bin.join("claude"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(bin.join("claude"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn resume_continues_a_claude_code_conversation() {
    let f = Fleet::new();
    let bin = fake_claude(&f);
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap());
    let workdir = f.dir.path().join("project");
    fs_err::create_dir_all(&workdir).unwrap();
    let fleet = |args: &[&str]| -> std::process::Output {
        let mut c: Command = f.command(args);
        c.env("PATH", &path);
        c.output().unwrap()
    };
    let task = f.task(&[]);
    let out = fleet(&[
        "deploy",
        "--task",
        &task,
        "--type",
        "coder",
        "--prompt",
        "start",
        "--startup-grace-ms",
        "100",
        "--workdir",
        workdir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let refused = fleet(&[
        "resume", "--task", &task, "--agent", &first, "--prompt", "more",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("is still running"),
        "{}",
        stderr(&refused)
    );

    let out = fleet(&["wait", "--agent", &first, "--timeout", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = fleet(&[
        "--json",
        "resume",
        "--task",
        &task,
        "--agent",
        &first,
        "--prompt",
        "go on",
        "--startup-grace-ms",
        "100",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let resumed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resumed["type"], "coder");
    assert_eq!(resumed["parent"], "orchestrator");
    let argv = fs_err::read_to_string(f.dir.path().join("argv")).unwrap();
    let second_run = argv.lines().nth(1).unwrap();
    assert!(second_run.contains("--resume=sess-1"), "{argv}");
    let out = fleet(&["wait", "--task", &task, "--timeout", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = agent_status(&f, &task, resumed["agent_id"].as_str().unwrap());
    assert_eq!(second["activity"]["session_id"], "sess-1-next");

    // An agent whose output shows no session cannot be resumed.
    let plain = f.deploy(&task, "plain", "50", &["sh", "-c", "echo hello; sleep 0.3"]);
    let out = fleet(&["wait", "--agent", &plain, "--timeout", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = fleet(&[
        "resume", "--task", &task, "--agent", &plain, "--prompt", "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no session id to resume"),
        "{}",
        stderr(&out)
    );
}
