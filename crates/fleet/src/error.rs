//! Everything a fleet command can fail with, and how a failure reaches the user: one line on
//! stderr (and a JSON object on stdout under `--json`), exit 1. Usage errors are clap's, exit 2,
//! printed whole by `main`.

use deploy_core::{BatchFailure, CleanupOutcome, CleanupReport, DeployFailure};
use serde_json::json;

/// A failed fleet operation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A value given to fleet is wrong in a way its syntax could not show (a workdir that does
    /// not exist, an unreadable prompt file, a bad environment variable).
    #[error("{0}")]
    Invalid(String),
    /// A valid request that what exists refuses: resuming an agent that still runs, acting
    /// for another agent, a model a tool does not deploy, bypassPermissions as root.
    #[error("{0}")]
    Refused(String),
    /// fleet's own environment failed it: its binary, a signal handler, a program it runs to
    /// check a choice.
    #[error("{0}")]
    Environment(String),
    /// deploy-core or one of its services: unknown ids, limits, corrupt registries, tmux.
    #[error(transparent)]
    Core(#[from] deploy_core::Error),
    /// A deployment failed (and rolled back).
    #[error("{}", .0.headline())]
    Deploy(Box<DeployFailure>),
    /// A batch failed (and every member rolled back).
    #[error("{}", .0.headline())]
    Batch(Box<BatchFailure>),
    /// A file error (fs-err names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file an agent controls (its log, progress or findings) is not one fleet reads: a FIFO,
    /// a symlink, a device — or reading it failed.
    #[error("cannot use {path}: {source}")]
    AgentFile {
        /// The file.
        path: camino::Utf8PathBuf,
        /// What was wrong.
        source: std::io::Error,
    },
    /// A signal (SIGINT, SIGTERM) stopped the operation, which failed as it says: exit
    /// 128 + the signal.
    #[error("{source}")]
    Signalled {
        /// The signal.
        signal: i32,
        /// How the operation failed.
        source: Box<Error>,
    },
    /// A host could not be used or reached (the host list, ssh).
    #[error(transparent)]
    Host(#[from] ssh_hosts::Error),
    /// A command run on another host failed there: the remote fleet's own line, exit status
    /// and JSON.
    #[error("on host {host}: {line}")]
    Remote {
        /// The host.
        host: deploy_core::HostName,
        /// The remote's exit status.
        code: u8,
        /// The remote's line.
        line: String,
        /// The remote's JSON answer, if it gave one.
        json: Option<serde_json::Value>,
    },
    /// The MCP server could not run.
    #[error("mcp server: {0}")]
    Mcp(String),
    /// `fleet wait` gave up: exit 124, as timeout(1).
    #[error("{0}")]
    TimedOut(String),
    /// `fleet wait` saw agents end otherwise than completed: exit 1, after their summaries
    /// were printed (under `--json` they are the output; no error object follows).
    #[error("{0}")]
    NotCompleted(String),
}

impl From<DeployFailure> for Error {
    fn from(f: DeployFailure) -> Self {
        Error::Deploy(Box::new(f))
    }
}

impl From<BatchFailure> for Error {
    fn from(f: BatchFailure) -> Self {
        Error::Batch(Box::new(f))
    }
}

/// What rollbacks left, one `resource: why` each.
fn unreleased<'a>(reports: impl IntoIterator<Item = &'a CleanupReport>) -> Vec<String> {
    reports
        .into_iter()
        .flat_map(CleanupReport::unreleased)
        .map(|e| match &e.outcome {
            CleanupOutcome::NotReleased(why) => format!("{}: {why}", e.resource),
            _ => e.resource.to_string(),
        })
        .collect()
}

impl Error {
    /// The exit status: 128 + the signal for a deployment a signal interrupted (130 for
    /// SIGINT, 143 for SIGTERM), 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Deploy(f) => interrupted(&f.cause),
            Error::Batch(f) => interrupted(&f.failure.cause),
            Error::TimedOut(_) => 124,
            Error::Remote { code, .. } => *code,
            Error::Signalled { signal, .. } => u8::try_from(128 + signal).unwrap_or(1),
            _ => 1,
        }
    }

    /// One line: the message, and for a deployment whose rollback left something, what and why.
    pub(crate) fn line(&self) -> String {
        if let Error::Signalled { source, .. } = self {
            return source.line();
        }
        let mut line = self.to_string();
        let left = match self {
            Error::Deploy(f) => unreleased([&f.cleanup]),
            Error::Batch(f) => unreleased(f.members.iter().map(|(_, c)| c)),
            _ => Vec::new(),
        };
        if !left.is_empty() {
            line.push_str(&format!(
                "; rollback incomplete, run `fleet reconcile`: {}",
                left.join("; ")
            ));
        }
        line.replace('\n', " ")
    }

    /// Whether the output already said it all (under `--json`, no error object follows).
    pub(crate) fn already_reported(&self) -> bool {
        matches!(self, Error::NotCompleted(_))
    }

    /// The failure as JSON: `{"error": {"message", "step"?}, "cleanup"?}`.
    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            Error::Signalled { source, .. } => source.json(),
            Error::Remote {
                host,
                json: Some(serde_json::Value::Object(answer)),
                ..
            } if answer.contains_key("error") => {
                let mut answer = answer.clone();
                answer.insert("host".into(), json!(host));
                if let Some(serde_json::Value::Object(error)) = answer.get_mut("error") {
                    error.insert("message".into(), json!(self.to_string()));
                }
                serde_json::Value::Object(answer)
            }
            Error::Deploy(f) => json!({
                "error": { "step": f.step, "message": self.to_string() },
                "cleanup": f.cleanup,
            }),
            Error::Batch(f) => json!({
                "error": {
                    "step": f.failure.step,
                    "agent_id": f.failure.agent,
                    "message": self.to_string(),
                },
                "batch_id": f.batch,
                "members": f.members.iter().map(|(agent, cleanup)| json!({
                    "agent_id": agent,
                    "cleanup": cleanup,
                })).collect::<Vec<_>>(),
            }),
            _ => json!({ "error": { "message": self.to_string() } }),
        }
    }
}

/// 128 + the signal for a deployment a signal interrupted, 1 for any other failure.
fn interrupted(cause: &deploy_core::Error) -> u8 {
    match cause {
        deploy_core::Error::Interrupted { signal } => u8::try_from(128 + signal).unwrap_or(1),
        _ => 1,
    }
}
