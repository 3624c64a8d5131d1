//! fleet with the client its users run: the real Claude Code (pinned, from npm: `cargo xtask
//! claude`) against a scripted model server, on a private tmux server, in temporary
//! workspaces. What the model was shown — its tools, its history — is read from the server's
//! log; what Claude Code itself said is read from its own stream-json output.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use camino::Utf8PathBuf;
use regex::Regex;
use scripted_model::{Reply, Request, Script};
use serde_json::{Value, json};

use common::claude::{self, Claude};
use common::{Fleet, stderr, wait_for};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// Every tool `fleet mcp` offers, as Claude Code names them.
const FLEET_TOOLS: [&str; 16] = [
    "create_real_task",
    "deploy_batch",
    "deploy_headless_agent",
    "deploy_opus_agent",
    "deploy_sonnet_agent",
    "get_agent_output",
    "get_real_task_status",
    "get_task_findings",
    "kill_real_agent",
    "reconcile",
    "report_agent_finding",
    "resume_agent",
    "spawn_child_agent",
    "spawn_opus_child_agent",
    "spawn_sonnet_child_agent",
    "update_agent_progress",
];

fn mcp(tool: &str) -> String {
    format!("mcp__fleet__{tool}")
}

/// The agent and task ids a deployed agent's preamble names.
fn identity(r: &Request) -> (String, String) {
    let re = Regex::new(r"You are agent (\S+), of type \S+, in task (\S+) ").unwrap();
    let text = r.first_user_text();
    let c = re
        .captures(&text)
        .unwrap_or_else(|| panic!("no identity in the prompt: {text}"));
    (c[1].to_owned(), c[2].trim_matches('"').to_owned())
}

