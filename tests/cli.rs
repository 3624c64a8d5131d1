//! Black-box tests of the `fleet` binary against real tmux, each on its own private socket
//! (killed at the end) and its own workspace root.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use serde_json::Value;

use common::{Fleet, agent_sh, stderr, wait_for};

/// Snapshots `text` with what changes from run to run replaced by placeholders.
macro_rules! snap {
    ($name:expr, $text:expr, $fleet:expr) => {{
        let root = regex::escape($fleet.root().as_str());
        let socket = regex::escape(&$fleet.socket);
        insta::with_settings!({filters => vec![
            (root.as_str(), "[root]"),
            (socket.as_str(), "[socket]"),
            (r"TASK-\d{8}-\d{6}-[0-9a-f]{8}", "[task]"),
            (r"[a-z]+-\d{6}-[0-9a-f]{6}", "[agent]"),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", "[time]"),
            (r#""(pane_pid|pid|age_seconds)": \d+"#, r#""$1": "[n]""#),
            (r"/tmp/\.tmp[A-Za-z0-9]+", "[tmp]"),
            // An agent's host: recorded on the Postgres registry only (the runs on each registry
            // share these snapshots).
            (r#",\n\s*"host": "[^"]*""#, ""),
        ]}, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

// ---- the whole cycle -----------------------------------------------------------------------

#[test]
fn create_deploy_status_logs_kill() {
    let f = Fleet::new();
    let created = f.json(&[
        "task",
        "create",
        "--description",
        "cycle",
        "--max-concurrent",
        "3",
    ]);
    snap!(
        "task_create_json",
        serde_json::to_string_pretty(&created).unwrap(),
        f
    );
    let task = created["task_id"].as_str().unwrap().to_owned();
    assert_eq!(f.task_registry(&task)["task_id"], task.as_str());

    let listed = f.json(&["task", "list"]);
    snap!(
        "task_list_json",
        serde_json::to_string_pretty(&listed).unwrap(),
        f
    );

    let mut deploy = f.command(&[
        "--json",
        "deploy",
        "--task",
        &task,
        "--type",
        "demo",
        "--prompt",
        "say hello",
        "--startup-grace-ms",
        "200",
        "--",
        "sh",
        &agent_sh(),
    ]);
    let out = deploy.env("FLEET_DEMO_SECONDS", "60").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let deployed: Value = serde_json::from_slice(&out.stdout).unwrap();
    snap!(
        "deploy_json",
        serde_json::to_string_pretty(&deployed).unwrap(),
        f
    );
    let agent = deployed["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(f.sessions(), [format!("agent_{agent}")]);

    let status = f.json(&["status", "--task", &task]);
    assert_eq!(status[0]["agents"][0]["liveness"], "alive");
    assert_eq!(status[0]["agents"][0]["status"], "running");
    assert_eq!(status[0]["active_count"], 1);
    snap!(
        "status_json",
        serde_json::to_string_pretty(&status).unwrap(),
        f
    );
    let text = f.ok(&["status", "--task", &task]);
    assert!(
        text.contains(&agent) && text.contains("running") && text.contains("LAST ACTIVITY"),
        "{text}"
    );

    wait_for("the agent's first output", || {
        f.ok(&["logs", "--task", &task, "--agent", &agent])
            .contains("\"type\":\"system\"")
    });
    let logs = f.ok(&["logs", "--task", &task, "--agent", &agent, "--lines", "1"]);
    assert_eq!(logs.lines().count(), 1, "{logs}");
    let first = f.json(&["logs", "--task", &task, "--agent", &agent, "--lines", "100"]);
    assert!(
        first["lines"][0]
            .as_str()
            .unwrap()
            .contains("\"prompt_bytes\":9"),
        "{first}"
    );
    // Which progress lines exist depends on timing: the snapshot keeps the first, stable one.
    let mut logs_json = first.clone();
    logs_json["lines"] = Value::Array(first["lines"].as_array().unwrap()[..1].to_vec());
    snap!(
        "logs_json",
        serde_json::to_string_pretty(&logs_json).unwrap(),
        f
    );

    let killed = f.json(&[
        "kill",
        "--task",
        &task,
        "--agent",
        &agent,
        "--reason",
        "Superseded",
    ]);
    assert_eq!(killed["status"], "terminated");
    assert_eq!(killed["session_killed"], true);
    // Which processes exist at the instant of the kill depends on timing; the agent's shell
    // always does. (The wrapper is signalled only if it has not ended by itself once its agent
    // was gone.)
    let names: Vec<&str> = killed["killed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"sh"), "the agent: {names:?}");
    let mut killed = killed.clone();
    killed["killed"] = Value::String("[processes]".into());
    snap!(
        "kill_json",
        serde_json::to_string_pretty(&killed).unwrap(),
        f
    );
    assert!(f.sessions().is_empty());
    let after = f.json(&["status", "--task", &task]);
    assert_eq!(after[0]["agents"][0]["status"], "terminated");
    assert_eq!(after[0]["agents"][0]["liveness"], "missing");
    assert_eq!(after[0]["active_count"], 0);
    let registry = f.task_registry(&task);
    assert_eq!(registry["agents"][0]["termination_reason"], "Superseded");
    assert!(
        !f.root()
            .join(&task)
            .join(format!("agent_prompt_{agent}.txt"))
            .exists()
    );
    assert!(
        f.root()
            .join(&task)
            .join(format!("logs/{agent}_stream.jsonl"))
            .exists(),
        "logs are kept"
    );
}

#[test]
fn an_agent_that_dies_at_start_is_reported_with_its_status_and_output_and_leaves_nothing() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let before = f.files();
    let doomed = [
        "deploy",
        "--task",
        &task,
        "--type",
        "doomed",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "300",
        "--",
        "sh",
        "-c",
        "echo 'fatal: no credentials' >&2; exit 3",
    ];
    let out = f.run(&doomed);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("failed at step `confirm live`") && err.contains("exited with status 3"),
        "{err}"
    );
    assert!(err.contains("fatal: no credentials"), "{err}");
    assert!(f.sessions().is_empty());
    assert_eq!(f.files(), before, "nothing changed but the log");

    let out = f.run(&[&["--json"][..], &doomed].concat());
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["step"], "confirm_live");
    snap!(
        "deploy_failure_json",
        serde_json::to_string_pretty(&v).unwrap(),
        f
    );
    assert_eq!(f.files(), before);
}

#[test]
fn an_agent_that_ends_by_itself_is_recorded_completed_or_error() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let good = f.deploy(&task, "good", "100", &["sh", "-c", "sleep 0.5; echo done"]);
    let bad = f.deploy(
        &task,
        "bad",
        "100",
        &["sh", "-c", "sleep 0.5; echo crashed; exit 3"],
    );
    f.wait_dead_panes(2);
    let status = f.json(&["status", "--task", &task]);
    let by_id = |id: &str| {
        status[0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id(&good)["status"], "completed");
    assert_eq!(by_id(&bad)["status"], "error");
    assert_eq!(by_id(&bad)["exit"], serde_json::json!({ "code": 3 }));
    assert_eq!(status[0]["active_count"], 0);
    assert_eq!(status[0]["completed_count"], 1);
    assert!(f.sessions().is_empty(), "dead sessions are cleaned up");
    let registry = f.task_registry(&task);
    let bad_entry = registry["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == bad.as_str())
        .unwrap();
    assert_eq!(bad_entry["exit_status"], serde_json::json!({ "code": 3 }));
}

#[test]
fn an_agent_that_ended_unobserved_does_not_count_against_a_limit() {
    let f = Fleet::new();
    let task = f.task(&["--max-concurrent", "1"]);
    let first = f.deploy(&task, "a", "0", &["sh", "-c", "sleep 0.3"]);
    f.wait_dead_panes(1);
    // The registry still says running: a limit of 1 would refuse the next deployment...
    let out = f.run(&[
        "deploy",
        "--task",
        &task,
        "--type",
        "b",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "0",
        "--",
        "sleep",
        "30",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...but the ended agent was recorded first, and no longer counts.
    let status = f.json(&["status", "--task", &task]);
    let first_now = status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == first.as_str())
        .unwrap()
        .clone();
    assert_eq!(first_now["status"], "completed");
    assert_eq!(status[0]["active_count"], 1);
}

#[test]
fn logs_follow_prints_everything_until_the_agent_ends() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = f.deploy(
        &task,
        "t",
        "50",
        &["sh", "-c", "echo first; sleep 1; echo second"],
    );
    let followed = f.ok(&["logs", "--task", &task, "--agent", &agent, "--follow"]);
    assert_eq!(followed, "first\nsecond\n");
}

/// A crash of the machine can leave a prompt file that no intent names (intents are synced only
/// with `--worktree`): reconcile removes it, and never a live agent's.
#[test]
fn reconcile_sweeps_a_prompt_file_nothing_names() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = f.deploy(&task, "t", "0", &["sleep", "300"]);
    let dir = f.root().join(&task);
    let ghost = dir.join("agent_prompt_ghost-1.txt");
    fs_err::write(&ghost, "left by a power loss").unwrap();
    let not_a_prompt = dir.join("agent_prompt_notes.md");
    fs_err::write(&not_a_prompt, "the user's").unwrap();
    let dry = f.json(&["reconcile", "--dry-run"]);
    assert_eq!(dry["prompts"], serde_json::json!([ghost.as_str()]), "{dry}");
    assert!(ghost.exists());
    let done = f.json(&["reconcile"]);
    assert_eq!(
        done["prompts"],
        serde_json::json!([ghost.as_str()]),
        "{done}"
    );
    assert!(!ghost.exists() && not_a_prompt.exists());
    assert!(
        dir.join(format!("agent_prompt_{agent}.txt")).exists(),
        "the live agent's stays"
    );
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
}

#[test]
fn reconcile_reports_first_with_dry_run_then_repairs_once() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = f.deploy(&task, "t", "50", &["sleep", "300"]);
    assert_eq!(
        f.json(&["reconcile"])["nothing_to_do"],
        true,
        "a live agent is not a leftover"
    );
    f.tmux(&["kill-server"]); // the session vanishes under the registry's feet
    let before = f.files();
    let dry = f.json(&["reconcile", "--dry-run"]);
    assert_eq!(dry["zombies"][0]["agent"], agent.as_str());
    assert_eq!(dry["zombies"][0]["reason"], "session_not_found");
    assert_eq!(f.files(), before, "a dry run changes nothing");
    let done = f.json(&["reconcile"]);
    snap!(
        "reconcile_json",
        serde_json::to_string_pretty(&done).unwrap(),
        f
    );
    let status = f.json(&["status", "--task", &task]);
    assert_eq!(status[0]["agents"][0]["status"], "terminated");
    assert_eq!(status[0]["active_count"], 0);
    assert_eq!(f.json(&["reconcile"])["nothing_to_do"], true);
    assert_eq!(f.ok(&["reconcile"]), "nothing to do\n");
}

/// Regression (the flake of `a_claude_code_agent_reports_spawns_and_completes`): an agent
/// reported `completed` itself, and its ender killed its session but had not yet recorded the
/// end when a `wait` looked. The look saw an active agent without a session and recorded it
/// `terminated` (`session_not_found`). A session gone after the agent's own final report
/// ends as the agent said.
#[test]
fn regression_a_session_gone_after_the_agents_own_final_report_ends_as_the_agent_said() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let agent = f.deploy(&task, "t", "50", &["sleep", "300"]);
    // The agent's own final report, as update_agent_progress writes it; then its session goes.
    let progress = f
        .root()
        .join(&task)
        .join("progress")
        .join(format!("{agent}_progress.jsonl"));
    fs_err::create_dir_all(progress.parent().unwrap()).unwrap();
    let line = serde_json::json!({"timestamp": "2026-12-06T00:00:00", "agent_id": agent,
        "status": "completed", "message": "all done", "progress": 100});
    fs_err::write(&progress, format!("{line}\n")).unwrap();
    f.tmux(&["kill-server"]);
    let waited = f.run(&["wait", "--task", &task, "--timeout", "60"]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    let entry = f.entry(&task, &agent);
    assert_eq!(entry["status"], "completed", "{entry}");
    // Without a report, a vanished session is still a termination.
    let other = f.deploy(&task, "u", "50", &["sleep", "300"]);
    f.tmux(&["kill-server"]);
    let done = f.json(&["reconcile"]);
    assert_eq!(done["zombies"][0]["agent"], other.as_str(), "{done}");
    assert_eq!(done["zombies"][0]["reason"], "session_not_found", "{done}");
    assert_eq!(f.entry(&task, &other)["status"], "terminated");
}

// ---- bad input: one line, non-zero, nothing changed ----------------------------------------

/// A refusal that is not a usage error: one line on stderr, exit 1, no session left.
fn assert_refused(f: &Fleet, out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("fleet: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(f.sessions().is_empty(), "no session was left");
}

/// A usage error: clap's whole message on stderr — what was wrong and where to look — exit 2.
fn assert_usage(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("--help"),
        "the pointer to --help is kept: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn usage_errors_exit_2_with_clap_s_whole_message() {
    let f = Fleet::new();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["deploy", "--task", "../x", "--type", "t", "--prompt", "p"],
            vec![
                "invalid value '../x' for '--task <TASK>'",
                "invalid task id",
            ],
        ),
        (
            vec!["deploy", "--task", "T", "--type", "t"],
            vec![
                "the following required arguments were not provided",
                "--prompt <PROMPT>",
                "Usage: fleet deploy",
            ],
        ),
        (
            vec!["deploy", "--task", "T", "--type", "t", "--promt", "p"],
            vec![
                "unexpected argument '--promt'",
                "tip: a similar argument exists: '--prompt'",
            ],
        ),
        (
            vec!["statsu"],
            vec![
                "unrecognized subcommand 'statsu'",
                "similar subcommand exists: 'status'",
            ],
        ),
        (
            vec!["status", "--agent", "a\nb"],
            vec![
                "invalid value 'a\nb' for '--agent <AGENT>'",
                "invalid agent id",
            ],
        ),
        (
            vec![
                "task",
                "create",
                "--description",
                "d",
                "--priority",
                "P9;$(id)",
            ],
            vec![
                "invalid value 'P9;$(id)' for '--priority <PRIORITY>'",
                "[possible values: P0, P1, P2, P3, P4]",
            ],
        ),
        (
            vec!["task", "create", "--description", "  "],
            vec!["the task description is empty"],
        ),
        (
            vec!["--socket", "a/b", "status"],
            vec![
                "invalid value 'a/b' for '--socket <SOCKET>'",
                "'/' is not allowed",
            ],
        ),
    ];
    for (args, needles) in &cases {
        assert_usage(&f.run(args), needles);
    }
    assert!(!f.root().exists(), "a usage error creates nothing");

    // Under --json the same message is an object on stdout too.
    let out = f.run(&["--json", "statsu"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("similar subcommand exists: 'status'"),
        "{message}"
    );
    assert!(message.contains("--help"), "{message}");
}

#[test]
fn bad_input_is_one_line_nonzero_and_changes_nothing() {
    let f = Fleet::new();
    let task = f.task(&["--max-concurrent", "1"]);
    let before = f.files();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--task",
            &task,
            "--type",
            "t",
            "--startup-grace-ms",
            "100",
        ];
        args.extend_from_slice(extra);
        f.run(&args)
    };
    let cases: Vec<(Output, &str)> = vec![
        (
            f.run(&[
                "deploy",
                "--task",
                "TASK-NOPE",
                "--type",
                "t",
                "--prompt",
                "p",
                "--",
                "sleep",
                "9",
            ]),
            "unknown task TASK-NOPE",
        ),
        (
            deploy(&["--prompt-file", "/no/such/prompt.txt"]),
            "/no/such/prompt.txt",
        ),
        (
            deploy(&["--prompt", "  ", "--", "sleep", "9"]),
            "the prompt is empty",
        ),
        (
            deploy(&[
                "--prompt",
                "p",
                "--workdir",
                "/no/such/dir",
                "--",
                "sleep",
                "9",
            ]),
            "workdir /no/such/dir does not exist",
        ),
        (
            f.run(&["kill", "--task", &task, "--agent", "ghost"]),
            "unknown agent ghost",
        ),
        (
            f.run(&["status", "--task", &task, "--agent", "ghost"]),
            "unknown agent ghost in task",
        ),
        (
            f.run(&["status", "--agent", "ghost"]),
            "unknown agent ghost in any task",
        ),
        (
            f.command(&["status"])
                .env("FLEET_AGENT_CMD", "claude 'unclosed")
                .output()
                .unwrap(),
            "FLEET_AGENT_CMD",
        ),
    ];
    for (out, needle) in &cases {
        assert_refused(&f, out, needle);
        assert_eq!(f.files(), before, "after {needle:?}");
    }

    // tmux not installed: the deployment fails at its session and rolls back.
    let out = f
        .command(&[
            "deploy", "--task", &task, "--type", "t", "--prompt", "p", "--", "sleep", "9",
        ])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_refused(&f, &out, "cannot run tmux");
    assert_eq!(f.files(), before, "tmux missing");

    // A limit reached names the limit.
    f.ok(&[
        "deploy",
        "--task",
        &task,
        "--type",
        "first",
        "--prompt",
        "p",
        "--startup-grace-ms",
        "100",
        "--",
        "sleep",
        "30",
    ]);
    let one_agent = f.task_registry(&task);
    let out = deploy(&["--prompt", "p", "--", "sleep", "30"]);
    assert!(
        stderr(&out).contains("limit max_concurrent = 1 reached"),
        "{}",
        stderr(&out)
    );
    assert_eq!(f.task_registry(&task), one_agent);
    assert_eq!(f.sessions().len(), 1);
    f.tmux(&["kill-server"]);

    // A corrupt registry is named with its position and left as it is.
    // (The JSON registry's file, the SQLite registry's database, or a Postgres row.)
    if let Some(url) = f.database_url() {
        let row = format!("SELECT file FROM fleet_tasks WHERE id = '{task}'");
        testkit::postgres::query(
            &url,
            &format!("UPDATE fleet_tasks SET file = '{{\"task_id\": ' WHERE id = '{task}'"),
        );
        let out = deploy(&["--prompt", "p", "--", "sleep", "9"]);
        assert_refused(
            &f,
            &out,
            "corrupt registry in database postgres://127.0.0.1:",
        );
        assert!(stderr(&out).contains("line 1 column"), "{}", stderr(&out));
        assert_eq!(testkit::postgres::query(&url, &row), ["{\"task_id\": "]);
        return;
    }
    let database = f.root().join("registry/fleet.sqlite3");
    let (registry, damage, position): (_, &[u8], _) = if database.exists() {
        (database, &[7; 8192], "")
    } else {
        (
            f.root().join(&task).join("AGENT_REGISTRY.json"),
            b"{\"task_id\": ",
            "line 1 column",
        )
    };
    fs_err::write(&registry, damage).unwrap();
    let out = deploy(&["--prompt", "p", "--", "sleep", "9"]);
    assert_refused(&f, &out, "corrupt registry");
    assert!(
        stderr(&out).contains(registry.as_str()) && stderr(&out).contains(position),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs_err::read(&registry).unwrap(), damage);
}

#[test]
fn json_errors_go_to_stdout_as_objects() {
    let f = Fleet::new();
    let out = f.run(&["--json", "kill", "--task", "TASK-NOPE", "--agent", "a"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["message"], "unknown task TASK-NOPE");
}

#[test]
fn help_texts() {
    let f = Fleet::new();
    for sub in [
        &[][..],
        &["task"],
        &["task", "create"],
        &["deploy"],
        &["status"],
        &["kill"],
        &["logs"],
        &["attach"],
        &["reconcile"],
    ] {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let name = if sub.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{}", sub.join("_"))
        };
        snap!(name, f.ok(&args), f);
    }
}
