//! The Python server's result shapes, as views of the typed results of `ops`: MCP clients that
//! read the Python server's fields find them here, beside fleet's own. Each tool's result is a
//! type here, and its output schema is derived from that type (`schemars`), so the schema a
//! client is given and the `structuredContent` it receives cannot drift apart.

use deploy_core::{AgentId, CleanupOutcome, TaskSnapshot};
use rmcp::schemars::{self, JsonSchema};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::ops;
use crate::ops::reports::TaskReports;

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
    if let (Error::Batch(f), Some(obj)) = (e, out.as_object_mut()) {
        obj.insert("step".into(), json!(f.failure.step));
        obj.insert("batch_id".into(), json!(f.batch));
        obj.insert("cleanup_performed".into(), json!(true));
        obj.insert("cleanup_complete".into(), json!(f.is_clean()));
        let members: Vec<Value> = f
            .members
            .iter()
            .map(|(agent, cleanup)| json!({ "agent_id": agent, "cleanup": cleanup }))
            .collect();
        obj.insert("members".into(), json!(members));
    }
    out
}

/// A view's value as JSON (views serialize plain data: this cannot fail in practice; a failure
/// would show as `null`, which the schema check in `tests/mcp.rs` catches).
pub(crate) fn to_value<T: Serialize>(view: &T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// A JSON value in an output schema: any JSON.
type Any = Value;

/// `create_real_task`: the task, and its context fields at the top level as the Python server
/// returned them.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskCreated {
    success: bool,
    task_id: String,
    description: String,
    priority: String,
    workspace: String,
    status: String,
    has_enhanced_context: bool,
    #[serde(flatten)]
    context: Map<String, Any>,
}

pub(crate) fn task_created(t: &TaskSnapshot) -> TaskCreated {
    TaskCreated {
        success: true,
        task_id: t.id.to_string(),
        description: t.description.clone(),
        priority: t.priority.clone(),
        workspace: t.workspace.clone(),
        status: t.status.clone(),
        has_enhanced_context: t.extra.contains_key("task_context"),
        context: match t.extra.get("task_context") {
            Some(Value::Object(ctx)) => ctx.clone(),
            _ => Map::new(),
        },
    }
}

/// `deploy_headless_agent` and `spawn_child_agent`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Deployed {
    success: bool,
    agent_id: String,
    tmux_session: String,
    #[serde(rename = "type")]
    agent_type: String,
    parent: String,
    task_id: String,
    /// Always `deployed`.
    status: String,
    workspace: String,
    deployment_method: String,
    depth: u32,
    /// Its own git checkout, when deployed with `worktree`.
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree: Option<Worktree>,
    /// The host it runs on, when deployed on another host (`host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
}

/// What a remote fleet's `deploy --json` answers for one agent.
#[derive(serde::Deserialize)]
struct RemoteDeployed {
    agent_id: String,
    task_id: String,
    session: String,
    #[serde(rename = "type")]
    agent_type: String,
    parent: String,
    depth: u32,
    prompt_file: String,
    worktree: Option<deploy_core::Checkout>,
}

/// `deploy_headless_agent` with `host`: the agent Live on `host`, as that host's fleet answered.
pub(crate) fn deployed_on(
    host: &deploy_core::HostName,
    answer: Value,
) -> Result<Deployed, crate::error::Error> {
    let d: RemoteDeployed =
        serde_json::from_value(answer).map_err(|e| crate::error::Error::Remote {
            host: host.clone(),
            code: 1,
            line: format!("its answer is not a deployment: {e}"),
            json: None,
        })?;
    let workspace = camino::Utf8Path::new(&d.prompt_file)
        .parent()
        .map(ToString::to_string)
        .unwrap_or_default();
    Ok(Deployed {
        success: true,
        agent_id: d.agent_id,
        tmux_session: d.session,
        agent_type: d.agent_type,
        parent: d.parent,
        task_id: d.task_id,
        status: "deployed".into(),
        workspace,
        deployment_method: "tmux session".into(),
        depth: d.depth,
        worktree: d.worktree.as_ref().map(worktree),
        host: Some(host.to_string()),
    })
}

/// An agent's git checkout.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Worktree {
    /// The worktree's directory.
    path: String,
    /// Its branch, `fleet/<agent_id>`.
    branch: String,
    /// The commit it was branched from.
    base: String,
    /// The ref that named it.
    base_ref: String,
    /// The repository's top directory.
    repo: String,
    /// active, kept-dirty, branch-only, kept or removed.
    state: String,
}

pub(crate) fn worktree(c: &deploy_core::Checkout) -> Worktree {
    Worktree {
        path: c.path.to_string(),
        branch: c.branch.clone(),
        base: c.base.clone(),
        base_ref: c.base_ref.clone(),
        repo: c.repo.to_string(),
        state: c.state.to_string(),
    }
}