/// Runs Claude Code itself in print mode — the way a user drives an MCP server — with `fleet
/// mcp` of `f`'s workspace in its `--mcp-config`, told `prompt`; its output, and its debug log.
fn conductor(f: &Fleet, c: &Claude, prompt: &str) -> (Output, String) {
    let debug = f.dir.path().join("conductor-debug.txt");
    let config = json!({"mcpServers": {"fleet": {
        "type": "stdio",
        "command": FLEET,
        "args": ["mcp"],
        "env": {
            "FLEET_ROOT": f.root().as_str(),
            "FLEET_TMUX_SOCKET": f.socket,
            "TMUX_TMPDIR": f.tmux_tmpdir().as_str(),
        },
    }}});
    let mut cmd = Command::new(claude::bin());
    cmd.args([
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
        "--mcp-config",
        &config.to_string(),
        "--debug-file",
    ])
    .arg(&debug)
    .current_dir(f.dir.path());
    f.environment(&mut cmd);
    c.env(&mut cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = fs_err::read_to_string(&debug).unwrap_or_default();
    (out, log)
}

/// The events of a stream-json output.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `result` event of a stream-json output.
fn result_event(text: &str) -> Value {
    events(text)
        .into_iter()
        .rev()
        .find(|e| e["type"] == "result")
        .unwrap_or_else(|| panic!("no result event in: {text}"))
}

/// The text of `agent`'s stream log (in `logs/` or, after its end, `archive/`).
fn stream_log(f: &Fleet, task: &str, agent: &str) -> String {
    let name = format!("{agent}_stream.jsonl");
    ["logs", "archive"]
        .iter()
        .find_map(|d| fs_err::read_to_string(f.root().join(task).join(d).join(&name)).ok())
        .unwrap_or_default()
}

/// A user of the Python server switches by pointing Claude Code at `fleet mcp`: it is offered
/// every fleet tool, creates a task, deploys an agent (with the newer server's
/// `deploy_opus_agent`), and reads its status — and the agent really runs, on opus.
#[test]
fn claude_code_drives_fleet_mcp_as_it_drove_the_python_server() {
    let f = Fleet::new();
    let script = Script::new()
        .conversation(
            "CONDUCTOR-dropin",
            [
                Reply::tool(
                    mcp("create_real_task"),
                    json!({"description": "drop-in", "max_concurrent": 2}),
                ),
                Reply::with(|r| {
                    Reply::tool(
                        mcp("deploy_opus_agent"),
                        json!({"task_id": r.last_tool_json()["task_id"], "agent_type": "worker",
                               "prompt": "WORKER-dropin: look around"}),
                    )
                }),
                Reply::with(|r| {
                    Reply::tool(
                        mcp("get_real_task_status"),
                        json!({"task_id": r.last_tool_json()["task_id"]}),
                    )
                }),
                Reply::text("the worker runs"),
            ],
        )
        .conversation(
            "WORKER-dropin",
            [
                Reply::tool(
                    "Bash",
                    json!({"command": "sleep 2", "description": "think"}),
                ),
                Reply::text("looked around"),
            ],
        );
    let c = Claude::start(&f, script);
    let (out, debug) = conductor(&f, &c, "CONDUCTOR-dropin: deploy a worker");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "claude: {}\n{stdout}", stderr(&out));
    assert!(
        !debug.contains("tools/list failed"),
        "Claude Code rejected fleet's tools: {}",
        debug
            .lines()
            .find(|l| l.contains("tools/list failed"))
            .unwrap_or_default()
    );
    assert!(debug.contains("fleet"), "the debug log names the server");

    let shown = c.model.conversation("CONDUCTOR-dropin");
    assert_eq!(shown.len(), 4, "four turns: {shown:?}");
    let offered = shown[0].tool_names();
    for tool in FLEET_TOOLS {
        assert!(
            offered.contains(&mcp(tool)),
            "{tool} not offered: {offered:?}"
        );
    }
    let created = shown[1].last_tool_json();
    assert_eq!(created["success"], true, "{created}");
    let task = created["task_id"].as_str().unwrap().to_owned();
    let deployed = shown[2].last_tool_json();
    assert_eq!(deployed["success"], true, "{deployed}");
    let agent = deployed["agent_id"].as_str().unwrap().to_owned();
    let status = shown[3].last_tool_json();
    assert_eq!(status["success"], true, "{status}");
    let agents = status["agents"]["agents_list"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{status}");
    assert_eq!(agents[0]["id"], agent.as_str());
    assert_eq!(result_event(&stdout)["result"], "the worker runs");

    // The worker is the default agent, Claude Code, on the model the tool set.
    wait_for("the worker's first request", || {
        !c.model.conversation("WORKER-dropin").is_empty()
    });
    let worker = &c.model.conversation("WORKER-dropin")[0];
    assert!(worker.model().contains("opus"), "model {}", worker.model());
    assert_eq!(identity(worker), (agent.clone(), task.clone()));
    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let e = f.entry(&task, &agent);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["fleet_activity"]["result"], "looked around", "{e}");
}

