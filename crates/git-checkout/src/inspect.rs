//! Looking at a checkout without touching it: whether its worktree holds uncommitted changes,
//! how many commits its branch has beyond its base, and its diff against that base.

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::Checkout;

use crate::{Error, git};

/// What a checkout holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Its worktree is on disk and git knows it.
    pub worktree_exists: bool,
    /// The worktree holds changes not committed (tracked or untracked files).
    pub dirty: bool,
    /// Its branch exists.
    pub branch_exists: bool,
    /// Commits on the branch beyond its base.
    pub commits: u64,
}

/// Looks at `c`: its worktree's status and its branch's commits beyond its base.
pub fn inspect(c: &Checkout) -> Result<Inspection, Error> {
    if !c.repo.exists() {
        return Err(Error::RepositoryGone(c.repo.clone()));
    }
    let worktree_exists = c.path.join(".git").exists();
    let dirty = worktree_exists
        && !git::stdout(
            &c.path,
            &["status", "--porcelain", "-z", "--untracked-files=all"],
            None,
        )?
        .is_empty();
    let range = format!("{}..refs/heads/{}", c.base, c.branch);
    let out = git::run(
        &c.repo,
        &["rev-list", "--count", "--end-of-options", range.as_str()],
        None,
    )?;
    let (branch_exists, commits) = if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        (true, text.trim().parse().unwrap_or(0))
    } else {
        (false, 0)
    };
    Ok(Inspection {
        worktree_exists,
        dirty,
        branch_exists,
        commits,
    })
}

/// The agent's changes against its base: committed and uncommitted, untracked files included
/// (`--stat` for a summary). Read through a copy of the worktree's index, so the agent's own
/// index is never changed. `None` when neither the worktree nor the branch is left.
pub fn diff(c: &Checkout, stat: bool) -> Result<Option<String>, Error> {
    let seen = inspect(c)?;
    let mut args = vec!["diff", "--no-color", "--no-ext-diff"];
    if stat {
        args.push("--stat");
    }
    if seen.worktree_exists {
        let index = git::stdout(
            &c.path,
            &["rev-parse", "--path-format=absolute", "--git-path", "index"],
            None,
        )?;
        let index = Utf8PathBuf::from(index.trim_end_matches('\n'));
        let scratch = Utf8PathBuf::from(format!("{index}.fleet-diff-{}", std::process::id()));
        let result = diff_through(c, &index, &scratch, &args);
        let _ = fs_err::remove_file(&scratch);
        return result.map(Some);
    }
    if seen.branch_exists {
        let branch = format!("refs/heads/{}", c.branch);
        args.extend(["--end-of-options", c.base.as_str(), branch.as_str()]);
        return git::stdout(&c.repo, &args, None).map(Some);
    }
    Ok(None)
}

fn diff_through(
    c: &Checkout,
    index: &Utf8Path,
    scratch: &Utf8Path,
    args: &[&str],
) -> Result<String, Error> {
    // The agent controls its worktree: its index is read only as a regular file, and the
    // scratch copy is a new file of fleet's (a symlink planted at its name is replaced, never
    // written through).
    if index.exists() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut activity::agent_file::open(index.as_std_path())?,
            &mut bytes,
        )?;
        deploy_core::private::write_new(scratch, &bytes)?;
    }
    let with_scratch = |args: &[&str]| {
        let mut cmd = git::command(&c.path, args, None);
        cmd.env("GIT_INDEX_FILE", scratch);
        let out = git::output(cmd, false)?;
        if out.status.success() {
            String::from_utf8(out.stdout).map_err(|_| Error::NotUtf8(c.path.clone()))
        } else {
            Err(git::failure(&c.path, args, &out))
        }
    };
    with_scratch(&["add", "--all"])?;
    let mut args = args.to_vec();
    args.extend(["--cached", "--end-of-options", c.base.as_str()]);
    with_scratch(&args)
}

/// Each worktree of a `git worktree list --porcelain -z` listing, with its branch.
pub(crate) fn worktrees(listing: &str) -> Vec<(Utf8PathBuf, Option<String>)> {
    let mut out = Vec::new();
    let mut current: Option<(Utf8PathBuf, Option<String>)> = None;
    for field in listing.split('\0') {
        if let Some(path) = field.strip_prefix("worktree ") {
            out.extend(current.take());
            current = Some((Utf8PathBuf::from(path), None));
        } else if let Some(branch) = field.strip_prefix("branch refs/heads/")
            && let Some((_, b)) = current.as_mut()
        {
            *b = Some(branch.to_owned());
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_porcelain_listing_with_odd_paths() {
        let listing = "worktree /r\0HEAD 1\0branch refs/heads/main\0\0worktree /w/a b\nc\0HEAD 2\0branch refs/heads/fleet/x-1\0locked initializing\0\0worktree /d\0HEAD 3\0detached\0\0";
        assert_eq!(
            worktrees(listing),
            [
                ("/r".into(), Some("main".into())),
                ("/w/a b\nc".into(), Some("fleet/x-1".into())),
                ("/d".into(), None),
            ]
        );
    }
}
