//! The Python server's result shapes, as views of the typed results of `ops`: MCP clients that
//! read the Python server's fields find them here, beside fleet's own.

use deploy_core::{AgentId, CleanupOutcome, TaskSnapshot};
use serde_json::{Value, json};

use crate::error::Error;
use crate::ops::deploy::Deployed;
use crate::ops::kill::Killed;
use crate::ops::output::AgentOutput;
use crate::ops::reports::TaskReports;
use crate::ops::status::TaskStatus;

/// A failed tool: `success: false` and fleet's one-line error. A failed deployment adds what
/// the Python server's `deploy_headless_agent` said of its cleanup — `cleanup_performed` and
/// `resources_cleaned` (`tmux_session`, `prompt_file`, and fleet's `registry_entry` and
/// `intent`) — beside the step and fleet's per-resource cleanup report.
pub(crate) fn failure(e: &Error) -> Value {
    let mut out = json!({ "success": false, "error": e.line() });
    if let (Error::Deploy(f), Some(obj)) = (e, out.as_object_mut()) {
        let cleaned: Vec<&str> = f
            .cleanup
            .entries
            .iter()
            .filter(|entry| entry.outcome == CleanupOutcome::Released)
            .map(|entry| match entry.resource.kind() {
                "session" => "tmux_session",
                "registration" => "registry_entry",
                other => other,
            })
            .collect();
        obj.insert("step".into(), json!(f.step));
        obj.insert("cleanup_performed".into(), json!(true));
        obj.insert("cleanup_complete".into(), json!(f.cleanup.is_clean()));
        obj.insert("resources_cleaned".into(), json!(cleaned));
        obj.insert("cleanup".into(), json!(f.cleanup));
    }
    out
}

/// `{"success": true}` merged with the fields of `value`.
pub(crate) fn success<T: serde::Serialize>(value: &T) -> Value {
    let mut out = json!({ "success": true });
    if let (Some(obj), Ok(Value::Object(fields))) =
        (out.as_object_mut(), serde_json::to_value(value))
    {
        obj.extend(fields);
    }
    out
}

/// `create_real_task`.
pub(crate) fn task_created(t: &TaskSnapshot) -> Value {
    let mut out = json!({
        "success": true,
        "task_id": t.id,
        "description": t.description,
        "priority": t.priority,
        "workspace": t.workspace,
        "status": t.status,
        "has_enhanced_context": t.extra.contains_key("task_context"),
    });
    if let (Some(obj), Some(Value::Object(ctx))) =
        (out.as_object_mut(), t.extra.get("task_context"))
    {
        obj.extend(ctx.clone());
    }
    out
}

/// `deploy_headless_agent` and `spawn_child_agent`.
pub(crate) fn deployed(d: &Deployed) -> Value {
    json!({
        "success": true,
        "agent_id": d.agent_id,
        "tmux_session": d.session,
        "type": d.agent_type,
        "parent": d.parent,
        "task_id": d.task_id,
        "status": "deployed",
        "workspace": d.workspace,
        "deployment_method": "tmux session",
        "depth": d.depth,
    })
}

/// `get_real_task_status`: the registry's agents, each with its liveness, beside the task's
/// counters, hierarchy, reports and limits.
pub(crate) fn task_status(status: &TaskStatus, reports: &TaskReports) -> Value {
    let t = &status.snapshot;
    let agents: Vec<Value> = t
        .agents
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
            if let (Some(obj), Some(view)) = (
                v.as_object_mut(),
                status.agents.iter().find(|w| w.agent_id == a.id),
            ) {
                obj.insert("liveness".into(), json!(view.liveness));
            }
            v
        })
        .collect();
    json!({
        "success": true,
        "task_id": t.id,
        "description": t.description,
        "status": t.status,
        "workspace": t.workspace,
        "agents": {
            "total_spawned": t.agents.len(),
            "active": t.active_count(),
            "completed": t.completed_count(),
            "agents_list": agents,
        },
        "hierarchy": t.hierarchy(),
        "enhanced_progress": reports,
        "spiral_status": t.extra.get("spiral_checks").cloned().unwrap_or(Value::Null),
        "limits": t.limits,
    })
}

/// `get_agent_output`.
pub(crate) fn agent_output(o: &AgentOutput) -> Value {
    json!({
        "success": true,
        "agent_id": o.agent_id,
        "session_status": o.status,
        "output": o.lines.join("\n"),
        "source": "jsonl_log",
        "tmux_session": o.session,
    })
}

/// `kill_real_agent`.
pub(crate) fn killed(k: &Killed, agent: &AgentId) -> Value {
    json!({
        "success": true,
        "agent_id": agent,
        "tmux_session": k.session,
        "session_killed": k.session_killed,
        "reason": k.reason,
        "status": k.status,
        "cleanup": {
            "success": true,
            "tmux_session_killed": k.session_killed,
            "prompt_file_deleted": k.prompt_removed,
            "log_files_archived": !k.archived_files.is_empty(),
            "verified_no_zombies": true,
            "errors": [],
            "archived_files": k.archived_files,
            "killed_processes": k.killed,
        },
    })
}