pub(crate) fn deployed(d: &ops::deploy::Deployed) -> Deployed {
    Deployed {
        success: true,
        agent_id: d.agent_id.to_string(),
        tmux_session: d.session.to_string(),
        agent_type: d.agent_type.to_string(),
        parent: d.parent.to_string(),
        task_id: d.task_id.to_string(),
        status: "deployed".into(),
        workspace: d.workspace.clone(),
        deployment_method: "tmux session".into(),
        depth: d.depth,
        worktree: d.worktree.as_ref().map(worktree),
        host: None,
    }
}

/// `deploy_batch`: the batch and every member, each as `deploy_headless_agent` reports it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DeployedBatch {
    success: bool,
    batch_id: String,
    agent_ids: Vec<String>,
    agents: Vec<Deployed>,
}

/// `deploy_batch` with `host`: the batch Live on `host`, as that host's fleet answered.
pub(crate) fn deployed_batch_on(
    host: &deploy_core::HostName,
    answer: Value,
) -> Result<DeployedBatch, crate::error::Error> {
    let not = |what: &str| crate::error::Error::Remote {
        host: host.clone(),
        code: 1,
        line: format!("its answer is not a batch: {what}"),
        json: None,
    };
    let batch_id = answer["batch_id"]
        .as_str()
        .ok_or_else(|| not("no batch_id"))?;
    let agents = answer["agents"]
        .as_array()
        .ok_or_else(|| not("no agents"))?
        .iter()
        .map(|a| deployed_on(host, a.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DeployedBatch {
        success: true,
        batch_id: batch_id.to_owned(),
        agent_ids: agents.iter().map(|a| a.agent_id.clone()).collect(),
        agents,
    })
}

pub(crate) fn deployed_batch(b: &ops::deploy::DeployedBatch) -> DeployedBatch {
    DeployedBatch {
        success: true,
        batch_id: b.batch_id.to_string(),
        agent_ids: b.agent_ids.iter().map(ToString::to_string).collect(),
        agents: b.agents.iter().map(deployed).collect(),
    }
}

/// `get_real_task_status`: the registry's agents, each with its liveness, beside the task's
/// counters, hierarchy, reports and limits.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskStatus {
    success: bool,
    task_id: String,
    description: String,
    status: String,
    workspace: String,
    agents: AgentsSummary,
    /// Cost (US dollars) and tokens of all its agents, from their own events.
    totals: Any,
    hierarchy: Any,
    enhanced_progress: Any,
    spiral_status: Any,
    limits: Any,
}

/// A task's agents.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AgentsSummary {
    total_spawned: usize,
    active: usize,
    completed: usize,
    /// Each agent's registry entry, with its `liveness` and its `activity` (what it is doing,
    /// from its own events: `state`, `session_id`, `model`, `turns`, `input_tokens`,
    /// `output_tokens`, `cost_usd`, `last_tool`, `last_event_at`, `result`, `is_error`).
    agents_list: Vec<Any>,
}

pub(crate) fn task_status(status: &ops::status::TaskStatus, reports: &TaskReports) -> TaskStatus {
    let t = &status.snapshot;
    let views: std::collections::HashMap<&AgentId, &ops::status::AgentView> =
        status.agents.iter().map(|w| (&w.agent_id, w)).collect();
    let agents_list = t
        .agents
        .iter()
        .map(|a| {
            let mut v = to_value(a);
            if let (Some(obj), Some(view)) = (v.as_object_mut(), views.get(&a.id)) {
                obj.insert("liveness".into(), json!(view.liveness));
                obj.insert("activity".into(), json!(view.activity));
                obj.remove(crate::ops::activity::FIELD);
            }
            v
        })
        .collect();
    TaskStatus {
        success: true,
        task_id: t.id.to_string(),
        description: t.description.clone(),
        status: status.status.clone(),
        workspace: t.workspace.clone(),
        agents: AgentsSummary {
            total_spawned: t.agents.len(),
            active: t.active_count(),
            completed: t.completed_count(),
            agents_list,
        },
        totals: to_value(&status.totals),
        hierarchy: to_value(&t.hierarchy()),
        enhanced_progress: to_value(reports),
        spiral_status: t.extra.get("spiral_checks").cloned().unwrap_or(Value::Null),
        limits: to_value(&t.limits),
    }
}

/// `get_agent_output`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct AgentOutput {
    success: bool,
    agent_id: String,
    session_status: String,
    output: String,
    source: String,
    tmux_session: String,
}

