//! Running tmux: argv only, a timeout, exact classification of "no server".

use std::ffi::OsString;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use camino::Utf8PathBuf;
use deploy_core::AGENT_ID_ENV;

use crate::Error;

/// tmux's client sends its command line in one message of at most 16 KiB; stay below.
pub(crate) const MAX_COMMAND_BYTES: usize = 15 * 1024;

/// Which tmux server fleet talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// `-L <name>`: a socket in tmux's socket directory.
    Name(String),
    /// `-S <path>`: a socket at this path.
    Path(Utf8PathBuf),
    /// Neither: the server a plain `tmux` command reaches — the one `$TMUX` names, else the
    /// `default` socket — where the Python server started its agents.
    Default,
}

impl std::fmt::Display for Server {
    /// The tmux command that reaches it: `tmux -L fleet`, `tmux -S /path`, `tmux`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Name(name) => write!(f, "tmux -L {name}"),
            Server::Path(path) => write!(f, "tmux -S {path}"),
            Server::Default => f.write_str("tmux"),
        }
    }
}

/// Escapes an argument for tmux's argv parser, which splits commands on an argument that ends
/// in `;` and turns a final `\;` into `;`: a final `;` gets a `\` before it.
pub(crate) fn escape_arg(arg: &str) -> String {
    match arg.strip_suffix(';') {
        Some(rest) => format!("{rest}\\;"),
        None => arg.to_owned(),
    }
}

/// How a tmux invocation ended.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Exit 0.
    Ok(String),
    /// No server on the socket: there are no sessions.
    NoServer,
    /// The target does not exist (`can't find session/window/pane`, or no session at all).
    NotFound(String),
    /// Anything else, with its stderr.
    Failed {
        code: Option<i32>,
        stderr: String,
        stdout: String,
    },
}

impl Reply {
    /// The server closed the connection before answering: it was exiting.
    fn lost_server(&self) -> bool {
        matches!(self, Reply::Failed { stderr, .. } if stderr.lines().next() == Some(LOST_SERVER))
    }
}

/// The whole command line of `tmux args` on `server`, program first.
pub(crate) fn command_line(tmux: &OsString, server: &Server, args: &[String]) -> Vec<OsString> {
    // No user config: fleet's server must behave the same everywhere (base-index, shells).
    // `-u`: the client is UTF-8 whatever the locale says. Without it, a client with no UTF-8
    // locale (an ssh session with no LANG, as on a host reached by `deploy --host`) prints
    // every tab and non-ASCII byte of a `-F` format as `_`, and fleet's replies do not parse.
    let mut line: Vec<OsString> = vec![tmux.clone(), "-u".into(), "-f".into(), "/dev/null".into()];
    match server {
        Server::Name(name) => line.extend(["-L".into(), name.into()]),
        Server::Path(path) => line.extend(["-S".into(), path.as_str().into()]),
        Server::Default => {}
    }
    line.extend(args.iter().map(OsString::from));
    line
}

/// How many times a command is sent again after its server went away under it.
const LOST_SERVER_RETRIES: usize = 5;

/// What a server with no session left (about to exit) answers to any target: tmux resolves
/// the "current" session before the target, and there is none.
const NO_SESSIONS: &str = "no current target";

/// What tmux's client prints when its server closed the connection before answering.
const LOST_SERVER: &str = "server exited unexpectedly";

/// Runs `tmux args` on `server`, each attempt killed after `timeout`.
///
/// A server exits when its last session ends, and a client that reached it during its exit
/// prints `server exited unexpectedly`. Whatever that server held went with it, so the command
/// is sent again, to no server or to one started since: a reconcile racing the end of the last
/// agent then sees "no sessions" rather than failing.
pub(crate) fn run(
    tmux: &OsString,
    server: &Server,
    args: &[String],
    timeout: Duration,
) -> Result<Reply, Error> {
    let mut attempts = 0;
    loop {
        let reply = run_once(tmux, server, args, timeout)?;
        if !reply.lost_server() || attempts == LOST_SERVER_RETRIES {
            return Ok(reply);
        }
        attempts += 1;
    }
}

/// One attempt of [`run`].
fn run_once(
    tmux: &OsString,
    server: &Server,
    args: &[String],
    timeout: Duration,
) -> Result<Reply, Error> {
    let line = command_line(tmux, server, args);
    let mut cmd = Command::new(&line[0]);
    cmd.args(&line[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A server started by this client must not carry an agent's tag (fleet may run inside
        // an agent): a kill of that agent would otherwise take the server down.
        .env_remove(AGENT_ID_ENV);
    procs::raise_open_files();
    let child = cmd.spawn().map_err(|source| Error::Spawn {
        binary: tmux.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::Builder::new()
        .name("tmux-wait".into())
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
    if let Err(e) = waiter {
        // No thread to wait with (a process limit): the child is ended and reaped by
        // nobody but init — it cannot be waited for here without the thread either.
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        return Err(Error::Io(std::io::Error::new(
            e.kind(),
            format!(
                "cannot start a thread to wait for {} (a process limit, ulimit -u?): {e}",
                describe(args)
            ),
        )));
    }
    let output: Output = match rx.recv_timeout(timeout) {
        Ok(out) => out.map_err(Error::Io)?,
        Err(_) => {
            // Our own child, not yet reaped (the waiting thread reaps it after this).
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            return Err(Error::Timeout {
                command: describe(args),
                waited: timeout,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(Reply::Ok(stdout));
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Ok(classify(output.status.code(), stderr, stdout))
}

fn classify(code: Option<i32>, stderr: String, stdout: String) -> Reply {
    let first = stderr.lines().next().unwrap_or_default();
    let no_server = first.starts_with("no server running on ")
        || (first.starts_with("error connecting to ")
            && (first.ends_with("(No such file or directory)")
                || first.ends_with("(Connection refused)")));
    if no_server {
        Reply::NoServer
    } else if first.starts_with("can't find ") || first == NO_SESSIONS {
        Reply::NotFound(first.to_owned())
    } else {
        Reply::Failed {
            code,
            stderr,
            stdout,
        }
    }
}

/// The tmux command names of an argv, for messages (`new-session; set-option; ...`).
pub(crate) fn describe(args: &[String]) -> String {
    let mut names = Vec::new();
    let mut next_is_name = true;
    for a in args {
        if next_is_name {
            names.push(a.as_str());
        }
        next_is_name = a == ";";
    }
    names.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_final_semicolon_is_escaped() {
        assert_eq!(escape_arg("a;"), "a\\;");
        assert_eq!(escape_arg("a\\;"), "a\\\\;");
        assert_eq!(escape_arg(";a"), ";a");
        assert_eq!(escape_arg("a"), "a");
    }

    #[test]
    fn no_server_and_missing_targets_are_told_apart_from_failures() {
        let c = |s: &str| classify(Some(1), s.to_owned(), String::new());
        assert!(matches!(
            c("no server running on /tmp/tmux-0/x"),
            Reply::NoServer
        ));
        assert!(matches!(
            c("error connecting to /tmp/tmux-0/x (No such file or directory)"),
            Reply::NoServer
        ));
        assert!(matches!(c("can't find session: =a"), Reply::NotFound(_)));
        assert!(matches!(c("no current target"), Reply::NotFound(_)));
        assert!(c("server exited unexpectedly").lost_server());
        assert!(!c("duplicate session: a").lost_server());
        assert!(matches!(
            c("error connecting to /tmp/tmux-0/x (Permission denied)"),
            Reply::Failed { .. }
        ));
        assert!(matches!(c("duplicate session: a"), Reply::Failed { .. }));
    }
}
