//! The model API failing under a real Claude Code agent, and the root refusal.

use super::*;

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
    let agent = deploy_live(
        &f,
        &c,
        &task,
        "RETRY-agent: work",
        &["--startup-grace-ms", "200"],
    );
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
        let e = f.entry(&task, &agent);
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
    let mut cmd = c.fleet(&f, &deploy_args(&task, "ROOT-agent: hi", &[]));
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
