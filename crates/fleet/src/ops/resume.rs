//! Resuming an ended agent's conversation: a new, ordinary transactional deployment in the same
//! task, of the same type and parent, started the way the ended agent was — its own command
//! line, recorded at its deployment, plus Claude Code's `--resume <session_id>` — in the
//! directory it was deployed in, and, as any Claude Code agent, with its own new identity in
//! front of the prompt.
//!
//! An agent that ran in its own worktree: when the worktree is still there (kept: it holds
//! uncommitted work, or was kept as asked), the conversation continues in it; when it was
//! removed at the agent's end, the new agent gets a worktree of its own branched from the
//! ended agent's branch (its commits carried on), and Claude Code's transcript of the
//! conversation is copied to where Claude Code looks for it from that directory.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{AgentId, Checkout, TaskId};

use super::claude;
use super::deploy::{self, DeployOptions, Deployed, WorktreeOptions};
use crate::config::Services;
use crate::error::Error;

/// The deployment that continues `agent`'s conversation, told `prompt`. Refused, naming the
/// agent, while it still runs, when its output shows no session to resume, when it was not
/// Claude Code, or while another agent already continues the conversation.
pub(crate) fn options(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    prompt: String,
) -> Result<(DeployOptions, Option<CopiedTranscript>), Error> {
    let snapshot = services.registry.read_task(task)?;
    let record = super::agent_record(services, task, agent)?;
    if record.status.is_active() {
        return Err(Error::Refused(format!(
            "agent {agent} is still {}: resume continues an ended agent's conversation (wait for it, or kill it)",
            record.status
        )));
    }
    let seen = super::activity::of(services, task, &record);
    let Some(session) = seen.activity.session_id else {
        return Err(Error::Refused(format!(
            "agent {agent} has no session id to resume: its output shows no Claude Code session"
        )));
    };
    let resume_flag = format!("--resume={session}");
    if let Some(other) = snapshot.agents.iter().find(|a| {
        a.status.is_active() && a.launch().is_some_and(|l| l.command.contains(&resume_flag))
    }) {
        return Err(Error::Refused(format!(
            "agent {} already continues agent {agent}'s conversation {session}: one continuation at a time",
            other.id
        )));
    }
    let launch = record.launch();
    let mut command = match &launch {
        Some(l) => l.command.clone(),
        None => services.config.agent_cmd.clone(),
    };
    if !claude::is_claude(&command) {
        return Err(Error::Refused(format!(
            "resume continues a Claude Code conversation, but agent {agent} ran {:?}",
            command.first().map_or("", String::as_str)
        )));
    }
    command.retain(|a| !a.starts_with("--resume"));
    command.push(resume_flag);
    let mut options = DeployOptions::new(task.clone(), record.agent_type.clone(), prompt);
    options.parent = record.parent.clone();
    options.command = Some(command);
    options.allow_duplicate = true;
    let Some(launch) = launch else {
        // Deployed before fleet recorded how: where fleet runs.
        return Ok((options, None));
    };
    let mut copied = None;
    match Checkout::of(&record) {
        Some(checkout) if !launch.workdir.is_dir() => {
            // Its worktree was removed at its end: a new one from its branch, with the
            // conversation's transcript where Claude Code looks for it from there.
            let new = AgentId::generate(&record.agent_type)?;
            let path = services.layout.worktree(task, &new);
            copied = Some(Transcript::of(&session, &launch.workdir)?.copy_for(&path)?);
            options.agent = Some(new);
            options.workdir = Some(checkout.repo.clone());
            options.worktree = Some(WorktreeOptions {
                repo: Some(checkout.repo.clone()),
                base: Some(checkout.branch.clone()),
                keep: false,
            });
        }
        _ if launch.workdir.is_dir() => options.workdir = Some(launch.workdir),
        _ => {
            return Err(Error::Refused(format!(
                "agent {agent} ran in {}, which no longer exists: its conversation cannot continue there",
                launch.workdir
            )));
        }
    }
    Ok((options, copied))
}

