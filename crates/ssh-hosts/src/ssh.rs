//! The system `ssh` client, run by argv with fleet's options, a bound on every call, and one
//! ControlMaster connection per host that is reused while it works and replaced when not.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::HostName;

use crate::{Error, HostEntry};

/// How long ssh may take to reach a host (`ConnectTimeout`, seconds).
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// How long the master connection of a host stays open after its last use (`ControlPersist`).
const PERSIST: &str = "120";

/// The longest control directory: a socket path is at most 107 bytes (`sun_path` with its
/// NUL), and ssh's own is the directory, `/h-` and 16 hex digits, then ssh's temporary
/// `.` and 16 characters while it binds.
const MAX_CONTROL_DIR: usize = 107 - 19 - 17;

/// ssh's exit status when it, not the remote command, failed.
const SSH_FAILED: i32 = 255;

/// What a remote command returned.
#[derive(Debug)]
pub struct Reply {
    /// Its exit status (`None`: ended by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: String,
    /// How long the call took, from ssh's start to its end.
    pub took: Duration,
}

/// The `ssh` client with fleet's options.
#[derive(Debug, Clone)]
pub struct Ssh {
    control_dir: Utf8PathBuf,
    config: Option<Utf8PathBuf>,
}

impl Ssh {
    /// A client whose master connections live in `control_dir` (made 0700), reading its
    /// configuration from `config` (`ssh -F`) if given, else from the user's own (`~/.ssh/config`
    /// and the system's), as their `ssh` does. A `control_dir` too long for a socket path is
    /// replaced by a short one of this user's own: `<tmp>/fleet-ssh-<uid>/<hash of it>`.
    pub fn new(control_dir: Utf8PathBuf, config: Option<Utf8PathBuf>) -> Result<Ssh, Error> {
        let store = |path: &Utf8Path, message: String| Error::Store {
            path: path.to_string(),
            message,
        };
        let control_dir = if control_dir.as_str().len() <= MAX_CONTROL_DIR {
            control_dir
        } else {
            short_dir(&control_dir)?
        };
        if control_dir.as_str().len() > MAX_CONTROL_DIR {
            return Err(store(
                &control_dir,
                format!("too long for ssh's control sockets (at most {MAX_CONTROL_DIR} bytes)"),
            ));
        }
        deploy_core::private::create_dir_all(&control_dir)
            .map_err(|e| store(&control_dir, e.to_string()))?;
        Ok(Ssh {
            control_dir,
            config,
        })
    }

    /// The directory of the master connections' sockets.
    pub fn control_dir(&self) -> &Utf8Path {
        &self.control_dir
    }

