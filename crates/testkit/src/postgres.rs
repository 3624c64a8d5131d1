//! A private PostgreSQL server for tests, as private as their tmux servers: `initdb` into a
//! temporary directory (as the `postgres` user when the tests run as root: the server refuses
//! root), listening on a free port of 127.0.0.1 and on a socket directory of its own, with
//! trust authentication for its one superuser `fleet`. Stopped (SIGINT, fast shutdown, by its
//! PID) when dropped. No installed server, database or cluster is touched.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

/// How long a start may take before the test fails (a busy CI machine is slow).
const START_BOUND: Duration = Duration::from_secs(120);

/// The line the server logs once it accepts connections.
const READY: &str = "database system is ready to accept connections";

/// A running private server.
#[derive(Debug)]
pub struct PgServer {
    _dir: tempfile::TempDir,
    data: Utf8PathBuf,
    socket: Utf8PathBuf,
    log: Utf8PathBuf,
    bin: Utf8PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
    databases: std::sync::atomic::AtomicU32,
    durable: bool,
}

/// The directory holding `initdb` and `postgres`: on `PATH`, else Debian's
/// `/usr/lib/postgresql/<version>/bin` (the newest). Panics naming what is missing.
fn bin_dir() -> Utf8PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file()
                && dir.join("postgres").is_file()
                && let Ok(dir) = Utf8PathBuf::from_path_buf(dir)
            {
                return dir;
            }
        }
    }
    let mut versions: Vec<(u32, Utf8PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.parse::<u32>().ok()?;
            let bin = Utf8PathBuf::from(format!("/usr/lib/postgresql/{name}/bin"));
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb and postgres are on neither PATH nor /usr/lib/postgresql/*/bin: \
             install the postgresql package (.ci/run does)"
        )
    })
}

/// The `postgres` user's uid and gid, when running as root.
fn owner() -> Option<(u32, u32)> {
    let uid = id("-u", "")?;
    if uid != 0 {
        return None;
    }
    let (Some(u), Some(g)) = (id("-u", "postgres"), id("-g", "postgres")) else {
        panic!("running as root, and there is no postgres user to run the test server as");
    };
    Some((u, g))
}

fn id(flag: &str, user: &str) -> Option<u32> {
    let mut c = Command::new("id");
    c.arg(flag);
    if !user.is_empty() {
        c.arg(user);
    }
    let out = c.output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port on 127.0.0.1: {e}"))
}

impl PgServer {
    /// Makes a cluster and starts its server; returns once it accepts connections. It does not
    /// flush to disk (`fsync=off`): tests lose nothing by it and run faster.
    pub fn start() -> PgServer {
        PgServer::started(false)
    }

    /// As [`start`](Self::start), but the server flushes its log to disk on every commit as
    /// an installed server does (`fsync=on`, `synchronous_commit=on`): for benchmarks, so that
    /// a commit costs what it costs users.
    pub fn start_durable() -> PgServer {
        PgServer::started(true)
    }

    fn started(durable: bool) -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let root = Utf8PathBuf::from_path_buf(dir.path().to_owned())
            .unwrap_or_else(|p| panic!("a temporary directory is not UTF-8: {}", p.display()));
        let owner = owner();
        let (data, socket, log) = (root.join("data"), root.join("sock"), root.join("log"));
        std::fs::create_dir(&socket).unwrap_or_else(|e| panic!("{socket}: {e}"));
        if let Some((u, g)) = owner {
            for p in [root.as_path(), socket.as_path()] {
                std::os::unix::fs::chown(p, Some(u), Some(g))
                    .unwrap_or_else(|e| panic!("chown {p} to postgres: {e}"));
            }
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-D",
                data.as_str(),
                "-U",
                "fleet",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
            .args(["--no-locale", "--no-sync"])
            .stdin(Stdio::null());
        as_owner(&mut initdb, owner);
        let out = initdb
            .output()
            .unwrap_or_else(|e| panic!("{}/initdb: {e}", bin));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = PgServer {
            _dir: dir,
            data,
            socket,
            log,
            bin,
            port: free_port(),
            owner,
            child: None,
            databases: std::sync::atomic::AtomicU32::new(0),
            durable,
        };
        server.run();
        server
    }

    /// Starts the server on the cluster (again, after [`stop`](Self::stop)), on the same port.
    pub fn run(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let log = std::fs::File::create(&self.log).unwrap_or_else(|e| panic!("{}: {e}", self.log));
        if let Some((u, g)) = self.owner {
            let _ = std::os::unix::fs::chown(&self.log, Some(u), Some(g));
        }
        let errors = log
            .try_clone()
            .unwrap_or_else(|e| panic!("{}: {e}", self.log));
        let mut c = Command::new(self.bin.join("postgres"));
        c.args(["-D", self.data.as_str(), "-p", &self.port.to_string()])
            .args([
                "-k",
                self.socket.as_str(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args([
                "-c",
                if self.durable {
                    "fsync=on"
                } else {
                    "fsync=off"
                },
            ])
            .args(["-c", "synchronous_commit=on", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(errors);
        as_owner(&mut c, self.owner);
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("{}/postgres: {e}", self.bin));
        crate::ready::await_line(&mut child, &self.log, READY, START_BOUND, "postgres");
        self.child = Some(child);
    }

    /// Stops the server (fast shutdown: connections are cut, the cluster is kept).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT to our own child, by PID: fast shutdown.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if start.elapsed() > START_BOUND {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's socket directory.
    pub fn socket_dir(&self) -> &Utf8Path {
        &self.socket
    }

    /// A URL of database `db` for the superuser `fleet`, over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://fleet@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn new_database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("fleet_test_{n}");
        query(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }
}

/// Runs `sql` on the database at `url` and returns the first column of its rows as text: a
/// test's own reads and writes behind fleet's back (a damaged row, what a row holds).
pub fn query(url: &str, sql: &str) -> Vec<String> {
    off_runtime(|| {
        let mut client = postgres::Client::connect(url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test's postgres: {e}"));
        client
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    })
}

/// Runs `f` on a thread of its own: the blocking `postgres` client runs a runtime of its own,
/// which cannot start on a thread that drives an async test.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn as_owner(c: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((u, g)) = owner {
        c.uid(u).gid(g).env("HOME", "/tmp");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
