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

use regex::Regex;
use scripted_model::{Reply, Request, Script};
use serde_json::{Value, json};

use common::claude::{self, Claude};
use common::{Fleet, stderr, wait_for};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

/// Every tool `fleet mcp` offers, as Claude Code names them.
const FLEET_TOOLS: [&str; 15] = [
    "create_real_task",
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

/// The registry entry of `agent`.
fn entry(f: &Fleet, task: &str, agent: &str) -> Value {
    f.task_registry(task)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent)
        .cloned()
        .unwrap_or(Value::Null)
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
    let e = entry(&f, &task, &agent);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["fleet_activity"]["result"], "looked around", "{e}");
}

/// Where the agent loop's ids are kept between turns.
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
    let agent = c.ok(
        &f,
        &[
            "deploy",
            "--task",
            &task,
            "--type",
            "worker",
            "--prompt",
            "LOOP-parent: fix the race",
        ],
    );
    c.ok(&f, &["wait", "--task", &task, "--timeout", "90"]);
    wait_for("both agents' sessions to be gone", || {
        f.sessions().is_empty()
    });

    let registry = f.task_registry(&task);
    let agents = registry["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{registry}");
    let parent = entry(&f, &task, &agent);
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

/// `fleet deploy` of the default agent (Claude Code) told `prompt`, with `extra` arguments.
fn deploy_claude(f: &Fleet, c: &Claude, task: &str, prompt: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "deploy", "--task", task, "--type", "worker", "--prompt", prompt,
    ];
    args.extend_from_slice(extra);
    c.fleet(f, &args).output().unwrap()
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

/// While Claude Code retries a failing model API (529), every surface says `retrying` and what
/// failed — `fleet status` (JSON and text) and MCP's `get_real_task_status`, read by a real
/// Claude Code — and a kill leaves nothing running.
#[test]
fn an_agent_whose_model_api_fails_shows_retrying_everywhere() {
    let f = Fleet::new();
    let script = Script::new()
        .conversation(
            "RETRY-agent",
            [Reply::error(529, "overloaded_error", "Overloaded")],
        )
        .conversation(
            "CONDUCTOR-retry",
            [
                Reply::with(|r| {
                    let text = r.first_user_text();
                    let task = text
                        .split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_owned();
                    Reply::tool(mcp("get_real_task_status"), json!({"task_id": task}))
                }),
                Reply::text("seen"),
            ],
        );
    let c = Claude::start(&f, script);
    let task = f.task(&[]);
    let out = deploy_claude(
        &f,
        &c,
        &task,
        "RETRY-agent: work",
        &["--startup-grace-ms", "200"],
    );
    assert!(out.status.success(), "fleet deploy: {}", stderr(&out));
    let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    wait_for("the agent to say it retries", || {
        status_of(&f, &c, &task, &agent)["activity"]["state"] == "retrying"
    });
    let retry = &status_of(&f, &c, &task, &agent)["activity"]["retry"];
    assert_eq!(retry["error_status"], 529, "{retry}");
    assert_eq!(retry["error"], "overloaded", "{retry}");
    assert_eq!(retry["max_retries"], 10, "{retry}");
    assert!(retry["attempt"].as_u64().unwrap() >= 1, "{retry}");
    let text = c.fleet(&f, &["status", "--task", &task]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("retrying"), "{text}");
    assert!(
        text.contains("model API error 529 overloaded: retry"),
        "{text}"
    );

    let (out, _) = conductor(&f, &c, &format!("CONDUCTOR-retry: look at {task}"));
    assert!(out.status.success(), "claude: {}", stderr(&out));
    let shown = c.model.conversation("CONDUCTOR-retry");
    let status = shown.last().unwrap().last_tool_json();
    let listed = &status["agents"]["agents_list"][0];
    assert_eq!(listed["activity"]["state"], "retrying", "{status}");
    assert_eq!(listed["activity"]["retry"]["error_status"], 529, "{status}");

    c.ok(&f, &["kill", "--task", &task, "--agent", &agent]);
    assert!(
        common::tagged_where(|t| t == agent).is_empty(),
        "a process survived"
    );
    assert!(f.sessions().is_empty());
}

