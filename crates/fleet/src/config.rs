//! One configuration for every surface (CLI and MCP): flags override the environment, which
//! overrides the defaults.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use deploy_core::{
    AgentId, Checkouts, DEFAULT_STARTUP_GRACE, Deployer, FsJournal, FsPromptStore, HostName,
    IntentJournal, Layout, PromptStore, Registry, SessionBackend, TaskId,
};
use tmux_backend::{DEFAULT_SOCKET, Server};

use crate::Error;

/// The agent command when neither `-- COMMAND` nor `FLEET_AGENT_CMD` gives one: Claude Code in
/// print mode with stream-json output, the prompt on stdin, as the Python server ran it.
pub(crate) const DEFAULT_AGENT_CMD: &[&str] = &[
    "claude",
    "--print",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// Resolved configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The workspace root (absolute).
    pub(crate) root: Utf8PathBuf,
    /// The tmux socket name.
    pub(crate) socket: String,
    /// The registry's implementation.
    pub(crate) registry: RegistryKind,
    /// The Postgres registry's database URL (`--database-url`, `FLEET_DATABASE_URL`, else the
    /// file `FLEET_DATABASE_URL_FILE` names, else the workspace's `.fleet/database-url`).
    pub(crate) database_url: Option<DatabaseUrl>,
    /// The host this fleet runs on (`FLEET_HOST`; on the Postgres registry, by default the
    /// machine's short hostname): recorded with every agent deployed, and a host judges only
    /// its own agents. `None`: no host identity (a JSON or SQLite registry is one machine's).
    pub(crate) host: Option<HostName>,
    /// The agent command when a request names none.
    pub(crate) agent_cmd: Vec<String>,
    /// The startup grace when a request names none.
    pub(crate) startup_grace: Duration,
    /// How long an agent that reported its own end may take to finish its turn and exit
    /// before fleet ends it (`FLEET_FINISH_GRACE_MS`).
    pub(crate) finish_grace: Duration,
    /// The largest prompt fleet reads from a file or stdin.
    pub(crate) max_prompt_bytes: u64,
    /// Claude Code's model for agents that name none (`FLEET_MODEL`; none: Claude Code's own).
    pub(crate) model: Option<String>,
    /// Claude Code's permission mode for agents that name none (`FLEET_PERMISSION_MODE`).
    pub(crate) permission_mode: String,
    /// The agent this process acts for (`FLEET_AGENT_ID`, with `FLEET_TASK_ID`): set in the
    /// environment of the `fleet mcp` fleet wires into each Claude Code agent, whose reports and
    /// spawns must then be that agent's own.
    pub(crate) serving: Option<(TaskId, AgentId)>,
}

/// The permission mode of Claude Code agents unless `FLEET_PERMISSION_MODE` or a request says
/// otherwise: `bypassPermissions`, what the Python server ran (`--dangerously-skip-permissions`)
/// — a headless agent cannot answer a permission prompt, so anything not pre-approved is denied.
pub(crate) const DEFAULT_PERMISSION_MODE: &str = "bypassPermissions";

/// How long an agent that reported its own end (a final `update_agent_progress`) may take to
/// finish its turn — Claude Code writes its result, with tokens and cost, after the tool call
/// returns — and exit by itself, unless `FLEET_FINISH_GRACE_MS` says otherwise: 60 s.
pub(crate) const DEFAULT_FINISH_GRACE: Duration = Duration::from_secs(60);

/// A duration in milliseconds from the environment variable `name`, if set.
fn env_millis(name: &str) -> Result<Option<Duration>, Error> {
    match std::env::var(name) {
        Ok(ms) if !ms.is_empty() => ms
            .parse()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| Error::Invalid(format!("{name} {ms:?} is not a number of milliseconds"))),
        _ => Ok(None),
    }
}

/// The largest prompt read from a file or stdin unless `FLEET_MAX_PROMPT_BYTES` says otherwise:
/// 16 MiB (a prompt travels whole in its file; `/dev/zero` must not exhaust memory).
pub(crate) const DEFAULT_MAX_PROMPT_BYTES: u64 = 16 << 20;