/// Claude Code deploys a batch through `deploy_batch`: one that does not fit the task is
/// refused whole, saying how many fit, with nothing made; one that fits puts both members Live,
/// each a real Claude Code agent that runs to its end.
#[test]
fn claude_code_deploys_a_batch_all_or_nothing() {
    let f = Fleet::new();
    let member =
        |marker: &str| json!({"agent_type": "solver", "prompt": format!("{marker}: solve it")});
    let script = Script::new()
        .conversation(
            "CONDUCTOR-batch",
            [
                Reply::tool(
                    mcp("create_real_task"),
                    json!({"description": "best of two", "max_concurrent": 2}),
                ),
                Reply::with(move |r| {
                    Reply::tool(
                        mcp("deploy_batch"),
                        json!({"task_id": r.last_tool_json()["task_id"],
                               "members": [member("BATCH-x"), member("BATCH-y"), member("BATCH-z")]}),
                    )
                }),
                Reply::with(move |r| {
                    let task = r.tool_json(0)["task_id"].clone();
                    Reply::tool(
                        mcp("deploy_batch"),
                        json!({"task_id": task, "members": [member("BATCH-one"), member("BATCH-two")]}),
                    )
                }),
                Reply::text("two solvers run"),
            ],
        )
        .conversation("BATCH-one", [Reply::text("solved one way")])
        .conversation("BATCH-two", [Reply::text("solved another way")]);
    let c = Claude::start(&f, script);
    let (out, _) = conductor(&f, &c, "CONDUCTOR-batch: fan out");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "claude: {}\n{stdout}", stderr(&out));
    let shown = c.model.conversation("CONDUCTOR-batch");
    assert_eq!(shown.len(), 4, "four turns: {shown:?}");
    let task = shown[1].last_tool_json()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = shown[2].last_tool_json();
    assert_eq!(refused["success"], false, "{refused}");
    assert_eq!(refused["step"], "precheck", "{refused}");
    let why = refused["error"].as_str().unwrap();
    assert!(
        why.contains("a batch of 3 does not fit") && why.contains("room for 2"),
        "{why}"
    );
    assert!(
        c.model.conversation("BATCH-x").is_empty(),
        "a refused member ran"
    );

    let batch = shown[3].last_tool_json();
    assert_eq!(batch["success"], true, "{batch}");
    let agents = batch["agent_ids"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{batch}");
    c.ok(
        &f,
        &[
            "wait",
            "--batch",
            batch["batch_id"].as_str().unwrap(),
            "--timeout",
            "90",
        ],
    );
    for (agent, marker) in agents.iter().zip(["BATCH-one", "BATCH-two"]) {
        let agent = agent.as_str().unwrap();
        let turns = c.model.conversation(marker);
        assert_eq!(turns.len(), 1, "{marker} ran once: {turns:?}");
        assert_eq!(identity(&turns[0]).0, agent);
        let e = f.entry(&task, agent);
        assert_eq!(e["status"], "completed", "{e}");
        assert_eq!(e["fleet_batch"], batch["batch_id"], "{e}");
    }
    assert_eq!(
        f.task_registry(&task)["agents"].as_array().unwrap().len(),
        2
    );
}

/// The agent loop's script: the parent reports progress and a finding, spawns a child and
/// completes (its last words slow); the child works, then completes.
fn loop_script() -> Script {
    let progress = |status: &'static str, message: &'static str, progress: u8| {
        Reply::with(move |r| {
            let (agent, task) = identity(r);
            Reply::tool(
                mcp("update_agent_progress"),
                json!({"task_id": task, "agent_id": agent, "status": status,
                       "message": message, "progress": progress}),
            )
        })
    };
    Script::new()
        .conversation(
            "LOOP-parent",
            [
                progress("working", "half way", 50),
                Reply::with(|r| {
                    let (agent, task) = identity(r);
                    Reply::tool(
                        mcp("report_agent_finding"),
                        json!({"task_id": task, "agent_id": agent, "finding_type": "issue",
                               "severity": "high", "message": "an unlocked write",
                               "data": {"file": "registry.py", "line": 42}}),
                    )
                }),
                Reply::with(|r| {
                    let (agent, task) = identity(r);
                    Reply::tool(
                        mcp("spawn_child_agent"),
                        json!({"task_id": task, "parent_agent_id": agent,
                               "child_agent_type": "helper",
                               "child_prompt": "LOOP-child: check the lock"}),
                    )
                }),
                progress("completed", "all done", 100),
                // A model takes its time to write the last words: the session must not end
                // before Claude Code has written them, with its result, tokens and cost.
                Reply::after(
                    Duration::from_secs(2),
                    Reply::text("finished: the registry race is fixed"),
                ),
            ],
        )
        .conversation(
            "LOOP-child",
            [
                Reply::tool(
                    "Bash",
                    json!({"command": "sleep 2", "description": "check"}),
                ),
                progress("completed", "lock checked", 100),
                Reply::text("the lock holds"),
            ],
        )
}

