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
//! Making a checkout is four commands: resolving the base, marking the branch as this
//! workspace's, creating it, adding the worktree — with a failpoint before and after each
//! state-changing one.
//!
//! **Ownership is proven, never inferred.** Before it creates a branch, fleet writes a mark in
//! the repository's configuration — `branch.<branch>.fleetmark = "<base commit> <workspace>"`
//! — and it deletes a branch only when that mark names its own workspace and the branch's tip
//! is still the base commit the mark recorded: a branch another workspace made, a branch the
//! user made (even one named `fleet/…`), and a branch with commits beyond its base are never
//! deleted. It removes a worktree only under its own workspace. Each carries the tag
//! [`TAG_ENV`]` = <branch>`, so [`GitCheckouts::discard`] first ends whatever a SIGKILLed
//! deployer's git is still doing, then removes what it made.

#![warn(missing_docs)]

mod error;
mod git;
mod inspect;
pub mod reaper;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::checkout::BRANCH_PREFIX;
use deploy_core::failpoint;
use deploy_core::{AgentId, Checkout, CheckoutPlan, CheckoutState, Checkouts, FoundCheckout};

pub use error::Error;
pub use git::TAG_ENV;
pub use inspect::{Inspection, diff, inspect};

/// Checkouts made with the git CLI found on `PATH`, for one workspace.
#[derive(Debug, Clone)]
pub struct GitCheckouts {
    /// The workspace's root: it names the workspace in the marks, and every worktree fleet
    /// removes is under it.
    workspace: Utf8PathBuf,
}

