//! The harness shared by the black-box tests: a workspace root and a private tmux socket per
//! test, both removed at the end; only this test's own servers are ever killed.
//!
//! Every tmux this harness runs or lets fleet run has `TMUX_TMPDIR` inside the test's temporary
//! directory and no `TMUX`, so even a plain `tmux` — the "default server" the Python server
//! used, where fleet looks for its agents — is this test's own, never the user's.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of it

pub mod claude;
pub mod hosts;
pub mod python;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};
use serde_json::Value;

const FLEET: &str = env!("CARGO_BIN_EXE_fleet");
/// Runs these tests against another registry than the default JSON one: its value (`sqlite`
/// or `postgres`) is passed to fleet as `FLEET_REGISTRY` (`cargo xtask ci` runs the black-box
/// and crash tests so); with `postgres`, each test starts a PostgreSQL server of its own.
pub const TEST_REGISTRY: &str = "FLEET_TEST_REGISTRY";
static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub socket: String,
    /// Settings every fleet command of this test gets (`Fleet::on_postgres`).
    pub settings: Vec<(String, String)>,
    /// This test's own PostgreSQL server, when the tests run against the Postgres registry
    /// (`FLEET_TEST_REGISTRY=postgres`); stopped with the test.
    pub postgres: Option<testkit::postgres::PgServer>,
}

