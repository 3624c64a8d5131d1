//! git-checkout against real git in temporary repositories.

// Test helpers may unwrap: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use camino::Utf8PathBuf;
use deploy_core::{
    AgentId, Checkout, CheckoutPlan, CheckoutRequest, CheckoutState, Checkouts, Layout, TaskId,
};
use git_checkout::{GitCheckouts, TAG_ENV, diff, inspect};
use testkit::git::{git, repo_at};

struct Repo {
    _dir: tempfile::TempDir,
    repo: Utf8PathBuf,
    layout: Layout,
}

/// A repository with one commit, in a directory named `name`, and a workspace beside it.
fn repo_named(name: &str) -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let base = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    let repo = repo_at(&base.join(name));
    Repo {
        _dir: dir,
        repo,
        layout: Layout::new(base.join("ws")),
    }
}

fn repo() -> Repo {
    repo_named("repo")
}

impl Repo {
    /// The checkouts of this repository's workspace.
    fn gc(&self) -> GitCheckouts {
        GitCheckouts::for_workspace(self.layout.root())
    }

    fn plan(&self, agent: &str) -> CheckoutPlan {
        self.plan_at(agent, None)
    }

    fn plan_at(&self, agent: &str, base: Option<&str>) -> CheckoutPlan {
        CheckoutPlan::for_agent(
            &self.layout,
            &TaskId::parse("T").unwrap(),
            &AgentId::parse(agent).unwrap(),
            &CheckoutRequest {
                repo: self.repo.clone(),
                base: base.map(str::to_owned),
                keep: false,
            },
        )
    }

    /// Marks `branch` as a branch this workspace made from HEAD (as `create` does), or
    /// `workspace`'s.
    fn mark(&self, branch: &str, workspace: Option<&str>) {
        let head = git(&self.repo, &["rev-parse", "HEAD"]);
        let owner = workspace.unwrap_or(self.layout.root().as_str()).to_owned();
        git(
            &self.repo,
            &[
                "config",
                &format!("branch.{branch}.fleetmark"),
                &format!("{} {owner}", head.trim()),
            ],
        );
    }

    /// What git lists: worktrees and branches.
    fn lists(&self) -> (String, String) {
        (
            git(&self.repo, &["worktree", "list", "--porcelain"]),
            git(&self.repo, &["branch", "--list"]),
        )
    }

    fn commit_in(&self, c: &Checkout, file: &str) {
        fs_err::write(c.path.join(file), "work\n").unwrap();
        git(&c.path, &["add", file]);
        git(&c.path, &["commit", "-q", "-m", "agent work"]);
    }
}

#[test]
fn create_then_discard_leaves_the_lists_as_they_were() {
    let r = repo();
    let before = r.lists();
    let made = r.gc().create(&r.plan("a-1")).unwrap();
    assert_eq!(made.branch, "fleet/a-1");
    assert_eq!(made.state, CheckoutState::Active);
    assert_eq!(made.base, git(&r.repo, &["rev-parse", "HEAD"]).trim());
    assert!(made.path.join("README").exists());
    assert!(r.lists().1.contains("fleet/a-1"));
    // Uncommitted changes are discarded: a rollback (the agent never ran).
    fs_err::write(made.path.join("y"), "dirty").unwrap();
    assert!(
        r.gc()
            .discard(&r.repo, Some(&made.branch), Some(&made.path))
            .unwrap()
    );
    assert_eq!(r.lists(), before);
    assert!(!made.path.exists());
    assert!(
        !r.gc()
            .discard(&r.repo, Some(&made.branch), Some(&made.path))
            .unwrap(),
        "a second discard finds nothing"
    );
}

