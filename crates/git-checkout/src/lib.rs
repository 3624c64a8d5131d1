//! # git-checkout
//!
//! deploy-core's [`Checkouts`] over the git CLI: each agent gets a branch `fleet/<agent>` from
//! its base and a worktree for it under the workspace, made inside the deployment and removed
//! with it. git runs by argv, never through a shell (the `git` module), so no path or ref is ever
//! interpreted.
//!
//! The git CLI rather than `git2` or `gix`: it covers worktree add, remove and prune exactly as
//! the user's own git does (hooks, `extensions.*`, sparse checkouts, the repository's format),
//! it takes and honours git's own locks the same way, and a checkout costs one `git worktree
//! add` — the very command the benchmark compares against.
//!
//! Making a checkout is three commands: resolving the base, creating the branch, adding the
//! worktree — with a failpoint before and after each state-changing one. Each carries the tag
//! [`TAG_ENV`]` = <branch>`, so [`GitCheckouts::discard`] first ends whatever a SIGKILLed
//! deployer's git is still doing, then removes what it made.

#![warn(missing_docs)]

mod error;
mod git;
mod inspect;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::checkout::BRANCH_PREFIX;
use deploy_core::failpoint;
use deploy_core::{AgentId, Checkout, CheckoutPlan, CheckoutState, Checkouts, FoundCheckout};

pub use error::Error;
pub use git::TAG_ENV;
pub use inspect::{Inspection, diff, inspect};

/// Checkouts made with the git CLI found on `PATH`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitCheckouts;

/// The top directory of the git repository that holds `dir`.
pub fn toplevel(dir: &Utf8Path) -> Result<Utf8PathBuf, Error> {
    let out = git::run(dir, &["rev-parse", "--show-toplevel"], None)?;
    if out.status.success() {
        let text = String::from_utf8(out.stdout).map_err(|_| Error::NotUtf8(dir.to_owned()))?;
        return Ok(Utf8PathBuf::from(text.trim_end_matches('\n')));
    }
    Err(classify(dir, &git::first_line(&out), None))
}

/// What a failed `rev-parse` in `repo` means.
fn classify(repo: &Utf8Path, message: &str, base: Option<&str>) -> Error {
    if !repo.exists() {
        Error::RepositoryGone(repo.to_owned())
    } else if message.contains("not a git repository") {
        Error::NotARepository(repo.to_owned())
    } else if message.contains("must be run in a work tree") {
        Error::Bare(repo.to_owned())
    } else if let Some(base) = base {
        Error::NoSuchBase {
            repo: repo.to_owned(),
            base: base.to_owned(),
        }
    } else {
        Error::Git {
            dir: repo.to_owned(),
            args: "rev-parse".into(),
            stderr: message.to_owned(),
        }
    }
}

impl GitCheckouts {
    /// The repository's top directory and the commit `base` names there.
    fn resolve(&self, repo: &Utf8Path, base: &str) -> Result<(Utf8PathBuf, String), Error> {
        let spec = format!("{base}^{{commit}}");
        let args = [
            "rev-parse",
            "--show-toplevel",
            "--verify",
            "--end-of-options",
            spec.as_str(),
        ];
        let out = git::run(repo, &args, None)?;
        let text =
            String::from_utf8(out.stdout.clone()).map_err(|_| Error::NotUtf8(repo.to_owned()))?;
        // The top directory may itself hold newlines: the commit is the last line.
        let text = text.strip_suffix('\n').unwrap_or(&text);
        match (out.status.success(), text.rsplit_once('\n')) {
            (true, Some((top, sha))) => Ok((Utf8PathBuf::from(top), sha.to_owned())),
            (false, _) if base == "HEAD" && !text.is_empty() => {
                Err(Error::NoCommits(Utf8PathBuf::from(text)))
            }
            _ => Err(classify(repo, &git::first_line(&out), Some(base))),
        }
    }

    fn create_checkout(&self, plan: &CheckoutPlan) -> Result<Checkout, Error> {
        let (top, base) = self.resolve(&plan.repo, &plan.base)?;
        let tag = Some(plan.branch.as_str());
        failpoint("checkout::before_branch");
        let args = [
            "branch",
            "--no-track",
            "--",
            plan.branch.as_str(),
            base.as_str(),
        ];
        let out = git::run(&top, &args, tag)?;
        if !out.status.success() {
            let message = git::first_line(&out);
            return Err(if message.contains("already exists") {
                Error::BranchExists {
                    repo: top,
                    branch: plan.branch.clone(),
                }
            } else {
                git::failure(&top, &args, &out)
            });
        }
        failpoint("checkout::after_branch");
        // The branch is ours now: a failure from here on removes it with whatever was made.
        let added = self.add_worktree(&top, plan);
        if let Err(e) = added {
            if let Err(undo) = self.remove(&top, Some(&plan.branch), Some(&plan.path)) {
                tracing::warn!(branch = %plan.branch, "a failed checkout left something: {undo}");
            }
            return Err(e);
        }
        failpoint("checkout::after_worktree");
        Ok(Checkout {
            repo: top,
            path: plan.path.clone(),
            branch: plan.branch.clone(),
            base,
            base_ref: plan.base.clone(),
            state: CheckoutState::Active,
            keep: plan.keep,
        })
    }