impl Fleet {
    pub fn new() -> Fleet {
        let mut f = Fleet {
            dir: tempfile::tempdir().unwrap(),
            socket: format!(
                "fleet-cli-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            ),
            settings: Vec::new(),
            postgres: None,
        };
        if std::env::var(TEST_REGISTRY).as_deref() == Ok("postgres") {
            let server = testkit::postgres::PgServer::start();
            f.settings = vec![("FLEET_DATABASE_URL".into(), server.new_database())];
            f.postgres = Some(server);
        }
        f
    }

    /// A workspace whose registry is the Postgres database at `url`.
    pub fn on_postgres(url: &str) -> Fleet {
        let mut f = Fleet::new();
        f.settings = vec![
            ("FLEET_REGISTRY".into(), "postgres".into()),
            ("FLEET_DATABASE_URL".into(), url.into()),
        ];
        f
    }

    pub fn root(&self) -> Utf8PathBuf {
        Utf8PathBuf::from_path_buf(self.dir.path().join("ws")).unwrap()
    }

    /// This test's `TMUX_TMPDIR`: its default tmux server and its `-L` sockets live there.
    pub fn tmux_tmpdir(&self) -> Utf8PathBuf {
        let dir = Utf8PathBuf::from_path_buf(self.dir.path().join("tmux")).unwrap();
        fs_err::create_dir_all(&dir).unwrap();
        dir
    }

    /// Points `c`'s tmux at this test's servers: its `TMUX_TMPDIR`, and no `TMUX` (which would
    /// name the server of the terminal the tests run in).
    pub fn private_tmux(&self, c: &mut Command) {
        c.env("TMUX_TMPDIR", self.tmux_tmpdir()).env_remove("TMUX");
    }

    /// The socket of this test's "default" server: where a plain `tmux`, with this test's
    /// `TMUX_TMPDIR` and no `TMUX`, puts it — `$TMUX_TMPDIR/tmux-<uid>/default`.
    pub fn default_socket(&self) -> Utf8PathBuf {
        use std::os::unix::fs::DirBuilderExt;
        use std::os::unix::fs::MetadataExt;
        let uid = fs_err::metadata("/proc/self").unwrap().uid();
        // tmux makes this directory (0700) for a plain `tmux`, not for `-S`.
        let dir = self.tmux_tmpdir().join(format!("tmux-{uid}"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .unwrap();
        dir.join("default")
    }

    /// This test's default server — the one the Python server's plain `tmux` reaches, which
    /// fleet's adopted backend and `--socket default` reach too — named by its socket (`-S`).
    pub fn default_tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(self.default_socket()).args(args);
        self.private_tmux(&mut c);
        c.output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(FLEET);
        c.args(args);
        self.environment(&mut c);
        c
    }

    /// This test's workspace and socket, and none of the caller's fleet settings.
    pub fn environment(&self, c: &mut Command) {
        c.env("FLEET_ROOT", self.root())
            .env("FLEET_TMUX_SOCKET", &self.socket)
            .env_remove("FLEET_REGISTRY")
            .env_remove("FLEET_DATABASE_URL")
            .env_remove("FLEET_DATABASE_URL_FILE")
            .env_remove("FLEET_AGENT_CMD")
            .env_remove("CLAUDE_ORCHESTRATOR_WORKSPACE")
            .env_remove("FLEET_AGENT_ID")
            .env_remove("FLEET_HOST")
            // The tests run as root in CI, where Claude Code (and fleet) refuse bypassPermissions
            // without a sandbox's word; the test of that refusal removes it.
            .env("IS_SANDBOX", "1")
            .stdin(Stdio::null());
        if let Ok(kind) = std::env::var(TEST_REGISTRY)
            && !kind.is_empty()
        {
            c.env("FLEET_REGISTRY", kind);
        }
        for (k, v) in &self.settings {
            c.env(k, v);
        }
        self.private_tmux(c);
    }

    /// The Postgres database this test's commands use, if they use one.
    pub fn database_url(&self) -> Option<String> {
        self.settings
            .iter()
            .find(|(k, _)| k == "FLEET_DATABASE_URL")
            .map(|(_, url)| url.clone())
    }

    /// fleet's database for this workspace — its Postgres database, or its SQLite file — if
    /// it has one.
    fn database(&self) -> Option<Database> {
        let layout = deploy_core::Layout::new(self.root());
        if let Some(url) = self.database_url() {
            return Some(Database::Postgres(layout, url));
        }
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
        // the tests read what a registry holds
        sqlite_registry::path_in(&layout).exists().then(|| {
            Database::Sqlite(
                sqlite_registry::SqliteRegistry::open_existing_with(
                    layout,
                    Duration::from_secs(10),
                )
                .unwrap(),
            )
        })
    }

    /// Task `task`'s registry as the Python server's file says it (from the database, as the
    /// JSON registry would write it, when the workspace's registry is a database).
    pub fn task_registry(&self, task: &str) -> Value {
        match self.database() {
            Some(db) => db.task_file(&deploy_core::TaskId::parse(task).unwrap()),
            None => serde_json::from_slice(
                &fs_err::read(self.root().join(task).join("AGENT_REGISTRY.json")).unwrap(),
            )
            .unwrap(),
        }
    }

    /// The registry entry of `agent` in `task` (`Null` when it has none), whichever registry.
    pub fn entry(&self, task: &str, agent: &str) -> Value {
        self.task_registry(task)["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == agent)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The global index, as [`task_registry`](Self::task_registry) reads a task.
    pub fn index(&self) -> Value {
        match self.database() {
            Some(db) => db.whole().global,
            None => serde_json::from_slice(
                &fs_err::read(self.root().join("registry/GLOBAL_REGISTRY.json")).unwrap(),
            )
            .unwrap(),
        }
    }

    /// `sh -c script fleet`: a script with fleet's binary as `$0` and this test's workspace
    /// and socket in its environment.
    pub fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script, FLEET]);
        self.environment(&mut c);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs, expects success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "fleet {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// `task create` with a test description (or the `--description` in `extra`).
    pub fn task(&self, extra: &[&str]) -> String {
        let mut args = vec!["task", "create"];
        if !extra.contains(&"--description") {
            args.extend(["--description", "test task"]);
        }
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_owned()
    }

    /// `fleet deploy` of `cmd` as an agent of `agent_type`; returns the agent id.
    pub fn deploy(&self, task: &str, agent_type: &str, grace_ms: &str, cmd: &[&str]) -> String {
        self.ok(&deploy_args(task, agent_type, grace_ms, cmd))
            .trim()
            .to_owned()
    }

    /// `fleet deploy --worktree --repo repo` of `cmd` into `task` (type `builder`, grace 0).
    pub fn deploy_worktree(&self, task: &str, repo: &str, cmd: &[&str]) -> Output {
        let mut args = vec![
            "deploy",
            "--task",
            task,
            "--type",
            "builder",
            "--prompt",
            "p",
            "--startup-grace-ms",
            "0",
            "--worktree",
            "--repo",
            repo,
            "--",
        ];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// Waits until `n` panes on this test's server are dead (their agents ended).
    pub fn wait_dead_panes(&self, n: usize) {
        wait_for("agents to end", || {
            let out = self.tmux(&["list-panes", "-a", "-F", "#{pane_dead}"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| *l == "1")
                .count()
                == n
        });
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket]).args(args);
        self.private_tmux(&mut c);
        c.output().unwrap()
    }

    pub fn sessions(&self) -> Vec<String> {
        let out = self.tmux(&["list-sessions", "-F", "#{session_name}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Everything under the root except the logs (kept by design), as (path, bytes).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        fn walk(dir: &Utf8Path, out: &mut Vec<(String, Vec<u8>)>) {
            let Ok(entries) = fs_err::read_dir(dir) else {
                return;
            };
            for e in entries {
                let p = Utf8PathBuf::from_path_buf(e.unwrap().path()).unwrap();
                if p.is_dir() {
                    walk(&p, out);
                } else if !p.as_str().contains("/logs/") && !p.as_str().ends_with(".lock") {
                    out.push((p.to_string(), fs_err::read(&p).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root(), &mut out);
        // A database's bytes change when nothing in it does (a checkpoint moves the WAL into
        // it): what it holds stands for it, as every task's registry and the index.
        if let Some(db) = self.database() {
            out.retain(|(p, _)| !p.contains("/registry/fleet.sqlite3"));
            let whole = db.whole();
            let mut held = vec![serde_json::to_vec(&whole.global).unwrap()];
            for task in whole.tasks {
                held.push(serde_json::to_vec(&task).unwrap());
            }
            out.push((format!("{} (what it holds)", db.name()), held.concat()));
        }
        out.sort();
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Both servers live in this test's TMUX_TMPDIR (removed with the directory).
        self.tmux(&["kill-server"]);
        self.default_tmux(&["kill-server"]);
    }
}

/// A workspace's database, read as the JSON registry would hold it.
#[allow(clippy::disallowed_types, clippy::large_enum_variant)] // the tests read what a registry holds; one per read
enum Database {
    Sqlite(sqlite_registry::SqliteRegistry),
    /// Connected to for each read, off any async test's runtime.
    Postgres(deploy_core::Layout, String),
}

#[allow(clippy::disallowed_types, clippy::disallowed_methods)] // the tests read what a registry holds
fn postgres(layout: &deploy_core::Layout, url: &str) -> postgres_registry::PostgresRegistry {
    postgres_registry::PostgresRegistry::connect(layout.clone(), url).unwrap()
}

/// A whole registry as JSON values.
pub struct Held {
    pub tasks: Vec<Value>,
    pub global: Value,
}

impl Database {
    fn name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "registry/fleet.sqlite3",
            Database::Postgres(..) => "the postgres database",
        }
    }

    fn task_file(&self, task: &deploy_core::TaskId) -> Value {
        let file = match self {
            Database::Sqlite(db) => db.task_file(task).unwrap(),
            Database::Postgres(layout, url) => {
                testkit::postgres::off_runtime(|| postgres(layout, url).task_file(task).unwrap())
            }
        };
        serde_json::to_value(file).unwrap()
    }

    fn whole(&self) -> Held {
        let whole = match self {
            Database::Sqlite(db) => db.whole().unwrap(),
            Database::Postgres(layout, url) => {
                testkit::postgres::off_runtime(|| postgres(layout, url).whole().unwrap())
            }
        };
        Held {
            tasks: whole
                .tasks
                .iter()
                .map(|t| serde_json::to_value(t).unwrap())
                .collect(),
            global: serde_json::to_value(&whole.global).unwrap(),
        }
    }
}

/// The arguments of `fleet deploy` of `cmd` as an agent of `agent_type`, prompt `p`.
pub fn deploy_args<'a>(
    task: &'a str,
    agent_type: &'a str,
    grace_ms: &'a str,
    cmd: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        "--task",
        task,
        "--type",
        agent_type,
        "--prompt",
        "p",
        "--startup-grace-ms",
        grace_ms,
        "--",
    ];
    args.extend_from_slice(cmd);
    args
}

pub fn agent_sh() -> String {
    Utf8PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/agent.sh")
        .to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How long [`wait_for`] waits for the thing itself before the test fails: generous, so a busy
/// machine slows a test down but never fails it.
pub const WAIT_BOUND: Duration = Duration::from_secs(60);

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT_BOUND, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose environment carries one of these agents' tags.
pub fn tagged(agents: &std::collections::BTreeSet<String>) -> Vec<u32> {
    tagged_where(|tag| agents.contains(tag))
}

/// Processes whose `FLEET_AGENT_ID` satisfies `keep`.
pub fn tagged_where(keep: impl Fn(&str) -> bool) -> Vec<u32> {
    testkit::procs::running()
        .into_iter()
        .filter(|pid| testkit::procs::env_var(*pid, "FLEET_AGENT_ID").is_some_and(|t| keep(&t)))
        .collect()
}
