//! The fixed wrapper every agent runs under, in its tmux pane:
//!
//! ```text
//! <wrapper> --log <log file> --stdin <prompt file | -> --gate <fifo | -> -- <agent argv...>
//! ```
//!
//! It becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`, as tini does), so nothing the agent
//! starts — even a daemon that double-forks, calls setsid and drops its environment tag — leaves
//! its process tree. It waits at the gate ([`crate::gate`]) until the deployment lets the agent
//! run, and ends with status 125 without running it if the gate closes instead. It runs the agent
//! from argv (no shell) with stdin from the prompt file (or `/dev/null` for `-`), copies the
//! agent's stdout and stderr both to the pane and to the log file, and when the agent ends, ends
//! whatever the agent left running (TERM, then KILL), then ends the way the agent ended: the
//! same exit status, or the same signal re-raised on itself — so the status tmux records is the
//! agent's own, not a pipe's or a wrapper's. An agent that cannot be started is reported on both
//! outputs and ends with status 127 (not found) or 126.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// The file beside the log where the wrapper records how the agent ended (`code 7`,
/// `signal 15`). tmux records the same status, but sometimes shows a pane as dead before it has
/// reaped its process, and in rare runs never records the status at all; this file does not
/// depend on that.
pub fn status_file(log: &std::path::Path) -> std::path::PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".exit");
    name.into()
}

/// Reads what [`status_file`] holds.
pub fn read_status(log: &std::path::Path) -> Option<deploy_core::ExitStatus> {
    // The agent can replace this file too: read only a regular one, and only its start.
    let mut text = String::new();
    let file = activity::agent_file::open(&status_file(log)).ok()?;
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 64), &mut text).ok()?;
    let (kind, n) = text.trim().split_once(' ')?;
    let n: i32 = n.parse().ok()?;
    match kind {
        "code" => Some(deploy_core::ExitStatus::Code(n)),
        "signal" => Some(deploy_core::ExitStatus::Signal(n)),
        _ => None,
    }
}

fn record_status(log: &OsStr, status: &str) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(deploy_core::private::FILE_MODE)
        .open(status_file(std::path::Path::new(log)));
    if let Ok(mut f) = file {
        let _ = writeln!(f, "{status}");
    }
}

/// How long output written after the agent exited (by its orphans) is still copied.
const DRAIN: Duration = Duration::from_millis(200);

/// The wrapper's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapArgs {
    /// The log file (appended to, created 0600).
    pub log: OsString,
    /// The prompt file for stdin; `None` for `/dev/null`.
    pub stdin: Option<OsString>,
    /// The gate to wait at before running the agent; `None` to run it at once.
    pub gate: Option<OsString>,
    /// The agent's argv.
    pub argv: Vec<OsString>,
}

impl WrapArgs {
    /// Parses the fixed layout `--log L --stdin S --gate G -- argv...` written by
    /// [`crate::TmuxBackend`]. This is an internal protocol between fleet and itself, not a
    /// user interface.
    pub fn from_args(args: &[OsString]) -> Result<WrapArgs, String> {
        let arg = |i: usize| args.get(i).map(OsString::as_os_str);
        let expect = |i: usize, flag: &str| {
            (arg(i) == Some(OsStr::new(flag)))
                .then_some(())
                .ok_or_else(|| format!("argument {i} must be {flag}"))
        };
        expect(0, "--log")?;
        expect(2, "--stdin")?;
        expect(4, "--gate")?;
        expect(6, "--")?;
        let log = arg(1).ok_or("missing log file")?.to_owned();
        let optional = |i: usize, what: &str| {
            let v = arg(i).ok_or(format!("missing {what}"))?;
            Ok::<_, String>((v != OsStr::new("-")).then(|| v.to_owned()))
        };
        let stdin = optional(3, "stdin")?;
        let gate = optional(5, "gate")?;
        let argv: Vec<OsString> = args.get(7..).unwrap_or_default().to_vec();
        if argv.is_empty() {
            return Err("missing agent command".into());
        }
        Ok(WrapArgs {
            log,
            stdin,
            gate,
            argv,
        })
    }

    /// The arguments, in the layout [`from_args`](Self::from_args) reads.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["--log".into(), self.log.clone(), "--stdin".into()];
        out.push(self.stdin.clone().unwrap_or_else(|| "-".into()));
        out.push("--gate".into());
        out.push(self.gate.clone().unwrap_or_else(|| "-".into()));
        out.push("--".into());
        out.extend(self.argv.iter().cloned());
        out
    }
}

/// The wrapper as a program's `main`: parses `args` (without the program name; see
/// [`WrapArgs::from_args`]) and runs. A malformed call ends with status 126.
pub fn main(args: &[OsString]) -> ExitCode {
    match WrapArgs::from_args(args) {
        Ok(wrap) => run(&wrap),
        Err(e) => {
            eprintln!("fleet-agent-wrap: {e}");
            ExitCode::from(126)
        }
    }
}

