//! An agent's own checkout of a repository: a worktree on a branch `fleet/<agent>`, made inside
//! the deployment and owned by it like its session.
//!
//! The intent names the checkout ([`CheckoutPlan`]) before it exists; [`PromptWritten`]
//! owns it through a guard, so any failure, drop or SIGKILL + reconcile removes the worktree and
//! deletes the branch. When the agent ends, [`Checkouts::retire`] keeps what holds work — a
//! worktree with uncommitted changes, a branch with commits beyond its base — and removes the
//! rest. deploy-core never runs git: the `git-checkout` crate implements [`Checkouts`], testkit
//! fakes it.
//!
//! Names are derived, never read from a file: the branch from the agent id, the worktree's
//! path from the layout. So a rollback or reconcile can only ever remove `fleet/<agent>` and
//! `<root>/<task>/worktrees/<agent>` — what fleet made.
//!
//! [`PromptWritten`]: crate::PromptWritten

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::id::{AgentId, TaskId};
use crate::layout::Layout;
use crate::record::AgentRecord;

/// The prefix of every branch fleet makes.
pub const BRANCH_PREFIX: &str = "fleet/";

/// The field of an agent's registry entry that records its checkout (the Python server ignores
/// it).
pub const CHECKOUT_FIELD: &str = "fleet_worktree";

/// What a request asks for: a checkout of `repo` at `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// The repository (any directory inside it).
    pub repo: Utf8PathBuf,
    /// The ref to branch from; the repository's `HEAD` when `None`.
    pub base: Option<String>,
    /// Keep worktree and branch when the agent ends, whatever they hold.
    pub keep: bool,
}

/// A checkout as the intent names it, before it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutPlan {
    /// The repository, as requested.
    pub repo: Utf8PathBuf,
    /// The ref to branch from, as requested (`HEAD` by default).
    pub base: String,
    /// `fleet/<agent>`.
    pub branch: String,
    /// `<root>/<task>/worktrees/<agent>`.
    pub path: Utf8PathBuf,
    /// Keep both when the agent ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep: bool,
}

impl CheckoutPlan {
    /// The checkout of `agent` of `task`, as `request` asks: its names derived from the ids.
    pub fn for_agent(
        layout: &Layout,
        task: &TaskId,
        agent: &AgentId,
        request: &CheckoutRequest,
    ) -> Self {
        CheckoutPlan {
            repo: request.repo.clone(),
            base: request.base.clone().unwrap_or_else(|| "HEAD".to_owned()),
            branch: branch_of(agent),
            path: layout.worktree(task, agent),
            keep: request.keep,
        }
    }
}

/// `fleet/<agent>`.
pub fn branch_of(agent: &AgentId) -> String {
    format!("{BRANCH_PREFIX}{agent}")
}

/// Where a checkout is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckoutState {
    /// Its agent may still work in it.
    Active,
    /// The agent ended leaving uncommitted changes: the worktree (and its branch) are kept.
    KeptDirty,
    /// The agent ended clean with commits: the worktree is removed, the branch kept.
    BranchOnly,
    /// Kept whole on request (`--keep-worktree`).
    Kept,
    /// The agent ended with no work: worktree and branch are gone.
    Removed,
}

impl CheckoutState {
    /// The word shown and written.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutState::Active => "active",
            CheckoutState::KeptDirty => "kept-dirty",
            CheckoutState::BranchOnly => "branch-only",
            CheckoutState::Kept => "kept",
            CheckoutState::Removed => "removed",
        }
    }
}

impl std::fmt::Display for CheckoutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checkout that exists, as recorded with its agent ([`CHECKOUT_FIELD`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// The repository's top directory.
    pub repo: Utf8PathBuf,
    /// The worktree.
    pub path: Utf8PathBuf,
    /// The branch.
    pub branch: String,
    /// The commit it was branched from.
    pub base: String,
    /// The ref that commit was named by.
    pub base_ref: String,
    /// Where it is in its life.
    pub state: CheckoutState,
    /// Keep both when the agent ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep: bool,
}

impl Checkout {
    /// The checkout recorded with `record`, if it has one.
    pub fn of(record: &AgentRecord) -> Option<Checkout> {
        record.extra.parse(CHECKOUT_FIELD)
    }

    /// As recorded in the registry.
    pub fn to_value(&self) -> Value {
        // A struct of strings and an enum: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A checkout fleet made, as found in a repository ([`Checkouts::found`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCheckout {
    /// The agent its branch names.
    pub agent: AgentId,
    /// `fleet/<agent>`, if the branch exists.
    pub branch: Option<String>,
    /// Its worktree, if one under the workspace is on that branch (or registered at the
    /// agent's path).
    pub path: Option<Utf8PathBuf>,
}

/// Makes and removes agents' checkouts.
///
/// Contract for implementations: `create` makes the branch and the worktree and on `Err` leaves
/// neither (a branch that already existed is an error, and left alone); `discard` removes both
/// whatever they hold, is idempotent, and first ends whatever a killed `create` may still be
/// running; no method touches a branch outside [`BRANCH_PREFIX`] or a worktree it was not
/// given.
pub trait Checkouts: Send + Sync {
    /// Makes the branch from the plan's base and the worktree on it.
    fn create(&self, plan: &CheckoutPlan) -> Result<Checkout, Error>;
    /// Removes the worktree at `path` and deletes `branch` in `repo` (each if given), whatever
    /// they hold: a rollback. `Ok(false)` when neither existed.
    fn discard(
        &self,
        repo: &Utf8Path,
        branch: Option<&str>,
        path: Option<&Utf8Path>,
    ) -> Result<bool, Error>;
    /// The end of the agent's life: keeps a worktree with uncommitted changes, removes a clean
    /// one, keeps the branch if it has commits beyond its base and deletes it otherwise (all
    /// kept when `checkout.keep`). Returns the new state.
    fn retire(&self, checkout: &Checkout) -> Result<CheckoutState, Error>;
    /// Every checkout fleet made in `repo`: branches under [`BRANCH_PREFIX`], with their
    /// worktrees under `workspace` (after pruning worktrees whose directory was deleted).
    fn found(&self, repo: &Utf8Path, workspace: &Utf8Path) -> Result<Vec<FoundCheckout>, Error>;
    /// The top directory of the repository that holds `dir`; `None` when it is in none (where
    /// a checkout's repository is found when the caller names none).
    fn repository_of(&self, dir: &Utf8Path) -> Result<Option<Utf8PathBuf>, Error>;
    /// The agent's changes against its base, committed and uncommitted (`stat`: a summary),
    /// read without touching the checkout; `None` when neither its worktree nor its branch is
    /// left.
    fn diff(&self, checkout: &Checkout, stat: bool) -> Result<Option<String>, Error>;
}
