//! In-memory checkouts: branches and worktrees in a map, with the work an agent may leave.

use std::collections::BTreeMap;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::checkout::BRANCH_PREFIX;
use deploy_core::{
    AgentId, Checkout, CheckoutPlan, CheckoutState, Checkouts, Error, FoundCheckout,
};

use crate::lock;

/// One fake branch, and its worktree if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCheckout {
    /// Its worktree, while it exists.
    pub path: Option<Utf8PathBuf>,
    /// Its worktree holds uncommitted changes.
    pub dirty: bool,
    /// Commits beyond its base.
    pub commits: u32,
}

/// Branches by (repository, branch). A base ref that names no commit is one starting with
/// `missing`; a repository whose path starts with `/gone` has vanished.
#[derive(Debug, Default)]
pub struct FakeCheckouts {
    branches: Mutex<BTreeMap<(Utf8PathBuf, String), FakeCheckout>>,
}

impl FakeCheckouts {
    /// No branches.
    pub fn new() -> Self {
        FakeCheckouts::default()
    }

    /// Every branch, with its worktree.
    pub fn branches(&self) -> BTreeMap<(Utf8PathBuf, String), FakeCheckout> {
        lock(&self.branches).clone()
    }

    /// Whether there is no branch.
    pub fn is_empty(&self) -> bool {
        lock(&self.branches).is_empty()
    }

    /// The agent works: `dirty` uncommitted changes, `commits` commits.
    pub fn work(&self, repo: &Utf8Path, branch: &str, dirty: bool, commits: u32) {
        if let Some(b) = lock(&self.branches).get_mut(&(repo.to_owned(), branch.to_owned())) {
            b.dirty = dirty;
            b.commits = commits;
        }
    }

    /// A branch the user made, with no worktree.
    pub fn add_branch(&self, repo: &Utf8Path, branch: &str) {
        lock(&self.branches).insert(
            (repo.to_owned(), branch.to_owned()),
            FakeCheckout {
                path: None,
                dirty: false,
                commits: 0,
            },
        );
    }
}

fn gone(repo: &Utf8Path) -> Result<(), Error> {
    if repo.as_str().starts_with("/gone") {
        return Err(Error::Checkout(
            format!("repository {repo} moved or vanished").into(),
        ));
    }
    Ok(())
}

impl Checkouts for FakeCheckouts {
    fn create(&self, plan: &CheckoutPlan) -> Result<Checkout, Error> {
        gone(&plan.repo)?;
        if plan.base.starts_with("missing") {
            return Err(Error::Checkout(
                format!("base ref {:?} does not name a commit", plan.base).into(),
            ));
        }
        let mut branches = lock(&self.branches);
        let key = (plan.repo.clone(), plan.branch.clone());
        if branches.contains_key(&key) {
            return Err(Error::Checkout(
                format!("branch {} already exists", plan.branch).into(),
            ));
        }
        branches.insert(
            key,
            FakeCheckout {
                path: Some(plan.path.clone()),
                dirty: false,
                commits: 0,
            },
        );
        Ok(Checkout {
            repo: plan.repo.clone(),
            path: plan.path.clone(),
            branch: plan.branch.clone(),
            base: "0000000".into(),
            base_ref: plan.base.clone(),
            state: CheckoutState::Active,
            keep: plan.keep,
        })
    }

    fn discard(
        &self,
        repo: &Utf8Path,
        branch: Option<&str>,
        path: Option<&Utf8Path>,
    ) -> Result<bool, Error> {
        gone(repo)?;
        let mut branches = lock(&self.branches);
        let mut existed = false;
        if let Some(path) = path {
            for b in branches.values_mut() {
                if b.path.as_deref() == Some(path) {
                    b.path = None;
                    existed = true;
                }
            }
        }
        if let Some(branch) = branch {
            existed |= branches
                .remove(&(repo.to_owned(), branch.to_owned()))
                .is_some();
        }
        Ok(existed)
    }

    fn retire(&self, c: &Checkout) -> Result<CheckoutState, Error> {
        gone(&c.repo)?;
        if c.keep {
            return Ok(CheckoutState::Kept);
        }
        let mut branches = lock(&self.branches);
        let key = (c.repo.clone(), c.branch.clone());
        let Some(b) = branches.get_mut(&key) else {
            return Ok(CheckoutState::Removed);
        };
        if b.dirty && b.path.is_some() {
            return Ok(CheckoutState::KeptDirty);
        }
        b.path = None;
        if b.commits > 0 {
            return Ok(CheckoutState::BranchOnly);
        }
        branches.remove(&key);
        Ok(CheckoutState::Removed)
    }

    fn found(&self, repo: &Utf8Path, workspace: &Utf8Path) -> Result<Vec<FoundCheckout>, Error> {
        gone(repo)?;
        Ok(lock(&self.branches)
            .iter()
            .filter(|((r, _), b)| {
                r == repo && b.path.as_deref().is_none_or(|p| p.starts_with(workspace))
            })
            .filter_map(|((_, branch), b)| {
                Some(FoundCheckout {
                    agent: AgentId::parse(branch.strip_prefix(BRANCH_PREFIX)?).ok()?,
                    branch: Some(branch.clone()),
                    path: b.path.clone(),
                })
            })
            .collect())
    }

    /// A fake repository is any directory: it is its own top.
    fn repository_of(&self, dir: &Utf8Path) -> Result<Option<Utf8PathBuf>, Error> {
        Ok(dir.is_dir().then(|| dir.to_owned()))
    }

    /// A fake checkout's work, as one line per thing it holds.
    fn diff(&self, c: &Checkout, stat: bool) -> Result<Option<String>, Error> {
        gone(&c.repo)?;
        let branches = lock(&self.branches);
        Ok(branches.get(&(c.repo.clone(), c.branch.clone())).map(|b| {
            let what = if stat { "stat" } else { "diff" };
            format!(
                "{what} of {}: {} commit(s){}\n",
                c.branch,
                b.commits,
                if b.dirty { ", uncommitted changes" } else { "" }
            )
        }))
    }
}
