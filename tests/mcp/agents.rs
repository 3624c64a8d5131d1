//! Claude Code agents: model and effort on their command line; the server wired into an agent
//! acts for that agent only.

use serde_json::json;

use super::*;

/// A stand-in for Claude Code on `PATH`: `--help` prints the `--effort` entry of Claude Code
/// 2.1.197's help (or none, with `effort` false); a run writes its argv to `argv` and waits.
fn fake_claude(dir: &camino::Utf8Path, effort: bool) -> camino::Utf8PathBuf {
    let bin = dir.join(if effort { "bin" } else { "old-bin" });
    fs_err::create_dir_all(&bin).unwrap();
    let help = if effort {
        "  --effort <level>                      Effort level for the current session\\n                                        (low, medium, high, xhigh, max)\\n"
    } else {
        "  --model <model>  Model for the current session\\n"
    };
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --help ]; then printf '{help}'; exit 0; fi\nprintf '%s\\n' \"$@\" > {}\nexec sleep 60\n",
        dir.join("argv")
    );
    let path = bin.join("claude");
    fs_err::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `model` and `effort` reach Claude Code's argv; an effort the installed CLI does not take, or
/// a model for an agent that is not Claude Code, is refused before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_effort_reach_claude_code() {
    let f = Fleet::new();
    let dir = camino::Utf8PathBuf::from_path_buf(f.dir.path().to_owned()).unwrap();
    let path = |bin: &camino::Utf8Path| format!("{bin}:{}", std::env::var("PATH").unwrap());
    let claude = [("FLEET_AGENT_CMD", "claude --print")];
    let client = connect_env(&f, Some(&path(&fake_claude(&dir, true))), &claude).await;
    let task = new_task(&client, "d").await;
    let d = ok(
        &client,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "a", "prompt": "p",
                "model": "sonnet", "effort": "high" }),
    )
    .await;
    let agent = d["agent_id"].as_str().unwrap().to_owned();
    common::wait_for("the agent's argv", || dir.join("argv").exists());
    let argv = fs_err::read_to_string(dir.join("argv")).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(
        argv[..4],
        [
            "--print",
            "--model=sonnet",
            "--effort=high",
            "--permission-mode=bypassPermissions"
        ]
    );
    assert!(argv[4].starts_with("--mcp-config="), "{argv:?}");
    let spawned = ok(
        &client,
        "spawn_child_agent",
        json!({ "task_id": task, "parent_agent_id": agent, "child_agent_type": "b",
                "child_prompt": "p", "model": "opus" }),
    )
    .await;
    assert_eq!(spawned["depth"], 2);
    let before = f.files();
    let sessions = f.sessions();
    refused(
        &client,
        &task,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "c", "prompt": "p", "effort": "ultra" }),
        "effort \"ultra\" is not one the installed Claude Code takes: low, medium, high, xhigh, max",
    )
    .await;
    client.cancel().await.unwrap();

    let old = connect_env(&f, Some(&path(&fake_claude(&dir, false))), &claude).await;
    refused(
        &old,
        &task,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "c", "prompt": "p", "effort": "high" }),
        "has no --effort option",
    )
    .await;
    old.cancel().await.unwrap();
    // The test's default agent command is not Claude Code.
    let other = connect(&f).await;
    refused(
        &other,
        &task,
        "spawn_child_agent",
        json!({ "task_id": task, "parent_agent_id": agent, "child_agent_type": "c",
                "child_prompt": "p", "model": "sonnet" }),
        "--model \"sonnet\" is for Claude Code, but the agent command runs \"sh\"",
    )
    .await;
    other.cancel().await.unwrap();
    assert_eq!(f.files(), before, "nothing was created by a refused deploy");
    assert_eq!(f.sessions(), sessions);
}