    fn add_worktree(&self, top: &Utf8Path, plan: &CheckoutPlan) -> Result<(), Error> {
        let args = [
            "worktree",
            "add",
            "--quiet",
            "--",
            plan.path.as_str(),
            plan.branch.as_str(),
        ];
        let out = git::run(top, &args, Some(&plan.branch))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(git::failure(top, &args, &out))
        }
    }

    /// Removes the worktree at `path` and the branch, whatever they hold; whether either
    /// existed.
    fn remove(
        &self,
        repo: &Utf8Path,
        branch: Option<&str>,
        path: Option<&Utf8Path>,
    ) -> Result<bool, Error> {
        if let Some(branch) = branch {
            git::end_stragglers(branch);
        }
        if !repo.exists() {
            return Err(Error::RepositoryGone(repo.to_owned()));
        }
        let mut existed = false;
        if let Some(path) = path {
            // Twice forced: a worktree a killed `git worktree add` left is locked
            // ("initializing"), and one with changes is removed all the same.
            let args = [
                "worktree",
                "remove",
                "--force",
                "--force",
                "--",
                path.as_str(),
            ];
            let out = git::run(repo, &args, None)?;
            let registered = out.status.success();
            if !registered && !git::first_line(&out).contains("is not a working tree") {
                return Err(git::failure(repo, &args, &out));
            }
            // A directory git no longer knows (a half-made one): fleet's own path, derived from
            // the ids.
            let on_disk = path.exists();
            if on_disk {
                fs_err::remove_dir_all(path)?;
            }
            existed |= registered || on_disk;
        }
        if let Some(branch) = branch {
            let args = ["branch", "-D", "--", branch];
            let mut out = git::run(repo, &args, None)?;
            if !out.status.success() && git::is_lock_conflict(&out) {
                // Still locked after every retry, with the stragglers ended above: a lock its
                // holder left when it died.
                if git::remove_stale_ref_lock(repo, branch)? {
                    out = git::run(repo, &args, None)?;
                }
            }
            if out.status.success() {
                existed = true;
            } else if !git::first_line(&out).contains("not found") {
                return Err(git::failure(repo, &args, &out));
            }
        }
        Ok(existed)
    }

    fn retire_checkout(&self, c: &Checkout) -> Result<CheckoutState, Error> {
        if c.keep {
            return Ok(CheckoutState::Kept);
        }
        if !c.repo.exists() {
            return Err(Error::RepositoryGone(c.repo.clone()));
        }
        let seen = inspect(c)?;
        if seen.dirty {
            return Ok(CheckoutState::KeptDirty);
        }
        self.remove(&c.repo, None, Some(&c.path))?;
        if seen.commits > 0 {
            return Ok(CheckoutState::BranchOnly);
        }
        self.remove(
            &c.repo,
            seen.branch_exists.then_some(c.branch.as_str()),
            None,
        )?;
        Ok(CheckoutState::Removed)
    }

    fn found_in(&self, repo: &Utf8Path, workspace: &Utf8Path) -> Result<Vec<FoundCheckout>, Error> {
        if !repo.exists() {
            return Err(Error::RepositoryGone(repo.to_owned()));
        }
        let prefix = format!("refs/heads/{BRANCH_PREFIX}");
        let refs = git::stdout(
            repo,
            &[
                "for-each-ref",
                "--format=%(refname:strip=2)",
                prefix.as_str(),
            ],
            None,
        )?;
        let listing = git::stdout(repo, &["worktree", "list", "--porcelain", "-z"], None)?;
        let worktrees = inspect::worktrees(&listing);
        let workspaces = [
            workspace.to_owned(),
            workspace
                .canonicalize_utf8()
                .unwrap_or_else(|_| workspace.to_owned()),
        ];
        let under = |p: &Utf8Path| workspaces.iter().any(|w| p.starts_with(w));
        let mut found = Vec::new();
        for branch in refs.lines() {
            let Some(agent) = branch
                .strip_prefix(BRANCH_PREFIX)
                .and_then(|id| AgentId::parse(id).ok())
            else {
                continue;
            };
            let path = worktrees
                .iter()
                .find(|(_, b)| b.as_deref() == Some(branch))
                .map(|(p, _)| p.clone());
            // A fleet branch checked out somewhere outside the workspace is the user's now.
            if path.as_deref().is_some_and(|p| !under(p)) {
                continue;
            }
            found.push(FoundCheckout {
                agent,
                branch: Some(branch.to_owned()),
                path,
            });
        }
        Ok(found)
    }
}

impl Checkouts for GitCheckouts {
    fn create(&self, plan: &CheckoutPlan) -> Result<Checkout, deploy_core::Error> {
        Ok(self.create_checkout(plan)?)
    }

    fn discard(
        &self,
        repo: &Utf8Path,
        branch: Option<&str>,
        path: Option<&Utf8Path>,
    ) -> Result<bool, deploy_core::Error> {
        Ok(self.remove(repo, branch, path)?)
    }

    fn retire(&self, checkout: &Checkout) -> Result<CheckoutState, deploy_core::Error> {
        Ok(self.retire_checkout(checkout)?)
    }

    fn found(
        &self,
        repo: &Utf8Path,
        workspace: &Utf8Path,
    ) -> Result<Vec<FoundCheckout>, deploy_core::Error> {
        Ok(self.found_in(repo, workspace)?)
    }
}