#[test]
fn retirement_keeps_exactly_the_work() {
    let r = repo();
    let before = r.lists();
    let clean = r.gc().create(&r.plan("clean-1")).unwrap();
    assert_eq!(r.gc().retire(&clean).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before, "a clean agent leaves nothing");

    let committed = r.gc().create(&r.plan("commit-1")).unwrap();
    r.commit_in(&committed, "done.txt");
    assert_eq!(inspect(&committed).unwrap().commits, 1);
    assert_eq!(
        r.gc().retire(&committed).unwrap(),
        CheckoutState::BranchOnly
    );
    assert!(!committed.path.exists());
    assert!(r.lists().1.contains("fleet/commit-1"), "its work is kept");
    let shown = diff(&committed, false).unwrap().unwrap();
    assert!(shown.contains("+work"), "{shown}");

    let dirty = r.gc().create(&r.plan("dirty-1")).unwrap();
    fs_err::write(dirty.path.join("new-file"), "untracked").unwrap();
    assert_eq!(r.gc().retire(&dirty).unwrap(), CheckoutState::KeptDirty);
    assert!(dirty.path.join("new-file").exists());
    let stat = diff(&dirty, true).unwrap().unwrap();
    assert!(
        stat.contains("new-file"),
        "untracked files are in the diff: {stat}"
    );
    assert!(
        git(&dirty.path, &["status", "--porcelain"]).contains("?? new-file"),
        "the agent's index is untouched"
    );

    let kept = Checkout {
        keep: true,
        ..r.gc().create(&r.plan("keep-1")).unwrap()
    };
    assert_eq!(r.gc().retire(&kept).unwrap(), CheckoutState::Kept);
    assert!(kept.path.exists());
}

#[test]
fn a_worktree_deleted_by_hand_is_pruned_and_its_branch_judged() {
    let r = repo();
    let before = r.lists();
    let c = r.gc().create(&r.plan("gone-1")).unwrap();
    fs_err::remove_dir_all(&c.path).unwrap();
    assert_eq!(r.gc().retire(&c).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before);
}

#[test]
fn found_lists_fleet_checkouts_under_the_workspace_only() {
    let r = repo();
    let a = r.gc().create(&r.plan("found-1")).unwrap();
    git(&r.repo, &["branch", "fleet/bare-1"]);
    r.mark("fleet/bare-1", None);
    git(&r.repo, &["branch", "users-own"]);
    // A user's own branch under fleet/, and another workspace's: neither is this one's.
    git(&r.repo, &["branch", "fleet/my-wip"]);
    git(&r.repo, &["branch", "fleet/other-1"]);
    r.mark("fleet/other-1", Some("/elsewhere/ws"));
    let outside = r.repo.parent().unwrap().join("elsewhere");
    git(&r.repo, &["branch", "fleet/moved-1"]);
    r.mark("fleet/moved-1", None);
    git(
        &r.repo,
        &["worktree", "add", "-q", outside.as_str(), "fleet/moved-1"],
    );
    let mut found = r.gc().found(&r.repo, r.layout.root()).unwrap();
    found.sort_by(|x, y| x.agent.cmp(&y.agent));
    let seen: Vec<(String, Option<Utf8PathBuf>)> = found
        .into_iter()
        .map(|f| (f.agent.to_string(), f.path))
        .collect();
    assert_eq!(
        seen,
        [("bare-1".into(), None), ("found-1".into(), Some(a.path))]
    );
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    let r = repo();
    let before = r.lists();
    let err = |plan: &CheckoutPlan| r.gc().create(plan).unwrap_err().to_string();

    let e = err(&r.plan_at("b-1", Some("no-such-ref")));
    assert!(
        e.contains("\"no-such-ref\"") && e.contains(r.repo.as_str()),
        "{e}"
    );
    let e = err(&r.plan_at("b-2", Some("--output=/tmp/x")));
    assert!(e.contains("does not name a commit"), "{e}");

    git(&r.repo, &["branch", "fleet/b-3"]);
    let e = err(&r.plan("b-3"));
    assert!(e.contains("fleet/b-3 already exists"), "{e}");
    assert!(
        r.lists().1.contains("fleet/b-3"),
        "the existing branch is left"
    );
    git(&r.repo, &["branch", "-D", "fleet/b-3"]);
    assert_eq!(r.lists(), before);

    let mut plan = r.plan("b-4");
    plan.repo = r.repo.parent().unwrap().to_owned();
    let e = err(&plan);
    assert!(e.contains("is not a git repository"), "{e}");

    let bare = r.repo.parent().unwrap().join("bare.git");
    git(
        r.repo.parent().unwrap(),
        &["init", "-q", "--bare", bare.as_str()],
    );
    plan.repo = bare;
    assert!(err(&plan).contains("is a bare repository"));

    let empty = r.repo.parent().unwrap().join("empty");
    git(r.repo.parent().unwrap(), &["init", "-q", empty.as_str()]);
    plan.repo = empty.clone();
    let e = err(&plan);
    assert!(
        e.contains("has no commits") && e.contains(empty.as_str()),
        "{e}"
    );
    assert_eq!(git(&empty, &["branch", "--list"]), "");
    assert!(!plan.path.exists());
}

