//! The Python server's tools, parameters and results; its errors as tool errors; its resources.

use serde_json::{Value, json};

use super::*;

/// Collects the paths in `schema` where a subschema is a boolean (JSON Schema allows `true` and
/// `false` as schemas; strict clients take objects only).
fn boolean_schemas(schema: &Value, at: &str, found: &mut Vec<String>) {
    let Some(object) = schema.as_object() else {
        if schema.is_boolean() {
            found.push(at.to_owned());
        }
        return;
    };
    for (key, value) in object {
        let here = format!("{at}/{key}");
        match key.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    boolean_schemas(sub, &format!("{here}/{name}"), found);
                }
            }
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "additionalItems"
            | "unevaluatedProperties" => boolean_schemas(value, &here, found),
            "anyOf" | "allOf" | "oneOf" | "prefixItems" => {
                for (i, sub) in value.as_array().into_iter().flatten().enumerate() {
                    boolean_schemas(sub, &format!("{here}/{i}"), found);
                }
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_servers_tools_over_stdio() {
    let f = Fleet::new();
    let client = connect(&f).await;

    let mut tools: Vec<Value> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
            })
        })
        .collect();
    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    // Claude Code's MCP client drops the whole list for one boolean schema (issue 24).
    for tool in &tools {
        for which in ["input_schema", "output_schema"] {
            let mut found = Vec::new();
            boolean_schemas(&tool[which], "", &mut found);
            assert!(
                found.is_empty(),
                "{}: {which}: boolean schemas at {found:?}",
                tool["name"]
            );
        }
    }
    insta::assert_json_snapshot!("tools", tools);

    let task = ok(
        &client,
        "create_real_task",
        json!({
            "description": "Fix the registry race",
            "priority": "P1",
            "max_concurrent": 3,
            "background_context": "Concurrent deploys lose agents.",
            "expected_deliverables": ["Patch", "Test"],
        }),
    )
    .await;
    assert_eq!(task["has_enhanced_context"], true);
    assert_eq!(task["expected_deliverables"], json!(["Patch", "Test"]));
    let task_id = task["task_id"].as_str().unwrap().to_owned();

    let deployed = ok(
        &client,
        "deploy_headless_agent",
        json!({
            "task_id": task_id, "agent_type": "investigator", "prompt": "Find every unlocked write."
        }),
    )
    .await;
    assert_eq!(deployed["status"], "deployed");
    assert_eq!(deployed["deployment_method"], "tmux session");
    let agent = deployed["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(f.sessions(), [format!("agent_{agent}")]);
    let prompt = fs_err::read_to_string(
        f.root()
            .join(&task_id)
            .join(format!("agent_prompt_{agent}.txt")),
    )
    .unwrap();
    assert!(
        prompt.starts_with(&format!(
            "You are agent {agent}, of type investigator, in task {task_id}"
        )),
        "{prompt}"
    );
    assert!(
        prompt.contains("depth 1 of at most 5") && prompt.contains("Find every unlocked write.")
    );
    assert!(
        prompt.contains("update_agent_progress")
            && prompt.contains("report_agent_finding")
            && prompt.contains("spawn_child_agent")
    );

    let progress = ok(&client, "update_agent_progress", json!({
        "task_id": task_id, "agent_id": agent, "status": "working", "message": "Scanning writes", "progress": 30
    }))
    .await;
    assert_eq!(progress["own_update"]["progress"], 30);
    assert_eq!(progress["coordination_info"]["agent_counts"]["active"], 1);
    let finding = ok(
        &client,
        "report_agent_finding",
        json!({
            "task_id": task_id, "agent_id": agent, "finding_type": "issue", "severity": "high",
            "message": "unlocked write", "data": { "file": "real_mcp_server.py", "line": 3290 }
        }),
    )
    .await;
    assert_eq!(
        finding["coordination_info"]["recent_findings"][0]["data"]["line"],
        3290
    );
    let lines = fs_err::read_to_string(
        f.root()
            .join(&task_id)
            .join(format!("findings/{agent}_findings.jsonl")),
    )
    .unwrap();
    assert_eq!(lines.lines().count(), 1);

    let status = ok(
        &client,
        "get_real_task_status",
        json!({ "task_id": task_id }),
    )
    .await;
    assert_eq!(status["agents"]["active"], 1);
    assert_eq!(status["agents"]["agents_list"][0]["status"], "working");
    assert_eq!(status["agents"]["agents_list"][0]["liveness"], "alive");
    assert_eq!(status["enhanced_progress"]["total_progress_entries"], 1);
    assert_eq!(status["enhanced_progress"]["total_findings"], 1);
    assert_eq!(status["limits"]["max_concurrent"], 3);

    common::wait_for("the agent's output", || {
        fs_err::read_to_string(
            f.root()
                .join(&task_id)
                .join(format!("logs/{agent}_stream.jsonl")),
        )
        .is_ok_and(|s| !s.is_empty())
    });
    let output = ok(
        &client,
        "get_agent_output",
        json!({ "task_id": task_id, "agent_id": agent, "tail": 5 }),
    )
    .await;
    assert!(
        output["output"]
            .as_str()
            .unwrap()
            .contains("\"type\":\"system\""),
        "{output}"
    );

    let child = ok(&client, "spawn_child_agent", json!({
        "task_id": task_id, "parent_agent_id": agent, "child_agent_type": "builder", "child_prompt": "Write the lock."
    }))
    .await;
    assert_eq!(child["depth"], 2);
    assert_eq!(child["parent"], agent.as_str());
    let child_id = child["agent_id"].as_str().unwrap().to_owned();

    let killed = ok(
        &client,
        "kill_real_agent",
        json!({ "task_id": task_id, "agent_id": child_id, "reason": "Superseded" }),
    )
    .await;
    assert_eq!(killed["status"], "terminated");
    assert_eq!(killed["session_killed"], true);
    assert_eq!(killed["cleanup"]["prompt_file_deleted"], true);

    // A final report ends the agent as the Python server did.
    let done = ok(&client, "update_agent_progress", json!({
        "task_id": task_id, "agent_id": agent, "status": "completed", "message": "Done", "progress": 100
    }))
    .await;
    assert_eq!(done["coordination_info"]["agent_counts"]["completed"], 1);
    assert_eq!(done["coordination_info"]["agent_counts"]["active"], 0);
    assert!(f.sessions().is_empty(), "{:?}", f.sessions());
    let archive = f.root().join(&task_id).join("archive");
    for name in [
        format!("{agent}_stream.jsonl"),
        format!("{agent}_progress.jsonl"),
        format!("{agent}_findings.jsonl"),
    ] {
        assert!(archive.join(&name).exists(), "{name} archived");
    }

    // Each bad input: a tool error with fleet's message, and the server goes on.
    refused(
        &client,
        &task_id,
        "get_real_task_status",
        json!({ "task_id": "TASK-NOPE" }),
        "unknown task TASK-NOPE",
    )
    .await;
    refused(
        &client,
        &task_id,
        "get_real_task_status",
        json!({ "task_id": "../x" }),
        "invalid task id \"../x\"",
    )
    .await;
    refused(
        &client,
        &task_id,
        "deploy_headless_agent",
        json!({ "task_id": task_id, "agent_type": "a;b", "prompt": "p" }),
        "invalid agent type",
    )
    .await;
    refused(
        &client,
        &task_id,
        "deploy_headless_agent",
        json!({ "task_id": task_id, "agent_type": "x", "prompt": "  " }),
        "the prompt is empty",
    )
    .await;
    refused(&client, &task_id, "spawn_child_agent", json!({
        "task_id": task_id, "parent_agent_id": "ghost", "child_agent_type": "x", "child_prompt": "p"
    }), "unknown parent agent ghost").await;
    refused(&client, &task_id, "update_agent_progress", json!({
        "task_id": task_id, "agent_id": agent, "status": "dancing", "message": "m", "progress": 1
    }), "unknown status").await;
    refused(
        &client,
        &task_id,
        "kill_real_agent",
        json!({ "task_id": task_id, "agent_id": "ghost" }),
        "unknown agent ghost",
    )
    .await;

    let limited = ok(
        &client,
        "create_real_task",
        json!({ "description": "one at a time", "max_concurrent": 1 }),
    )
    .await;
    let limited = limited["task_id"].as_str().unwrap().to_owned();
    ok(
        &client,
        "deploy_headless_agent",
        json!({ "task_id": limited, "agent_type": "a", "prompt": "p" }),
    )
    .await;
    refused(
        &client,
        &task_id,
        "deploy_headless_agent",
        json!({ "task_id": limited, "agent_type": "b", "prompt": "p" }),
        "limit max_concurrent = 1 reached",
    )
    .await;

    let registry = f.root().join(&limited).join("AGENT_REGISTRY.json");
    fs_err::write(&registry, b"{\"task_id\": ").unwrap();
    refused(
        &client,
        &task_id,
        "get_real_task_status",
        json!({ "task_id": limited }),
        "corrupt registry",
    )
    .await;
    refused(
        &client,
        &task_id,
        "deploy_headless_agent",
        json!({ "task_id": limited, "agent_type": "c", "prompt": "p" }),
        "line 1 column",
    )
    .await;
    assert_eq!(
        fs_err::read(&registry).unwrap(),
        b"{\"task_id\": ",
        "never overwritten"
    );

    // tmux not installed: the deployment fails at its session, rolled back, and says so; the
    // server goes on (asked with a tool that needs no tmux).
    let no_tmux = connect_with(&f, Some("/nonexistent")).await;
    let (is_error, body) = call(
        &no_tmux,
        "deploy_headless_agent",
        json!({ "task_id": task_id, "agent_type": "z", "prompt": "p" }),
    )
    .await;
    assert!(is_error, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cannot run tmux"),
        "{body}"
    );
    ok(
        &no_tmux,
        "get_agent_output",
        json!({ "task_id": task_id, "agent_id": agent }),
    )
    .await;
    no_tmux.cancel().await.unwrap();

    // reconcile repairs nothing over a registry it cannot read: it says which file, and why;
    // scoped to a healthy task, it works.
    refused(
        &client,
        &task_id,
        "reconcile",
        json!({ "dry_run": true }),
        "corrupt registry",
    )
    .await;
    let scoped = ok_any(
        &client,
        "reconcile",
        json!({ "task_id": task_id, "dry_run": true }),
    )
    .await;
    assert_eq!(scoped["dry_run"], true);
    client.cancel().await.unwrap();
}

