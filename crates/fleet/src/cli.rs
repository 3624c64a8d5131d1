//! The command line, declared with clap.

use std::ffi::OsString;

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand};
use deploy_core::{AgentId, AgentType, BatchId, HostName, Limits, Parent, TaskId};

/// Deploy headless AI coding agents into tmux sessions, transactionally: a deployment is Live
/// (agent alive, registered) or leaves nothing behind.
#[derive(Debug, Parser)]
#[command(name = "fleet", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The workspace root [env: FLEET_ROOT, then CLAUDE_ORCHESTRATOR_WORKSPACE; default:
    /// ./.agent-workspace]
    #[arg(long, global = true, env = "FLEET_ROOT", hide_env = true)]
    pub(crate) root: Option<Utf8PathBuf>,

    /// fleet's tmux socket name (`tmux -L`)
    #[arg(
        long,
        global = true,
        env = "FLEET_TMUX_SOCKET",
        hide_env_values = true,
        default_value = "fleet",
        value_parser = parse_socket
    )]
    pub(crate) socket: String,

    /// Which registry: `json` (the Python server's files), `sqlite` (`registry/fleet.sqlite3`)
    /// or `postgres` (the database of --database-url)
    /// [env: FLEET_REGISTRY; default: sqlite if the workspace holds fleet's database, else json]
    #[arg(
        long,
        global = true,
        env = "FLEET_REGISTRY",
        hide_env = true,
        value_enum
    )]
    pub(crate) registry: Option<crate::config::RegistryKind>,

    /// The Postgres registry's database, a libpq URL (`postgres://user@host:port/dbname`); a
    /// password is better kept in ~/.pgpass or PGPASSWORD than here [env: FLEET_DATABASE_URL]
    #[arg(long, global = true, env = "FLEET_DATABASE_URL", hide_env = true)]
    pub(crate) database_url: Option<String>,

    /// Print machine-readable JSON on stdout (logs still go to stderr)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create and list tasks
    #[command(subcommand)]
    Task(TaskCommand),
    /// Deploy one agent, or a batch (`--count`, `--plan`), and wait until it is Live: a batch
    /// is Live whole or leaves nothing
    Deploy(Box<DeployArgs>),
    /// Show tasks and agents, with liveness from tmux
    Status(StatusArgs),
    /// Kill an agent (verified) and mark it terminated; its logs are kept
    Kill(KillArgs),
    /// Print an agent's output
    Logs(LogsArgs),
    /// Attach this terminal to an agent's tmux session
    Attach(AttachArgs),
    /// Find and undo what crashes left behind: abandoned deployments, zombies, orphan sessions,
    /// drifted counters, a stale global index, temp files
    Reconcile(ReconcileArgs),
    /// A live dashboard of every task and agent (q quits)
    Top,
    /// Wait until agents end: exit 0 if all completed, 1 if any failed or was killed, 124 on
    /// timeout
    Wait(WaitArgs),
    /// Continue an ended agent's conversation in a new agent (Claude Code: `--resume`)
    Resume(ResumeArgs),
    /// List agents' worktrees (`deploy --worktree`) with their state: active, kept-dirty,
    /// branch-only, kept, missing
    Worktrees(WorktreesArgs),
    /// Print an agent's changes against its base: committed and uncommitted, new files included
    Diff(DiffArgs),
    /// Move the workspace's registry to SQLite (`--to sqlite`: the JSON files are read, kept)
    /// or back to the Python server's JSON files (`--to json`: the database is moved aside)
    Migrate(MigrateArgs),
    /// Serve MCP over stdio, with the Python orchestrator's tools (for Claude Code and other
    /// MCP clients)
    Mcp,
    /// The other machines agents run on, reached with ssh (`deploy --host NAME`)
    #[command(subcommand)]
    Host(HostCommand),
    /// Runs one fleet command for a controller on another host: its request on stdin, whose
    /// end (the connection lost) rolls back a deployment in flight (internal: run over ssh)
    #[command(hide = true)]
    Remote,
    /// Ends an agent after its own final report (internal: run by `fleet mcp`, outside the
    /// agent's process tree)
    #[command(hide = true)]
    EndAgent(EndAgentArgs),
    /// The wrapper every agent runs under (internal)
    #[command(hide = true)]
    AgentWrap {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// The reaper git runs under (internal)
    #[command(hide = true)]
    GitReap {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Add a host: how ssh reaches it, and where fleet lives there
    Add(HostAddArgs),
    /// List the hosts: reachable or not, the round trip, their agents
    List,
    /// Remove a host from this workspace (its agents and files there are left as they are)
    Remove {
        /// The host
        #[arg(value_parser = parse_host)]
        name: HostName,
    },
}

#[derive(Debug, Args)]
pub(crate) struct HostAddArgs {
    /// The host's name: the identity its agents are recorded with (as FLEET_HOST there)
    #[arg(value_parser = parse_host)]
    pub(crate) name: HostName,
    /// How ssh reaches it: `user@host`, `host`, or an alias of your ssh config (its port, key
    /// and jump hosts apply)
    #[arg(long, value_name = "DEST", allow_hyphen_values = true)]
    pub(crate) ssh: String,
    /// The workspace root there, as that host reads it (never made from this machine's $HOME)
    /// [default: the remote fleet's own]
    #[arg(long, value_name = "PATH")]
    pub(crate) remote_root: Option<String>,
    /// fleet's tmux socket name there [default: the remote fleet's own]
    #[arg(long, value_name = "NAME", value_parser = parse_socket)]
    pub(crate) remote_socket: Option<String>,
    /// The fleet binary there [default: fleet, on that host's PATH]
    #[arg(long, value_name = "PATH")]
    pub(crate) fleet: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct WorktreesArgs {
    /// Only this task's
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: Option<TaskId>,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The task
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: TaskId,
    /// The agent
    #[arg(long, value_parser = parse_agent, required_unless_present = "batch")]
    pub(crate) agent: Option<AgentId>,
    /// Every member of this batch, one after another
    #[arg(long, value_parser = parse_batch, conflicts_with = "agent")]
    pub(crate) batch: Option<BatchId>,
    /// A summary: files changed, lines added and removed
    #[arg(long)]
    pub(crate) stat: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Only this task's agents (default: every task's), those it spawns meanwhile included
    #[arg(long)]
    pub(crate) task: Option<TaskId>,
    /// Only this agent
    #[arg(long)]
    pub(crate) agent: Option<AgentId>,
    /// Only this batch's members
    #[arg(long, value_parser = parse_batch, conflicts_with = "agent")]
    pub(crate) batch: Option<BatchId>,
    /// Give up after this many seconds (exit 124)
    #[arg(long, value_name = "SECS")]
    pub(crate) timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The task
    #[arg(long)]
    pub(crate) task: TaskId,
    /// The ended agent whose conversation continues
    #[arg(long)]
    pub(crate) agent: AgentId,
    /// What to tell it next
    #[arg(long)]
    pub(crate) prompt: String,
    /// How long the new agent must stay alive to count as Live
    #[arg(long)]
    pub(crate) startup_grace_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct EndAgentArgs {
    /// The task
    #[arg(long)]
    pub(crate) task: TaskId,
    /// The agent whose final report is in its progress file
    #[arg(long)]
    pub(crate) agent: AgentId,
    /// How long the agent may take to finish its turn and exit by itself before it is ended
    #[arg(long, default_value_t = 60_000)]
    pub(crate) finish_grace_ms: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// Create a task; prints its id
    Create(TaskCreateArgs),
    /// List tasks
    List,
}

#[derive(Debug, Args)]
pub(crate) struct TaskCreateArgs {
    /// What the task is about
    #[arg(long, value_parser = parse_description)]
    pub(crate) description: String,
    /// Agents ever registered in the task
    #[arg(long, default_value_t = Limits::DEFAULT.max_agents)]
    pub(crate) max_agents: u32,
    /// Agents active at once
    #[arg(long, default_value_t = Limits::DEFAULT.max_concurrent)]
    pub(crate) max_concurrent: u32,
    /// Deepest level below the orchestrator
    #[arg(long, default_value_t = Limits::DEFAULT.max_depth)]
    pub(crate) max_depth: u32,
    /// Priority
    #[arg(long, default_value = "P1", value_parser = deploy_core::NewTask::PRIORITIES)]
    pub(crate) priority: String,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The task
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: TaskId,
    /// Deploy on this host (`fleet host add`), over ssh: that host makes and owns every
    /// resource, and rolls the deployment back if the connection is lost
    #[arg(long, value_parser = parse_host)]
    pub(crate) host: Option<HostName>,
    /// The agent's type (investigator, builder, ...)
    #[arg(long = "type", value_parser = parse_type, required_unless_present = "plan")]
    pub(crate) agent_type: Option<AgentType>,
    /// The prompt
    #[arg(
        long,
        conflicts_with = "prompt_file",
        required_unless_present_any = ["prompt_file", "plan"]
    )]
    pub(crate) prompt: Option<String>,
    /// Deploy N agents of this type with this prompt as one batch (with --worktree, each in its
    /// own worktree and branch: best-of-N); all are Live or none is
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) count: Option<u32>,
    /// Deploy the batch a JSON file (`-`: stdin) lists: `{"members": [{"type", "prompt" or "prompt_file",
    /// "command"?, "worktree"?, "repo"?, "base"?, "model"?, "workdir"?}, ...]}`; all are Live or
    /// none is
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["agent_type", "prompt", "prompt_file", "count", "worktree", "workdir", "model"]
    )]
    pub(crate) plan: Option<Utf8PathBuf>,
    /// Read the prompt from a file (`-` for stdin)
    #[arg(long)]
    pub(crate) prompt_file: Option<Utf8PathBuf>,
    /// The plan a remote request carries (`fleet remote` with `--plan -`).
    #[arg(skip)]
    pub(crate) plan_text: Option<String>,
    /// The parent agent (default: the orchestrator)
    #[arg(long, value_parser = parse_parent, default_value = "orchestrator")]
    pub(crate) parent: Parent,
    /// The agent's working directory (default: the current directory)
    #[arg(long, conflicts_with = "worktree")]
    pub(crate) workdir: Option<Utf8PathBuf>,
    #[arg(
        long,
        help = "Run the agent in its own git worktree, on a new branch fleet/<agent>, made and removed with the deployment; at its end the worktree is kept only if it holds uncommitted changes, the branch only if it has commits"
    )]
    pub(crate) worktree: bool,
    /// The repository to branch from (default: the one holding the current directory)
    #[arg(long, requires = "worktree", value_name = "PATH")]
    pub(crate) repo: Option<Utf8PathBuf>,
    /// The ref to branch from (default: the repository's HEAD)
    #[arg(long, requires = "worktree", value_name = "REF")]
    pub(crate) base: Option<String>,
    /// Keep the worktree and its branch when the agent ends, whatever they hold
    #[arg(long, requires = "worktree")]
    pub(crate) keep_worktree: bool,
    /// How long the agent must stay alive to count as Live
    #[arg(long)]
    pub(crate) startup_grace_ms: Option<u64>,
    /// Allow another active agent of the same type
    #[arg(long)]
    pub(crate) allow_duplicate: bool,
    /// Claude Code's model (`--model`; the agent command must be Claude Code)
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Claude Code's reasoning effort (`--effort`, where the installed CLI takes it)
    #[arg(long)]
    pub(crate) effort: Option<String>,
    /// Claude Code's permission mode [env: FLEET_PERMISSION_MODE; default: bypassPermissions]
    #[arg(long)]
    pub(crate) permission_mode: Option<String>,
    /// Send the bare prompt: no identity and reporting instructions in front of it (given by
    /// default to Claude Code agents)
    #[arg(long)]
    pub(crate) no_preamble: bool,
    /// Extra environment for the agent (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub(crate) env: Vec<(String, String)>,
    /// The agent command [default: $FLEET_AGENT_CMD, else Claude Code in print mode]
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Only this task
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: Option<TaskId>,
    /// Only this agent
    #[arg(long, value_parser = parse_agent)]
    pub(crate) agent: Option<AgentId>,
    /// Only this batch's members
    #[arg(long, value_parser = parse_batch, conflicts_with = "agent")]
    pub(crate) batch: Option<BatchId>,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// The task
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: TaskId,
    /// The agent
    #[arg(long, value_parser = parse_agent, required_unless_present = "batch")]
    pub(crate) agent: Option<AgentId>,
    /// Every member of this batch
    #[arg(long, value_parser = parse_batch, conflicts_with = "agent")]
    pub(crate) batch: Option<BatchId>,
    /// Why (recorded as termination_reason)
    #[arg(long, default_value = "killed with fleet kill")]
    pub(crate) reason: String,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The task
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: TaskId,
    /// The agent
    #[arg(long, value_parser = parse_agent)]
    pub(crate) agent: AgentId,
    /// How many lines from the end
    #[arg(long, default_value_t = 50)]
    pub(crate) lines: usize,
    /// Keep printing new output until the agent's session ends
    #[arg(long, short)]
    pub(crate) follow: bool,
    /// Print the agent's bytes as they are (escape sequences included) instead of escaping
    /// control characters
    #[arg(long)]
    pub(crate) raw: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// The agent
    #[arg(long, value_parser = parse_agent)]
    pub(crate) agent: AgentId,
}

