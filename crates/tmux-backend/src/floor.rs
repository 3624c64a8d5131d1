//! The floor a deployment is measured against: the tmux commands the backend runs for one
//! agent, as whole command lines, built by the very functions the backend's own calls use — so
//! a benchmark that runs them raw measures exactly what the backend asks of tmux, and the two
//! cannot drift apart.

use std::ffi::OsString;

use deploy_core::SessionSpec;

use crate::{Error, TmuxBackend, cmd};

/// The command lines (program first) of one agent's tmux calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    /// `start`: the one `new-session` with the session's options and tags.
    pub start: Vec<OsString>,
    /// `probe`: the session's pane state (`confirm_live` runs it once with no grace).
    pub probe: Vec<OsString>,
    /// The session's kill by exact name (`kill` adds a `/proc` scan and checks around it).
    pub kill: Vec<OsString>,
}

impl TmuxBackend {
    /// The tmux calls of `spec`'s agent, as this backend would run them.
    pub fn floor(&self, spec: &SessionSpec) -> Result<Floor, Error> {
        let line = |args: &[String]| cmd::command_line(&self.tmux, &self.server, args);
        Ok(Floor {
            start: line(&self.start_args(spec)?),
            probe: line(&Self::probe_args(&spec.session)),
            kill: line(&Self::kill_args(&spec.session)),
        })
    }

    /// The command line of `list`: the one listing a status or a reconcile needs.
    pub fn list_floor(&self) -> Vec<OsString> {
        cmd::command_line(&self.tmux, &self.server, &Self::list_args())
    }
}