/// A model API error Claude Code does not retry fails the deployment (or, past its startup
/// grace, the agent) with the API's message, on one line, and nothing is left running.
#[test]
fn a_model_api_error_fails_with_the_apis_message() {
    let f = Fleet::new();
    let message = "model: claude-nope is not available to this key";
    let script = Script::new().conversation(
        "APIFAIL-agent",
        [Reply::error(400, "invalid_request_error", message)],
    );
    let c = Claude::start(&f, script);
    let task = f.task(&[]);
    let before = f.files();
    let out = deploy_claude(
        &f,
        &c,
        &task,
        "APIFAIL-agent: work",
        &["--startup-grace-ms", "8000"],
    );
    let err = stderr(&out);
    if out.status.success() {
        // A slow start outlived the grace: the agent ends in error, with the message.
        let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let _ = c
            .fleet(&f, &["wait", "--task", &task, "--timeout", "60"])
            .output();
        let e = entry(&f, &task, &agent);
        assert_eq!(e["status"], "error", "{e}");
        assert!(
            e["fleet_activity"]["result"]
                .as_str()
                .unwrap()
                .contains(message),
            "{e}"
        );
    } else {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(&format!("API Error: 400 {message}")), "{err}");
        assert_eq!(f.files(), before, "nothing left");
    }
    assert!(f.sessions().is_empty(), "{:?}", f.sessions());
    let left = testkit::procs::running().into_iter().filter(|pid| {
        testkit::procs::env_var(*pid, "FLEET_AGENT_ID").is_some()
            && testkit::procs::env_var(*pid, "ANTHROPIC_BASE_URL").as_deref() == Some(c.model.url())
    });
    assert_eq!(left.count(), 0, "an agent process is left");
}

/// As root, Claude Code refuses bypassPermissions without `IS_SANDBOX=1`: fleet refuses such
/// a deployment before it makes anything, naming the two ways out. (Not as root, it deploys.)
#[test]
fn bypass_permissions_as_root_without_a_sandbox_is_refused_up_front() {
    let f = Fleet::new();
    let c = Claude::start(
        &f,
        Script::new().conversation(
            "ROOT-agent",
            [Reply::tool("Bash", json!({"command": "sleep 5"}))],
        ),
    );
    let task = f.task(&[]);
    let before = f.files();
    let mut cmd = c.fleet(
        &f,
        &[
            "deploy",
            "--task",
            &task,
            "--type",
            "worker",
            "--prompt",
            "ROOT-agent: hi",
        ],
    );
    cmd.env_remove("IS_SANDBOX");
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    if rustix::process::geteuid().is_root() {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("IS_SANDBOX=1") && err.contains("--permission-mode"),
            "{err}"
        );
        assert_eq!(f.files(), before, "nothing made");
        assert!(f.sessions().is_empty());
        assert!(
            c.model.conversation("ROOT-agent").is_empty(),
            "the agent never ran"
        );
    } else {
        assert!(out.status.success(), "not root: deployed: {err}");
    }
}