/// The configuration key of a branch's mark.
fn mark_key(branch: &str) -> String {
    format!("branch.{branch}.fleetmark")
}

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
    /// Checkouts of the workspace at `root` (absolute).
    pub fn for_workspace(root: &Utf8Path) -> GitCheckouts {
        GitCheckouts {
            workspace: root.to_owned(),
        }
    }

    /// These checkouts run git under `reaper` (argv: a program whose arguments end in
    /// [`reaper::main`]'s, e.g. `fleet git-reap --`), so what git's hooks leave behind is ended
    /// with each command.
    pub fn reaping_with(self, reaper: Vec<String>) -> Self {
        git::reap_with(reaper);
        self
    }

    /// These checkouts stop a git command making a checkout once one of `flags` is set (the
    /// caller's SIGINT and SIGTERM): a hook that hangs never holds a deployment past them.
    pub fn stopping_on(self, flags: &[std::sync::Arc<std::sync::atomic::AtomicBool>]) -> Self {
        for flag in flags {
            git::stop_on(flag.clone());
        }
        self
    }

    /// The mark this workspace writes for a branch made from `base`.
    fn mark(&self, base: &str) -> String {
        format!("{base} {}", self.workspace)
    }

    /// The base commit of `branch` when its mark names this workspace; `None` when it has no
    /// mark or another's.
    fn own_base(&self, repo: &Utf8Path, branch: &str) -> Result<Option<String>, Error> {
        let out = git::run(repo, &["config", "--get", &mark_key(branch)], None)?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .trim_end_matches('\n')
            .split_once(' ')
            .filter(|(_, owner)| Utf8Path::new(owner) == self.workspace)
            .map(|(base, _)| base.to_owned()))
    }

    /// Whether `path` is under this workspace.
    fn under_workspace(&self, path: &Utf8Path) -> bool {
        path.starts_with(&self.workspace)
            || self
                .workspace
                .canonicalize_utf8()
                .is_ok_and(|w| path.starts_with(w))
    }

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
        // The mark first: a branch is never without it, even if fleet dies in between.
        let key = mark_key(&plan.branch);
        let mark = self.mark(&base);
        let marking = ["config", key.as_str(), mark.as_str()];
        let out = git::run(&top, &marking, tag)?;
        if !out.status.success() {
            return Err(git::failure(&top, &marking, &out));
        }
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
            // Not ours: our mark comes off it again.
            let unmark = ["config", "--unset", key.as_str()];
            if let Err(e) = git::run(&top, &unmark, None) {
                tracing::warn!(branch = %plan.branch, "cannot remove fleet's mark: {e}");
            }
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
        // `<task>/worktrees` is fleet's, private as every directory it makes (git would make
        // it with the umask's mode).
        if let Some(dir) = plan.path.parent() {
            deploy_core::private::create_dir_all(dir)?;
        }
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
        if let Some(path) = path.filter(|p| {
            let ours = self.under_workspace(p);
            if !ours {
                tracing::warn!(%p, "a worktree outside the workspace is never removed: left alone");
            }
            ours
        }) {
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
        if let Some(branch) = branch.filter(|b| self.deletable(repo, b).unwrap_or(false)) {
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

    /// Whether `branch` may be deleted: its mark names this workspace and its tip is still
    /// the base the mark recorded (no work on it). A mark left without its branch (fleet died
    /// between the two) is removed here.
    fn deletable(&self, repo: &Utf8Path, branch: &str) -> Result<bool, Error> {
        let Some(base) = self.own_base(repo, branch)? else {
            tracing::warn!(%branch, %repo, "not made by this workspace: left alone");
            return Ok(false);
        };
        let full = format!("refs/heads/{branch}");
        let out = git::run(
            repo,
            &["rev-parse", "--verify", "--quiet", full.as_str()],
            None,
        )?;
        let tip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() {
            let section = format!("branch.{branch}");
            let _ = git::run(
                repo,
                &["config", "--remove-section", section.as_str()],
                None,
            )?;
            return Ok(false);
        }
        if tip != base {
            tracing::warn!(%branch, %repo, "has commits beyond its base {base}: kept");
            return Ok(false);
        }
        Ok(true)
    }

    /// Keeps work only a detached HEAD holds: when the worktree's HEAD is detached at commits
    /// its branch does not reach, the branch is moved up to them if it can be fast-forwarded
    /// (`Ok(true)`); otherwise `Ok(false)`: the worktree must be kept.
    fn keep_detached_work(&self, c: &Checkout) -> Result<bool, Error> {
        if !c.path.join(".git").exists() {
            return Ok(true);
        }
        let on_branch = git::run(&c.path, &["symbolic-ref", "-q", "HEAD"], None)?;
        if on_branch.status.success() {
            return Ok(true);
        }
        let head = git::stdout(&c.path, &["rev-parse", "HEAD"], None)?;
        let head = head.trim();
        let full = format!("refs/heads/{}", c.branch);
        let reached = git::run(
            &c.repo,
            &["merge-base", "--is-ancestor", head, full.as_str()],
            None,
        )?;
        if reached.status.success() {
            return Ok(true);
        }
        let tip = git::stdout(&c.repo, &["rev-parse", "--verify", full.as_str()], None)?;
        let forward = git::run(
            &c.repo,
            &["merge-base", "--is-ancestor", tip.trim(), head],
            None,
        )?;
        if !forward.status.success() {
            tracing::warn!(path = %c.path, "its detached HEAD holds commits its branch cannot take: the worktree is kept");
            return Ok(false);
        }
        let args = ["update-ref", full.as_str(), head, tip.trim()];
        let out = git::run(&c.repo, &args, None)?;
        if !out.status.success() {
            return Err(git::failure(&c.repo, &args, &out));
        }
        Ok(true)
    }

    fn retire_checkout(&self, c: &Checkout) -> Result<CheckoutState, Error> {
        if c.keep {
            return Ok(CheckoutState::Kept);
        }
        if !self.under_workspace(&c.path) {
            return Err(Error::Outside {
                path: c.path.clone(),
                workspace: self.workspace.clone(),
            });
        }
        if !c.repo.exists() {
            return Err(Error::RepositoryGone(c.repo.clone()));
        }
        if !self.keep_detached_work(c)? {
            return Ok(CheckoutState::KeptDirty);
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
        let full = format!("refs/heads/{}", c.branch);
        let left = git::run(
            &c.repo,
            &["rev-parse", "--verify", "--quiet", full.as_str()],
            None,
        )?;
        Ok(if left.status.success() {
            // Not deletable after all (its tip is not the base fleet recorded): kept.
            CheckoutState::BranchOnly
        } else {
            CheckoutState::Removed
        })
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
        // Only branches whose mark names this workspace are its own.
        let marks = git::run(
            repo,
            &["config", "--get-regexp", r"^branch\.fleet/.*\.fleetmark$"],
            None,
        )?;
        let marks = String::from_utf8_lossy(&marks.stdout).into_owned();
        let own: Vec<&str> = marks
            .lines()
            .filter_map(|l| {
                let (key, value) = l.split_once(' ')?;
                let (_, owner) = value.split_once(' ')?;
                let branch = key.strip_prefix("branch.")?.strip_suffix(".fleetmark")?;
                (Utf8Path::new(owner) == self.workspace).then_some(branch)
            })
            .collect();
        let mut found = Vec::new();
        for branch in refs.lines() {
            if !own.contains(&branch) {
                continue;
            }
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

    fn repository_of(&self, dir: &Utf8Path) -> Result<Option<Utf8PathBuf>, deploy_core::Error> {
        match toplevel(dir) {
            Ok(top) => Ok(Some(top)),
            Err(Error::NotARepository(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn diff(&self, checkout: &Checkout, stat: bool) -> Result<Option<String>, deploy_core::Error> {
        Ok(diff(checkout, stat)?)
    }
}