    /// ssh's options, before the destination; with a terminal (`-t`) or without (`-T`).
    fn options(&self, host: &HostEntry, name: &HostName, tty: bool) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["-F".to_owned(), config.to_string()]);
        }
        for option in [
            "BatchMode=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"),
            "ServerAliveInterval=5".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
            "ControlMaster=auto".to_owned(),
            format!("ControlPath={}", self.control_path(name, host)),
            format!("ControlPersist={PERSIST}"),
        ] {
            args.extend(["-o".to_owned(), option]);
        }
        // Without a terminal, the remote command's stdin is the pipe fleet writes and watches.
        args.push(if tty { "-t" } else { "-T" }.to_owned());
        args
    }

    /// The control socket of host `name` at `host.ssh`: one per host and destination, in the
    /// control directory, named so that fleet can remove it when its master hangs (ssh's own
    /// `%C` would hide which file is whose).
    pub fn control_path(&self, name: &HostName, host: &HostEntry) -> Utf8PathBuf {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (name.as_str(), host.ssh.as_str()).hash(&mut hasher);
        self.control_dir.join(format!("h-{:016x}", hasher.finish()))
    }

    /// The `ssh` command that runs `remote` (argv, quoted here into the one string ssh hands
    /// the remote shell) on host `name`.
    pub fn command(&self, name: &HostName, host: &HostEntry, remote: &[String]) -> Command {
        self.command_with(name, host, remote, false)
    }

    /// [`command`](Self::command) with a terminal (`ssh -t`), for a command the user drives
    /// (`fleet attach`): this process's stdin, stdout and stderr are the remote's.
    pub fn interactive(&self, name: &HostName, host: &HostEntry, remote: &[String]) -> Command {
        self.command_with(name, host, remote, true)
    }

    fn command_with(
        &self,
        name: &HostName,
        host: &HostEntry,
        remote: &[String],
        tty: bool,
    ) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.options(host, name, tty))
            .arg("--")
            .arg(&host.ssh)
            .arg(shell_words::join(remote));
        c
    }

    /// Runs `remote` on host `name`: `input` is written to its stdin, which stays open until the
    /// command ends — the remote fleet takes its stdin's end as the controller's loss — and
    /// the whole call is bounded by `bound`. ssh's own failures (exit 255) become
    /// [`Error::HostKey`] or [`Error::Unreachable`] with ssh's line; past `bound`, ssh is killed,
    /// the host's master connection is stopped so that the next call makes a new one, and the
    /// call fails with [`Error::Timeout`].
    pub fn run(
        &self,
        name: &HostName,
        host: &HostEntry,
        remote: &[String],
        input: &[u8],
        bound: Duration,
    ) -> Result<Reply, Error> {
        let start = Instant::now();
        let mut child = self
            .command(name, host, remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Spawn(e.to_string()))?;
        let mut stdin = child.stdin.take();
        if let Some(pipe) = stdin.as_mut() {
            // A remote that already ended closes the pipe: its reply says why.
            let _ = pipe.write_all(input).and_then(|()| pipe.flush());
        }
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let status = wait_bounded(&mut child, start, bound);
        drop(stdin);
        let Some(status) = status else {
            self.stop_master(name, host);
            return Err(Error::Timeout {
                host: name.clone(),
                dest: host.ssh.clone(),
                seconds: bound.as_secs(),
            });
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        let code = status.code();
        if code == Some(SSH_FAILED) {
            return Err(classify(name, host, &stderr));
        }
        Ok(Reply {
            code,
            stdout,
            stderr,
            took: start.elapsed(),
        })
    }

    /// Stops host `name`'s master connection (`ssh -O exit`, bounded), then removes its
    /// socket: the next call makes a new one, even when the old master hangs and cannot be
    /// asked to exit. A master that is gone already is no failure.
    pub fn stop_master(&self, name: &HostName, host: &HostEntry) {
        let mut c = Command::new("ssh");
        c.args(self.options(host, name, false))
            .args(["-O", "exit", "--"])
            .arg(&host.ssh)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Ok(mut child) = c.spawn()
            && wait_bounded(&mut child, Instant::now(), Duration::from_secs(5)).is_none()
        {
            tracing::warn!(dest = %host.ssh, "ssh -O exit did not end: its master hangs; its socket is removed");
        }
        let _ = std::fs::remove_file(self.control_path(name, host));
    }
}

/// A short directory of this user's own for the control sockets of `long`:
/// `<tmp>/fleet-ssh-<uid>/<hash>`, the parent made 0700 and checked to be this user's and
/// closed to others (another user's planted directory is refused, never used).
fn short_dir(long: &Utf8Path) -> Result<Utf8PathBuf, Error> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    let tmp = Utf8PathBuf::from_path_buf(std::env::temp_dir())
        .unwrap_or_else(|_| Utf8PathBuf::from("/tmp"));
    let parent = tmp.join(format!("fleet-ssh-{uid}"));
    let store = |message: String| Error::Store {
        path: parent.to_string(),
        message,
    };
    deploy_core::private::create_dir_all(&parent).map_err(|e| store(e.to_string()))?;
    let meta = std::fs::symlink_metadata(&parent).map_err(|e| store(e.to_string()))?;
    if meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(store(
            "is not this user's own private directory: ssh's control sockets are not put there"
                .into(),
        ));
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    long.hash(&mut hasher);
    Ok(parent.join(format!("{:016x}", hasher.finish())))
}