/// Runs the wrapper and ends as the agent ended. Returns only with an exit code (a signal
/// re-raised on the wrapper ends it before).
pub fn run(args: &WrapArgs) -> ExitCode {
    // Orphans of the agent re-parent to this process instead of init: they stay in the tree a
    // kill walks, and are ended with the agent. (Best effort: an old kernel lacks it.)
    let subreaper = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let mut log = match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(deploy_core::private::FILE_MODE)
        .open(&args.log)
    {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!(
                "fleet: cannot open log file {}: {e}",
                args.log.to_string_lossy()
            );
            None
        }
    };
    if let Err(e) = subreaper {
        emit(
            &mut log,
            format!("fleet: cannot become a child subreaper: {e}\n").as_bytes(),
        );
    }
    if let Some(gate) = &args.gate {
        match crate::gate::wait(std::path::Path::new(gate)) {
            Ok(true) => {}
            Ok(false) => {
                let msg =
                    "fleet: the deployment ended before letting the agent run; it never ran\n";
                emit(&mut log, msg.as_bytes());
                record_status(&args.log, "code 125");
                return ExitCode::from(125);
            }
            Err(e) => {
                let msg = format!(
                    "fleet: cannot wait at the gate {}: {e}\n",
                    gate.to_string_lossy()
                );
                emit(&mut log, msg.as_bytes());
                record_status(&args.log, "code 125");
                return ExitCode::from(125);
            }
        }
    }
    let stdin = match &args.stdin {
        None => Stdio::null(),
        Some(path) => match File::open(path) {
            Ok(f) => Stdio::from(f),
            Err(e) => {
                let msg = format!(
                    "fleet: cannot open prompt file {}: {e}\n",
                    path.to_string_lossy()
                );
                emit(&mut log, msg.as_bytes());
                return ExitCode::from(126);
            }
        },
    };
    let (mut reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => {
            emit(
                &mut log,
                format!("fleet: cannot create a pipe: {e}\n").as_bytes(),
            );
            return ExitCode::from(126);
        }
    };
    let writer_err = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            emit(
                &mut log,
                format!("fleet: cannot duplicate a pipe: {e}\n").as_bytes(),
            );
            return ExitCode::from(126);
        }
    };
    let (program, rest) = match args.argv.split_first() {
        Some(split) => split,
        None => return ExitCode::from(126),
    };
    let spawned = Command::new(program)
        .args(rest)
        .stdin(stdin)
        .stdout(writer)
        .stderr(writer_err)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let msg = format!("fleet: cannot run {}: {e}\n", program.to_string_lossy());
            emit(&mut log, msg.as_bytes());
            record_status(&args.log, &format!("code {code}"));
            return ExitCode::from(code);
        }
    };
    // The Command (and its copies of the pipe's write end) is gone: EOF comes when the agent
    // and whatever inherited its output close it.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let copier = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => emit(&mut log, &buf[..n]),
            }
        }
        let _ = done_tx.send(());
    });
    let status = match child.wait() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet: cannot wait for the agent: {e}");
            return ExitCode::from(126);
        }
    };
    procs::end_children();
    // An orphan of the agent may keep the pipe open for ever: copy what comes soon, then go.
    if done_rx.recv_timeout(DRAIN).is_ok() {
        let _ = copier.join();
    }
    if let Some(sig) = status.signal() {
        record_status(&args.log, &format!("signal {sig}"));
        reraise(sig);
        return ExitCode::from(u8::try_from(128 + sig).unwrap_or(255));
    }
    let code = status.code().unwrap_or(126);
    record_status(&args.log, &format!("code {code}"));
    ExitCode::from(u8::try_from(code).unwrap_or(255))
}

/// Writes to the pane (ignoring a closed terminal) and to the log.
fn emit(log: &mut Option<File>, bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
    if let Some(f) = log.as_mut()
        && f.write_all(bytes).is_err()
    {
        *log = None;
    }
}

/// Ends this process with `sig`, as the agent ended. The wrapper installs no handlers, so
/// every terminating signal has its default action (std ignores SIGPIPE, hence the fallback).
fn reraise(sig: i32) {
    let _ = std::io::stdout().flush();
    if let Some(signal) = rustix::process::Signal::from_named_raw(sig) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
        // Delivery to ourselves is synchronous for an unblocked signal; wait a moment anyway.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let a = WrapArgs {
            log: "/l".into(),
            stdin: Some("/p;".into()),
            gate: Some("/l.gate".into()),
            argv: vec!["claude".into(), "-p".into(), "--".into()],
        };
        assert_eq!(WrapArgs::from_args(&a.to_args()).unwrap(), a);
        let none = WrapArgs {
            stdin: None,
            gate: None,
            ..a
        };
        assert_eq!(WrapArgs::from_args(&none.to_args()).unwrap(), none);
        assert!(WrapArgs::from_args(&["--log".into()]).is_err());
    }
}
