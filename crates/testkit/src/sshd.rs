//! Private OpenSSH servers for tests, as private as their tmux and PostgreSQL servers: each
//! [`SshServer`] is a real `sshd` on a free port of 127.0.0.1 with a host key of its own, taking
//! only the test's own client key, and started with a configuration of its own (no system
//! configuration, no PAM). [`SshClient`] is the client side: a key pair, a `known_hosts` with
//! exactly the servers the test chose to trust, and an `ssh_config` naming each server by an
//! alias — handed to fleet with `FLEET_SSH_CONFIG`, so that no user or system ssh configuration
//! is read. Each server is stopped (SIGTERM, by its PID) when dropped.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

/// How long a start may take before the test fails.
const START_BOUND: Duration = Duration::from_secs(60);

/// The line `sshd -e` logs once it listens.
const READY: &str = "Server listening on";

fn sshd_bin() -> Utf8PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/sbin"] {
        let bin = Utf8PathBuf::from(dir).join("sshd");
        if bin.is_file() {
            return bin;
        }
    }
    panic!(
        "OpenSSH's sshd is in none of /usr/sbin, /usr/local/sbin, /sbin: install the \
         openssh-server package (.ci/run does)"
    )
}

fn keygen(path: &Utf8Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f"])
        .arg(path.as_str())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("ssh-keygen (openssh-client): {e}"));
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port on 127.0.0.1: {e}"))
}

fn read(path: &Utf8Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The client side of a test: a key pair, a `known_hosts` and an `ssh_config`.
#[derive(Debug)]
pub struct SshClient {
    _dir: tempfile::TempDir,
    dir: Utf8PathBuf,
    key: Utf8PathBuf,
    config: String,
    known: String,
}

impl Default for SshClient {
    fn default() -> Self {
        SshClient::new()
    }
}

impl SshClient {
    /// A new key pair and empty `known_hosts` and `ssh_config`.
    pub fn new() -> SshClient {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned())
            .unwrap_or_else(|p| panic!("a temporary directory is not UTF-8: {}", p.display()));
        let key = path.join("id_ed25519");
        keygen(&key);
        let client = SshClient {
            _dir: dir,
            dir: path,
            key,
            config: String::new(),
            known: String::new(),
        };
        client.write();
        client
    }

    /// The client's public key, one `authorized_keys` line.
    pub fn public_key(&self) -> String {
        read(&self.key.with_extension("pub"))
    }

    /// Names `server` `alias` in the `ssh_config` (its address, port, user and the client's
    /// key), trusting its host key when `trusted`.
    pub fn add(&mut self, alias: &str, server: &SshServer, trusted: bool) {
        let _ = write!(
            self.config,
            "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  \
             LogLevel ERROR\n",
            server.port,
            whoami(),
            self.key,
            self.known_hosts(),
        );
        if trusted {
            let key = read(&server.host_key.with_extension("pub"));
            let mut words = key.split_whitespace();
            let (kind, body) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let _ = writeln!(self.known, "[127.0.0.1]:{} {kind} {body}", server.port);
        }
        self.write();
    }

    /// The `ssh_config` (for `FLEET_SSH_CONFIG`, `ssh -F`).
    pub fn config_file(&self) -> Utf8PathBuf {
        self.dir.join("ssh_config")
    }

    fn known_hosts(&self) -> Utf8PathBuf {
        self.dir.join("known_hosts")
    }

    fn write(&self) {
        for (path, text) in [
            (self.config_file(), &self.config),
            (self.known_hosts(), &self.known),
        ] {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}

fn whoami() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .unwrap_or_else(|e| panic!("id -un: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A running private `sshd`.
#[derive(Debug)]
pub struct SshServer {
    _dir: tempfile::TempDir,
    host_key: Utf8PathBuf,
    config: Utf8PathBuf,
    /// The configuration without its `SetEnv` lines.
    base: String,
    log: Utf8PathBuf,
    port: u16,
    child: Option<Child>,
}

impl SshServer {
    /// Starts an `sshd` that lets in `client`'s key (for the user the tests run as); returns
    /// once it listens.
    pub fn start(client: &SshClient) -> SshServer {
        SshServer::start_with(client, &[])
    }

    /// As [`start`](Self::start), setting `env` in every session (sshd's `SetEnv`): what makes
    /// the machine a simulated host is its own, such as the `TMUX_TMPDIR` of its tmux servers.
    pub fn start_with(client: &SshClient, env: &[(&str, &str)]) -> SshServer {
        if !Utf8Path::new("/run/sshd").is_dir() {
            panic!(
                "sshd needs its privilege separation directory /run/sshd: create it \
                 (`mkdir -p /run/sshd`; .ci/run does)"
            );
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned())
            .unwrap_or_else(|p| panic!("a temporary directory is not UTF-8: {}", p.display()));
        let host_key = root.join("host_key");
        keygen(&host_key);
        let authorized = root.join("authorized_keys");
        std::fs::write(&authorized, client.public_key())
            .unwrap_or_else(|e| panic!("{authorized}: {e}"));
        let port = free_port();
        let config = root.join("sshd_config");
        let text = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile \
             {authorized}\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile none\nPrintMotd no\nMaxSessions 100\nMaxStartups 100\n\
             LogLevel INFO\n"
        );
        let mut server = SshServer {
            _dir: dir,
            host_key,
            log: root.join("log"),
            config,
            base: text,
            port,
            child: None,
        };
        server.restart_with(env);
        server
    }

    /// Starts the server anew (same port, same host key) with `env` set in every session
    /// instead of what was: for an environment known only once the server runs (a model
    /// server's URL). Connections made before keep theirs.
    pub fn restart_with(&mut self, env: &[(&str, &str)]) {
        self.stop();
        let mut text = self.base.clone();
        // One SetEnv line: sshd takes a keyword's first line only.
        if !env.is_empty() {
            text.push_str("SetEnv");
            for (k, v) in env {
                assert!(
                    !v.contains(char::is_whitespace),
                    "sshd's SetEnv takes no space: {k}={v}"
                );
                let _ = write!(text, " {k}={v}");
            }
            text.push('\n');
        }
        std::fs::write(&self.config, text).unwrap_or_else(|e| panic!("{}: {e}", self.config));
        self.run();
    }

    /// Starts the server (again, after [`stop`](Self::stop)), on the same port.
    pub fn run(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap_or_else(|e| panic!("{}: {e}", self.log));
        let mut child = Command::new(sshd_bin())
            .args(["-D", "-e", "-f", self.config.as_str()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("sshd: {e}"));
        crate::ready::await_line(&mut child, &self.log, READY, START_BOUND, "sshd");
        self.child = Some(child);
    }

    /// Stops the listening server, by its PID: no new connection is taken. (A connection made
    /// before lives in an sshd process of its own and lasts until it ends.)
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.stop();
    }
}
