//! `fleet mcp` driven by rmcp's own client over stdio, as Claude Code would drive it. This file
//! holds the client helpers — every answer is checked against the output schema its tool
//! declares — and one module per concern: the Python server's tools and their errors
//! (`mcp/tools.rs`), Claude Code agents and their servers (`mcp/agents.rs`), living beside the
//! Python server and seeing the same as the CLI (`mcp/beside.rs`).

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};

use common::{Fleet, agent_sh};

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");

type Client = RunningService<RoleClient, ()>;

async fn connect(f: &Fleet) -> Client {
    connect_with(f, None).await
}

/// Connects to a `fleet mcp` of `f`'s root and socket, with `PATH` replaced if given.
async fn connect_with(f: &Fleet, path: Option<&str>) -> Client {
    connect_env(f, path, &[]).await
}

/// Connects as [`connect_with`], with more environment for the server.
async fn connect_env(f: &Fleet, path: Option<&str>, env: &[(&str, &str)]) -> Client {
    // The test's own settings (its Postgres database), then the caller's.
    let env: Vec<(String, String)> = f
        .settings
        .iter()
        .cloned()
        .chain(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .collect();
    let root = f.root();
    let socket = f.socket.clone();
    let tmux_tmpdir = f.tmux_tmpdir();
    let transport = TokioChildProcess::new(tokio::process::Command::new(FLEET).configure(|c| {
        c.arg("mcp")
            .env("TMUX_TMPDIR", tmux_tmpdir.as_str())
            .env_remove("TMUX")
            .env("FLEET_ROOT", root.as_str())
            .env("FLEET_TMUX_SOCKET", &socket)
            .env("FLEET_AGENT_CMD", format!("sh {}", agent_sh()))
            .env("FLEET_STARTUP_GRACE_MS", "150")
            .env("FLEET_DEMO_SECONDS", "60")
            .env_remove("FLEET_AGENT_ID")
            .env("IS_SANDBOX", "1")
            .env_remove("CLAUDE_ORCHESTRATOR_WORKSPACE");
        match std::env::var(common::TEST_REGISTRY) {
            Ok(kind) if !kind.is_empty() => c.env("FLEET_REGISTRY", kind),
            _ => c.env_remove("FLEET_REGISTRY"),
        };
        if let Some(path) = path {
            c.env("PATH", path);
        }
        for (k, v) in &env {
            c.env(k, v);
        }
    }))
    .unwrap();
    ().serve(transport).await.unwrap()
}

/// Calls a tool; returns (is_error, the JSON it answered). Every answer, success or error,
/// carries the same JSON as text and as `structuredContent`; a success's validates against the
/// output schema the tool declares.
async fn call(client: &Client, tool: &'static str, args: Value) -> (bool, Value) {
    let params = CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone());
    let result = client.call_tool(params).await.unwrap();
    let v = serde_json::to_value(&result).unwrap();
    let text = v["content"][0]["text"].as_str().unwrap_or_default();
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("{tool}: not JSON: {text}"));
    assert_eq!(v["structuredContent"], body, "{tool}: structured = text");
    let is_error = v["isError"] == true;
    if !is_error {
        validate(client, tool, &body).await;
    }
    (is_error, body)
}

/// Checks `body` against the output schema `tool` declares (it must declare one).
async fn validate(client: &Client, tool: &str, body: &Value) {
    let tools = client.list_all_tools().await.unwrap();
    let declared = tools.iter().find(|t| t.name == tool).unwrap();
    let schema = Value::Object(
        declared
            .output_schema
            .as_deref()
            .unwrap_or_else(|| panic!("{tool} declares no output schema"))
            .clone(),
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{tool}: {errors:?}\n{body}");
}

async fn ok(client: &Client, tool: &'static str, args: Value) -> Value {
    let (is_error, body) = call(client, tool, args).await;
    assert!(!is_error, "{tool} failed: {body}");
    assert_eq!(body["success"], true, "{tool}: {body}");
    body
}

/// Creates a task with `description`; its id.
async fn new_task(client: &Client, description: &str) -> String {
    let created = ok(
        client,
        "create_real_task",
        json!({ "description": description }),
    )
    .await;
    created["task_id"].as_str().unwrap().to_owned()
}

async fn refused(client: &Client, healthy: &str, tool: &'static str, args: Value, needle: &str) {
    let (is_error, body) = call(client, tool, args).await;
    assert!(is_error, "{tool} should fail: {body}");
    assert_eq!(body["success"], false);
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    assert!(!msg.contains('\n'), "one line: {msg:?}");
    // The server is still there.
    let still = call(
        client,
        "get_real_task_status",
        json!({ "task_id": healthy }),
    )
    .await;
    assert!(
        !still.0,
        "the server answers after {tool} failed: {}",
        still.1
    );
}

#[path = "mcp/agents.rs"]
mod agents;
#[path = "mcp/beside.rs"]
mod beside;
#[path = "mcp/tools.rs"]
mod tools;