pub(crate) fn agent_output(o: &ops::output::AgentOutput) -> AgentOutput {
    AgentOutput {
        success: true,
        agent_id: o.agent_id.to_string(),
        session_status: o.status.to_string(),
        output: o.lines.join("\n"),
        source: "jsonl_log".into(),
        tmux_session: o.session.to_string(),
    }
}

/// `kill_real_agent`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Killed {
    success: bool,
    agent_id: String,
    tmux_session: String,
    session_killed: bool,
    reason: String,
    status: String,
    cleanup: KillCleanup,
}

/// What a kill cleaned up, in the Python server's fields and fleet's.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct KillCleanup {
    success: bool,
    tmux_session_killed: bool,
    prompt_file_deleted: bool,
    log_files_archived: bool,
    verified_no_zombies: bool,
    errors: Vec<String>,
    archived_files: Vec<String>,
    /// Each process the kill ended: `pid`, `name`, the last `signal` fleet sent.
    killed_processes: Vec<Any>,
}

pub(crate) fn killed(k: &ops::kill::Killed, agent: &AgentId) -> Killed {
    Killed {
        success: true,
        agent_id: agent.to_string(),
        tmux_session: k.session.to_string(),
        session_killed: k.session_killed,
        reason: k.reason.clone(),
        status: k.status.to_string(),
        cleanup: KillCleanup {
            success: true,
            tmux_session_killed: k.session_killed,
            prompt_file_deleted: k.prompt_removed,
            log_files_archived: !k.archived_files.is_empty(),
            verified_no_zombies: true,
            errors: Vec::new(),
            archived_files: k.archived_files.iter().map(ToString::to_string).collect(),
            killed_processes: k.killed.iter().map(to_value).collect(),
        },
    }
}

/// `update_agent_progress`: the line recorded and what the agent learns of its task.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ProgressReported {
    success: bool,
    own_update: Any,
    coordination_info: Any,
    /// For a final report: `ended` (the agent was ended, verified, before this answer) or
    /// `ending` (the agent reported on itself; a process outside its tree ends it now).
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
}

pub(crate) fn progress(r: &ops::reports::ProgressReported) -> ProgressReported {
    ProgressReported {
        success: true,
        own_update: to_value(&r.own_update),
        coordination_info: to_value(&r.coordination_info),
        end: r.end.map(str::to_owned),
    }
}

/// `report_agent_finding`: the line recorded and what the agent learns of its task.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FindingReported {
    success: bool,
    own_finding: Any,
    coordination_info: Any,
}

pub(crate) fn finding(r: &ops::reports::FindingReported) -> FindingReported {
    FindingReported {
        success: true,
        own_finding: to_value(&r.own_finding),
        coordination_info: to_value(&r.coordination_info),
    }
}

/// `reconcile`: what it found and did (see `fleet reconcile --json`).
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Reconciled {
    success: bool,
    dry_run: bool,
    nothing_to_do: bool,
    abandoned: Vec<Any>,
    zombies: Vec<Any>,
    orphans: Vec<Any>,
    /// Worktrees and branches removed (nothing accounted for them) or retired (their agent had
    /// ended).
    checkouts: Vec<Any>,
    /// What could not be looked at (a repository that moved or vanished).
    problems: Vec<Any>,
    /// Prompt files nothing named, removed.
    prompts: Vec<Any>,
    counters_fixed: Vec<Any>,
    index: Any,
    temp_files: u64,
}

pub(crate) fn reconciled(r: &ops::reconcile::Reconciled) -> Reconciled {
    let v = to_value(r);
    let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    Reconciled {
        success: true,
        dry_run: r.dry_run,
        nothing_to_do: r.nothing_to_do,
        abandoned: list("abandoned"),
        zombies: list("zombies"),
        orphans: list("orphans"),
        checkouts: list("checkouts"),
        problems: list("problems"),
        prompts: list("prompts"),
        counters_fixed: list("counters_fixed"),
        index: v["index"].clone(),
        temp_files: v["temp_files"].as_u64().unwrap_or(0),
    }
}

/// `get_task_findings`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TaskFindings {
    success: bool,
    task_id: String,
    /// How many findings the task has in all.
    total_findings: usize,
    /// How many matched the filters (before `limit`).
    matching: usize,
    /// Each finding as its agent reported it: `timestamp`, `agent_id`, `finding_type`,
    /// `severity`, `message`, `data`; oldest first.
    findings: Vec<Any>,
}

pub(crate) fn task_findings(f: &ops::reports::TaskFindings) -> TaskFindings {
    TaskFindings {
        success: true,
        task_id: f.task_id.to_string(),
        total_findings: f.total_findings,
        matching: f.matching,
        findings: f.findings.clone(),
    }
}