/// A successful call whose answer has no `success` field (fleet's own tools).
async fn ok_any(client: &Client, tool: &'static str, args: Value) -> Value {
    let (is_error, body) = call(client, tool, args).await;
    assert!(!is_error, "{tool} failed: {body}");
    body
}

/// An argument a tool does not take (a typo, say) is refused naming it, as the Python server
/// did, rather than silently ignored; nothing is created; the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_argument_is_refused_naming_it() {
    let f = Fleet::new();
    let client = connect(&f).await;
    let task_id = new_task(&client, "d").await;
    let before = f.files();
    for (tool, args, name) in [
        (
            "deploy_headless_agent",
            json!({ "task_id": task_id, "agent_type": "a", "promt": "p" }),
            "promt",
        ),
        (
            "create_real_task",
            json!({ "description": "d", "max_agent": 3 }),
            "max_agent",
        ),
        (
            "get_real_task_status",
            json!({ "task_id": task_id, "verbose": true }),
            "verbose",
        ),
    ] {
        let params =
            CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone());
        let result = serde_json::to_value(client.call_tool(params).await.unwrap()).unwrap();
        assert_eq!(result["isError"], true, "{tool}: {result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains(&format!("unknown field `{name}`")),
            "{tool}: {text}"
        );
    }
    assert_eq!(f.files(), before);
    assert!(f.sessions().is_empty());
    ok(
        &client,
        "get_real_task_status",
        json!({ "task_id": task_id }),
    )
    .await;
    client.cancel().await.unwrap();
}