/// A tmux socket name (`tmux -L`): a file name in tmux's socket directory.
fn parse_socket(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 {
        return Err("a socket name is 1 to 100 bytes".into());
    }
    if let Some(c) = s.chars().find(|c| *c == '/' || c.is_control()) {
        return Err(format!(
            "a socket name is a file name: {c:?} is not allowed (for a socket path, use a name in $TMUX_TMPDIR)"
        ));
    }
    if s == "." || s == ".." {
        return Err(format!("{s:?} is not a socket name"));
    }
    Ok(s.to_owned())
}

fn parse_description(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("the task description is empty".into())
    } else {
        Ok(s.to_owned())
    }
}

fn parse_host(s: &str) -> Result<HostName, String> {
    HostName::parse(s).map_err(|e| e.to_string())
}

fn parse_task(s: &str) -> Result<TaskId, String> {
    TaskId::parse(s).map_err(|e| e.to_string())
}

fn parse_agent(s: &str) -> Result<AgentId, String> {
    AgentId::parse(s).map_err(|e| e.to_string())
}

fn parse_batch(s: &str) -> Result<BatchId, String> {
    BatchId::parse(s).map_err(|e| e.to_string())
}

fn parse_type(s: &str) -> Result<AgentType, String> {
    AgentType::parse(s).map_err(|e| e.to_string())
}

fn parse_parent(s: &str) -> Result<Parent, String> {
    Parent::parse(s).map_err(|e| e.to_string())
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

#[derive(Debug, Args)]
pub(crate) struct ReconcileArgs {
    /// Report only; change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Only this task (the global index is then left to an unscoped run)
    #[arg(long, value_parser = parse_task)]
    pub(crate) task: Option<TaskId>,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The registry to move to
    #[arg(long, value_enum)]
    pub(crate) to: crate::config::RegistryKind,
    /// The registry to move from [default: the one the workspace holds]
    #[arg(long, value_enum)]
    pub(crate) from: Option<crate::config::RegistryKind>,
}