/// The agent loop with the real client: a deployed default agent reports progress, a finding,
/// spawns a child that really runs at depth 2, and completes; fleet records each, and the
/// final result, tokens and cost — equal to Claude Code's own `result` event — are recorded
/// although the self-reported completion ended the session.
#[test]
fn a_claude_code_agent_reports_spawns_and_completes() {
    let f = Fleet::new();
    let c = Claude::start(&f, loop_script());
    let task = f.task(&[]);
    let agent = deploy_live(&f, &c, &task, "LOOP-parent: fix the race", &[]);
    c.ok(&f, &["wait", "--task", &task, "--timeout", "90"]);
    wait_for("both agents' sessions to be gone", || {
        f.sessions().is_empty()
    });

    let registry = f.task_registry(&task);
    let agents = registry["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{registry}");
    let parent = f.entry(&task, &agent);
    assert_eq!(parent["status"], "completed", "{parent}");
    assert_eq!(parent["progress"], 100);
    let child = agents.iter().find(|a| a["id"] != agent.as_str()).unwrap();
    assert_eq!(child["parent"], agent.as_str());
    assert_eq!(child["depth"], 2);
    assert_eq!(child["status"], "completed", "{child}");
    // The child really ran: the model answered it to the end.
    let child_turns = c.model.conversation("LOOP-child");
    assert_eq!(child_turns.len(), 3, "{child_turns:?}");

    let archive = f.root().join(&task).join("archive");
    let progress = fs_err::read_to_string(archive.join(format!("{agent}_progress.jsonl"))).unwrap();
    let statuses: Vec<String> = events(&progress)
        .iter()
        .map(|l| format!("{} {}", l["status"].as_str().unwrap(), l["progress"]))
        .collect();
    assert_eq!(statuses, ["working 50", "completed 100"]);
    let findings = fs_err::read_to_string(archive.join(format!("{agent}_findings.jsonl"))).unwrap();
    let finding = &events(&findings)[0];
    assert_eq!(finding["message"], "an unlocked write");
    assert_eq!(finding["data"]["line"], 42);

    // What Claude Code itself said at its end is what fleet recorded.
    let result = result_event(&stream_log(&f, &task, &agent));
    assert_eq!(result["result"], "finished: the registry race is fixed");
    let a = &parent["fleet_activity"];
    assert_eq!(a["result"], result["result"], "{a}");
    assert_eq!(a["turns"], result["num_turns"], "{a}");
    assert_eq!(a["cost_usd"], result["total_cost_usd"], "{a}");
    let u = &result["usage"];
    let input = u["input_tokens"].as_u64().unwrap()
        + u["cache_read_input_tokens"].as_u64().unwrap()
        + u["cache_creation_input_tokens"].as_u64().unwrap();
    assert_eq!(a["input_tokens"], input, "{a}");
    assert_eq!(a["output_tokens"], u["output_tokens"], "{a}");
    assert_eq!(a["state"], "finished", "{a}");

    // The same summary on every surface.
    let status = f.json(&["status", "--task", &task]);
    let shown = status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == agent.as_str())
        .cloned()
        .unwrap();
    assert_eq!(shown["activity"]["cost_usd"], result["total_cost_usd"]);
    assert_eq!(shown["activity"]["result"], result["result"]);
}

