//! Running git: by argv (never a shell), in a given directory, in the C locale, never prompting,
//! its environment cleared of what would point it elsewhere — and tagged, so a git command a
//! killed deployer left running can be found and ended ([`end_stragglers`]).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use camino::Utf8Path;

use crate::Error;

/// The environment variable every git command of a checkout carries: the branch it works on.
pub const TAG_ENV: &str = "FLEET_CHECKOUT";

/// How often a command that met another git's lock is tried, and the first pause between tries
/// (doubled up to 200 ms): about 5 s in all.
const LOCK_TRIES: u32 = 30;
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// Variables that would make git work on another repository, index or worktree than asked.
const REDIRECTS: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_NAMESPACE",
];

/// The argv git runs under, if any (see [`crate::reaper`]).
static REAPER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// From now on every git command runs under `reaper` (set once per process).
pub(crate) fn reap_with(reaper: Vec<String>) {
    let _ = REAPER.set(reaper);
}

/// A git command in `dir`.
pub(crate) fn command(dir: &Utf8Path, args: &[&str], tag: Option<&str>) -> Command {
    let mut c = match REAPER.get().and_then(|r| r.split_first()) {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("git");
            c
        }
        None => Command::new("git"),
    };
    c.arg("-C").arg(dir).args(args);
    for var in REDIRECTS {
        c.env_remove(var);
    }
    c.env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Reading a worktree an agent works in must never take its index lock.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null());
    if let Some(tag) = tag {
        c.env(TAG_ENV, tag);
    }
    c
}

/// Runs `c` and returns its output, whatever its status.
///
/// Its stdout and stderr are anonymous files, not pipes: a git whose deployer was SIGKILLed
/// writes on into them and finishes. Into a pipe it would die of the broken pipe — git resets
/// SIGPIPE to its default before raising it, so its lock files stay: CI's 200 killed
/// `--worktree` deployments met a `packed-refs.lock` so left, which blocks every ref deletion
/// in the repository.
///
/// It runs in a process group of its own, with a bound: past [`timeout`] — a hook that hangs —
/// or, for a command `interruptible` by the signals fleet was told of ([`stop_on`]), once one
/// of them arrived, the whole group (git and its hooks) is killed and the command is an error.
pub(crate) fn output(mut c: Command, interruptible: bool) -> Result<Output, Error> {
    use std::os::unix::process::CommandExt;
    let (stdout, stderr) = (anonymous()?, anonymous()?);
    let mut child = c
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .process_group(0)
        .spawn()
        .map_err(Error::NoGit)?;
    let pid = rustix::process::Pid::from_child(&child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(std::io::Error::from)?;
    let deadline = std::time::Instant::now() + timeout();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let stop = if interruptible && stopped() {
            Some("interrupted")
        } else if std::time::Instant::now() >= deadline {
            Some("timed out")
        } else {
            None
        };
        if let Some(why) = stop {
            // Git and whatever its hooks started: the group its runner leads. TERM first, so a
            // reaper ends the orphans it holds too; KILL what is left a moment later.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
            let grace = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.wait();
            // Git's own arguments, after its runner's (the reaper's program is not among them).
            let runner = REAPER.get().map_or(0, Vec::len);
            let args: Vec<String> = c
                .get_args()
                .skip(runner)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return Err(Error::Stopped {
                args: format!("git {}", args.join(" ")),
                why,
                after: timeout(),
            });
        }
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let slice = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&slice)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    };
    Ok(Output {
        status,
        stdout: read_back(stdout)?,
        stderr: read_back(stderr)?,
    })
}

/// How long one git command may run: 120 s, or `FLEET_GIT_TIMEOUT_MS`.
pub(crate) fn timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("FLEET_GIT_TIMEOUT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(120), Duration::from_millis)
    })
}

/// The flags that, once set, stop the interruptible git commands running (SIGINT, SIGTERM).
static STOP_ON: std::sync::Mutex<Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
    std::sync::Mutex::new(Vec::new());

/// From now on, a git command that makes a checkout stops once `flag` is set: a deployment
/// interrupted by a signal while a hook hangs rolls back at once.
pub(crate) fn stop_on(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    STOP_ON
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(flag);
}

fn stopped() -> bool {
    STOP_ON
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|f| f.load(std::sync::atomic::Ordering::Relaxed))
}

/// A file in memory only, closed on exec (the child gets its own descriptor of it).
fn anonymous() -> std::io::Result<File> {
    Ok(File::from(rustix::fs::memfd_create(
        "fleet-git",
        rustix::fs::MemfdFlags::CLOEXEC,
    )?))
}

/// What was written into `file`, from its start.
fn read_back(mut file: File) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The first line of what a failed command printed on stderr.
pub(crate) fn first_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_owned()
}

/// Whether a failure was another git at work beside this one: holding a lock it needs
/// (`index.lock`, a ref's lock, `config`), half-way through adding its own worktree (whose
/// administrative files a concurrent `git worktree add` reads before they are complete), or
/// removing its own (whose administrative directory a concurrent `git worktree remove` lists,
/// then finds gone).
pub(crate) fn is_lock_conflict(out: &Output) -> bool {
    is_conflict_message(&String::from_utf8_lossy(&out.stderr))
}

fn is_conflict_message(text: &str) -> bool {
    text.contains("failed to read") && text.contains("/worktrees/")
        || text.contains("Invalid path") && text.contains("/worktrees/")
        || text.contains(".lock': File exists")
        || text.contains("could not lock")
        || text.contains("cannot lock ref")
        || text.contains("Unable to create") && text.contains(".lock")
}

