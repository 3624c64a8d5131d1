//! Beside the Python server (its agents, the coexistence setting), and the same view as the CLI.

use serde_json::{Value, json};

use super::*;

/// Through MCP too: the Python server's agent is seen alive where it runs and killed with its
/// process tree; in the coexistence setting (`FLEET_TMUX_SOCKET=default`) fleet's own agent is
/// seen alive by the Python server's check, `tmux has-session`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_deployed_agents_and_the_coexistence_setting() {
    use common::python::{
        AGENT, TASK, has_session, process_tree, python_session, python_workspace,
    };
    let f = Fleet::new();
    python_workspace(&f);
    let session = format!("agent_{AGENT}");
    python_session(&f, &session);
    python_session(&f, "user-work");
    let tree = process_tree(&f, &session);
    let client = connect_env(&f, None, &[("FLEET_TMUX_SOCKET", "default")]).await;

    let status = ok(&client, "get_real_task_status", json!({ "task_id": TASK })).await;
    let listed = status["agents"]["agents_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == AGENT)
        .unwrap()
        .clone();
    assert_eq!(listed["liveness"], "alive", "{status}");
    let killed = ok(
        &client,
        "kill_real_agent",
        json!({ "task_id": TASK, "agent_id": AGENT }),
    )
    .await;
    assert_eq!(killed["session_killed"], true, "{killed}");
    let pids: Vec<u64> = killed["cleanup"]["killed_processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(
        tree.iter().all(|p| pids.contains(&u64::from(*p))),
        "{tree:?} in {pids:?}"
    );
    assert!(!has_session(&f, &session));
    assert!(has_session(&f, "user-work"), "no other session is touched");

    let task = new_task(&client, "both").await;
    let deployed = ok(
        &client,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "a", "prompt": "p" }),
    )
    .await;
    let ours = deployed["tmux_session"].as_str().unwrap();
    assert!(
        f.default_tmux(&["has-session", "-t", ours])
            .status
            .success(),
        "the Python server's check sees fleet's agent"
    );
    client.cancel().await.unwrap();
}

/// `get_real_task_status` carries the same `activity` per agent as `fleet status --json`, and
/// the task's totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_the_cli_show_the_same_activity() {
    let f = Fleet::new();
    let fixture = format!(
        "{}/../activity/tests/fixtures/claude_success_with_tools.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let command = format!("sh -c 'cat {fixture}; sleep 60'");
    let client = connect_env(&f, None, &[("FLEET_AGENT_CMD", &command)]).await;
    let task = new_task(&client, "d").await;
    ok(
        &client,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "a", "prompt": "p" }),
    )
    .await;
    let mut status = Value::Null;
    for _ in 0..100 {
        status = ok(&client, "get_real_task_status", json!({ "task_id": task })).await;
        if status["agents"]["agents_list"][0]["activity"]["state"] == "finished" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let from_mcp = &status["agents"]["agents_list"][0]["activity"];
    assert_eq!(from_mcp["state"], "finished", "{status}");
    let cli = f.json(&["status", "--task", &task]);
    assert_eq!(&cli[0]["agents"][0]["activity"], from_mcp);
    assert_eq!(status["totals"], cli[0]["totals"]);
    assert_eq!(status["totals"]["cost_usd"], 0.04215);
    client.cancel().await.unwrap();
}