/// On the Postgres registry (a private server), a real Claude Code agent reports through its
/// own `fleet mcp`, which finds the database from a private file — never from Claude Code's
/// command line, where its MCP config travels: no process of the agent shows the password.
#[test]
fn a_claude_code_agent_reports_through_the_postgres_registry() {
    let server = testkit::postgres::PgServer::start();
    let url = server
        .new_database()
        .replace("fleet@", "fleet:pw-not-shown@");
    let f = Fleet::on_postgres(&url);
    let script = Script::new().conversation(
        "PG-worker",
        [
            Reply::with(|r| {
                let (agent, task) = identity(r);
                Reply::tool(
                    mcp("update_agent_progress"),
                    json!({"task_id": task, "agent_id": agent, "status": "working",
                           "message": "through postgres", "progress": 50}),
                )
            }),
            Reply::tool(
                "Bash",
                json!({"command": "sleep 1", "description": "think"}),
            ),
            Reply::text("reported"),
        ],
    );
    let c = Claude::start(&f, script);
    let task = f.task(&[]);
    let agent = deploy_live(&f, &c, &task, "PG-worker: report", &[]);
    wait_for("the agent's Bash turn", || {
        c.model.conversation("PG-worker").len() >= 2
    });
    for pid in common::tagged_where(|t| t == agent) {
        let cmdline = fs_err::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("pw-not-shown"),
            "the database password is on a command line"
        );
    }
    c.ok(&f, &["wait", "--task", &task, "--timeout", "90"]);
    let turns = c.model.conversation("PG-worker");
    let reported = turns[1].last_tool_json();
    assert_eq!(reported["success"], true, "{reported}");
    let status = status_of(&f, &c, &task, &agent);
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["activity"]["result"], "reported", "{status}");
}

/// `fleet deploy` of the default agent (Claude Code) told `prompt`, with `extra` arguments.
fn deploy_claude(f: &Fleet, c: &Claude, task: &str, prompt: &str, extra: &[&str]) -> Output {
    c.fleet(f, &deploy_args(task, prompt, extra))
        .output()
        .unwrap()
}

/// The arguments of `fleet deploy` of a `worker` told `prompt` into `task`, then `extra`.
fn deploy_args<'a>(task: &'a str, prompt: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "deploy", "--task", task, "--type", "worker", "--prompt", prompt,
    ];
    args.extend_from_slice(extra);
    args
}

/// [`deploy_claude`] that must go Live; the agent's id.
fn deploy_live(f: &Fleet, c: &Claude, task: &str, prompt: &str, extra: &[&str]) -> String {
    c.ok(f, &deploy_args(task, prompt, extra))
}

