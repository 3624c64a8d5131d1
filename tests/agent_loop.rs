//! The orchestrator's whole loop without a model: a conductor deploys an agent; the agent —
//! `fleet-test-agent` standing in for Claude Code on `PATH` as `claude`, reading `--mcp-config`
//! from its own argv and speaking MCP to the server it names — reports progress and a finding,
//! spawns a child, and reports completed; fleet then shows it all, and the agent's session is
//! gone. On real tmux, with `--features test-agent` (`cargo xtask ci` runs it).

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use camino::Utf8PathBuf;
use serde_json::Value;

use common::{Fleet, stderr, tagged_where, wait_for};

const TEST_AGENT: &str = env!("CARGO_BIN_EXE_fleet-test-agent");

/// A directory holding `claude` → the test agent, first on `PATH`.
fn with_claude(f: &Fleet, c: &mut Command) {
    let bin = Utf8PathBuf::from_path_buf(f.dir.path().join("bin")).unwrap();
    if !bin.join("claude").exists() {
        fs_err::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(TEST_AGENT, bin.join("claude")).unwrap();
    }
    c.env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap()));
}

/// `fleet args` with the stand-in for Claude Code on `PATH` (the default agent command).
fn fleet(f: &Fleet, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = f.command(args);
    with_claude(f, &mut c);
    c.envs(env.iter().copied());
    c.output().unwrap()
}

