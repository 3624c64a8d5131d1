//! `fleet mcp`: an MCP server over stdio (rmcp) with the Python server's tool names, parameters
//! and result fields, so its users switch by changing one line of their MCP configuration.
//!
//! Every tool runs the same operations as the CLI ([`crate::ops`]) on tokio's blocking pool.
//! A failure is an MCP tool error carrying fleet's one-line message — never a crash — and the
//! server keeps answering. Nothing but protocol goes to stdout; logs go to stderr.

use std::sync::Arc;

mod params;
mod resources;
mod schema;
mod views;

use deploy_core::{AgentId, AgentType, Limits, Parent, TaskContext, TaskId};
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};

use crate::config::{Config, Services};
use crate::error::Error;
use crate::ops;
use crate::ops::deploy::DeployOptions;
use crate::ops::reports::FindingFilter;
use crate::ops::task::TaskOptions;
use deploy_core::end::Files;
use params::{
    CreateTaskParams, DeployParams, FindingParams, FindingsParams, KillParams, OutputParams,
    ProgressParams, ReconcileParams, ResumeParams, SpawnChildParams, TaskParams,
};

/// The server.
#[derive(Debug, Clone)]
pub(crate) struct FleetMcp {
    services: Arc<Services>,
    /// The tools, their schemas in the object form every client takes ([`schema`]).
    tools: Arc<ToolRouter<FleetMcp>>,
}

/// A tool error: `{"success": false, "error": ...}` as text and as structured content.
fn tool_error(value: Value) -> CallToolResult {
    CallToolResult::structured_error(value)
}

fn task_id(s: &str) -> Result<TaskId, Error> {
    Ok(TaskId::parse(s)?)
}

fn agent_id(s: &str) -> Result<AgentId, Error> {
    Ok(AgentId::parse(s)?)
}

/// A `fleet mcp` wired into an agent acts for that agent only: its reports must be the agent's
/// own and its deployments the agent's children, in its task. Any other server (the
/// orchestrator's) acts for anyone.
fn acts_for(services: &Services, task: &TaskId, agent: &str, what: &str) -> Result<(), Error> {
    match &services.config.serving {
        Some((t, a)) if t != task || a.as_str() != agent => Err(Error::Refused(format!(
            "this server acts for agent {a} of task {t}: {what} for agent {agent} of task {task} is refused"
        ))),
        _ => Ok(()),
    }
}

/// A `fleet mcp` wired into an agent may end only that agent and its descendants, in its task;
/// any other server (the orchestrator's) ends any agent.
fn may_kill(services: &Services, task: &TaskId, agent: &AgentId) -> Result<(), Error> {
    let Some((t, me)) = &services.config.serving else {
        return Ok(());
    };
    let snapshot = services.registry.read_task(task)?;
    let mut at = Some(agent.clone());
    while let Some(current) = at {
        if t == task && &current == me {
            return Ok(());
        }
        at = match snapshot.agent(&current).map(|a| &a.parent) {
            Some(Parent::Agent(parent)) => Some(parent.clone()),
            _ => None,
        };
    }
    Err(Error::Refused(format!(
        "this server acts for agent {me} of task {t}: it may kill only that agent and its descendants, not agent {agent} of task {task}"
    )))
}

impl FleetMcp {
    fn new(services: Services) -> Self {
        FleetMcp {
            services: Arc::new(services),
            tools: Arc::new(schema::objects_only(Self::tool_router())),
        }
    }

    /// `deploy_headless_agent`, `spawn_child_agent` and their aliases with a model set.
    async fn deploy(
        &self,
        p: params::AgentParams,
        model: Option<&'static str>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| deploy(services, p, model)).await
    }