/// `fleet resume` continues the same conversation — the model is shown the earlier turns —
/// with the ended agent's own command line (its model) plus `--resume`, although its worktree
/// was removed at its end: the continuation gets a worktree from the agent's branch, and
/// Claude Code finds the conversation there. A second continuation while one runs is refused,
/// naming it.
#[test]
fn resume_continues_the_conversation_of_an_agent_whose_worktree_is_gone() {
    let f = Fleet::new();
    let commit = "echo one > one.txt && git add one.txt && git -c user.name=a -c user.email=a@a commit -qm one";
    let script = Script::new().conversation(
        "RESUME-first",
        [
            Reply::tool("Bash", json!({"command": commit, "description": "commit"})),
            Reply::after(Duration::from_millis(500), Reply::text("first done")),
            // The continuation takes its time: a second one is tried meanwhile.
            Reply::after(Duration::from_secs(3), Reply::text("resumed, I remember")),
        ],
    );
    let c = Claude::start(&f, script);
    let task = f.task(&[]);
    let repo = testkit::git::repo_at(
        &camino::Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap(),
    );
    let bin = claude::bin();
    let first = c.ok(
        &f,
        &[
            "deploy",
            "--task",
            &task,
            "--type",
            "worker",
            "--prompt",
            "RESUME-first: commit",
            "--startup-grace-ms",
            "100",
            "--worktree",
            "--repo",
            repo.as_str(),
            "--",
            bin.as_str(),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "haiku",
        ],
    );
    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let e = entry(&f, &task, &first);
    assert_eq!(e["fleet_worktree"]["state"], "branch-only", "{e}");
    assert!(!f.root().join(&task).join("worktrees").join(&first).exists());

    let second = c.ok(
        &f,
        &[
            "resume", "--task", &task, "--agent", &first, "--prompt", "go on",
        ],
    );
    assert_ne!(second, first);

    // One continuation at a time.
    let again = c
        .fleet(
            &f,
            &[
                "resume", "--task", &task, "--agent", &first, "--prompt", "twice",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("agent {second} already continues agent {first}")),
        "{err}"
    );

    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let shown = c.model.conversation("RESUME-first");
    let last = shown.last().unwrap();
    assert_eq!(last.turn(), 2, "the earlier turns are in its history");
    let history = last.history_text();
    assert!(
        history.contains("first done") && history.contains("go on"),
        "{history}"
    );
    assert!(
        last.model().contains("haiku"),
        "its own --model: {}",
        last.model()
    );
    let e = entry(&f, &task, &second);
    assert_eq!(e["status"], "completed", "{e}");
    assert_eq!(e["fleet_activity"]["result"], "resumed, I remember", "{e}");
    // It continued from the ended agent's commits: its checkout was branched from them.
    let w = &e["fleet_worktree"];
    assert_eq!(w["base_ref"], format!("fleet/{first}").as_str(), "{e}");
    let tip = testkit::git::git(&repo, &["rev-parse", &format!("fleet/{first}")]);
    assert_eq!(w["base"].as_str().unwrap(), tip.trim(), "{e}");
}

/// A resume Claude Code itself refuses fails the deployment quoting what it wrote on stderr,
/// not only its `error_during_execution` result: here its transcript was deleted.
#[test]
fn a_failed_resume_quotes_claude_codes_own_words() {
    let f = Fleet::new();
    let c = Claude::start(
        &f,
        Script::new().conversation(
            "GONE-first",
            [Reply::after(
                Duration::from_millis(500),
                Reply::text("done"),
            )],
        ),
    );
    let task = f.task(&[]);
    let out = deploy_claude(
        &f,
        &c,
        &task,
        "GONE-first: hi",
        &["--startup-grace-ms", "100"],
    );
    assert!(out.status.success(), "fleet deploy: {}", stderr(&out));
    let agent = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    c.ok(&f, &["wait", "--task", &task, "--timeout", "60"]);
    let session = entry(&f, &task, &agent)["fleet_activity"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for project in fs_err::read_dir(c.home().join(".claude/projects")).unwrap() {
        let _ = fs_err::remove_file(project.unwrap().path().join(format!("{session}.jsonl")));
    }
    let out = c
        .fleet(
            &f,
            &[
                "resume",
                "--task",
                &task,
                "--agent",
                &agent,
                "--prompt",
                "again",
                // Generous: Claude Code refuses within a second, and the deployment fails then.
                "--startup-grace-ms",
                "20000",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No conversation found with session ID"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