/// A `fleet mcp` wired into an agent acts for that agent only: a report for another agent, or a
/// spawn under another parent, is refused naming both ids; its own are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_server_refuses_to_act_for_another_agent() {
    let f = Fleet::new();
    let conductor = connect(&f).await;
    let task = new_task(&conductor, "d").await;
    let mut ids = Vec::new();
    for ty in ["a", "b"] {
        let d = ok(
            &conductor,
            "deploy_headless_agent",
            json!({ "task_id": task, "agent_type": ty, "prompt": "p" }),
        )
        .await;
        ids.push(d["agent_id"].as_str().unwrap().to_owned());
    }
    let (me, other) = (ids[0].as_str(), ids[1].as_str());
    let agents_server = connect_env(
        &f,
        None,
        &[("FLEET_AGENT_ID", me), ("FLEET_TASK_ID", &task)],
    )
    .await;
    let refusal = format!("this server acts for agent {me} of task {task}");
    for (tool, args) in [
        (
            "update_agent_progress",
            json!({ "task_id": task, "agent_id": other, "status": "working", "message": "m" }),
        ),
        (
            "report_agent_finding",
            json!({ "task_id": task, "agent_id": other, "finding_type": "issue",
                    "severity": "low", "message": "m" }),
        ),
        (
            "spawn_child_agent",
            json!({ "task_id": task, "parent_agent_id": other, "child_agent_type": "c",
                    "child_prompt": "p" }),
        ),
        (
            "deploy_headless_agent",
            json!({ "task_id": task, "agent_type": "c", "prompt": "p" }),
        ),
    ] {
        let (is_error, body) = call(&agents_server, tool, args).await;
        assert!(is_error, "{tool}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(&refusal), "{tool}: {msg}");
        assert!(
            msg.contains(other) || msg.contains("orchestrator"),
            "{tool}: {msg}"
        );
    }
    let own = ok(
        &agents_server,
        "update_agent_progress",
        json!({ "task_id": task, "agent_id": me, "status": "working", "message": "mine",
                "progress": 10 }),
    )
    .await;
    assert_eq!(own["own_update"]["agent_id"], me);
    let child = ok(
        &agents_server,
        "spawn_child_agent",
        json!({ "task_id": task, "parent_agent_id": me, "child_agent_type": "c",
                "child_prompt": "p" }),
    )
    .await;
    assert_eq!(child["depth"], 2);
    // Issue 29: it kills only its own agent and its descendants — never another's.
    let (is_error, body) = call(
        &agents_server,
        "kill_real_agent",
        json!({ "task_id": task, "agent_id": other }),
    )
    .await;
    assert!(is_error, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains(&refusal) && msg.contains(other), "{msg}");
    assert!(
        f.sessions().contains(&format!("agent_{other}")),
        "the other lives"
    );
    let killed = ok(
        &agents_server,
        "kill_real_agent",
        json!({ "task_id": task, "agent_id": child["agent_id"] }),
    )
    .await;
    assert_eq!(killed["success"], true, "its descendant: {killed}");
    agents_server.cancel().await.unwrap();
    conductor.cancel().await.unwrap();
}

/// `deploy_headless_agent` and `spawn_child_agent` take `worktree`, `repo` and `base_ref`: the
/// agent runs in its own checkout, which the result names; its options alone are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_deployed_through_mcp_get_their_own_worktree() {
    let f = Fleet::new();
    let repo = testkit::git::repo_at(
        &camino::Utf8PathBuf::from_path_buf(f.dir.path().join("repo")).unwrap(),
    );
    testkit::git::git(&repo, &["branch", "release"]);
    let client = connect(&f).await;
    let task = new_task(&client, "worktrees").await;
    let deployed = ok(
        &client,
        "deploy_headless_agent",
        json!({
            "task_id": task, "agent_type": "builder", "prompt": "Build it.",
            "worktree": true, "repo": repo.as_str(), "base_ref": "release",
        }),
    )
    .await;
    let agent = deployed["agent_id"].as_str().unwrap().to_owned();
    let w = &deployed["worktree"];
    assert_eq!(w["branch"], format!("fleet/{agent}"), "{deployed}");
    assert_eq!(w["base_ref"], "release");
    assert_eq!(w["state"], "active");
    assert!(
        camino::Utf8Path::new(w["path"].as_str().unwrap())
            .join("README")
            .exists()
    );
    let child = ok(
        &client,
        "spawn_child_agent",
        json!({
            "task_id": task, "parent_agent_id": agent, "child_agent_type": "tester",
            "child_prompt": "Test it.", "worktree": true, "repo": repo.as_str(),
        }),
    )
    .await;
    assert_eq!(child["worktree"]["base_ref"], "HEAD", "{child}");
    assert_eq!(testkit::git::fleet_branches(&repo).len(), 2);
    refused(
        &client,
        &task,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "x", "prompt": "p", "repo": repo.as_str() }),
        "go with worktree: true",
    )
    .await;
    refused(
        &client,
        &task,
        "deploy_headless_agent",
        json!({
            "task_id": task, "agent_type": "y", "prompt": "p", "worktree": true,
            "repo": repo.as_str(), "base_ref": "nope",
        }),
        "base ref \"nope\" does not name a commit",
    )
    .await;
    assert_eq!(testkit::git::fleet_branches(&repo).len(), 2);
    client.cancel().await.unwrap();
}