impl Config {
    /// Resolves flags (already merged with their env vars by clap) and the remaining
    /// environment. `host`, when given (a `fleet remote` request's), is this fleet's host
    /// identity whatever `FLEET_HOST` says.
    pub(crate) fn resolve(
        root: Option<Utf8PathBuf>,
        socket: Option<String>,
        registry: Option<RegistryKind>,
        database_url: Option<String>,
        host: Option<HostName>,
    ) -> Result<Config, Error> {
        let root = root
            .or_else(|| env_path("CLAUDE_ORCHESTRATOR_WORKSPACE"))
            .unwrap_or_else(|| Utf8PathBuf::from(".agent-workspace"));
        let root = absolute(&root)?;
        let layout = Layout::new(root.clone());
        let registry = registry.unwrap_or_else(|| RegistryKind::found_in(&layout));
        let socket = socket.unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
        let database_url = match database_url.filter(|u| !u.is_empty()) {
            Some(url) => Some(DatabaseUrl(url)),
            None => match env_path("FLEET_DATABASE_URL_FILE") {
                Some(file) => Some(DatabaseUrl::read(&file, "FLEET_DATABASE_URL_FILE")?),
                // The workspace's own database, when it names one.
                None if layout.database_url_file().exists() => {
                    let file = layout.database_url_file();
                    Some(DatabaseUrl::read(&file, file.as_str())?)
                }
                None => None,
            },
        };
        let host = match (host, env_word("FLEET_HOST")) {
            (Some(host), _) => Some(host),
            (None, Some(name)) => Some(
                HostName::parse(name.trim())
                    .map_err(|e| Error::Invalid(format!("FLEET_HOST: {e}")))?,
            ),
            (None, None) if registry == RegistryKind::Postgres => Some(machine_host()?),
            (None, None) => None,
        };
        let agent_cmd = match std::env::var("FLEET_AGENT_CMD") {
            Ok(cmd) if !cmd.trim().is_empty() => shell_words::split(&cmd).map_err(|e| {
                Error::Invalid(format!(
                    "FLEET_AGENT_CMD {cmd:?} cannot be split into words: {e}"
                ))
            })?,
            _ => DEFAULT_AGENT_CMD.iter().map(|s| (*s).to_owned()).collect(),
        };
        let startup_grace = env_millis("FLEET_STARTUP_GRACE_MS")?.unwrap_or(DEFAULT_STARTUP_GRACE);
        let finish_grace = env_millis("FLEET_FINISH_GRACE_MS")?.unwrap_or(DEFAULT_FINISH_GRACE);
        let max_prompt_bytes = match std::env::var("FLEET_MAX_PROMPT_BYTES") {
            Ok(n) if !n.is_empty() => n.parse().map_err(|_| {
                Error::Invalid(format!(
                    "FLEET_MAX_PROMPT_BYTES {n:?} is not a number of bytes"
                ))
            })?,
            _ => DEFAULT_MAX_PROMPT_BYTES,
        };
        let serving = match (env_word("FLEET_TASK_ID"), env_word("FLEET_AGENT_ID")) {
            (Some(task), Some(agent)) => Some((TaskId::parse(&task)?, AgentId::parse(&agent)?)),
            _ => None,
        };
        Ok(Config {
            root,
            socket,
            registry,
            database_url,
            host,
            agent_cmd,
            startup_grace,
            finish_grace,
            max_prompt_bytes,
            model: env_word("FLEET_MODEL"),
            permission_mode: env_word("FLEET_PERMISSION_MODE")
                .unwrap_or_else(|| DEFAULT_PERMISSION_MODE.to_owned()),
            serving,
        })
    }

    /// The file layout.
    pub(crate) fn layout(&self) -> Layout {
        Layout::new(self.root.clone())
    }

    /// The argv git runs under: this binary's hidden `git-reap` (see `git_checkout::reaper`).
    fn git_reaper(&self) -> Result<Vec<String>, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Environment(format!("cannot find the fleet binary itself: {e}")))?;
        Ok(vec![
            exe.to_string_lossy().into_owned(),
            "git-reap".to_owned(),
            "--".to_owned(),
        ])
    }

    /// The agent wrapper's argv: `fleet-agent-wrap` from beside this binary (small, quick to
    /// start), or this binary's hidden `agent-wrap` if it is not there.
    fn wrapper(&self) -> Result<Vec<String>, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Environment(format!("cannot find the fleet binary itself: {e}")))?;
        let small = exe.with_file_name("fleet-agent-wrap");
        Ok(if small.is_file() {
            vec![small.to_string_lossy().into_owned()]
        } else {
            vec![exe.to_string_lossy().into_owned(), "agent-wrap".to_owned()]
        })
    }
}

