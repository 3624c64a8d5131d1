//! One module per command.

pub(crate) mod attach;
pub(crate) mod deploy;
pub(crate) mod host;
pub(crate) mod kill;
pub(crate) mod logs;
pub(crate) mod migrate;
pub(crate) mod reconcile;
pub(crate) mod remote;
pub(crate) mod resume;
pub(crate) mod status;
pub(crate) mod task;
pub(crate) mod wait;
pub(crate) mod worktree;