/// Reads `pipe` to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits for `child` until `start + bound`; past it, kills and reaps it (our own child, by its
/// handle) and returns `None`.
fn wait_bounded(
    child: &mut Child,
    start: Instant,
    bound: Duration,
) -> Option<std::process::ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < bound => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The error of an ssh that failed by itself, from its stderr.
fn classify(name: &HostName, host: &HostEntry, stderr: &str) -> Error {
    let Some(line) = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned)
    else {
        // ssh says why whenever it fails by itself; silent, it passed on a remote command's
        // death by a signal.
        return Error::Lost {
            host: name.clone(),
            dest: host.ssh.clone(),
        };
    };
    let key = [
        "Host key verification failed",
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "host key is known",
        "No matching host key",
    ];
    if key.iter().any(|k| stderr.contains(k)) {
        Error::HostKey {
            host: name.clone(),
            dest: host.ssh.clone(),
            message: line,
        }
    } else {
        Error::Unreachable {
            host: name.clone(),
            dest: host.ssh.clone(),
            message: line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ssh: &str) -> HostEntry {
        HostEntry {
            ssh: ssh.into(),
            root: None,
            socket: None,
            fleet: None,
        }
    }

    #[test]
    fn the_remote_command_is_one_quoted_word_after_the_destination_and_batch_mode_is_on() {
        let dir = tempfile::tempdir().unwrap();
        let dir = Utf8PathBuf::from_path_buf(dir.path().join("ssh")).unwrap();
        let ssh = Ssh::new(dir.clone(), None).unwrap();
        let b = HostName::parse("b").unwrap();
        let c = ssh.command(
            &b,
            &entry("alice@b"),
            &["fleet".into(), "--root".into(), "my work; rm -rf ~".into()],
        );
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let dash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dash + 1], "alice@b");
        assert_eq!(args[dash + 2], "fleet --root 'my work; rm -rf ~'");
        assert_eq!(args.len(), dash + 3);
        for o in ["BatchMode=yes", "StrictHostKeyChecking=yes"] {
            assert!(args.iter().any(|a| a == o), "{o}: {args:?}");
        }
        let path = ssh.control_path(&b, &entry("alice@b"));
        assert!(args.contains(&format!("ControlPath={path}")));
        assert_eq!(path.parent(), Some(dir.as_path()));
        assert_ne!(
            path,
            ssh.control_path(&b, &entry("alice@elsewhere")),
            "one per destination"
        );
        assert_eq!(deploy_core::private::mode_for(&dir) & 0o777, 0o700);
    }

    #[test]
    fn a_control_directory_too_long_for_a_socket_is_replaced_by_a_short_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let long = Utf8PathBuf::from_path_buf(dir.path().join("d".repeat(100))).unwrap();
        let ssh = Ssh::new(long.clone(), None).unwrap();
        let short = ssh.control_dir();
        assert!(short.as_str().len() <= MAX_CONTROL_DIR, "{short}");
        assert!(!long.exists());
        assert_eq!(deploy_core::private::mode_for(short) & 0o777, 0o700);
        assert_eq!(
            Ssh::new(long, None).unwrap().control_dir(),
            short,
            "the same each time"
        );
        let _ = std::fs::remove_dir(short);
    }

    #[test]
    fn ssh_s_own_failures_are_named() {
        let b = HostName::parse("b").unwrap();
        let e = classify(
            &b,
            &entry("b.example"),
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n",
        );
        assert!(matches!(e, Error::HostKey { .. }), "{e}");
        let e = classify(
            &b,
            &entry("b.example"),
            "ssh: connect to host 127.0.0.1 port 9: Connection refused\r\n",
        );
        assert_eq!(
            e.to_string(),
            "host b (b.example) is unreachable: ssh: connect to host 127.0.0.1 port 9: Connection refused"
        );
        assert!(matches!(
            classify(&b, &entry("b.example"), ""),
            Error::Lost { .. }
        ));
    }
}
