//! What an agent is told about itself and how to report, in front of its assignment.

use deploy_core::{AgentId, AgentType, Parent, TaskSnapshot};

/// The agent's identity (id, type, task, parent, depth) and how to report progress and findings
/// and spawn children through fleet's MCP tools, then its assignment.
pub(crate) fn preamble(
    agent: &AgentId,
    agent_type: &AgentType,
    task: &TaskSnapshot,
    parent: &Parent,
    prompt: &str,
) -> String {
    let depth = match parent {
        Parent::Orchestrator => Some(1),
        Parent::Agent(p) => task.agent(p).map(|a| a.depth + 1),
    };
    let depth = depth.map_or_else(|| "?".to_owned(), |d| d.to_string());
    let t = &task.id;
    format!(
        "You are agent {agent}, of type {agent_type}, in task {t} (\"{desc}\"), deployed by fleet.\n\
         Your parent is {parent}; you are at depth {depth} of at most {max_depth}.\n\
         \n\
         Your assignment:\n\
         {prompt}\n\
         \n\
         Report through fleet's MCP tools, always with task_id=\"{t}\" and agent_id=\"{agent}\":\n\
         - update_agent_progress(task_id, agent_id, status, message, progress): report as you work\n\
           (status \"working\" or \"blocked\", progress 0-100), and once at the end with status\n\
           \"completed\" (or \"error\" with what went wrong). The final report ends your session.\n\
         - report_agent_finding(task_id, agent_id, finding_type, severity, message, data): each\n\
           significant finding, with its evidence in data.\n\
         - spawn_child_agent(task_id, parent_agent_id=\"{agent}\", child_agent_type, child_prompt):\n\
           hand a focused sub-task to a new agent (at most {max_depth} levels deep).\n",
        desc = task.description,
        max_depth = task.limits.max_depth,
    )
}
