//! What a caller asks for: one agent in one task.

use std::time::Duration;

use camino::Utf8PathBuf;

use crate::Error;
use crate::backend::AGENT_ID_ENV;
use crate::checkout::CheckoutRequest;
use crate::id::{AgentId, AgentType, TaskId};
use crate::record::Parent;

/// The startup grace when a request names none: how long an agent must stay alive before its
/// deployment counts as Live.
pub const DEFAULT_STARTUP_GRACE: Duration = Duration::from_millis(1000);

/// A request to deploy one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// The task to deploy into.
    pub task: TaskId,
    /// The agent's type.
    pub agent_type: AgentType,
    /// The prompt: any size, any UTF-8; it travels in a file.
    pub prompt: String,
    /// The parent: the orchestrator or an agent of the task.
    pub parent: Parent,
    /// The agent command as argv (`{prompt_file}` is replaced by the prompt file's path).
    pub command: Vec<String>,
    /// The working directory of the agent.
    pub workdir: Utf8PathBuf,
    /// How long the agent must stay alive to count as Live.
    pub startup_grace: Duration,
    /// Extra environment for the agent.
    pub env: Vec<(String, String)>,
    /// Whether another active agent of the same type is allowed.
    pub allow_duplicate: bool,
    /// The agent's id, when the caller chose it (to name it in the prompt); generated
    /// otherwise. It must leave room for the session prefix (`agent_<id>` ≤ 64).
    pub agent: Option<AgentId>,
    /// The agent's own checkout (a git worktree on a new branch `fleet/<agent>`), where it then
    /// runs instead of `workdir`.
    pub checkout: Option<CheckoutRequest>,
    /// The command recorded with the agent (its registry entry's `fleet_command`): what
    /// continues it later, when the caller's `command` carries additions of its own that a
    /// continuation makes anew. `None`: `command`.
    pub recorded_command: Option<Vec<String>>,
}

impl DeployRequest {
    /// A request with the orchestrator as parent, workdir `.`, the default grace, no extra
    /// environment and no duplicates.
    pub fn new(
        task: TaskId,
        agent_type: AgentType,
        prompt: impl Into<String>,
        command: Vec<String>,
    ) -> Self {
        DeployRequest {
            task,
            agent_type,
            prompt: prompt.into(),
            parent: Parent::Orchestrator,
            command,
            workdir: Utf8PathBuf::from("."),
            startup_grace: DEFAULT_STARTUP_GRACE,
            env: Vec::new(),
            allow_duplicate: false,
            agent: None,
            checkout: None,
            recorded_command: None,
        }
    }

    /// Checks what types cannot: a non-empty prompt and command, no NUL where exec forbids
    /// it, environment names that are names.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidRequest(why));
        if self.agent_type.as_str().starts_with('-') {
            return bad(format!(
                "agent type {:?} starts with '-': the agent's id, made from it, would read as an option",
                self.agent_type.as_str()
            ));
        }
        if self.prompt.trim().is_empty() {
            return bad("the prompt is empty".into());
        }
        match self.command.first() {
            None => return bad("the agent command is empty".into()),
            Some(program) if program.is_empty() => {
                return bad("the agent command's program is an empty string".into());
            }
            Some(_) => {}
        }
        if let Some(arg) = self.command.iter().find(|a| a.contains('\0')) {
            return bad(format!("agent command argument {arg:?} contains NUL"));
        }
        if let Some(c) = &self.checkout {
            if c.repo.as_str().contains('\0') || c.repo.as_str().is_empty() {
                return bad(format!("repository {:?} is not a usable path", c.repo));
            }
            if let Some(base) = c
                .base
                .as_deref()
                .filter(|b| b.is_empty() || b.contains('\0'))
            {
                return bad(format!("base ref {base:?} is not a usable ref"));
            }
        }
        if self.workdir.as_str().contains('\0') || self.workdir.as_str().is_empty() {
            return bad(format!("workdir {:?} is not a usable path", self.workdir));
        }
        for (name, value) in &self.env {
            let valid_name = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                return bad(format!(
                    "environment name {name:?} is not a name ([A-Za-z_][A-Za-z0-9_]*)"
                ));
            }
            if name == AGENT_ID_ENV {
                return bad(format!("{AGENT_ID_ENV} is set by fleet"));
            }
            if value.contains('\0') {
                return bad(format!("environment value of {name} contains NUL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DeployRequest {
        DeployRequest::new(
            TaskId::parse("T").unwrap(),
            AgentType::parse("x").unwrap(),
            "do it",
            vec!["agent".into()],
        )
    }

    #[test]
    fn rejects_what_cannot_run() {
        type Mutation = Box<dyn Fn(&mut DeployRequest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.prompt = " \n".into()), "the prompt is empty"),
            (
                Box::new(|r| r.command.clear()),
                "the agent command is empty",
            ),
            (
                Box::new(|r| r.command = vec![String::new()]),
                "empty string",
            ),
            (Box::new(|r| r.command.push("a\0".into())), "contains NUL"),
            (
                Box::new(|r| r.agent_type = AgentType::parse("-rf").unwrap()),
                "starts with '-'",
            ),
            (
                Box::new(|r| r.env.push(("1X".into(), "v".into()))),
                "is not a name",
            ),
            (
                Box::new(|r| r.env.push(("A=B".into(), "v".into()))),
                "is not a name",
            ),
            (
                Box::new(|r| r.env.push((AGENT_ID_ENV.into(), "v".into()))),
                "set by fleet",
            ),
        ];
        for (mutate, why) in cases {
            let mut r = req();
            mutate(&mut r);
            let err = r.validate().unwrap_err().to_string();
            assert!(
                err.starts_with("invalid request: ") && err.contains(why),
                "{err}"
            );
        }
        assert!(req().validate().is_ok());
    }
}