/// Claude Code's transcript of a conversation: `<config>/projects/<dir>/<session>.jsonl`,
/// where `<config>` is `$CLAUDE_CONFIG_DIR` or `~/.claude` and `<dir>` the directory it ran
/// in, every character but ASCII letters and digits made `-`.
struct Transcript {
    projects: Utf8PathBuf,
    file: String,
    from: Utf8PathBuf,
}

impl Transcript {
    fn of(session: &str, workdir: &Utf8Path) -> Result<Transcript, Error> {
        let config = match (std::env::var("CLAUDE_CONFIG_DIR"), std::env::var("HOME")) {
            (Ok(dir), _) if !dir.is_empty() => Utf8PathBuf::from(dir),
            (_, Ok(home)) if !home.is_empty() => Utf8PathBuf::from(home).join(".claude"),
            _ => {
                return Err(Error::Environment(
                    "neither CLAUDE_CONFIG_DIR nor HOME is set: cannot find Claude Code's conversations".into(),
                ));
            }
        };
        let projects = config.join("projects");
        let file = format!("{session}.jsonl");
        let from = projects.join(project_dir(workdir)).join(&file);
        if !from.is_file() {
            return Err(Error::Refused(format!(
                "Claude Code's transcript of conversation {session} is not at {from}: it cannot be resumed"
            )));
        }
        Ok(Transcript {
            projects,
            file,
            from,
        })
    }

    /// Copies the transcript to where Claude Code looks for it from `workdir`.
    fn copy_for(&self, workdir: &Utf8Path) -> Result<CopiedTranscript, Error> {
        let dir = self.projects.join(project_dir(workdir));
        let made_dir = !dir.exists();
        deploy_core::private::create_dir_all(&dir)?;
        let copied = CopiedTranscript {
            file: dir.join(&self.file),
            dir: made_dir.then_some(dir),
        };
        fs_err::copy(&self.from, &copied.file)?;
        Ok(copied)
    }
}

/// A transcript copied for a resumed agent: removed on drop — the resumption failed — unless
/// kept, once the agent is Live and continues the conversation in it.
#[derive(Debug)]
#[must_use]
pub(crate) struct CopiedTranscript {
    file: Utf8PathBuf,
    /// The project directory, when the copy made it.
    dir: Option<Utf8PathBuf>,
}

impl CopiedTranscript {
    /// The resumed agent is Live: the transcript is its conversation now.
    pub(crate) fn keep(mut self) {
        self.dir = None;
        self.file = Utf8PathBuf::new();
    }
}

impl Drop for CopiedTranscript {
    fn drop(&mut self) {
        if self.file.as_str().is_empty() {
            return;
        }
        if let Err(e) = fs_err::remove_file(&self.file) {
            tracing::warn!("cannot remove the transcript copied for a failed resume: {e}");
        }
        if let Some(dir) = &self.dir
            && let Err(e) = fs_err::remove_dir(dir)
        {
            tracing::warn!("cannot remove the project directory made for a failed resume: {e}");
        }
    }
}

/// The name of Claude Code's project directory for `workdir`.
fn project_dir(workdir: &Utf8Path) -> String {
    workdir
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Resumes `agent` (see [`options`]); the MCP server's `resume_agent`.
pub(crate) fn run(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
    prompt: String,
) -> Result<Deployed, Error> {
    let (options, copied) = options(services, task, agent, prompt)?;
    let deployed = deploy::run(services, options, &|| None)?;
    if let Some(copied) = copied {
        copied.keep();
    }
    Ok(deployed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_project_directory_names() {
        assert_eq!(project_dir(Utf8Path::new("/tmp/explore")), "-tmp-explore");
        assert_eq!(
            project_dir(Utf8Path::new("/w/TASK-1/worktrees/a_b.c")),
            "-w-TASK-1-worktrees-a-b-c"
        );
    }
}
