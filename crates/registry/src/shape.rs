//! What a registry writes, as the Python server wrote it: a new task's file and its summary in
//! the index, a new agent's entry and its index entry, the fields of a status update. The JSON
//! registry writes these into its files; any other registry (SQLite) stores the same values, so
//! that what it exports is what the JSON registry would have written.

use deploy_core::checkout::CHECKOUT_FIELD;
use deploy_core::{
    AgentStatus, BATCH_FIELD, Extra, HOST_FIELD, LAUNCH_COMMAND_FIELD, LAUNCH_WORKDIR_FIELD,
    Layout, Limits, NewTask, Registration, StatusUpdate, TaskId, timestamp,
};
use serde_json::{Map, Value, json};

use crate::PLACEMENT;
use crate::format::{AgentEntry, GlobalAgent, GlobalFile, TaskFile};

/// An empty index, created now.
pub fn new_global() -> GlobalFile {
    GlobalFile {
        created_at: timestamp(),
        total_tasks: 0,
        active_tasks: 0,
        total_agents_spawned: 0,
        active_agents: 0,
        max_concurrent_agents: json!(Limits::default().max_concurrent),
        tasks: Map::new(),
        agents: Map::new(),
        extra: Map::new(),
    }
}

/// The task registry's and the index's fields for a status update, as the Python server
/// wrote them.
pub fn status_fields(update: &StatusUpdate) -> (Map<String, Value>, Map<String, Value>) {
    let mut fields = Map::new();
    let mut index = Map::new();
    fields.insert("last_update".into(), json!(update.at));
    index.insert("last_update".into(), json!(update.at));
    if let Some(p) = update.progress {
        fields.insert("progress".into(), json!(p));
    }
    match update.status {
        AgentStatus::Completed => {
            fields.insert("completed_at".into(), json!(update.at));
            index.insert("completed_at".into(), json!(update.at));
        }
        AgentStatus::Terminated => {
            let reason = update.reason.clone().unwrap_or_default();
            fields.insert("terminated_at".into(), json!(update.at));
            fields.insert("termination_reason".into(), json!(reason));
            index.insert("terminated_at".into(), json!(update.at));
            index.insert("termination_reason".into(), json!(reason));
        }
        AgentStatus::Error => {
            fields.insert("error_at".into(), json!(update.at));
            index.insert("error_at".into(), json!(update.at));
            if let Some(reason) = &update.reason {
                fields.insert("error".into(), json!(reason));
            }
        }
        _ => {}
    }
    if let Some(exit) = update.exit {
        fields.insert("exit_status".into(), json!(exit));
    }
    fields.extend(update.fields.clone());
    (fields, index)
}

/// Applies `update` to an agent's stored entry and its index entry, as a registry that keeps
/// them apart from their task (SQLite, Postgres) does: the task's fields always, the index's
/// only when the status changes.
pub fn apply_status(
    entry: &mut AgentEntry,
    indexed: &mut Map<String, Value>,
    update: &StatusUpdate,
) {
    let (task_fields, index_fields) = status_fields(update);
    let changed = entry.status != update.status;
    entry.status = update.status.clone();
    entry.extra.extend(&task_fields);
    if changed {
        indexed.insert("status".into(), json!(update.status.as_str()));
        indexed.extend(index_fields);
    }
}

/// A task file as a row registry stores it: its agents and hierarchy are rows of their own, its
/// counters derived by queries.
pub fn stored_task(file: &TaskFile) -> TaskFile {
    TaskFile {
        agents: Vec::new(),
        agent_hierarchy: Map::new(),
        total_spawned: 0,
        active_count: 0,
        completed_count: 0,
        ..file.clone()
    }
}

/// The inverse of [`stored_task`]: the stored file with its `agents`, counters and
/// `agent_hierarchy` derived from them, as the JSON registry holds it.
pub fn whole_task(stored: TaskFile, agents: Vec<AgentEntry>) -> TaskFile {
    let mut file = TaskFile { agents, ..stored };
    file.recount();
    file.agent_hierarchy = deploy_core::hierarchy(file.agents.iter().map(|a| (&a.parent, &a.id)));
    file
}

/// Task statuses that no longer count as active in the global index.
pub fn task_is_active(status: &str) -> bool {
    !matches!(
        status.to_ascii_uppercase().as_str(),
        "COMPLETED" | "FAILED" | "CANCELLED" | "ARCHIVED"
    )
}

