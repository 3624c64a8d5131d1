//! `fleet mcp`: an MCP server over stdio (rmcp) with the Python server's tool names, parameters
//! and result fields, so its users switch by changing one line of their MCP configuration.
//!
//! Every tool runs the same operations as the CLI ([`crate::ops`]) on tokio's blocking pool.
//! A failure is an MCP tool error carrying fleet's one-line message — never a crash — and the
//! server keeps answering. Nothing but protocol goes to stdout; logs go to stderr.

use std::sync::Arc;

use deploy_core::{AgentId, AgentType, DeployRequest, Limits, Parent, TaskId};
use registry::{NewTask, TaskContext};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{
    ErrorData as McpError, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::config::{Config, Services, absolute};
use crate::observe::observe_task;
use crate::ops;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct CreateTaskParams {
    /// What the task is about.
    description: String,
    /// P0 (highest) to P4; default P1.
    priority: Option<String>,
    /// Agents ever registered in the task (default 45).
    max_agents: Option<u32>,
    /// Agents active at once (default 20).
    max_concurrent: Option<u32>,
    /// Deepest level below the orchestrator (default 5).
    max_depth: Option<u32>,
    /// Background for the agents.
    background_context: Option<String>,
    /// What must be delivered.
    expected_deliverables: Option<Vec<String>>,
    /// How success is judged.
    success_criteria: Option<Vec<String>>,
    /// What must not be done.
    constraints: Option<Vec<String>>,
    /// Files to look at.
    relevant_files: Option<Vec<String>>,
}

fn orchestrator() -> String {
    Parent::ORCHESTRATOR.to_owned()
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct DeployParams {
    /// The task.
    task_id: String,
    /// The agent's type (investigator, builder, fixer, ...).
    agent_type: String,
    /// What the agent is to do.
    prompt: String,
    /// "orchestrator" or the id of the parent agent.
    #[serde(default = "orchestrator")]
    parent: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct SpawnChildParams {
    /// The task.
    task_id: String,
    /// The agent spawning the child.
    parent_agent_id: String,
    /// The child's type.
    child_agent_type: String,
    /// What the child is to do.
    child_prompt: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct TaskParams {
    /// The task.
    task_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct OutputParams {
    /// The task.
    task_id: String,
    /// The agent.
    agent_id: String,
    /// How many lines from the end (default 50).
    tail: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct KillParams {
    /// The task.
    task_id: String,
    /// The agent.
    agent_id: String,
    /// Why (recorded as termination_reason).
    reason: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ProgressParams {
    /// The task.
    task_id: String,
    /// The reporting agent.
    agent_id: String,
    /// running, working, blocked, completed, error or terminated; the last three end the agent.
    status: String,
    /// What is happening.
    message: String,
    /// Percent done, 0-100.
    #[serde(default)]
    progress: u8,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct FindingParams {
    /// The task.
    task_id: String,
    /// The reporting agent.
    agent_id: String,
    /// issue, solution, insight, recommendation, ...
    finding_type: String,
    /// low, medium, high or critical.
    severity: String,
    /// The finding.
    message: String,
    /// Evidence: any JSON.
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ReconcileParams {
    /// Only this task.
    task_id: Option<String>,
    /// Report only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// The server.
#[derive(Debug, Clone)]
pub(crate) struct FleetMcp {
    cfg: Arc<Config>,
}

fn tool_error(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(
        json!({ "success": false, "error": message }).to_string(),
    )])
}

fn task_id(s: &str) -> Result<TaskId, Error> {
    Ok(TaskId::parse(s)?)
}

fn agent_id(s: &str) -> Result<AgentId, Error> {
    Ok(AgentId::parse(s)?)
}

impl FleetMcp {
    fn new(cfg: Config) -> Self {
        FleetMcp { cfg: Arc::new(cfg) }
    }

    /// Runs `f` on the blocking pool; an error (or a panic) becomes a tool error.
    async fn run(
        &self,
        f: impl FnOnce(&Config) -> Result<Value, Error> + Send + 'static,
    ) -> Result<CallToolResult, McpError> {
        let cfg = Arc::clone(&self.cfg);
        Ok(match tokio::task::spawn_blocking(move || f(&cfg)).await {
            Ok(Ok(value)) => CallToolResult::success(vec![ContentBlock::text(
                serde_json::to_string_pretty(&value).unwrap_or_default(),
            )]),
            Ok(Err(e)) => tool_error(e.line()),
            Err(join) => tool_error(format!(
                "internal error (a bug; the server goes on): {join}"
            )),
        })
    }
}

fn deploy(
    cfg: &Config,
    task: &str,
    agent_type: &str,
    prompt: &str,
    parent: &str,
) -> Result<Value, Error> {
    let task = task_id(task)?;
    let agent_type = AgentType::parse(agent_type)?;
    let parent = Parent::parse(parent)?;
    let services = Services::new(cfg)?;
    let file = services.registry.read_task_file(&task)?;
    let depth = match &parent {
        Parent::Orchestrator => Some(1),
        Parent::Agent(p) => file.agent(p).map(|a| a.depth + 1),
    };
    let agent = AgentId::generate(&agent_type)?;
    let full = ops::agent_prompt(&agent, agent_type.as_str(), &file, &parent, depth, prompt);
    let mut request = DeployRequest::new(task.clone(), agent_type, full, cfg.agent_cmd.clone());
    request.agent = Some(agent);
    request.parent = parent;
    request.startup_grace = cfg.startup_grace;
    request.workdir = absolute(camino::Utf8Path::new("."))?;
    if prompt.trim().is_empty() {
        request.prompt = String::new(); // refused as "the prompt is empty", not hidden by the header
    }
    let live = ops::deploy(&services, request)?;
    let r = live.record();
    Ok(json!({
        "success": true,
        "agent_id": r.id,
        "tmux_session": r.session,
        "type": r.agent_type,
        "parent": r.parent,
        "task_id": task,
        "status": "deployed",
        "workspace": file.workspace,
        "deployment_method": "tmux session",
        "depth": r.depth,
    }))
}

#[tool_router]
impl FleetMcp {
    #[tool(
        description = "Create a task: a workspace and registry that agents are deployed into, with limits on how many run at once, in total, and how deep they may spawn."
    )]
    async fn create_real_task(
        &self,
        Parameters(p): Parameters<CreateTaskParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            if p.description.trim().is_empty() {
                return Err(Error::Usage("the task description is empty".into()));
            }
            let defaults = Limits::default();
            let enhanced = p.background_context.is_some()
                || [
                    &p.expected_deliverables,
                    &p.success_criteria,
                    &p.constraints,
                    &p.relevant_files,
                ]
                .iter()
                .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
            let context = enhanced.then(|| TaskContext {
                background_context: p.background_context.clone(),
                expected_deliverables: p.expected_deliverables.clone().unwrap_or_default(),
                success_criteria: p.success_criteria.clone().unwrap_or_default(),
                constraints: p.constraints.clone().unwrap_or_default(),
                relevant_files: p.relevant_files.clone().unwrap_or_default(),
            });
            let task = cfg.registry().create_task(&NewTask {
                description: p.description.clone(),
                priority: p.priority.clone().unwrap_or_else(|| "P1".into()),
                limits: Limits {
                    max_agents: p.max_agents.unwrap_or(defaults.max_agents),
                    max_concurrent: p.max_concurrent.unwrap_or(defaults.max_concurrent),
                    max_depth: p.max_depth.unwrap_or(defaults.max_depth),
                },
                client_cwd: std::env::current_dir()
                    .ok()
                    .map(|d| d.to_string_lossy().into_owned()),
                context: context.clone(),
            })?;
            let mut out = json!({
                "success": true,
                "task_id": task.task_id,
                "description": task.task_description,
                "priority": task.priority,
                "workspace": task.workspace,
                "status": task.status,
                "has_enhanced_context": enhanced,
            });
            if let (Some(ctx), Some(obj)) = (context, out.as_object_mut())
                && let Ok(Value::Object(fields)) = serde_json::to_value(ctx)
            {
                obj.extend(fields);
            }
            Ok(out)
        })
        .await
    }

    #[tool(
        description = "Deploy a headless agent into a task, transactionally: it returns once the agent is alive after its startup grace and registered; on failure nothing is left behind and the error says the step and cause (for an agent that died at start, its exit status and last output)."
    )]
    async fn deploy_headless_agent(
        &self,
        Parameters(p): Parameters<DeployParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| deploy(cfg, &p.task_id, &p.agent_type, &p.prompt, &p.parent))
            .await
    }

    #[tool(
        description = "Spawn a child agent under an existing agent of the task; the task's max_depth is enforced."
    )]
    async fn spawn_child_agent(
        &self,
        Parameters(p): Parameters<SpawnChildParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            deploy(
                cfg,
                &p.task_id,
                &p.child_agent_type,
                &p.child_prompt,
                &p.parent_agent_id,
            )
        })
        .await
    }

    #[tool(
        description = "Status of a task: its agents (with liveness from tmux; agents that ended by themselves are recorded as completed or error), hierarchy, recent progress and findings, limits."
    )]
    async fn get_real_task_status(
        &self,
        Parameters(p): Parameters<TaskParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let task = task_id(&p.task_id)?;
            let services = Services::new(cfg)?;
            let env = services.deployer();
            let mut file = services.registry.read_task_file(&task)?;
            let (views, recorded) = observe_task(
                &env,
                &file,
                &deploy_core::reconcile::sessions_by_name(env.backend)?,
            )?;
            if recorded {
                file = services.registry.read_task_file(&task)?; // statuses and counters after
            }
            let agents: Vec<Value> = file
                .agents
                .iter()
                .map(|a| {
                    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
                    if let (Some(obj), Some(view)) = (
                        v.as_object_mut(),
                        views.iter().find(|w| w.agent_id == a.id.as_str()),
                    ) {
                        obj.insert("liveness".into(), json!(view.liveness));
                    }
                    v
                })
                .collect();
            Ok(json!({
                "success": true,
                "task_id": file.task_id,
                "description": file.task_description,
                "status": file.status,
                "workspace": file.workspace,
                "agents": {
                    "total_spawned": file.total_spawned,
                    "active": file.active_count,
                    "completed": file.completed_count,
                    "agents_list": agents,
                },
                "hierarchy": file.agent_hierarchy,
                "enhanced_progress": ops::enhanced_progress(&services, &task),
                "spiral_status": file.extra.get("spiral_checks").cloned().unwrap_or(Value::Null),
                "limits": {
                    "max_agents": file.max_agents,
                    "max_concurrent": file.max_concurrent,
                    "max_depth": file.max_depth,
                },
            }))
        })
        .await
    }

    #[tool(description = "The last lines of an agent's output (its stream-json log).")]
    async fn get_agent_output(
        &self,
        Parameters(p): Parameters<OutputParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let task = task_id(&p.task_id)?;
            let agent = agent_id(&p.agent_id)?;
            let services = Services::new(cfg)?;
            let entry = ops::agent_entry(&services, &task, &agent)?;
            let lines = tmux_backend::tail_lines(
                &ops::log_file(&services, &task, &agent),
                p.tail.unwrap_or(50),
            );
            Ok(json!({
                "success": true,
                "agent_id": agent,
                "session_status": entry.status,
                "output": lines.join("\n"),
                "source": "jsonl_log",
                "tmux_session": entry.tmux_session,
            }))
        })
        .await
    }

    #[tool(
        description = "Kill an agent: its session and every process of it, verified; it is recorded as terminated with the reason, its logs move to archive/."
    )]
    async fn kill_real_agent(
        &self,
        Parameters(p): Parameters<KillParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let task = task_id(&p.task_id)?;
            let agent = agent_id(&p.agent_id)?;
            let reason = p
                .reason
                .clone()
                .unwrap_or_else(|| "Manual termination".into());
            let services = Services::new(cfg)?;
            let k = ops::kill(&services, &task, &agent, &reason, true)?;
            Ok(json!({
                "success": true,
                "agent_id": agent,
                "tmux_session": k.session,
                "session_killed": k.report.session_existed,
                "reason": reason,
                "status": k.status,
                "cleanup": {
                    "success": true,
                    "tmux_session_killed": k.report.session_existed,
                    "prompt_file_deleted": k.prompt_removed,
                    "log_files_archived": !k.archived.is_empty(),
                    "verified_no_zombies": true,
                    "errors": [],
                    "archived_files": k.archived,
                    "killed_processes": k.report.killed,
                },
            }))
        })
        .await
    }

    #[tool(
        description = "Report an agent's progress (appended to progress/<agent>_progress.jsonl and recorded in the registry). A final status (completed, error, terminated) ends the agent: its session is killed, verified, and its logs move to archive/."
    )]
    async fn update_agent_progress(
        &self,
        Parameters(p): Parameters<ProgressParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let services = Services::new(cfg)?;
            ops::progress(
                &services,
                &task_id(&p.task_id)?,
                &agent_id(&p.agent_id)?,
                &p.status,
                &p.message,
                p.progress,
            )
        })
        .await
    }

    #[tool(description = "Report a finding (appended to findings/<agent>_findings.jsonl).")]
    async fn report_agent_finding(
        &self,
        Parameters(p): Parameters<FindingParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let services = Services::new(cfg)?;
            ops::finding(
                &services,
                &task_id(&p.task_id)?,
                &agent_id(&p.agent_id)?,
                &p.finding_type,
                &p.severity,
                &p.message,
                p.data.clone(),
            )
        })
        .await
    }

    #[tool(
        description = "fleet's addition: find and undo what crashes left behind — abandoned deployments, zombies, orphan sessions, drifted counters, a stale global index, temp files. Idempotent; dry_run reports only."
    )]
    async fn reconcile(
        &self,
        Parameters(p): Parameters<ReconcileParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |cfg| {
            let task = p.task_id.as_deref().map(task_id).transpose()?;
            ops::reconcile(&Services::new(cfg)?, task.as_ref(), p.dry_run)
        })
        .await
    }
}

#[tool_handler]
impl ServerHandler for FleetMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "fleet deploys headless AI coding agents into tmux sessions, transactionally. Create a task, deploy agents into it, read their status and output, kill them; agents report progress and findings and spawn children with the same tools.",
        )
    }
}

/// Serves MCP on stdin/stdout until the client goes away.
pub(crate) fn serve(cfg: Config) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let running = FleetMcp::new(cfg)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::Usage(format!("cannot start the MCP server: {e}")))?;
        running
            .waiting()
            .await
            .map_err(|e| Error::Usage(format!("the MCP server stopped: {e}")))?;
        Ok(())
    })
}
