//! What a failed deployment reports: the step, the cause, and what its rollback did.

use std::fmt;

use camino::Utf8PathBuf;
use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::Error;
use crate::id::{AgentId, SessionName, TaskId};

/// A step of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Checking the request itself.
    Validate,
    /// Reading the task and checking its limits before any work.
    Precheck,
    /// Writing the intent record.
    WriteIntent,
    /// Making the agent's checkout (branch and worktree).
    Checkout,
    /// Writing the prompt file.
    WritePrompt,
    /// Starting the session.
    StartSession,
    /// Registering the agent under the registry lock.
    Register,
    /// Letting the registered agent run.
    OpenGate,
    /// Checking the agent is alive after its startup grace.
    ConfirmLive,
    /// Deleting the intent, which makes the deployment Live.
    Commit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Validate => "validate request",
            Step::Precheck => "check limits",
            Step::WriteIntent => "write intent",
            Step::Checkout => "make worktree",
            Step::WritePrompt => "write prompt",
            Step::StartSession => "start session",
            Step::Register => "register",
            Step::OpenGate => "open gate",
            Step::ConfirmLive => "confirm live",
            Step::Commit => "commit",
        })
    }
}

/// A resource a deployment owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The agent's entries in the task registry and the global index.
    Registration {
        /// The task.
        task: TaskId,
        /// The agent.
        agent: AgentId,
    },
    /// The agent's session and processes.
    Session(SessionName),
    /// The prompt file.
    PromptFile(Utf8PathBuf),
    /// The agent's checkout: its worktree and branch.
    Checkout {
        /// The branch, `fleet/<agent>`.
        branch: String,
        /// The worktree.
        path: Utf8PathBuf,
    },
    /// The intent record.
    Intent(AgentId),
}

impl Resource {
    /// A short word for the kind of resource (`registration`, `session`, `prompt_file`,
    /// `worktree`, `intent`).
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Registration { .. } => "registration",
            Resource::Session(_) => "session",
            Resource::PromptFile(_) => "prompt_file",
            Resource::Checkout { .. } => "worktree",
            Resource::Intent(_) => "intent",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Registration { task, agent } => {
                write!(f, "registration of {agent} in task {task}")
            }
            Resource::Session(name) => write!(f, "session {name}"),
            Resource::PromptFile(path) => write!(f, "prompt file {path}"),
            Resource::Checkout { branch, path } => write!(f, "worktree {path} and branch {branch}"),
            Resource::Intent(agent) => write!(f, "intent of {agent}"),
        }
    }
}

/// What happened to one resource in a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupOutcome {
    /// It existed and is gone now.
    Released,
    /// It was already gone (reconcile of a deployment that had not created it yet).
    AlreadyGone,
    /// It could not be released; the error says why. It is still there.
    NotReleased(String),
}

/// One line of a [`CleanupReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupEntry {
    /// The resource.
    pub resource: Resource,
    /// What happened to it.
    pub outcome: CleanupOutcome,
}

impl Serialize for CleanupEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("CleanupEntry", 4)?;
        st.serialize_field("kind", self.resource.kind())?;
        st.serialize_field("resource", &self.resource.to_string())?;
        let (outcome, error) = match &self.outcome {
            CleanupOutcome::Released => ("released", None),
            CleanupOutcome::AlreadyGone => ("already_gone", None),
            CleanupOutcome::NotReleased(e) => ("not_released", Some(e.as_str())),
        };
        st.serialize_field("outcome", outcome)?;
        st.serialize_field("error", &error)?;
        st.end()
    }
}

/// Every resource a rollback dealt with, in the order it dealt with them (reverse creation).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct CleanupReport {
    /// The lines.
    pub entries: Vec<CleanupEntry>,
}

impl CleanupReport {
    /// Whether every resource is gone.
    pub fn is_clean(&self) -> bool {
        self.unreleased().next().is_none()
    }

    /// The resources still there.
    pub fn unreleased(&self) -> impl Iterator<Item = &CleanupEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.outcome, CleanupOutcome::NotReleased(_)))
    }
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("cleanup: nothing to release");
        }
        f.write_str("cleanup:")?;
        for e in &self.entries {
            match &e.outcome {
                CleanupOutcome::Released => write!(f, "\n  {}: released", e.resource)?,
                CleanupOutcome::AlreadyGone => write!(f, "\n  {}: already gone", e.resource)?,
                CleanupOutcome::NotReleased(err) => {
                    write!(f, "\n  {}: NOT RELEASED: {err}", e.resource)?
                }
            }
        }
        Ok(())
    }
}

/// A deployment that failed. It has already rolled back everything it owned; [`cleanup`]
/// says how that went. A failed cleanup never replaces [`cause`].
///
/// [`cleanup`]: DeployFailure::cleanup
/// [`cause`]: DeployFailure::cause
#[derive(Debug)]
pub struct DeployFailure {
    /// The step that failed.
    pub step: Step,
    /// The task.
    pub task: TaskId,
    /// The agent, once it had an id.
    pub agent: Option<AgentId>,
    /// Why the step failed (boxed to keep `Result<_, DeployFailure>` small).
    pub cause: Box<Error>,
    /// What the rollback did.
    pub cleanup: CleanupReport,
}

impl DeployFailure {
    /// One line: which deployment failed, at which step, and why — with a dead agent's last
    /// output folded in (` | ` between lines). The cleanup is left to the full Display.
    pub fn headline(&self) -> String {
        let cause = self.cause.to_string();
        let folded: Vec<&str> = cause.lines().map(str::trim).collect();
        format!("{}: {}", self.subject(), folded.join(" "))
    }

    fn subject(&self) -> String {
        match &self.agent {
            Some(agent) => format!(
                "deploy of {agent} in task {} failed at step `{}`",
                self.task, self.step
            ),
            None => format!(
                "deploy into task {} failed at step `{}`",
                self.task, self.step
            ),
        }
    }
}

impl fmt::Display for DeployFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n{}", self.subject(), self.cause, self.cleanup)
    }
}

impl std::error::Error for DeployFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}