/// The error for a failed command.
pub(crate) fn failure(dir: &Utf8Path, args: &[&str], out: &Output) -> Error {
    Error::Git {
        dir: dir.to_owned(),
        args: args.join(" "),
        stderr: first_line(out),
    }
}

/// Runs git in `dir`, retrying while another git holds a lock it needs; returns its stdout on
/// success and the raw output otherwise.
pub(crate) fn run(dir: &Utf8Path, args: &[&str], tag: Option<&str>) -> Result<Output, Error> {
    let mut pause = FIRST_PAUSE;
    for _ in 1..LOCK_TRIES {
        let out = output(command(dir, args, tag), tag.is_some())?;
        if out.status.success() || !is_lock_conflict(&out) {
            return Ok(out);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    output(command(dir, args, tag), tag.is_some())
}

/// Runs git in `dir` and returns its stdout, or the error naming the command and its message.
pub(crate) fn stdout(dir: &Utf8Path, args: &[&str], tag: Option<&str>) -> Result<String, Error> {
    let out = run(dir, args, tag)?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|_| Error::NotUtf8(dir.to_owned()))
    } else {
        Err(failure(dir, args, &out))
    }
}

/// How long stragglers have to finish by themselves before they get SIGTERM.
const FINISH_GRACE: Duration = Duration::from_secs(5);
/// How long a straggler has, after SIGTERM, before it gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// How long [`end_stragglers`] keeps at it in all.
const STRAGGLERS_DEADLINE: Duration = Duration::from_secs(10);

/// Ends every process tagged with `tag` — git commands a SIGKILLed deployer started, which run
/// on after it — and waits until none is left, so that nothing recreates what is removed next.
///
/// They are let finish first, for up to [`FINISH_GRACE`]: a git interrupted half-way can leave
/// a lock behind even on SIGTERM — CI's 200 killed `--worktree` deployments met a
/// `packed-refs.lock` that a `git worktree add` and its child left when they were SIGTERMed,
/// which blocks every ref deletion in the repository — while one that finishes releases its
/// locks, and the rollback removes what it made. One still running then (a hook that hangs)
/// gets SIGTERM, on which git removes its lock files where it can, and SIGKILL after
/// [`TERM_GRACE`]. The tagged processes are looked for again until none is found: a git forks
/// its children (hooks, `reset --hard`) with the tag.
pub(crate) fn end_stragglers(tag: &str) {
    let start = std::time::Instant::now();
    let mut termed: Vec<(procs::Proc, std::time::Instant)> = Vec::new();
    let mut pause = Duration::from_millis(2);
    while start.elapsed() < STRAGGLERS_DEADLINE {
        let found: Vec<procs::Proc> = procs::all()
            .into_values()
            .filter(|p| !p.is_gone() && procs::has_env(p.pid, TAG_ENV, tag))
            .collect();
        if found.is_empty() {
            return;
        }
        if start.elapsed() >= FINISH_GRACE {
            signal(found, &mut termed);
        }
        // Each look scans every process: less often while they are let finish.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM to each of `found` not signalled yet (remembered in `termed` with when), SIGKILL to
/// one still there [`TERM_GRACE`] after its SIGTERM.
fn signal(found: Vec<procs::Proc>, termed: &mut Vec<(procs::Proc, std::time::Instant)>) {
    for p in found {
        let Some(handle) = procs::Handle::open(&p) else {
            continue;
        };
        match termed
            .iter()
            .find(|(t, _)| t.pid == p.pid && t.start_time == p.start_time)
        {
            None => {
                handle.signal(15);
                termed.push((p, std::time::Instant::now()));
            }
            Some((_, at)) if at.elapsed() >= TERM_GRACE => {
                handle.signal(9);
            }
            Some(_) => {}
        }
    }
}

/// Removes `<common dir>/refs/heads/<branch>.lock` of the repository at `repo`, when `branch` is
/// a fleet branch (`fleet/<agent id>`) and the lock is there: the lock of a git that died
/// holding it — SIGKILL, a crash of the machine, or a signal between its creating the lock
/// and registering it for removal — which fails every later `git branch -D` of the branch.
/// Call it only once no process tagged with `branch` is left ([`end_stragglers`]) and a `git
/// branch -D` still met the lock after its retries: nothing of fleet's is at work on the
/// branch then, and only fleet works on its branches. Whether a lock was removed.
pub(crate) fn remove_stale_ref_lock(repo: &Utf8Path, branch: &str) -> Result<bool, Error> {
    let Some(agent) = branch.strip_prefix(deploy_core::checkout::BRANCH_PREFIX) else {
        return Ok(false);
    };
    if deploy_core::AgentId::parse(agent).is_err() {
        return Ok(false);
    }
    let common = stdout(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        None,
    )?;
    let lock = Utf8Path::new(common.trim())
        .join("refs/heads")
        .join(format!("{branch}.lock"));
    match fs_err::remove_file(&lock) {
        Ok(()) => {
            tracing::warn!(%lock, "removed the stale lock of branch {branch}: no git is at work on it");
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_conflict_message;

    #[test]
    fn another_git_at_work_is_told_from_its_message() {
        for conflict in [
            "fatal: failed to read /r/.git/worktrees/c-1/commondir: Success",
            "fatal: Invalid path '/r/.git/worktrees/c-4': No such file or directory",
            "fatal: Unable to create '/r/.git/index.lock': File exists.",
            "error: cannot lock ref 'refs/heads/fleet/a': is at 1 but expected 2",
        ] {
            assert!(is_conflict_message(conflict), "{conflict}");
        }
        for failure in [
            "fatal: a branch named 'fleet/a' already exists",
            "fatal: '/w' is not a working tree",
            "fatal: invalid reference: nope",
        ] {
            assert!(!is_conflict_message(failure), "{failure}");
        }
    }
}