/// The agent `agent` as `fleet status --json` shows it.
fn status_of(f: &Fleet, c: &Claude, task: &str, agent: &str) -> Value {
    let out = c
        .fleet(f, &["--json", "status", "--task", task])
        .output()
        .unwrap();
    assert!(out.status.success(), "fleet status: {}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status[0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == agent)
        .cloned()
        .unwrap_or(Value::Null)
}

#[path = "claude/failures.rs"]
mod failures;
#[path = "claude/resume.rs"]
mod resume;

/// The real Claude Code, through `fleet mcp` on host-a, deploys an agent on host-b: host-b's
/// own fleet, reached over a real sshd, starts there the real Claude Code (host-b's default
/// agent command), which reports its end through its own `fleet mcp` into the shared Postgres
/// registry; host-a sees it completed, on host-b.
#[test]
fn claude_code_deploys_an_agent_on_another_host_over_ssh() {
    let mut t = common::hosts::Two::new();
    let script = Script::new()
        .conversation(
            "CONDUCTOR-remote",
            [
                Reply::tool(
                    mcp("create_real_task"),
                    json!({"description": "across hosts"}),
                ),
                Reply::with(|r| {
                    Reply::tool(
                        mcp("deploy_headless_agent"),
                        json!({"task_id": r.last_tool_json()["task_id"], "agent_type": "remote",
                               "prompt": "REMOTE-worker: report from b", "host": "host-b"}),
                    )
                }),
                Reply::with(|r| {
                    Reply::tool(
                        mcp("deploy_batch"),
                        json!({"task_id": r.tool_json(0)["task_id"], "host": "host-b",
                        "members": [
                            {"agent_type": "solver", "prompt": "REMOTE-one: solve it"},
                            {"agent_type": "solver", "prompt": "REMOTE-two: solve it"},
                        ]}),
                    )
                }),
                Reply::text("deployed on b"),
            ],
        )
        .conversation("REMOTE-one", [Reply::text("solved on b one way")])
        .conversation("REMOTE-two", [Reply::text("solved on b another way")])
        .conversation(
            "REMOTE-worker",
            [
                Reply::with(|r| {
                    let (agent, task) = identity(r);
                    Reply::tool(
                        mcp("update_agent_progress"),
                        json!({"task_id": task, "agent_id": agent, "status": "completed",
                               "message": "done on b", "progress": 100}),
                    )
                }),
                Reply::text("done on b"),
                // Its continuation, asked from host-a, runs on host-b too.
                Reply::text("resumed on b, I remember"),
            ],
        );
    let c = Claude::start(&t.a, script);
    // Host b's sessions run Claude Code against the same model, with a home of b's own.
    let home = Utf8PathBuf::from_path_buf(t.b.dir.path().join("home")).unwrap();
    let mut env = c.env_for_host(&home);
    env.push(("TMUX_TMPDIR".into(), t.b.tmux_tmpdir().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    t.sshd.restart_with(&env);

    let (out, _) = conductor(&t.a, &c, "CONDUCTOR-remote: deploy on b");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "claude: {}\n{stdout}", stderr(&out));
    let shown = c.model.conversation("CONDUCTOR-remote");
    assert_eq!(shown.len(), 4, "four turns: {shown:?}");
    let deployed = shown[2].last_tool_json();
    assert_eq!(deployed["success"], true, "{deployed}");
    assert_eq!(deployed["host"], "host-b", "{deployed}");
    let task = deployed["task_id"].as_str().unwrap().to_owned();
    let agent = deployed["agent_id"].as_str().unwrap().to_owned();
    assert!(t.a.sessions().is_empty(), "nothing of it runs on host-a");

    wait_for("host-b's agent to report its end", || {
        t.a.entry(&task, &agent)["status"] == "completed"
    });
    let turns = c.model.conversation("REMOTE-worker");
    assert_eq!(identity(&turns[0]), (agent.clone(), task.clone()));
    let entry = t.a.entry(&task, &agent);
    assert_eq!(entry["fleet_host"], "host-b", "{entry}");
    // The batch on host-b: both members Live there, run by the real Claude Code, completed.
    let batch = shown[3].last_tool_json();
    assert_eq!(batch["success"], true, "{batch}");
    // A look from host-a asks host-b, whose fleet sees its members end and records them.
    c.ok(&t.a, &["wait", "--task", &task, "--timeout", "90"]);
    for (member, marker) in batch["agents"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["REMOTE-one", "REMOTE-two"])
    {
        assert_eq!(member["host"], "host-b", "{member}");
        let id = member["agent_id"].as_str().unwrap().to_owned();
        assert_eq!(t.a.entry(&task, &id)["status"], "completed");
        assert_eq!(t.a.entry(&task, &id)["fleet_batch"], batch["batch_id"]);
        assert_eq!(c.model.conversation(marker).len(), 1, "{marker} ran once");
    }
    // Continued from host-a: host-b's fleet resumes the conversation, on host-b.
    let next = c.ok(
        &t.a,
        &[
            "resume", "--task", &task, "--agent", &agent, "--prompt", "go on",
        ],
    );
    assert_ne!(next, agent);
    assert_eq!(t.a.entry(&task, &next)["fleet_host"], "host-b");
    c.ok(&t.a, &["wait", "--task", &task, "--timeout", "90"]);
    let turns = c.model.conversation("REMOTE-worker");
    assert_eq!(
        turns.len(),
        3,
        "the same conversation, continued: {turns:?}"
    );
    assert_eq!(t.a.entry(&task, &next)["status"], "completed");
    wait_for("host-b's sessions to end", || t.b.sessions().is_empty());
    assert!(common::tagged_where(|tag| tag == agent).is_empty());
}