    /// Runs `f` on the blocking pool: its view is the result, as text and as
    /// `structuredContent` (matching the tool's output schema, derived from the view's type); an
    /// error (or a panic) becomes a tool error.
    async fn run<T: serde::Serialize + Send + 'static>(
        &self,
        f: impl FnOnce(&Services) -> Result<T, Error> + Send + 'static,
    ) -> Result<CallToolResult, McpError> {
        let services = Arc::clone(&self.services);
        Ok(
            match tokio::task::spawn_blocking(move || f(&services)).await {
                Ok(Ok(view)) => CallToolResult::structured(views::to_value(&view)),
                Ok(Err(e)) => tool_error(views::failure(&e)),
                Err(join) => tool_error(json!({
                    "success": false,
                    "error": format!("internal error (a bug; the server goes on): {join}"),
                })),
            },
        )
    }
}

/// Deploys through the one operation both surfaces share, with the agent's identity in front
/// of its prompt. `model` is the model a tool sets (`deploy_opus_agent`, ...): a different one
/// asked for beside it is refused.
fn deploy(
    services: &Services,
    d: params::AgentParams,
    model: Option<&str>,
) -> Result<views::Deployed, Error> {
    let host = d
        .host
        .as_deref()
        .map(deploy_core::HostName::parse)
        .transpose()?;
    let options = deploy_options(services, d, model)?;
    if let Some(host) = host {
        let answer = ops::remote::deploy(
            &services.config,
            &host,
            &options,
            ops::remote::Members::Like(None),
        )?;
        return views::deployed_on(&host, answer);
    }
    // The server's own signals end the server; a deployment in flight rolls back as it drops.
    Ok(views::deployed(&ops::deploy::run(
        services,
        options,
        &|| None,
    )?))
}