/// A new task's registry, created `now`, with no agent.
pub fn new_task_file(layout: &Layout, id: &TaskId, new: &NewTask, now: &str) -> TaskFile {
    let mut extra = Map::new();
    extra.insert(
        "orchestration_guidance".into(),
        json!({
            "min_specialization_depth": 2,
            "recommended_child_agents_per_parent": 3,
            "specialization_domains": [],
            "complexity_score": 1
        }),
    );
    extra.insert(
        "spiral_checks".into(),
        json!({ "enabled": true, "last_check": now, "violations": 0 }),
    );
    if let Some(ctx) = &new.context {
        let mut c = Map::new();
        if let Some(bg) = &ctx.background_context {
            c.insert("background_context".into(), json!(bg));
        }
        for (key, list) in [
            ("expected_deliverables", &ctx.expected_deliverables),
            ("success_criteria", &ctx.success_criteria),
            ("constraints", &ctx.constraints),
            ("relevant_files", &ctx.relevant_files),
        ] {
            if !list.is_empty() {
                c.insert(key.into(), json!(list));
            }
        }
        extra.insert("task_context".into(), Value::Object(c));
    }
    let mut hierarchy = Map::new();
    hierarchy.insert("orchestrator".into(), json!([]));
    let priority = new.priority_or_default().to_owned();
    TaskFile {
        task_id: id.clone(),
        task_description: new.description.clone(),
        created_at: now.to_owned(),
        workspace: layout.task_dir(id).to_string(),
        workspace_base: layout.root().to_string(),
        client_cwd: new.client_cwd.clone().map_or(Value::Null, Value::String),
        status: "INITIALIZED".into(),
        priority,
        agents: Vec::new(),
        agent_hierarchy: hierarchy,
        max_agents: new.limits.max_agents,
        max_depth: new.limits.max_depth,
        max_concurrent: new.limits.max_concurrent,
        total_spawned: 0,
        active_count: 0,
        completed_count: 0,
        extra,
    }
}

/// A new task's summary in the index.
pub fn task_summary(new: &NewTask, now: &str) -> Value {
    let mut entry = json!({
        "description": new.description,
        "created_at": now,
        "status": "INITIALIZED",
        "has_enhanced_context": new.context.is_some(),
    });
    if let (Some(ctx), Some(obj)) = (&new.context, entry.as_object_mut()) {
        obj.insert(
            "deliverables_count".into(),
            json!(ctx.expected_deliverables.len()),
        );
        obj.insert(
            "success_criteria_count".into(),
            json!(ctx.success_criteria.len()),
        );
    }
    entry
}

/// A new agent's entry in its task registry, registered at `depth`.
pub fn new_entry(r: &Registration, depth: u32) -> AgentEntry {
    let mut extra = Extra::new();
    extra.insert("progress", &json!(0));
    extra.insert("last_update", &json!(r.started_at));
    extra.insert("prompt", &json!(r.prompt_preview));
    extra.insert("tracked_files", &json!(r.tracked_files));
    extra.insert(PLACEMENT, &json!(r.placement));
    if let Some(c) = &r.checkout {
        extra.insert(CHECKOUT_FIELD, &c.to_value());
    }
    if let Some(launch) = &r.launch {
        extra.insert(LAUNCH_COMMAND_FIELD, &json!(launch.command));
        extra.insert(LAUNCH_WORKDIR_FIELD, &json!(launch.workdir));
    }
    if let Some(batch) = &r.batch {
        extra.insert(BATCH_FIELD, &json!(batch));
    }
    if let Some(host) = &r.host {
        extra.insert(HOST_FIELD, &json!(host));
    }
    AgentEntry {
        id: r.agent.clone(),
        agent_type: r.agent_type.clone(),
        tmux_session: r.session.clone(),
        parent: r.parent.clone(),
        depth,
        status: AgentStatus::Running,
        started_at: r.started_at.clone(),
        extra,
    }
}

/// A new agent's entry in the index (no status while it runs, as the Python server wrote).
pub fn index_entry(r: &Registration) -> GlobalAgent {
    GlobalAgent {
        task_id: r.task.clone(),
        agent_type: r.agent_type.clone(),
        parent: r.parent.clone(),
        started_at: r.started_at.clone(),
        tmux_session: r.session.clone(),
        status: None,
        extra: Map::new(),
    }
}