#[test]
fn repository_paths_with_spaces_quotes_hashes_and_newlines_work() {
    let r = repo_named("my repo #1 'q' \"dq\"\nline");
    let before = r.lists();
    let c = r.gc().create(&r.plan("odd-1")).unwrap();
    assert!(c.path.join("README").exists());
    assert_eq!(c.repo, r.repo);
    assert_eq!(r.gc().retire(&c).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before);
}

#[test]
fn eight_concurrent_checkouts_of_one_repository_all_succeed() {
    let r = repo();
    let plans: Vec<CheckoutPlan> = (0..8).map(|i| r.plan(&format!("c-{i}"))).collect();
    let gc = &r.gc();
    let made: Vec<Checkout> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|p| s.spawn(move || gc.create(p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(r.lists().0.matches("worktree ").count(), 9);
    std::thread::scope(|s| {
        for c in &made {
            s.spawn(move || gc.retire(c).unwrap());
        }
    });
    assert_eq!(r.lists().0.matches("worktree ").count(), 1);
    assert_eq!(r.lists().1.trim(), "* main");
}

#[test]
fn discard_first_ends_the_git_a_killed_deployer_left_running() {
    let r = repo();
    let plan = r.plan("late-1");
    // Stands in for a `git worktree add` still running after its deployer was SIGKILLed.
    let mut straggler = Command::new("sleep")
        .arg("60")
        .env(TAG_ENV, &plan.branch)
        .spawn()
        .unwrap();
    wait_tagged(&straggler, &plan.branch);
    let other = Command::new("sleep").arg("60").spawn().unwrap();
    r.gc()
        .discard(&r.repo, Some(&plan.branch), Some(&plan.path))
        .unwrap();
    let status = straggler.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15),
        "SIGTERM first, on which git removes its lock files"
    );
    assert!(
        fs_err::read_to_string(format!("/proc/{}/stat", other.id())).is_ok(),
        "an untagged process is left alone"
    );
    let mut other = other;
    other.kill().unwrap();
    other.wait().unwrap();
}

