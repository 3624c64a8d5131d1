//! Temporary git repositories for tests, and what git lists of them: used by fleet's worktree
//! tests and git-checkout's. A failure panics, naming the command: it is a failed test.

use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};

/// Runs git in `dir` with a fixed identity; panics on failure; returns stdout.
pub fn git(dir: &Utf8Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git {args:?} in {dir}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository at `dir` with one commit on `main` (a file `README`).
pub fn repo_at(dir: &Utf8Path) -> Utf8PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {dir}: {e}"));
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README"), "hello\n")
        .unwrap_or_else(|e| panic!("cannot write {dir}/README: {e}"));
    git(dir, &["add", "README"]);
    git(dir, &["commit", "-q", "-m", "init"]);
    dir.to_owned()
}

/// What git lists of `repo`: its worktrees and its branches — what a rollback must restore.
pub fn lists(repo: &Utf8Path) -> (String, String) {
    (
        git(repo, &["worktree", "list", "--porcelain"]),
        git(repo, &["branch", "--list", "--format=%(refname)"]),
    )
}

/// The agents with a `fleet/` branch in `repo`.
pub fn fleet_branches(repo: &Utf8Path) -> std::collections::BTreeSet<String> {
    git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname:strip=3)",
            "refs/heads/fleet/",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The agents with a worktree under `root` in `repo`, by their directory's name.
pub fn fleet_worktrees(repo: &Utf8Path, root: &Utf8Path) -> std::collections::BTreeSet<String> {
    git(repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .filter(|p| Utf8Path::new(p).starts_with(root))
        .filter_map(|p| Utf8Path::new(p).file_name().map(str::to_owned))
        .collect()
}
