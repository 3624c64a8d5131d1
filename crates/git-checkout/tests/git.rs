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
    let made = GitCheckouts.create(&r.plan("a-1")).unwrap();
    assert_eq!(made.branch, "fleet/a-1");
    assert_eq!(made.state, CheckoutState::Active);
    assert_eq!(made.base, git(&r.repo, &["rev-parse", "HEAD"]).trim());
    assert!(made.path.join("README").exists());
    assert!(r.lists().1.contains("fleet/a-1"));
    // Uncommitted and committed work are discarded all the same: a rollback.
    r.commit_in(&made, "x");
    fs_err::write(made.path.join("y"), "dirty").unwrap();
    assert!(
        GitCheckouts
            .discard(&r.repo, Some(&made.branch), Some(&made.path))
            .unwrap()
    );
    assert_eq!(r.lists(), before);
    assert!(!made.path.exists());
    assert!(
        !GitCheckouts
            .discard(&r.repo, Some(&made.branch), Some(&made.path))
            .unwrap(),
        "a second discard finds nothing"
    );
}

#[test]
fn retirement_keeps_exactly_the_work() {
    let r = repo();
    let before = r.lists();
    let clean = GitCheckouts.create(&r.plan("clean-1")).unwrap();
    assert_eq!(GitCheckouts.retire(&clean).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before, "a clean agent leaves nothing");

    let committed = GitCheckouts.create(&r.plan("commit-1")).unwrap();
    r.commit_in(&committed, "done.txt");
    assert_eq!(inspect(&committed).unwrap().commits, 1);
    assert_eq!(
        GitCheckouts.retire(&committed).unwrap(),
        CheckoutState::BranchOnly
    );
    assert!(!committed.path.exists());
    assert!(r.lists().1.contains("fleet/commit-1"), "its work is kept");
    let shown = diff(&committed, false).unwrap().unwrap();
    assert!(shown.contains("+work"), "{shown}");

    let dirty = GitCheckouts.create(&r.plan("dirty-1")).unwrap();
    fs_err::write(dirty.path.join("new-file"), "untracked").unwrap();
    assert_eq!(
        GitCheckouts.retire(&dirty).unwrap(),
        CheckoutState::KeptDirty
    );
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
        ..GitCheckouts.create(&r.plan("keep-1")).unwrap()
    };
    assert_eq!(GitCheckouts.retire(&kept).unwrap(), CheckoutState::Kept);
    assert!(kept.path.exists());
}

#[test]
fn a_worktree_deleted_by_hand_is_pruned_and_its_branch_judged() {
    let r = repo();
    let before = r.lists();
    let c = GitCheckouts.create(&r.plan("gone-1")).unwrap();
    fs_err::remove_dir_all(&c.path).unwrap();
    assert_eq!(GitCheckouts.retire(&c).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before);
}

#[test]
fn found_lists_fleet_checkouts_under_the_workspace_only() {
    let r = repo();
    let a = GitCheckouts.create(&r.plan("found-1")).unwrap();
    git(&r.repo, &["branch", "fleet/bare-1"]);
    git(&r.repo, &["branch", "users-own"]);
    let outside = r.repo.parent().unwrap().join("elsewhere");
    git(&r.repo, &["branch", "fleet/moved-1"]);
    git(
        &r.repo,
        &["worktree", "add", "-q", outside.as_str(), "fleet/moved-1"],
    );
    let mut found = GitCheckouts.found(&r.repo, r.layout.root()).unwrap();
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
    let err = |plan: &CheckoutPlan| GitCheckouts.create(plan).unwrap_err().to_string();

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
    let c = GitCheckouts.create(&r.plan("odd-1")).unwrap();
    assert!(c.path.join("README").exists());
    assert_eq!(c.repo, r.repo);
    assert_eq!(GitCheckouts.retire(&c).unwrap(), CheckoutState::Removed);
    assert_eq!(r.lists(), before);
}

#[test]
fn eight_concurrent_checkouts_of_one_repository_all_succeed() {
    let r = repo();
    let plans: Vec<CheckoutPlan> = (0..8).map(|i| r.plan(&format!("c-{i}"))).collect();
    let made: Vec<Checkout> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .iter()
            .map(|p| s.spawn(move || GitCheckouts.create(p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(r.lists().0.matches("worktree ").count(), 9);
    std::thread::scope(|s| {
        for c in &made {
            s.spawn(move || GitCheckouts.retire(c).unwrap());
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
    GitCheckouts
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
    for _ in 0..500 {
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
    for _ in 0..500 {
        if lock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(lock.exists(), "the straggler holds the branch's lock");
    fs_err::remove_file(&hook).unwrap(); // the discard's own `branch -D` must not wait in it
    GitCheckouts
        .discard(&r.repo, Some(&plan.branch), None)
        .unwrap();
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
    let lock = r.repo.join(format!(".git/refs/heads/{}.lock", plan.branch));
    fs_err::write(&lock, "").unwrap();
    let other = r.repo.join(".git/refs/heads/main.lock");
    fs_err::write(&other, "").unwrap();
    GitCheckouts
        .discard(&r.repo, Some(&plan.branch), None)
        .unwrap();
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
    GitCheckouts
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
    let c = GitCheckouts.create(&r.plan("v-1")).unwrap();
    fs_err::remove_dir_all(&r.repo).unwrap();
    let e = GitCheckouts.retire(&c).unwrap_err().to_string();
    assert!(
        e.contains("moved or vanished") && e.contains(r.repo.as_str()),
        "{e}"
    );
    let e = GitCheckouts
        .found(&r.repo, r.layout.root())
        .unwrap_err()
        .to_string();
    assert!(e.contains(r.repo.as_str()), "{e}");
}