/// The machine's short hostname (up to its first dot), as a host name.
fn machine_host() -> Result<HostName, Error> {
    let name = fs_err::read_to_string("/proc/sys/kernel/hostname").map_err(|e| {
        Error::Environment(format!("cannot read the hostname: {e}; set FLEET_HOST"))
    })?;
    let short = name.trim().split('.').next().unwrap_or_default();
    HostName::parse(short).map_err(|e| {
        Error::Environment(format!(
            "the machine's hostname is no host name fleet takes ({e}): set FLEET_HOST"
        ))
    })
}

/// A non-empty environment variable.
fn env_word(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_path(name: &str) -> Option<Utf8PathBuf> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Utf8PathBuf::from)
}

/// Makes `path` absolute without requiring it to exist (registries record absolute paths).
pub(crate) fn absolute(path: &Utf8Path) -> Result<Utf8PathBuf, Error> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::Invalid(format!("cannot make {path} absolute: {e}")))?;
    Utf8PathBuf::from_path_buf(abs)
        .map_err(|p| Error::Invalid(format!("path {} is not UTF-8", p.display())))
}

/// A database URL: never shown (its password), not even in debug logs.
#[derive(Clone)]
pub(crate) struct DatabaseUrl(pub(crate) String);

impl DatabaseUrl {
    /// The URL in `file` (its first line), `name` naming it in an error.
    fn read(file: &Utf8Path, name: &str) -> Result<DatabaseUrl, Error> {
        let text =
            fs_err::read_to_string(file).map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        Ok(DatabaseUrl(text.trim().to_owned()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// Names `url` in the workspace's `.fleet/database-url` (0600) unless it names it already: the
/// workspace's registry is Postgres from now on (`RegistryKind::found_in`), and the agents'
/// `fleet mcp` read the URL there. Written only once the database was reached.
pub(crate) fn remember_database(layout: &Layout, url: &DatabaseUrl) -> Result<(), Error> {
    let file = layout.database_url_file();
    if std::fs::read(&file).is_ok_and(|held| held == url.0.as_bytes()) {
        return Ok(());
    }
    file.parent()
        .map_or(Ok(()), deploy_core::private::create_dir_all)
        .and_then(|()| deploy_core::private::replace(&file, url.0.as_bytes()))
        .map_err(|e| Error::Environment(format!("{file}: {e}")))
}

/// Which [`Registry`] implementation a workspace uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RegistryKind {
    // The Python server's JSON files. (Plain comments: a variant's doc comment would be help
    // text, which turns clap's help into its long layout.)
    Json,
    // fleet's SQLite database, `registry/fleet.sqlite3`.
    Sqlite,
    // A PostgreSQL database (`--database-url`).
    Postgres,
}

impl RegistryKind {
    /// Postgres if the workspace names its database (`.fleet/database-url`, written by
    /// `fleet migrate --to postgres` and by deployments on Postgres), else SQLite if it holds
    /// fleet's database, else JSON.
    #[allow(clippy::disallowed_methods)] // choosing the registry is part of constructing it
    pub(crate) fn found_in(layout: &Layout) -> RegistryKind {
        if layout.database_url_file().exists() {
            RegistryKind::Postgres
        } else if sqlite_registry::path_in(layout).exists() {
            RegistryKind::Sqlite
        } else {
            RegistryKind::Json
        }
    }

    /// As `--registry` spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Json => "json",
            RegistryKind::Sqlite => "sqlite",
            RegistryKind::Postgres => "postgres",
        }
    }
}

/// The services every operation goes through, built from one configuration. This is the one
/// place that names their implementations (enforced by clippy's `disallowed-types` in
/// `crates/fleet/clippy.toml`): `ops`, `cmd` and `mcp` see only deploy-core's traits.
pub(crate) struct Services {
    pub(crate) config: Config,
    pub(crate) layout: Layout,
    pub(crate) registry: Box<dyn Registry>,
    pub(crate) backend: Box<dyn SessionBackend>,
    /// The sessions the Python server started: untagged, on the user's default tmux server.
    pub(crate) adopted: Box<dyn SessionBackend>,
    pub(crate) prompts: Box<dyn PromptStore>,
    pub(crate) journal: Box<dyn IntentJournal>,
    /// Agents' git checkouts (`--worktree`).
    pub(crate) checkouts: Box<dyn Checkouts>,
    /// Set by SIGINT and SIGTERM while a deployment catches them: the checkouts stop a git
    /// command that hangs (a hook) on them.
    pub(crate) interrupts: Interrupts,
}

/// The trait objects [`Services`] is made of.
pub(crate) struct Parts {
    pub(crate) registry: Box<dyn Registry>,
    pub(crate) backend: Box<dyn SessionBackend>,
    pub(crate) adopted: Box<dyn SessionBackend>,
    pub(crate) prompts: Box<dyn PromptStore>,
    pub(crate) journal: Box<dyn IntentJournal>,
    pub(crate) checkouts: Box<dyn Checkouts>,
}

/// The flags SIGINT, SIGTERM and SIGHUP set while a deployment catches them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupts {
    pub(crate) int: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) term: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The terminal or the controller's connection went away (`fleet remote`'s stdin ended).
    pub(crate) hup: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// The configured registry (JSON or SQLite) of the Python server's layout, tmux on the
    /// configured socket, prompt files and intents on disk.
    #[allow(clippy::disallowed_types)] // the construction site
    pub(crate) fn new(config: &Config) -> Result<Services, Error> {
        let layout = config.layout();
        let interrupts = Interrupts::default();
        let parts = Parts {
            registry: match config.registry {
                RegistryKind::Json => Box::new(registry::JsonRegistry::new(layout.clone())),
                RegistryKind::Sqlite => Box::new(
                    sqlite_registry::SqliteRegistry::open(layout.clone())
                        .map_err(deploy_core::Error::from)?,
                ),
                RegistryKind::Postgres => {
                    let url = config.database_url.as_ref().ok_or_else(|| {
                        Error::Invalid(
                            "the postgres registry needs a database: give --database-url or FLEET_DATABASE_URL".into(),
                        )
                    })?;
                    let registry =
                        postgres_registry::PostgresRegistry::connect(layout.clone(), &url.0)
                            .map_err(deploy_core::Error::from)?;
                    remember_database(&layout, url)?;
                    Box::new(registry)
                }
            },
            backend: Box::new(tmux_backend::TmuxBackend::new(
                Server::Name(config.socket.clone()),
                config.wrapper()?,
            )),
            adopted: Box::new(tmux_backend::TmuxBackend::adopting(Server::Default)),
            prompts: Box::new(FsPromptStore),
            journal: Box::new(FsJournal::new(&layout)),
            checkouts: Box::new(
                git_checkout::GitCheckouts::for_workspace(&config.root)
                    .reaping_with(config.git_reaper()?)
                    .stopping_on(&[
                        interrupts.int.clone(),
                        interrupts.term.clone(),
                        interrupts.hup.clone(),
                    ]),
            ),
        };
        Ok(Services::from_parts(config, parts, interrupts))
    }

    /// Services made of `parts` (the real backends' from [`Services::new`], testkit's fakes in
    /// the ops' tests); `interrupts` are the flags the checkouts stop on.
    pub(crate) fn from_parts(config: &Config, parts: Parts, interrupts: Interrupts) -> Services {
        Services {
            layout: config.layout(),
            config: config.clone(),
            registry: parts.registry,
            backend: parts.backend,
            adopted: parts.adopted,
            prompts: parts.prompts,
            journal: parts.journal,
            checkouts: parts.checkouts,
            interrupts,
        }
    }

    /// The deployer over these services.
    pub(crate) fn deployer(&self) -> Deployer<'_> {
        Deployer {
            layout: &self.layout,
            backend: &*self.backend,
            registry: &*self.registry,
            prompts: &*self.prompts,
            journal: &*self.journal,
            adopted: Some(&*self.adopted),
            checkouts: Some(&*self.checkouts),
            host: self.config.host.as_ref(),
        }
    }
}
