//! What an agent controls never blocks, floods or reaches the terminal raw (issue 29): its log
//! replaced with a FIFO, a line of many megabytes, escape sequences in its output — against
//! real tmux on a private server.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Fleet, WAIT_BOUND, stderr};

/// Runs `c`, failing the test if it has not ended within [`WAIT_BOUND`] (it is then killed):
/// a command that blocks on an agent's file fails instead of hanging the suite.
fn bounded(mut c: Command) -> Output {
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if start.elapsed() > WAIT_BOUND {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("{c:?} blocked for {WAIT_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// Deploys `sh -c script` into a new task; (task, agent).
fn deploy(f: &Fleet, script: &str) -> (String, String) {
    let task = f.task(&[]);
    let agent = f.deploy(&task, "worker", "0", &["sh", "-c", script]);
    (task, agent)
}

#[test]
fn a_log_replaced_by_a_fifo_blocks_no_command() {
    let f = Fleet::new();
    let (task, agent) = deploy(&f, "exec sleep 300");
    let log = f
        .root()
        .join(&task)
        .join("logs")
        .join(format!("{agent}_stream.jsonl"));
    fs_err::remove_file(&log).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        log.as_std_path(),
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    for args in [
        &["status", "--task", task.as_str()][..],
        &["--json", "status", "--task", task.as_str()][..],
        &["logs", "--task", task.as_str(), "--agent", agent.as_str()][..],
        &["wait", "--task", task.as_str(), "--timeout", "1"][..],
        &["reconcile"][..],
    ] {
        let out = bounded(f.command(args));
        assert_ne!(out.status.code(), None, "{args:?}");
    }
    let out = bounded(f.command(&["kill", "--task", &task, "--agent", &agent]));
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert!(f.sessions().is_empty());
}

#[test]
fn a_line_of_many_megabytes_is_skipped_not_held() {
    let f = Fleet::new();
    // 20 MiB without a newline, then a line fleet reads.
    let script = r#"head -c 20971520 /dev/zero | tr '\0' a; printf '\n{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"after the flood"}],"usage":{"input_tokens":1,"output_tokens":1}}}\n'; exec sleep 300"#;
    let (task, agent) = deploy(&f, script);
    let mut last = Value::Null;
    common::wait_for("the line after the flood", || {
        let status = f.json(&["status", "--task", &task]);
        last = status[0]["agents"][0].clone();
        last["last_text"] == "after the flood"
    });
    assert_eq!(last["agent_id"], agent.as_str());
    assert_eq!(last["activity"]["turns"], 1, "{last}");
}

#[test]
fn escape_sequences_never_reach_the_terminal_raw() {
    let f = Fleet::new();
    let evil = r"printf '\033]0;pwned\007\033]52;c;cHduZWQ=\007\033[2Jplain\n'";
    let (task, agent) = deploy(&f, &format!("{evil}; exec sleep 1"));
    common::wait_for("the agent's output", || {
        f.ok(&["logs", "--task", &task, "--agent", &agent, "--raw"])
            .contains("plain")
    });
    let follow = bounded(f.command(&["logs", "--task", &task, "--agent", &agent, "--follow"]));
    let shown = String::from_utf8_lossy(&follow.stdout);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(
        shown.contains("\\u{1b}]0;pwned") && shown.contains("plain"),
        "{shown}"
    );
    let raw = f.ok(&["logs", "--task", &task, "--agent", &agent, "--raw"]);
    assert!(
        raw.contains("\u{1b}]0;pwned\u{7}"),
        "--raw passes bytes: {raw:?}"
    );

    // A deployment that fails quotes the agent's last lines: escaped too, on one line.
    let task = f.task(&[]);
    let out = f.run(&common::deploy_args(
        &task,
        "worker",
        "2000",
        &["sh", "-c", &format!("{evil}; exit 3")],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("plain"), "{err}");
    // Bidirectional overrides in a description are shown escaped.
    let task = f.task(&["--description", "abc\u{202e}fed"]);
    let listed = f.ok(&["task", "list"]);
    assert!(
        !listed.contains('\u{202e}') && listed.contains("\\u{202e}"),
        "{listed}"
    );
    assert!(listed.contains(&task));
}
