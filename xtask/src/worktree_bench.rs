//! `fleet deploy --worktree` against its floor — `git worktree add` plus the raw tmux calls —
//! interleaved in one run, on a repository of 10,000 files.

use std::path::Path;
use std::process::Command;

use crate::procs::{Env, Stats, raw_tmux_deploy, time};

/// Files in the benchmark's repository.
const FILES: usize = 10_000;
/// Deployments of each kind.
const RUNS: usize = 15;
/// The goal: at most this many times the floor.
pub(crate) const GOAL: f64 = 1.3;

fn git(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A repository of [`FILES`] files in 100 directories, committed.
fn repository(at: &Path) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| format!("{}: {e}", at.display()))?;
    git(at, &["init", "-q", "-b", "main"])?;
    for i in 0..FILES {
        let dir = at.join(format!("d{:02}", i % 100));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join(format!("f{i}.rs")), format!("// file {i}\n"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    git(at, &["add", "-A"])?;
    git(at, &["commit", "-q", "-m", "files"])
}

/// (fleet deploy --worktree, git worktree add + raw tmux), interleaved.
pub(crate) fn run(fleet: &Path, scratch: &Path) -> Result<(Stats, Stats), String> {
    let env = Env::new(fleet, scratch, "worktree")?;
    let task = env.task()?;
    let repo = env.root.join("repo");
    repository(&repo)?;
    let repo_s = repo.to_string_lossy().into_owned();
    env.tmux(&["new-session", "-d", "-s", "keepalive", "sleep", "3600"])?;
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let args = [
            "deploy",
            "--task",
            &task,
            "--type",
            "bench",
            "--prompt",
            "p",
            "--allow-duplicate",
            "--startup-grace-ms",
            "0",
            "--worktree",
            "--repo",
            &repo_s,
            "--",
            "sleep",
            "300",
        ];
        ours.push(time(|| env.ok(&args))?.0);
        let path = env.root.join("raw-worktrees").join(format!("raw-{i}"));
        let path_s = path.to_string_lossy().into_owned();
        let branch = format!("raw/{i}");
        floor.push(
            time(|| {
                git(
                    &repo,
                    &["worktree", "add", "--quiet", "-b", &branch, &path_s, "HEAD"],
                )?;
                raw_tmux_deploy(&env, &format!("raw-{i}"), &path_s)
            })?
            .0,
        );
    }
    Ok((Stats(ours), Stats(floor)))
}

/// The section of docs/BENCHMARKS.md.
pub(crate) fn section(ours: &Stats, floor: &Stats) -> String {
    let ratio = ours.mean() / floor.mean();
    format!(
        "A repository of {FILES} files. `fleet deploy --worktree --startup-grace-ms 0` (branch, \
         worktree, intent, prompt, session, registration, commit) against its floor: \
         `git worktree add -b` and the raw tmux calls, interleaved, {RUNS} of each.\n\n\
         | what | time | ratio |\n|---|---:|---:|\n\
         | `fleet deploy --worktree`, whole process | {} | {ratio:.2}× |\n\
         | `git worktree add -b …` + raw tmux | {} | 1× |\n\n\
         Goal: at most {GOAL}×; measured {ratio:.2}× — {}.\n",
        ours.show(),
        floor.show(),
        if ratio <= GOAL { "met" } else { "not met" }
    )
}
