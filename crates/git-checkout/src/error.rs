//! The one error type of git-checkout: every message names the repository, ref or path.

use camino::Utf8PathBuf;

/// What can go wrong making, inspecting or removing a checkout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `git` could not be run at all.
    #[error("cannot run git (is it installed and on PATH?): {0}")]
    NoGit(#[source] std::io::Error),
    /// The path is not inside a git repository.
    #[error("{0} is not a git repository")]
    NotARepository(Utf8PathBuf),
    /// The repository has no working tree.
    #[error("{0} is a bare repository: a worktree needs a repository with a working tree")]
    Bare(Utf8PathBuf),
    /// The repository's HEAD names no commit yet.
    #[error("repository {0} has no commits: commit something first, or name a base with --base")]
    NoCommits(Utf8PathBuf),
    /// The base ref does not name a commit.
    #[error("base ref {base:?} does not name a commit in repository {repo}")]
    NoSuchBase {
        /// The repository.
        repo: Utf8PathBuf,
        /// The ref given.
        base: String,
    },
    /// The branch to create exists already; it was left as it is.
    #[error("branch {branch} already exists in repository {repo}; it was left as it is")]
    BranchExists {
        /// The repository.
        repo: Utf8PathBuf,
        /// The branch.
        branch: String,
    },
    /// The repository recorded for a checkout is gone.
    #[error("repository {0} moved or vanished")]
    RepositoryGone(Utf8PathBuf),
    /// A git command failed.
    #[error("`git {args}` in {dir} failed: {stderr}")]
    Git {
        /// Where it ran.
        dir: Utf8PathBuf,
        /// Its arguments, joined by spaces.
        args: String,
        /// The first line of what it printed on stderr.
        stderr: String,
    },
    /// A git command was stopped: it ran past its bound (a hook that hangs), or a signal
    /// interrupted the deployment; it and its hooks were killed.
    #[error(
        "{args} {why} (a git command may run {after:?}; FLEET_GIT_TIMEOUT_MS): it and its hooks were killed"
    )]
    Stopped {
        /// The command.
        args: String,
        /// `timed out` or `interrupted`.
        why: &'static str,
        /// Its bound.
        after: std::time::Duration,
    },
    /// A command made by git printed something that is not UTF-8 where a path was expected.
    #[error("git printed a path that is not UTF-8 in {0}")]
    NotUtf8(Utf8PathBuf),
    /// A checkout names a worktree outside the workspace: it is not fleet's to remove.
    #[error("worktree {path} is outside workspace {workspace}: left alone")]
    Outside {
        /// The worktree named.
        path: Utf8PathBuf,
        /// The workspace.
        workspace: Utf8PathBuf,
    },
    /// A file operation failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<Error> for deploy_core::Error {
    fn from(e: Error) -> Self {
        deploy_core::Error::Checkout(Box::new(e))
    }
}