/// A deployment that fails is a tool error carrying its cleanup the way the Python server
/// described it (`cleanup_performed`, `resources_cleaned`) and fleet's per-resource report,
/// as text and as structured content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_carries_its_cleanup_report() {
    let f = Fleet::new();
    // The agent fails at once, inside its startup grace (as one without credentials does).
    let client = connect_env(
        &f,
        None,
        &[("FLEET_AGENT_CMD", "sh -c 'echo no credentials >&2; exit 3'")],
    )
    .await;
    let task_id = new_task(&client, "d").await;
    let params = CallToolRequestParams::new("deploy_headless_agent").with_arguments(
        json!({ "task_id": task_id, "agent_type": "a", "prompt": "p" })
            .as_object()
            .unwrap()
            .clone(),
    );
    let result = serde_json::to_value(client.call_tool(params).await.unwrap()).unwrap();
    assert_eq!(result["isError"], true, "{result}");
    let body = &result["structuredContent"];
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, body, "the text is the structured content");
    assert_eq!(body["success"], false);
    assert_eq!(body["step"], "confirm_live", "{body}");
    assert_eq!(body["cleanup_performed"], true);
    assert_eq!(body["cleanup_complete"], true);
    let cleaned: Vec<&str> = body["resources_cleaned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for resource in ["tmux_session", "prompt_file", "registry_entry", "intent"] {
        assert!(cleaned.contains(&resource), "{resource} in {cleaned:?}");
    }
    assert_eq!(body["cleanup"].as_array().unwrap().len(), 4, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{body}"
    );
    assert!(f.sessions().is_empty());
    client.cancel().await.unwrap();
}