/// Waits until `child` has exec'd `name`: until then /proc shows the environment it forked with.
/// Waits until `child` shows `tag` in its environment, as `end_stragglers` looks for it. Its
/// name is no sign: exec names the process before it maps the new environment, and until then
/// /proc shows none — under load, long enough for a look to miss the straggler.
fn wait_tagged(child: &std::process::Child, tag: &str) {
    for _ in 0..6000 {
        if procs::has_env(child.id(), TAG_ENV, tag) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never showed {TAG_ENV}={tag}", child.id());
}

#[test]
fn a_straggler_holding_the_branchs_lock_leaves_no_lock_behind() {
    // CI found it: a SIGKILLed `git reset --hard` inside a straggling `git worktree add` left
    // `refs/heads/fleet/<agent>.lock`, and every `git branch -D` of the branch failed after.
    // Here a straggler holds that lock for as long as its reference-transaction hook runs.
    let r = repo();
    let plan = r.plan("locked-1");
    git(&r.repo, &["branch", "--", &plan.branch, "HEAD"]);
    r.mark(&plan.branch, None);
    let hook = r.repo.join(".git/hooks/reference-transaction");
    fs_err::write(
        &hook,
        "#!/bin/sh\n[ \"$1\" = prepared ] && exec sleep 60\nexit 0\n",
    )
    .unwrap();
    fs_err::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let head = git(&r.repo, &["rev-parse", "HEAD"]);
    let mut straggler = Command::new("git")
        .args(["-C", r.repo.as_str(), "update-ref"])
        .arg(format!("refs/heads/{}", plan.branch))
        .arg(head.trim())
        .env(TAG_ENV, &plan.branch)
        .spawn()
        .unwrap();
    let lock = r.repo.join(format!(".git/refs/heads/{}.lock", plan.branch));
    for _ in 0..6000 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(lock.exists(), "the straggler holds the branch's lock");
    fs_err::remove_file(&hook).unwrap(); // the discard's own `branch -D` must not wait in it
    r.gc().discard(&r.repo, Some(&plan.branch), None).unwrap();
    straggler.wait().unwrap();
    assert!(!lock.exists(), "no lock is left behind");
    assert_eq!(r.lists().1.trim(), "* main", "the branch is gone");
}

#[test]
fn a_lock_its_git_left_when_it_died_is_removed_with_the_branch() {
    // CI found it: 200 deployments killed at random instants left one
    // `refs/heads/fleet/<agent>.lock` that no process held, and reconcile's `git branch -D`
    // failed on it for good. A SIGKILLed git leaves such a lock, as does one that dies between
    // creating it and registering it for removal; here it is made by hand.
    let r = repo();
    let plan = r.plan("stale-1");
    git(&r.repo, &["branch", "--", &plan.branch, "HEAD"]);
    r.mark(&plan.branch, None);
    let lock = r.repo.join(format!(".git/refs/heads/{}.lock", plan.branch));
    fs_err::write(&lock, "").unwrap();
    let other = r.repo.join(".git/refs/heads/main.lock");
    fs_err::write(&other, "").unwrap();
    r.gc().discard(&r.repo, Some(&plan.branch), None).unwrap();
    assert!(!lock.exists(), "the stale lock of fleet's branch is gone");
    assert!(
        other.exists(),
        "a lock of a branch fleet did not make is left alone"
    );
    fs_err::remove_file(&other).unwrap();
    assert_eq!(r.lists().1.trim(), "* main", "the branch is gone");
}

#[test]
fn a_straggler_that_ignores_sigterm_gets_sigkill() {
    let r = repo();
    let plan = r.plan("stubborn-1");
    let mut straggler = Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 0.05; done"])
        .env(TAG_ENV, &plan.branch)
        .spawn()
        .unwrap();
    wait_tagged(&straggler, &plan.branch);
    r.gc()
        .discard(&r.repo, Some(&plan.branch), Some(&plan.path))
        .unwrap();
    let status = straggler.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn a_vanished_repository_is_reported_never_a_panic() {
    let r = repo();
    let c = r.gc().create(&r.plan("v-1")).unwrap();
    fs_err::remove_dir_all(&r.repo).unwrap();
    let e = r.gc().retire(&c).unwrap_err().to_string();
    assert!(
        e.contains("moved or vanished") && e.contains(r.repo.as_str()),
        "{e}"
    );
    let e = r
        .gc()
        .found(&r.repo, r.layout.root())
        .unwrap_err()
        .to_string();
    assert!(e.contains(r.repo.as_str()), "{e}");
}

/// Issue 29: a rollback never drops work — a branch with commits beyond the base its mark
/// recorded is kept.
#[test]
fn a_branch_with_commits_is_never_discarded() {
    let r = repo();
    let made = r.gc().create(&r.plan("work-1")).unwrap();
    r.commit_in(&made, "x");
    r.gc()
        .discard(&r.repo, Some(&made.branch), Some(&made.path))
        .unwrap();
    assert!(r.lists().1.contains("fleet/work-1"), "the work is kept");
    assert!(
        !made.path.exists(),
        "the worktree (committed, clean) is removed"
    );
}

/// Issue 29: two workspaces on one repository — neither lists, discards nor deletes the
/// other's branches, even a clean one.
#[test]
fn a_branch_another_workspace_made_is_never_touched() {
    let r = repo();
    let other = GitCheckouts::for_workspace(&r.layout.root().with_file_name("ws-b"));
    let theirs = CheckoutPlan {
        path: r
            .layout
            .root()
            .with_file_name("ws-b")
            .join("T/worktrees/b-1"),
        ..r.plan("b-1")
    };
    let made = other.create(&theirs).unwrap();
    assert!(r.gc().found(&r.repo, r.layout.root()).unwrap().is_empty());
    r.gc().discard(&r.repo, Some(&made.branch), None).unwrap();
    assert!(
        r.lists().1.contains("fleet/b-1"),
        "workspace B's branch is left"
    );
    let e = other.retire(&made).unwrap();
    assert_eq!(e, CheckoutState::Removed, "its own workspace removes it");
}

/// Issue 29: a user's own branch named `fleet/…` (no mark) — with unmerged commits — is
/// never deleted, whatever names it (a forged intent, a registry field).
#[test]
fn a_users_own_fleet_branch_is_never_deleted() {
    let r = repo();
    git(&r.repo, &["checkout", "-q", "-b", "fleet/my-wip"]);
    fs_err::write(r.repo.join("wip"), "mine\n").unwrap();
    git(&r.repo, &["add", "wip"]);
    git(&r.repo, &["commit", "-q", "-m", "wip"]);
    git(&r.repo, &["checkout", "-q", "main"]);
    r.gc().discard(&r.repo, Some("fleet/my-wip"), None).unwrap();
    assert!(
        r.lists().1.contains("fleet/my-wip"),
        "the user's branch is left"
    );
    // Even clean and at HEAD, a branch without this workspace's mark is not fleet's.
    git(&r.repo, &["branch", "fleet/clean-1"]);
    r.gc()
        .discard(&r.repo, Some("fleet/clean-1"), None)
        .unwrap();
    assert!(r.lists().1.contains("fleet/clean-1"));
}

/// Issue 29: a worktree outside the workspace — a registry field pointing elsewhere — is never
/// removed.
#[test]
fn a_worktree_outside_the_workspace_is_never_removed() {
    let r = repo();
    let outside = r.repo.with_file_name("precious");
    fs_err::create_dir_all(&outside).unwrap();
    fs_err::write(outside.join("data"), "keep me").unwrap();
    r.gc().discard(&r.repo, None, Some(&outside)).unwrap();
    assert_eq!(
        fs_err::read_to_string(outside.join("data")).unwrap(),
        "keep me"
    );
    let made = r.gc().create(&r.plan("out-1")).unwrap();
    let forged = Checkout {
        path: outside.clone(),
        ..made
    };
    let e = r.gc().retire(&forged).unwrap_err().to_string();
    assert!(e.contains("is outside workspace"), "{e}");
    assert!(outside.join("data").exists(), "retire leaves it too");
}

/// Issue 29: commits an agent made on a detached HEAD are kept — on its branch when it can be
/// moved up to them, else in the kept worktree — never left unreachable.
#[test]
fn commits_on_a_detached_head_are_kept() {
    let r = repo();
    let made = r.gc().create(&r.plan("detached-1")).unwrap();
    git(&made.path, &["checkout", "-q", "--detach"]);
    r.commit_in(&made, "d");
    let head = git(&made.path, &["rev-parse", "HEAD"]);
    assert_eq!(r.gc().retire(&made).unwrap(), CheckoutState::BranchOnly);
    let tip = git(&r.repo, &["rev-parse", "fleet/detached-1"]);
    assert_eq!(tip, head, "the branch moved up to the detached work");

    // Diverged: the branch has its own commit, HEAD another.
    let made = r.gc().create(&r.plan("diverged-1")).unwrap();
    r.commit_in(&made, "on-branch");
    git(&made.path, &["checkout", "-q", "--detach", "HEAD~1"]);
    r.commit_in(&made, "off-branch");
    assert_eq!(r.gc().retire(&made).unwrap(), CheckoutState::KeptDirty);
    assert!(made.path.exists(), "the worktree holding the work is kept");
}