/// `deploy_batch`: every member Live, or none.
fn deploy_batch(
    services: &Services,
    p: params::BatchParams,
) -> Result<views::DeployedBatch, Error> {
    let task = task_id(&p.task_id)?;
    if let Some(host) = &p.host {
        return deploy_batch_on(services, &deploy_core::HostName::parse(host)?, p);
    }
    let members = p
        .members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let agent = params::AgentParams::member(&p.task_id, &p.parent, m);
            deploy_options(services, agent, None)
                .map_err(|e| Error::Invalid(format!("member {}: {}", i + 1, e.line())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The server's own signals end the server; a batch in flight rolls back as it drops.
    Ok(views::deployed_batch(&ops::deploy::run_batch(
        services,
        &task,
        members,
        &|| None,
    )?))
}

/// `deploy_batch` with `host`: the members as a plan, deployed as that host's one batch.
fn deploy_batch_on(
    services: &Services,
    host: &deploy_core::HostName,
    p: params::BatchParams,
) -> Result<views::DeployedBatch, Error> {
    let mut plan = Vec::new();
    for (i, m) in p.members.into_iter().enumerate() {
        if m.effort.is_some() || m.permission_mode.is_some() || m.keep_worktree {
            return Err(Error::Invalid(format!(
                "member {}: on another host a member takes agent_type, prompt, model and \
                 worktree (repo, base_ref) only",
                i + 1
            )));
        }
        plan.push(json!({
            "type": m.agent_type,
            "prompt": m.prompt,
            "model": m.model,
            "worktree": m.worktree,
            "repo": m.repo,
            "base": m.base_ref,
        }));
    }
    let options = checked_options(services, &p.task_id, "planned", String::new(), &p.parent)?;
    let plan = json!({ "members": plan }).to_string();
    let answer = ops::remote::deploy(
        &services.config,
        host,
        &options,
        ops::remote::Members::Plan(&plan),
    )?;
    views::deployed_batch_on(host, answer)
}

/// Options for an agent of `agent_type` told `prompt` in `task`, under `parent`, which this
/// server must act for.
fn checked_options(
    services: &Services,
    task: &str,
    agent_type: &str,
    prompt: String,
    parent: &str,
) -> Result<DeployOptions, Error> {
    let mut options = DeployOptions::new(task_id(task)?, AgentType::parse(agent_type)?, prompt);
    options.parent = Parent::parse(parent)?;
    acts_for(
        services,
        &options.task,
        options.parent.as_str(),
        "a deployment with parent",
    )?;
    Ok(options)
}

/// What a deploy tool's parameters ask for, checked: the agent's identity in front of its
/// prompt, the model a tool sets.
fn deploy_options(
    services: &Services,
    d: params::AgentParams,
    model: Option<&str>,
) -> Result<DeployOptions, Error> {
    let cap = services.config.max_prompt_bytes;
    if d.prompt.len() as u64 > cap {
        return Err(Error::Invalid(format!(
            "the prompt is {} bytes, over the {cap} bytes fleet takes (FLEET_MAX_PROMPT_BYTES)",
            d.prompt.len()
        )));
    }
    let mut options = checked_options(services, &d.task_id, &d.agent_type, d.prompt, &d.parent)?;
    options.preamble = Some(true);
    options.permission_mode = d.permission_mode;
    options.model = match (model, d.model) {
        (Some(set), Some(asked)) if set != asked => {
            return Err(Error::Refused(format!(
                "this tool deploys model {set}: model {asked} is refused (use deploy_headless_agent)"
            )));
        }
        (Some(set), _) => Some(set.to_owned()),
        (None, asked) => asked,
    };
    options.effort = d.effort;
    let w = d.worktree;
    if !w.worktree && (w.repo.is_some() || w.base_ref.is_some() || w.keep_worktree) {
        return Err(Error::Invalid(
            "repo, base_ref and keep_worktree go with worktree: true".into(),
        ));
    }
    options.worktree = w.worktree.then(|| ops::deploy::WorktreeOptions {
        repo: w.repo.map(Into::into),
        base: w.base_ref,
        keep: w.keep_worktree,
    });
    Ok(options)
}

/// `get_real_task_status`, and the resource `task://{task_id}/status`.
fn task_status(services: &Services, task: &TaskId) -> Result<views::TaskStatus, Error> {
    let mut statuses = ops::status::run(services, Some(task), crate::ops::status::Only::Every)?;
    let reports = ops::reports::task_reports(services, task);
    match statuses.pop() {
        Some(status) => Ok(views::task_status(&status, &reports)),
        None => Err(deploy_core::Error::UnknownTask(task.clone()).into()),
    }
}

#[tool_router]
impl FleetMcp {
    #[tool(
        description = "Create a task: a workspace and registry that agents are deployed into, with limits on how many run at once, in total, and how deep they may spawn.",
        output_schema = schema_for_output::<views::TaskCreated>()
    )]
    async fn create_real_task(
        &self,
        Parameters(p): Parameters<CreateTaskParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let defaults = Limits::default();
            let context = TaskContext {
                background_context: p.background_context,
                expected_deliverables: p.expected_deliverables.unwrap_or_default(),
                success_criteria: p.success_criteria.unwrap_or_default(),
                constraints: p.constraints.unwrap_or_default(),
                relevant_files: p.relevant_files.unwrap_or_default(),
            };
            let task = ops::task::create(
                services,
                TaskOptions {
                    description: p.description,
                    priority: p.priority,
                    limits: Limits {
                        max_agents: p.max_agents.unwrap_or(defaults.max_agents),
                        max_concurrent: p.max_concurrent.unwrap_or(defaults.max_concurrent),
                        max_depth: p.max_depth.unwrap_or(defaults.max_depth),
                    },
                    context: Some(context),
                },
            )?;
            Ok(views::task_created(&task))
        })
        .await
    }

    #[tool(
        description = "Deploy a headless agent into a task, transactionally: it returns once the agent is alive after its startup grace and registered; on failure nothing is left behind and the error says the step and cause (for an agent that died at start, its exit status and last output).",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn deploy_headless_agent(
        &self,
        Parameters(p): Parameters<DeployParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), None).await
    }

    #[tool(
        description = "Deploy several agents into a task as one batch, all or nothing: it returns once every member is alive after its startup grace and registered; if any member fails at any step, every member is rolled back and the error reports each one's cleanup. The task's limits are checked for the whole batch before anything starts, and no member runs until all are registered. Members of one type after the first are its duplicates (best-of-N; with worktree, each on its own branch).",
        output_schema = schema_for_output::<views::DeployedBatch>()
    )]
    async fn deploy_batch(
        &self,
        Parameters(p): Parameters<params::BatchParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| deploy_batch(services, p)).await
    }

    #[tool(
        description = "Spawn a child agent under an existing agent of the task; the task's max_depth is enforced.",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn spawn_child_agent(
        &self,
        Parameters(p): Parameters<SpawnChildParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), None).await
    }

    #[tool(
        description = "deploy_headless_agent with Claude Code's model set to opus (the newer Python server's name): for complex work that needs deep reasoning.",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn deploy_opus_agent(
        &self,
        Parameters(p): Parameters<DeployParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), Some("opus")).await
    }

    #[tool(
        description = "deploy_headless_agent with Claude Code's model set to sonnet (the newer Python server's name): for well-defined work.",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn deploy_sonnet_agent(
        &self,
        Parameters(p): Parameters<DeployParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), Some("sonnet")).await
    }

    #[tool(
        description = "spawn_child_agent with Claude Code's model set to opus (the newer Python server's name).",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn spawn_opus_child_agent(
        &self,
        Parameters(p): Parameters<SpawnChildParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), Some("opus")).await
    }

    #[tool(
        description = "spawn_child_agent with Claude Code's model set to sonnet (the newer Python server's name).",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn spawn_sonnet_child_agent(
        &self,
        Parameters(p): Parameters<SpawnChildParams>,
    ) -> Result<CallToolResult, McpError> {
        self.deploy(p.into(), Some("sonnet")).await
    }

    #[tool(
        description = "Status of a task: its agents (with liveness from tmux; agents that ended by themselves are recorded as completed or error), hierarchy, recent progress and findings, limits.",
        output_schema = schema_for_output::<views::TaskStatus>()
    )]
    async fn get_real_task_status(
        &self,
        Parameters(p): Parameters<TaskParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| task_status(services, &task_id(&p.task_id)?))
            .await
    }

    #[tool(
        description = "The last lines of an agent's output (its stream-json log).",
        output_schema = schema_for_output::<views::AgentOutput>()
    )]
    async fn get_agent_output(
        &self,
        Parameters(p): Parameters<OutputParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let out = ops::output::tail(
                services,
                &task_id(&p.task_id)?,
                &agent_id(&p.agent_id)?,
                p.tail.unwrap_or(50),
            )?;
            Ok(views::agent_output(&out))
        })
        .await
    }

    #[tool(
        description = "Kill an agent: its session and every process of it, verified; it is recorded as terminated with the reason, its logs move to archive/.",
        output_schema = schema_for_output::<views::Killed>()
    )]
    async fn kill_real_agent(
        &self,
        Parameters(p): Parameters<KillParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let (task, agent) = (task_id(&p.task_id)?, agent_id(&p.agent_id)?);
            may_kill(services, &task, &agent)?;
            let reason = p.reason.unwrap_or_else(|| "Manual termination".into());
            let k = ops::kill::run(services, &task, &agent, &reason, Files::Archive)?;
            Ok(views::killed(&k, &agent))
        })
        .await
    }

    #[tool(
        description = "Report an agent's progress (appended to progress/<agent>_progress.jsonl and recorded in the registry). A final status (completed, error, terminated) ends the agent: its session is killed, verified, and its logs move to archive/.",
        output_schema = schema_for_output::<views::ProgressReported>()
    )]
    async fn update_agent_progress(
        &self,
        Parameters(p): Parameters<ProgressParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let (task, agent) = (task_id(&p.task_id)?, agent_id(&p.agent_id)?);
            acts_for(services, &task, agent.as_str(), "a progress report")?;
            let reported =
                ops::reports::progress(services, &task, &agent, &p.status, &p.message, p.progress)?;
            Ok(views::progress(&reported))
        })
        .await
    }

    #[tool(
        description = "Report a finding (appended to findings/<agent>_findings.jsonl).",
        output_schema = schema_for_output::<views::FindingReported>()
    )]
    async fn report_agent_finding(
        &self,
        Parameters(p): Parameters<FindingParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let (task, agent) = (task_id(&p.task_id)?, agent_id(&p.agent_id)?);
            acts_for(services, &task, agent.as_str(), "a finding")?;
            let reported = ops::reports::finding(
                services,
                &task,
                &agent,
                &p.finding_type,
                &p.severity,
                &p.message,
                p.data,
            )?;
            Ok(views::finding(&reported))
        })
        .await
    }

    #[tool(
        description = "Continue an ended agent's conversation (Claude Code: --resume with its session id) in a new agent of the same task, type and parent: an ordinary transactional deployment. Refused while the agent runs, or when its output shows no session.",
        output_schema = schema_for_output::<views::Deployed>()
    )]
    async fn resume_agent(
        &self,
        Parameters(p): Parameters<ResumeParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let (task, agent) = (task_id(&p.task_id)?, agent_id(&p.agent_id)?);
            if let Some((_, me)) = &services.config.serving {
                acts_for(services, &task, me.as_str(), "resuming an agent")?;
            }
            Ok(views::deployed(&ops::resume::run(
                services, &task, &agent, p.prompt,
            )?))
        })
        .await
    }

    #[tool(
        description = "A task's findings, oldest first — of every agent, running or ended — filtered by agent, severity or type, the newest `limit` only.",
        output_schema = schema_for_output::<views::TaskFindings>()
    )]
    async fn get_task_findings(
        &self,
        Parameters(p): Parameters<FindingsParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let filter = FindingFilter {
                agent: p.agent_id.as_deref().map(agent_id).transpose()?,
                severity: p.severity,
                finding_type: p.finding_type,
                limit: p.limit,
            };
            let found = ops::reports::findings(services, &task_id(&p.task_id)?, &filter)?;
            Ok(views::task_findings(&found))
        })
        .await
    }

    #[tool(
        description = "fleet's addition: find and undo what crashes left behind — abandoned deployments, zombies, orphan sessions, drifted counters, a stale global index, temp files. Idempotent; dry_run reports only.",
        output_schema = schema_for_output::<views::Reconciled>()
    )]
    async fn reconcile(
        &self,
        Parameters(p): Parameters<ReconcileParams>,
    ) -> Result<CallToolResult, McpError> {
        self.run(move |services| {
            let task = p.task_id.as_deref().map(task_id).transpose()?;
            let r = ops::reconcile::run(services, task.as_ref(), p.dry_run)?;
            Ok(views::reconciled(&r))
        })
        .await
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for FleetMcp {
    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let services = Arc::clone(&self.services);
        match tokio::task::spawn_blocking(move || resources::list(&services)).await {
            Ok(result) => result,
            Err(join) => Err(McpError::internal_error(join.to_string(), None)),
        }
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let services = Arc::clone(&self.services);
        match tokio::task::spawn_blocking(move || resources::read(&services, &request.uri)).await {
            Ok(result) => result.map(Into::into),
            Err(join) => Err(McpError::internal_error(join.to_string(), None)),
        }
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_instructions(
            "fleet deploys headless AI coding agents into tmux sessions, transactionally. Create a task, deploy agents into it, read their status and output, kill them; agents report progress and findings and spawn children with the same tools.",
        )
    }
}

/// Serves MCP on stdin/stdout until the client goes away.
pub(crate) fn serve(config: Config) -> Result<(), Error> {
    let services = Services::new(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // A request is read whole up to a bound above the largest prompt fleet takes (escaped
    // in JSON), so a deploy too big is answered with an error naming the limit; past the bound
    // rmcp drops the line unread (logged: there is no id to answer).
    let max_line = usize::try_from(services.config.max_prompt_bytes.saturating_mul(8))
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    runtime.block_on(async move {
        let (stdin, stdout) = rmcp::transport::stdio();
        let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(stdin, stdout)
            .with_max_line_length(max_line);
        let running = FleetMcp::new(services)
            .serve(transport)
            .await
            .map_err(|e| Error::Mcp(format!("cannot start: {e}")))?;
        running
            .waiting()
            .await
            .map_err(|e| Error::Mcp(format!("stopped: {e}")))?;
        Ok(())
    })
}
