//! Resuming an ended agent's conversation: a new, ordinary transactional deployment in the same
//! task, of the same type and parent, in the directory the conversation ran in, with Claude
//! Code's `--resume <session_id>` — and, as any Claude Code agent, its own new identity in front
//! of the prompt.

use camino::Utf8PathBuf;
use deploy_core::{AgentId, TaskId};

use super::deploy::{self, DeployOptions, Deployed};
use crate::config::Services;
use crate::error::Error;

/// The deployment that continues `agent`'s conversation, told `prompt`. Refused, naming the
/// agent, while it still runs, when its output shows no session to resume, or when the agent
/// command is not Claude Code.
pub(crate) fn options(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    prompt: String,
) -> Result<DeployOptions, Error> {
    let record = super::agent_record(services, task, agent)?;
    if record.status.is_active() {
        return Err(Error::Invalid(format!(
            "agent {agent} is still {}: resume continues an ended agent's conversation (wait for it, or kill it)",
            record.status
        )));
    }
    let seen = super::activity::of(services, task, &record);
    let Some(session) = seen.activity.session_id else {
        return Err(Error::Invalid(format!(
            "agent {agent} has no session id to resume: its output shows no Claude Code session"
        )));
    };
    let mut command = services.config.agent_cmd.clone();
    if !super::claude::is_claude(&command) {
        return Err(Error::Invalid(format!(
            "resume continues a Claude Code conversation, but the agent command runs {:?}",
            command.first().map_or("", String::as_str)
        )));
    }
    command.push(format!("--resume={session}"));
    let mut options = DeployOptions::new(task.clone(), record.agent_type.clone(), prompt);
    options.parent = record.parent.clone();
    options.command = Some(command);
    options.allow_duplicate = true;
    options.workdir = seen
        .context
        .cwd
        .map(Utf8PathBuf::from)
        .filter(|d| d.is_dir());
    Ok(options)
}

/// Resumes `agent` (see [`options`]); the MCP server's `resume_agent`.
pub(crate) fn run(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    prompt: String,
) -> Result<Deployed, Error> {
    deploy::run(services, options(services, task, agent, prompt)?, &|| None)
}