/// `get_task_findings` reads back every finding of a task — also of an agent that ended, whose
/// files moved to `archive/` — filtered by agent, severity and type, the newest `limit` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_are_read_back_filtered() {
    let f = Fleet::new();
    let client = connect(&f).await;
    let task = new_task(&client, "d").await;
    let mut agents = Vec::new();
    for ty in ["investigator", "builder"] {
        let d = ok(
            &client,
            "deploy_headless_agent",
            json!({ "task_id": task, "agent_type": ty, "prompt": "p" }),
        )
        .await;
        agents.push(d["agent_id"].as_str().unwrap().to_owned());
    }
    for (agent, severity, kind, message) in [
        (&agents[0], "high", "issue", "first"),
        (&agents[1], "low", "insight", "second"),
        (&agents[0], "high", "solution", "third"),
    ] {
        ok(
            &client,
            "report_agent_finding",
            json!({ "task_id": task, "agent_id": agent, "finding_type": kind,
                    "severity": severity, "message": message }),
        )
        .await;
    }
    // The first agent ends: its findings move to archive/ and are still read.
    ok(
        &client,
        "kill_real_agent",
        json!({ "task_id": task, "agent_id": agents[0] }),
    )
    .await;
    let messages = |v: &Value| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = ok(&client, "get_task_findings", json!({ "task_id": task })).await;
    assert_eq!(all["total_findings"], 3);
    assert_eq!(messages(&all), ["first", "second", "third"]);
    let high = ok(
        &client,
        "get_task_findings",
        json!({ "task_id": task, "severity": "high" }),
    )
    .await;
    assert_eq!(messages(&high), ["first", "third"]);
    assert_eq!(high["matching"], 2);
    let newest = ok(
        &client,
        "get_task_findings",
        json!({ "task_id": task, "agent_id": agents[0], "limit": 1 }),
    )
    .await;
    assert_eq!(messages(&newest), ["third"]);
    assert_eq!(newest["matching"], 2);
    let insight = ok(
        &client,
        "get_task_findings",
        json!({ "task_id": task, "finding_type": "insight" }),
    )
    .await;
    assert_eq!(messages(&insight), ["second"]);
    refused(
        &client,
        &task,
        "get_task_findings",
        json!({ "task_id": "TASK-20260101-000000-00000000" }),
        "unknown task TASK-20260101-000000-00000000",
    )
    .await;
    client.cancel().await.unwrap();
}

