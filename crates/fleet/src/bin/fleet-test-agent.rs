//! A stand-in for Claude Code in fleet's tests — built only with `--features test-agent`, never
//! installed. Put on `PATH` as `claude`, it does what a Claude Code agent deployed by fleet does
//! with fleet's tools, without a model:
//!
//! - `--help` prints the lines of Claude Code 2.1.197's help that fleet reads (`--effort`,
//!   `--permission-mode`);
//! - otherwise it prints its argv as a stream-json event (its log), reads its prompt on stdin —
//!   its identity from fleet's preamble — and starts the MCP server its own `--mcp-config`
//!   names, as Claude Code does, speaking to it with rmcp's client;
//! - an assignment containing `LOOP` then runs the whole reporting loop: progress (working,
//!   50), a finding, a child spawned, progress (completed) — and waits to be ended; any other
//!   assignment waits.

#![allow(clippy::print_stdout)] // its stdout is its log

use std::io::Read;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};

const HELP: &str = "  --effort <level>                      Effort level for the current session
                                        (low, medium, high, xhigh, max)
  --permission-mode <mode>              Permission mode to use for the session
                                        (choices: \"acceptEdits\", \"auto\",
                                        \"bypassPermissions\", \"default\",
                                        \"dontAsk\", \"plan\")
";

/// One stream-json line on stdout (the agent's log).
fn event(value: &Value) {
    println!("{value}");
}

/// The word after `marker` in `text`, without trailing punctuation.
fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split_whitespace()
        .next()
        .map(|w| w.trim_end_matches([',', '.', ';', '"']))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help") {
        print!("{HELP}");
        return std::process::ExitCode::SUCCESS;
    }
    event(&json!({ "type": "system", "subtype": "init", "argv": args }));
    let mut prompt = String::new();
    if std::io::stdin().read_to_string(&mut prompt).is_err() {
        event(&json!({ "type": "result", "is_error": true, "result": "cannot read the prompt" }));
        return std::process::ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            event(&json!({ "type": "result", "is_error": true, "result": e.to_string() }));
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&args, &prompt)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            event(&json!({ "type": "result", "is_error": true, "result": e }));
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: &[String], prompt: &str) -> Result<(), String> {
    let config = args
        .iter()
        .find_map(|a| a.strip_prefix("--mcp-config="))
        .ok_or("no --mcp-config=")?;
    let config: Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
    let server = &config["mcpServers"]["fleet"];
    let command = server["command"].as_str().ok_or("no server command")?;
    let transport = TokioChildProcess::new(tokio::process::Command::new(command).configure(|c| {
        for a in server["args"].as_array().into_iter().flatten() {
            c.arg(a.as_str().unwrap_or_default());
        }
        for (k, v) in server["env"].as_object().into_iter().flatten() {
            c.env(k, v.as_str().unwrap_or_default());
        }
    }))
    .map_err(|e| e.to_string())?;
    let client = ().serve(transport).await.map_err(|e| e.to_string())?;
    let agent = word_after(prompt, "You are agent ").ok_or("no identity in the prompt")?;
    let task = word_after(prompt, "in task ").ok_or("no task in the prompt")?;
    if prompt.contains("LOOP") {
        let call = |tool: &'static str, args: Value| {
            let client = &client;
            async move {
                let params = CallToolRequestParams::new(tool)
                    .with_arguments(args.as_object().cloned().unwrap_or_default());
                let result = client.call_tool(params).await.map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&result).map_err(|e| e.to_string())?;
                event(&json!({ "type": "tool_result", "tool": tool, "result": v }));
                if v["isError"] == true {
                    return Err(format!("{tool} failed: {v}"));
                }
                Ok(v)
            }
        };
        call(
            "update_agent_progress",
            json!({ "task_id": task, "agent_id": agent, "status": "working",
                    "message": "half way", "progress": 50 }),
        )
        .await?;
        call(
            "report_agent_finding",
            json!({ "task_id": task, "agent_id": agent, "finding_type": "insight",
                    "severity": "high", "message": "the registry race is real",
                    "data": { "file": "registry.rs" } }),
        )
        .await?;
        call(
            "spawn_child_agent",
            json!({ "task_id": task, "parent_agent_id": agent, "child_agent_type": "child",
                    "child_prompt": "wait" }),
        )
        .await?;
        call(
            "update_agent_progress",
            json!({ "task_id": task, "agent_id": agent, "status": "completed",
                    "message": "done", "progress": 100 }),
        )
        .await?;
    }
    // Like Claude Code between turns: alive until ended.
    tokio::time::sleep(Duration::from_secs(300)).await;
    Ok(())
}