fn ok(f: &Fleet, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = fleet(f, args, env);
    assert!(out.status.success(), "fleet {args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// `fleet deploy` of a worker told `prompt`, with startup grace `grace_ms` and `extra` flags.
fn try_deploy(
    f: &Fleet,
    task: &str,
    prompt: &str,
    grace_ms: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec![
        "deploy",
        "--task",
        task,
        "--type",
        "worker",
        "--prompt",
        prompt,
        "--startup-grace-ms",
        grace_ms,
    ];
    args.extend_from_slice(extra);
    fleet(f, &args, env)
}

/// [`try_deploy`] that must succeed; the agent's id.
fn deploy(f: &Fleet, task: &str, prompt: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    let out = try_deploy(f, task, prompt, "100", extra, env);
    assert!(out.status.success(), "fleet deploy: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The argv the agent was started with, from the first event of its log (in `logs/` or, once
/// it ended, `archive/`).
fn argv_of(f: &Fleet, task: &str, agent: &str) -> Vec<String> {
    let name = format!("{agent}_stream.jsonl");
    let mut first = String::new();
    wait_for("the agent's first event", || {
        first = ["logs", "archive"]
            .iter()
            .filter_map(|d| fs_err::read_to_string(f.root().join(task).join(d).join(&name)).ok())
            .next()
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_default();
        !first.is_empty()
    });
    let event: Value = serde_json::from_str(&first).unwrap();
    event["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter()
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
}

#[test]
fn an_agent_reports_spawns_a_child_and_completes_through_fleets_tools() {
    let f = Fleet::new();
    let task = f.task(&[]);
    // The stand-in waits to be ended after its final report, as a wedged agent would: fleet
    // ends it once the finish grace is over.
    let agent = deploy(
        &f,
        &task,
        "LOOP: report, find, spawn, finish",
        &[],
        &[("FLEET_FINISH_GRACE_MS", "300")],
    );

    wait_for("the agent's end to be recorded", || {
        f.entry(&task, &agent)["status"] == "completed"
    });
    let done = f.entry(&task, &agent);
    assert_eq!(done["progress"], 100, "{done}");
    assert!(done["completed_at"].is_string(), "{done}");
    let session = format!("agent_{agent}");
    wait_for("its session and its ender to be gone", || {
        let sessions = f.sessions();
        !sessions.contains(&session) && !sessions.contains(&format!("ended_{agent}"))
    });

    wait_for(
        "no process of the agent — its fleet mcp included — to be left",
        || tagged_where(|tag| tag == agent).is_empty(),
    );

    // Its progress and its finding, as the agent reported them (archived with its end).
    let archive = f.root().join(&task).join("archive");
    let progress = fs_err::read_to_string(archive.join(format!("{agent}_progress.jsonl"))).unwrap();
    let statuses: Vec<Value> = progress
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["status"].clone())
        .collect();
    assert_eq!(statuses, ["working", "completed"]);
    let findings = fs_err::read_to_string(archive.join(format!("{agent}_findings.jsonl"))).unwrap();
    assert!(findings.contains("the registry race is real"), "{findings}");

    // Its child: depth 2, the agent its parent, wired the same way with its own identity.
    let status: Value =
        serde_json::from_str(&ok(&f, &["--json", "status", "--task", &task], &[])).unwrap();
    let agents = status[0]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{status}");
    let child = agents
        .iter()
        .find(|a| a["agent_id"] != agent.as_str())
        .unwrap();
    assert_eq!(child["depth"], 2);
    assert_eq!(child["parent"], agent.as_str());
    assert_eq!(child["liveness"], "alive");
    let child_id = child["agent_id"].as_str().unwrap();
    let child_argv = argv_of(&f, &task, child_id);
    let config: Value = serde_json::from_str(flag(&child_argv, "--mcp-config").unwrap()).unwrap();
    assert_eq!(
        config["mcpServers"]["fleet"]["env"]["FLEET_AGENT_ID"],
        child_id
    );

    // The agent's own argv: fleet's server for this workspace, the tools pre-approved.
    let argv = argv_of(&f, &task, &agent);
    let config: Value = serde_json::from_str(flag(&argv, "--mcp-config").unwrap()).unwrap();
    let server = &config["mcpServers"]["fleet"];
    assert_eq!(server["args"], serde_json::json!(["mcp"]));
    assert!(
        Utf8PathBuf::from(server["command"].as_str().unwrap()).is_absolute(),
        "{server}"
    );
    assert_eq!(server["env"]["FLEET_ROOT"], f.root().as_str());
    assert_eq!(server["env"]["FLEET_TMUX_SOCKET"], f.socket.as_str());
    assert_eq!(server["env"]["FLEET_AGENT_ID"], agent.as_str());
    assert_eq!(server["env"]["FLEET_TASK_ID"], task.as_str());
    assert_eq!(
        flag(&argv, "--allowedTools"),
        Some(
            "mcp__fleet__update_agent_progress,mcp__fleet__report_agent_finding,mcp__fleet__spawn_child_agent,mcp__fleet__get_agent_output"
        )
    );
    assert_eq!(flag(&argv, "--permission-mode"), Some("bypassPermissions"));
    assert!(
        argv.iter().all(|a| !a.contains("LOOP")),
        "the prompt is never on the command line"
    );
}

#[test]
fn the_permission_mode_and_model_settings_reach_the_agents_argv() {
    let f = Fleet::new();
    let task = f.task(&[]);
    let settings = [
        ("FLEET_PERMISSION_MODE", "acceptEdits"),
        ("FLEET_MODEL", "sonnet"),
    ];
    let a = deploy(&f, &task, "wait", &[], &settings);
    let argv = argv_of(&f, &task, &a);
    assert_eq!(flag(&argv, "--permission-mode"), Some("acceptEdits"));
    assert_eq!(flag(&argv, "--model"), Some("sonnet"));

    let b = deploy(
        &f,
        &task,
        "wait",
        &[
            "--allow-duplicate",
            "--permission-mode",
            "plan",
            "--model",
            "opus",
        ],
        &settings,
    );
    let argv = argv_of(&f, &task, &b);
    assert_eq!(flag(&argv, "--permission-mode"), Some("plan"));
    assert_eq!(flag(&argv, "--model"), Some("opus"));

    let before = f.files();
    let out = try_deploy(
        &f,
        &task,
        "wait",
        "100",
        &["--allow-duplicate", "--permission-mode", "yolo"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("permission mode \"yolo\" is not one the installed Claude Code takes: acceptEdits, auto, bypassPermissions, default, dontAsk, plan"),
        "{err}"
    );
    assert_eq!(f.files(), before, "nothing left");

    // Without the preamble the agent does not know who it is — and says so as it dies.
    let out = try_deploy(
        &f,
        &task,
        "wait",
        "2000",
        &["--allow-duplicate", "--no-preamble"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no identity in the prompt"),
        "{}",
        stderr(&out)
    );
}