/// The Python server's resources: `tasks://list`, and `task://{id}/status` — listed per task,
/// offered as a template, read as what `get_real_task_status` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_their_status_are_resources() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    let f = Fleet::new();
    let client = connect(&f).await;
    let task = new_task(&client, "resources").await;
    let deployed = ok(
        &client,
        "deploy_headless_agent",
        json!({ "task_id": task, "agent_type": "a", "prompt": "p" }),
    )
    .await;

    let uris: Vec<String> = client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(
        uris,
        ["tasks://list".to_owned(), format!("task://{task}/status")]
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert_eq!(templates[0].uri_template, "task://{task_id}/status");

    let read = |uri: String| {
        let client = &client;
        async move {
            let result = client
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .unwrap();
            match &result.contents[0] {
                ResourceContents::TextResourceContents {
                    text,
                    uri: at,
                    mime_type,
                    ..
                } => {
                    assert_eq!(at, &uri);
                    assert_eq!(mime_type.as_deref(), Some("application/json"));
                    serde_json::from_str::<Value>(text).unwrap()
                }
                other => panic!("{uri}: not text: {other:?}"),
            }
        }
    };
    let tasks = read("tasks://list".into()).await;
    assert_eq!(tasks["total_tasks"], 1);
    assert_eq!(tasks["tasks"][0]["task_id"], task.as_str());
    assert_eq!(tasks["tasks"][0]["active_count"], 1);
    let status = read(format!("task://{task}/status")).await;
    assert_eq!(status["agents"]["active"], 1);
    assert_eq!(
        status["agents"]["agents_list"][0]["id"],
        deployed["agent_id"]
    );
    assert_eq!(status["agents"]["agents_list"][0]["liveness"], "alive");
    let tool = ok(&client, "get_real_task_status", json!({ "task_id": task })).await;
    validate(&client, "get_real_task_status", &status).await;
    assert_eq!(
        status["agents"], tool["agents"],
        "the resource is the tool's answer"
    );

    for (uri, needle) in [
        (
            "task://TASK-20260101-000000-00000000/status".to_owned(),
            "unknown task",
        ),
        ("task://nope/status".to_owned(), "unknown task nope"),
        ("task://../x/status".to_owned(), "invalid task id \"../x\""),
        ("tasks://other".to_owned(), "no resource \"tasks://other\""),
    ] {
        let err = client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{uri}: {err}");
    }
    client.cancel().await.unwrap();
}

/// The newer Python server's model-named tools set the model: another one beside it is refused,
/// one line naming both, with nothing made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_named_tool_refuses_another_model() {
    let f = Fleet::new();
    let client = connect(&f).await;
    let task_id = new_task(&client, "d").await;
    let before = f.files();
    for (tool, args) in [
        (
            "deploy_opus_agent",
            json!({ "task_id": task_id, "agent_type": "a", "prompt": "p", "model": "haiku" }),
        ),
        (
            "spawn_sonnet_child_agent",
            json!({ "task_id": task_id, "parent_agent_id": "orchestrator",
                    "child_agent_type": "a", "child_prompt": "p", "model": "opus" }),
        ),
    ] {
        let wanted = if tool.contains("opus") {
            "opus"
        } else {
            "sonnet"
        };
        let asked = args["model"].as_str().unwrap().to_owned();
        refused(
            &client,
            &task_id,
            tool,
            args,
            &format!("this tool deploys model {wanted}: model {asked} is refused"),
        )
        .await;
    }
    assert_eq!(f.files(), before, "nothing made");
    assert!(f.sessions().is_empty());
}

/// Issue 29: a deploy over rmcp's default 16 MiB line is answered — refused naming the prompt
/// limit — never dropped without a reply, and the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_sixteen_mebibytes_is_answered() {
    let f = Fleet::new();
    let client = connect(&f).await;
    let task_id = new_task(&client, "d").await;
    let prompt = "x".repeat(17 << 20);
    refused(
        &client,
        &task_id,
        "deploy_headless_agent",
        json!({ "task_id": task_id, "agent_type": "a", "prompt": prompt }),
        "over the 16777216 bytes fleet takes (FLEET_MAX_PROMPT_BYTES)",
    )
    .await;
    assert!(f.sessions().is_empty());
}
