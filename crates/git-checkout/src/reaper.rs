//! The reaper git runs under: a child subreaper (`PR_SET_CHILD_SUBREAPER`, as the agent
//! wrapper is) that runs git, and once git has exited ends whatever git's hooks left behind.
//! A hook's daemon that calls `setsid` and clears its environment leaves git's process group
//! and carries no tag; as an orphan it is re-parented to the reaper, never to init, and ended
//! with the command. SIGTERM and SIGINT do not end the reaper: git gets them too (its
//! process group, or the straggler sweep), and a git that finishes releases its locks; once it
//! has exited the reaper ends the orphans and exits.

use std::ffi::OsString;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `argv` (git and its arguments) under the reaper; exits as git did.
pub fn main(argv: &[OsString]) -> ExitCode {
    let Some((program, args)) = argv.split_first() else {
        eprintln!("fleet git-reap: no command given");
        return ExitCode::from(2);
    };
    // Best effort: without it (an old kernel) the reaper still runs git.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("fleet git-reap: cannot handle signal {signal}: {e}");
            return ExitCode::from(125);
        }
    }
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "fleet git-reap: cannot run {}: {e}",
                program.to_string_lossy()
            );
            return ExitCode::from(127);
        }
    };
    // Caught, not acted on: the reaper outlives git to end what git's hooks left.
    let status = child.wait().ok();
    if stop.load(Ordering::Relaxed) {
        tracing::debug!("git ended after a signal");
    }
    procs::end_children();
    match status.and_then(|s| s.code()) {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::from(143),
    }
}
