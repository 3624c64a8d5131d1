//! The tools' parameters, with the Python server's names. An argument a tool does not take is
//! refused, naming it (as the Python server did), never silently ignored.

use rmcp::schemars;
use serde::Deserialize;
use serde_json::Value;

use deploy_core::Parent;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTaskParams {
    /// What the task is about.
    pub(crate) description: String,
    /// P0 (highest) to P4; default P1.
    pub(crate) priority: Option<String>,
    /// Agents ever registered in the task (default 45).
    pub(crate) max_agents: Option<u32>,
    /// Agents active at once (default 20).
    pub(crate) max_concurrent: Option<u32>,
    /// Deepest level below the orchestrator (default 5).
    pub(crate) max_depth: Option<u32>,
    /// Background for the agents.
    pub(crate) background_context: Option<String>,
    /// What must be delivered.
    pub(crate) expected_deliverables: Option<Vec<String>>,
    /// How success is judged.
    pub(crate) success_criteria: Option<Vec<String>>,
    /// What must not be done.
    pub(crate) constraints: Option<Vec<String>>,
    /// Files to look at.
    pub(crate) relevant_files: Option<Vec<String>>,
}

fn orchestrator() -> String {
    Parent::ORCHESTRATOR.to_owned()
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeployParams {
    /// The task.
    pub(crate) task_id: String,
    /// The agent's type (investigator, builder, fixer, ...).
    pub(crate) agent_type: String,
    /// What the agent is to do.
    pub(crate) prompt: String,
    /// "orchestrator" or the id of the parent agent.
    #[serde(default = "orchestrator")]
    pub(crate) parent: String,
    /// Claude Code's model (`--model`: sonnet, opus, haiku or a full model name); only for an
    /// agent command that is Claude Code.
    pub(crate) model: Option<String>,
    /// Claude Code's reasoning effort (`--effort`: low, medium, high), where the installed CLI
    /// takes it; only for an agent command that is Claude Code.
    pub(crate) effort: Option<String>,
    /// Claude Code's permission mode (acceptEdits, auto, bypassPermissions, default, dontAsk,
    /// plan — as the installed CLI lists them); default: fleet's configuration
    /// (bypassPermissions unless FLEET_PERMISSION_MODE says otherwise).
    pub(crate) permission_mode: Option<String>,
    /// Run the agent in its own git worktree, on a new branch fleet/<agent_id>, made and removed
    /// with the deployment; at its end the worktree is kept only if it holds uncommitted
    /// changes, the branch only if it has commits.
    #[serde(default)]
    pub(crate) worktree: bool,
    /// The repository (default: the one holding the server's working directory); only with
    /// `worktree`.
    pub(crate) repo: Option<String>,
    /// The ref to branch from (default: the repository's HEAD); only with `worktree`.
    pub(crate) base_ref: Option<String>,
    /// Keep worktree and branch when the agent ends, whatever they hold; only with `worktree`.
    #[serde(default)]
    pub(crate) keep_worktree: bool,
    /// Deploy on this host (one `fleet host add` named), by its own fleet over ssh; it then
    /// runs that host's agent command, and `repo` is a path there. Default: this machine.
    pub(crate) host: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpawnChildParams {
    /// The task.
    pub(crate) task_id: String,
    /// The agent spawning the child.
    pub(crate) parent_agent_id: String,
    /// The child's type.
    pub(crate) child_agent_type: String,
    /// What the child is to do.
    pub(crate) child_prompt: String,
    /// Claude Code's model, as for `deploy_headless_agent`.
    pub(crate) model: Option<String>,
    /// Claude Code's reasoning effort, as for `deploy_headless_agent`.
    pub(crate) effort: Option<String>,
    /// Claude Code's permission mode, as for `deploy_headless_agent`.
    pub(crate) permission_mode: Option<String>,
    /// Run the agent in its own git worktree, on a new branch fleet/<agent_id>, made and removed
    /// with the deployment; at its end the worktree is kept only if it holds uncommitted
    /// changes, the branch only if it has commits.
    #[serde(default)]
    pub(crate) worktree: bool,
    /// The repository (default: the one holding the server's working directory); only with
    /// `worktree`.
    pub(crate) repo: Option<String>,
    /// The ref to branch from (default: the repository's HEAD); only with `worktree`.
    pub(crate) base_ref: Option<String>,
    /// Keep worktree and branch when the agent ends, whatever they hold; only with `worktree`.
    #[serde(default)]
    pub(crate) keep_worktree: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskParams {
    /// The task.
    pub(crate) task_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputParams {
    /// The task.
    pub(crate) task_id: String,
    /// The agent.
    pub(crate) agent_id: String,
    /// How many lines from the end (default 50).
    pub(crate) tail: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KillParams {
    /// The task.
    pub(crate) task_id: String,
    /// The agent.
    pub(crate) agent_id: String,
    /// Why (recorded as termination_reason).
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgressParams {
    /// The task.
    pub(crate) task_id: String,
    /// The reporting agent.
    pub(crate) agent_id: String,
    /// running, working, blocked, completed, error or terminated; the last three end the agent.
    pub(crate) status: String,
    /// What is happening.
    pub(crate) message: String,
    /// Percent done, 0-100.
    #[serde(default)]
    pub(crate) progress: u8,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingParams {
    /// The task.
    pub(crate) task_id: String,
    /// The reporting agent.
    pub(crate) agent_id: String,
    /// issue, solution, insight, recommendation, ...
    pub(crate) finding_type: String,
    /// low, medium, high or critical.
    pub(crate) severity: String,
    /// The finding.
    pub(crate) message: String,
    /// Evidence: any JSON.
    #[serde(default)]
    pub(crate) data: Value,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconcileParams {
    /// Only this task.
    pub(crate) task_id: Option<String>,
    /// Report only; change nothing.
    #[serde(default)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingsParams {
    /// The task.
    pub(crate) task_id: String,
    /// Only this agent's findings.
    pub(crate) agent_id: Option<String>,
    /// Only this severity (low, medium, high, critical).
    pub(crate) severity: Option<String>,
    /// Only this type (issue, solution, insight, recommendation, ...).
    pub(crate) finding_type: Option<String>,
    /// Only the newest this many.
    pub(crate) limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResumeParams {
    /// The task.
    pub(crate) task_id: String,
    /// The ended agent whose conversation continues.
    pub(crate) agent_id: String,
    /// What to tell it next.
    pub(crate) prompt: String,
}

/// What a deploy or a spawn asks for, whichever tool names it: the one shape
/// [`super::deploy`] takes.
#[derive(Debug)]
pub(crate) struct AgentParams {
    pub(crate) task_id: String,
    pub(crate) agent_type: String,
    pub(crate) prompt: String,
    pub(crate) parent: String,
    pub(crate) model: Option<String>,
    pub(crate) effort: Option<String>,
    pub(crate) permission_mode: Option<String>,
    pub(crate) worktree: WorktreeParams,
    pub(crate) host: Option<String>,
}

/// `deploy_batch`: the members of one batch.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchParams {
    /// The task.
    pub(crate) task_id: String,
    /// "orchestrator" or the id of the agent every member is a child of.
    #[serde(default = "orchestrator")]
    pub(crate) parent: String,
    /// The members, deployed together: all Live, or none.
    pub(crate) members: Vec<BatchMemberParams>,
    /// Deploy the whole batch on this host (one `fleet host add` named), as that host's one
    /// transaction; its members then run that host's agent command, and take type, prompt,
    /// model and worktree (repo, base_ref) only. Default: this machine.
    pub(crate) host: Option<String>,
}

/// One member of a `deploy_batch`, with `deploy_headless_agent`'s fields.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchMemberParams {
    /// The agent's type (investigator, builder, fixer, ...).
    pub(crate) agent_type: String,
    /// What the agent is to do.
    pub(crate) prompt: String,
    /// Claude Code's model, as for `deploy_headless_agent`.
    pub(crate) model: Option<String>,
    /// Claude Code's reasoning effort, as for `deploy_headless_agent`.
    pub(crate) effort: Option<String>,
    /// Claude Code's permission mode, as for `deploy_headless_agent`.
    pub(crate) permission_mode: Option<String>,
    /// Run the member in its own git worktree, as for `deploy_headless_agent`.
    #[serde(default)]
    pub(crate) worktree: bool,
    /// The repository; only with `worktree`.
    pub(crate) repo: Option<String>,
    /// The ref to branch from; only with `worktree`.
    pub(crate) base_ref: Option<String>,
    /// Keep worktree and branch when the agent ends; only with `worktree`.
    #[serde(default)]
    pub(crate) keep_worktree: bool,
}

impl AgentParams {
    /// A batch member's parameters, as a deploy of its own into `task_id` under `parent`.
    pub(crate) fn member(task_id: &str, parent: &str, m: BatchMemberParams) -> Self {
        AgentParams {
            task_id: task_id.to_owned(),
            agent_type: m.agent_type,
            prompt: m.prompt,
            parent: parent.to_owned(),
            model: m.model,
            effort: m.effort,
            permission_mode: m.permission_mode,
            worktree: WorktreeParams {
                worktree: m.worktree,
                repo: m.repo,
                base_ref: m.base_ref,
                keep_worktree: m.keep_worktree,
            },
            host: None,
        }
    }
}

/// The checkout a deploy or a spawn asks for.
#[derive(Debug)]
pub(crate) struct WorktreeParams {
    pub(crate) worktree: bool,
    pub(crate) repo: Option<String>,
    pub(crate) base_ref: Option<String>,
    pub(crate) keep_worktree: bool,
}

impl From<DeployParams> for AgentParams {
    fn from(p: DeployParams) -> Self {
        AgentParams {
            task_id: p.task_id,
            agent_type: p.agent_type,
            prompt: p.prompt,
            parent: p.parent,
            model: p.model,
            effort: p.effort,
            permission_mode: p.permission_mode,
            worktree: WorktreeParams {
                worktree: p.worktree,
                repo: p.repo,
                base_ref: p.base_ref,
                keep_worktree: p.keep_worktree,
            },
            host: p.host,
        }
    }
}

impl From<SpawnChildParams> for AgentParams {
    fn from(p: SpawnChildParams) -> Self {
        AgentParams {
            task_id: p.task_id,
            agent_type: p.child_agent_type,
            prompt: p.child_prompt,
            parent: p.parent_agent_id,
            model: p.model,
            effort: p.effort,
            permission_mode: p.permission_mode,
            worktree: WorktreeParams {
                worktree: p.worktree,
                repo: p.repo,
                base_ref: p.base_ref,
                keep_worktree: p.keep_worktree,
            },
            host: None,
        }
    }
}
