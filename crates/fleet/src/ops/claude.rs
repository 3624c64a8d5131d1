//! What fleet adds to a Claude Code agent's command: fleet's own MCP server for this workspace,
//! with the agent's identity and its tools pre-approved (a headless agent cannot answer a
//! permission prompt), its permission mode, and the model and reasoning effort asked for. Any
//! other agent program is left as it is; a model or effort asked for it is refused.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use deploy_core::{AgentId, TaskId};
use serde_json::json;

use crate::config::Config;
use crate::error::Error;

/// The name fleet's MCP server has in an agent's `--mcp-config`; Claude Code names its tools
/// `mcp__fleet__<tool>`.
pub(crate) const SERVER_NAME: &str = "fleet";

/// The tools an agent uses, pre-approved with `--allowedTools`.
pub(crate) const AGENT_TOOLS: [&str; 4] = [
    "update_agent_progress",
    "report_agent_finding",
    "spawn_child_agent",
    "get_agent_output",
];

/// Whether `argv` runs Claude Code: its program is `claude` (by name or by path).
pub(crate) fn is_claude(argv: &[String]) -> bool {
    argv.first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .is_some_and(|name| name == "claude")
}

/// Whether `argv` already gives `flag` (`--flag value` or `--flag=value`).
fn has_flag(argv: &[String], flag: &str) -> bool {
    argv.iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// What one deployment asks of its Claude Code agent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choices<'a> {
    /// `--model` (else the configuration's `FLEET_MODEL`, else Claude Code's default).
    pub(crate) model: Option<&'a str>,
    /// `--effort`, checked against what the installed CLI takes.
    pub(crate) effort: Option<&'a str>,
    /// `--permission-mode` (else the configuration's), checked against what the installed CLI
    /// takes when asked for explicitly.
    pub(crate) permission_mode: Option<&'a str>,
}

/// Refuses a value that could be read as an option or split into two.
fn one_word(flag: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(format!(
            "{flag} {value:?} is not a valid value: one word, not starting with '-'"
        )));
    }
    Ok(())
}

/// Adds the choices to `argv`. For Claude Code: the model and effort asked for, and the
/// permission mode unless the command sets one itself (or skips permissions). For any other
/// program, an explicit choice is refused naming the program, and nothing is added.
pub(crate) fn choose(argv: &mut Vec<String>, c: Choices<'_>, config: &Config) -> Result<(), Error> {
    if !is_claude(argv) {
        let asked = [
            ("--model", c.model),
            ("--effort", c.effort),
            ("--permission-mode", c.permission_mode),
        ];
        if let Some((flag, Some(value))) = asked.into_iter().find(|(_, v)| v.is_some()) {
            return Err(Error::Invalid(format!(
                "{flag} {value:?} is for Claude Code, but the agent command runs {:?}",
                argv.first().map_or("", String::as_str)
            )));
        }
        return Ok(());
    }
    // The configuration's model is a default: a command that names its own keeps it.
    let model = c.model.or_else(|| {
        config
            .model
            .as_deref()
            .filter(|_| !has_flag(argv, "--model"))
    });
    for (flag, value) in [("--model", model), ("--effort", c.effort)] {
        let Some(value) = value else { continue };
        one_word(flag, value)?;
        if has_flag(argv, flag) {
            return Err(Error::Invalid(format!(
                "the agent command already sets {flag}: give {value:?} there, or not at all"
            )));
        }
        if flag == "--effort" {
            check_choice(&argv[0], "--effort", "effort", value)?;
        }
        argv.push(format!("{flag}={value}"));
    }
    let skips =
        has_flag(argv, "--permission-mode") || has_flag(argv, "--dangerously-skip-permissions");
    match (c.permission_mode, skips) {
        (Some(mode), true) => Err(Error::Invalid(format!(
            "permission mode {mode:?}: the agent command already sets its permissions"
        ))),
        (Some(mode), false) => {
            one_word("--permission-mode", mode)?;
            check_choice(&argv[0], "--permission-mode", "permission mode", mode)?;
            argv.push(format!("--permission-mode={mode}"));
            Ok(())
        }
        (None, true) => Ok(()),
        (None, false) => {
            argv.push(format!("--permission-mode={}", config.permission_mode));
            Ok(())
        }
    }
}

/// The variable with which Claude Code accepts `bypassPermissions` from root: the process
/// runs in a sandbox (a container, a VM) where root can do no harm.
pub(crate) const SANDBOX_ENV: &str = "IS_SANDBOX";

/// Whether `argv` lets Claude Code skip its permission prompts (`bypassPermissions`, or
/// `--dangerously-skip-permissions`).
pub(crate) fn skips_permissions(argv: &[String]) -> bool {
    argv.iter().enumerate().any(|(i, a)| {
        a == "--dangerously-skip-permissions"
            || a == "--permission-mode=bypassPermissions"
            || (a == "--permission-mode"
                && argv.get(i + 1).map(String::as_str) == Some("bypassPermissions"))
    })
}

/// For an agent that skips permissions: Claude Code refuses that to root unless
/// `IS_SANDBOX=1` — the agent would die at once — so as root without it (in fleet's
/// environment or the agent's `env`) the deployment is refused before anything is made, naming
/// both ways out. `Ok(true)`: as root in a sandbox fleet's environment declares, which the
/// agent must be given too. `sandbox` is fleet's own `IS_SANDBOX`.
pub(crate) fn refused_to_root(
    root: bool,
    sandbox: Option<&str>,
    env: &[(String, String)],
) -> Result<bool, Error> {
    if !root {
        return Ok(false);
    }
    let given = env.iter().any(|(k, v)| k == SANDBOX_ENV && v == "1");
    if given {
        return Ok(false);
    }
    if sandbox == Some("1") {
        return Ok(true);
    }
    // Claude Code (2.1.197) takes exactly `1`: `yes` or `true` are refused as unset.
    let set = match sandbox {
        Some(v) => format!(" ({SANDBOX_ENV} is {v:?}; Claude Code takes only 1)"),
        None => String::new(),
    };
    Err(Error::Refused(format!(
        "Claude Code refuses bypassPermissions to root{set}: in a sandbox (a container, a VM) set {SANDBOX_ENV}=1, or choose another mode with --permission-mode (e.g. acceptEdits) or FLEET_PERMISSION_MODE"
    )))
}

/// Wires fleet's MCP server into a Claude Code agent: `--mcp-config` inline (no file to clean
/// up; it holds no secret: the binary, the workspace, the socket, the ids) naming `fleet mcp`
/// with this configuration and the agent's identity in its environment, and `--allowedTools`
/// for [`AGENT_TOOLS`]. Other programs are left as they are.
pub(crate) fn wire(
    argv: &mut Vec<String>,
    config: &Config,
    task: &TaskId,
    agent: &AgentId,
) -> Result<(), Error> {
    if !is_claude(argv) {
        return Ok(());
    }
    let fleet = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find the fleet binary itself: {e}")))?;
    let mut env = serde_json::Map::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v.into());
    };
    set("FLEET_ROOT", config.root.to_string());
    set("FLEET_TMUX_SOCKET", config.socket.clone());
    set("FLEET_REGISTRY", config.registry.as_str().to_owned());
    if config.registry == crate::config::RegistryKind::Postgres && config.database_url.is_some() {
        // The agent's `fleet mcp` reads the URL from the workspace's private file (written when
        // the services were made): a password on Claude Code's command line (where the MCP
        // config travels) would be in every `ps`.
        set(
            "FLEET_DATABASE_URL_FILE",
            config.layout().database_url_file().to_string(),
        );
    }
    if let Some(host) = &config.host {
        // The agent's own deployments (its children) record the same host as it.
        set("FLEET_HOST", host.to_string());
    }
    set("FLEET_TASK_ID", task.to_string());
    set("FLEET_AGENT_ID", agent.to_string());
    set("FLEET_AGENT_CMD", shell_words::join(&config.agent_cmd));
    set(
        "FLEET_STARTUP_GRACE_MS",
        config.startup_grace.as_millis().to_string(),
    );
    set(
        "FLEET_FINISH_GRACE_MS",
        config.finish_grace.as_millis().to_string(),
    );
    set("FLEET_PERMISSION_MODE", config.permission_mode.clone());
    set(
        "FLEET_MAX_PROMPT_BYTES",
        config.max_prompt_bytes.to_string(),
    );
    if let Some(model) = &config.model {
        set("FLEET_MODEL", model.clone());
    }
    let servers = json!({
        "mcpServers": {
            SERVER_NAME: {
                "type": "stdio",
                "command": fleet.to_string_lossy(),
                "args": ["mcp"],
                "env": env,
            }
        }
    });
    let tools: Vec<String> = AGENT_TOOLS
        .iter()
        .map(|t| format!("mcp__{SERVER_NAME}__{t}"))
        .collect();
    argv.push(format!("--mcp-config={servers}"));
    argv.push(format!("--allowedTools={}", tools.join(",")));
    Ok(())
}

/// Refuses `value` for `flag` unless the installed Claude Code takes it, as its `--help` says
/// (asked once per program per process).
fn check_choice(program: &str, flag: &str, what: &str, value: &str) -> Result<(), Error> {
    match choices(program, flag)? {
        None => Err(Error::Invalid(format!(
            "{what} {value:?}: the installed Claude Code ({program}) has no {flag} option; upgrade it, or deploy without it"
        ))),
        Some(listed) if !listed.is_empty() && !listed.iter().any(|l| l == value) => {
            Err(Error::Invalid(format!(
                "{what} {value:?} is not one the installed Claude Code takes: {}",
                listed.join(", ")
            )))
        }
        Some(_) => Ok(()),
    }
}

/// What `program --help` says of `flag`: `None` if it has no such option, else the values it
/// lists (empty if it lists none).
fn choices(program: &str, flag: &str) -> Result<Option<Vec<String>>, Error> {
    type Cache = Mutex<HashMap<String, String>>;
    static HELP: OnceLock<Cache> = OnceLock::new();
    let cache = HELP.get_or_init(Cache::default);
    let known = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(program)
        .cloned();
    let help = match known {
        Some(help) => help,
        None => {
            let out = Command::new(program)
                .arg("--help")
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|e| {
                    Error::Environment(format!("cannot run {program} --help to check {flag}: {e}"))
                })?;
            let help = String::from_utf8_lossy(&out.stdout).into_owned();
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(program.to_owned(), help.clone());
            help
        }
    };
    Ok(parse_choices(&help, flag))
}

/// The values listed for `flag` in Claude Code's help: `--effort <level>  Effort level … (low,
/// medium, high, xhigh, max)`, `--permission-mode <mode> … (choices: "acceptEdits", …)`, the
/// list possibly over several lines.
fn parse_choices(help: &str, flag: &str) -> Option<Vec<String>> {
    let start = help.find(&format!("{flag} "))?;
    let entry: String = help[start..].lines().take(5).collect::<Vec<_>>().join(" ");
    // The entry ends where the next option begins.
    let entry = match entry[flag.len()..].find("  --") {
        Some(end) => &entry[..flag.len() + end],
        None => &entry,
    };
    let values = entry
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| {
            let list = list.trim_start_matches("choices:");
            list.split(',')
                .map(|l| l.trim().trim_matches('"').to_owned())
                .filter(|l| !l.is_empty() && !l.contains(' '))
                .collect()
        })
        .unwrap_or_default();
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn config() -> Config {
        Config::resolve(Some("/ws".into()), Some("s".into()), None, None, None).unwrap()
    }

    fn asked(model: Option<&'static str>) -> Choices<'static> {
        Choices {
            model,
            effort: None,
            permission_mode: None,
        }
    }

    #[test]
    fn the_model_is_added_to_claude_only() {
        let mut cmd = argv(&["/usr/local/bin/claude", "--print"]);
        choose(&mut cmd, asked(Some("sonnet")), &config()).unwrap();
        assert_eq!(
            cmd,
            argv(&[
                "/usr/local/bin/claude",
                "--print",
                "--model=sonnet",
                "--permission-mode=bypassPermissions"
            ])
        );

        let mut other = argv(&["codex", "exec"]);
        let err = choose(&mut other, asked(Some("sonnet")), &config())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"codex\""), "{err}");
        assert_eq!(other, argv(&["codex", "exec"]));
        choose(&mut other, asked(None), &config()).unwrap();
        assert_eq!(
            other,
            argv(&["codex", "exec"]),
            "nothing is added to others"
        );
    }

    #[test]
    fn a_model_that_reads_as_an_option_or_is_already_set_is_refused() {
        let mut cmd = argv(&["claude"]);
        assert!(
            choose(
                &mut cmd,
                asked(Some("--dangerously-skip-permissions")),
                &config()
            )
            .is_err()
        );
        assert!(choose(&mut cmd, asked(Some("a b")), &config()).is_err());
        let mut set = argv(&["claude", "--model=opus"]);
        let err = choose(&mut set, asked(Some("sonnet")), &config())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already sets --model"), "{err}");
    }

    #[test]
    fn a_command_that_sets_its_own_permissions_keeps_them() {
        let mut cmd = argv(&["claude", "--dangerously-skip-permissions"]);
        choose(&mut cmd, asked(None), &config()).unwrap();
        assert_eq!(cmd, argv(&["claude", "--dangerously-skip-permissions"]));
    }

    #[test]
    fn choices_are_read_from_the_help_of_claude_code_2_1() {
        // As `claude --help` of Claude Code 2.1.197 prints them.
        let help = "  --effort <level>                      Effort level for the current session\n                                        (low, medium, high, xhigh, max)\n  --exclude-dynamic-system-prompt-sections\n  --permission-mode <mode>              Permission mode to use for the session\n                                        (choices: \"acceptEdits\", \"auto\",\n                                        \"bypassPermissions\", \"default\",\n                                        \"dontAsk\", \"plan\")\n  --plugin-dir <path>                   Load a plugin from a directory or .zip\n";
        assert_eq!(
            parse_choices(help, "--effort"),
            Some(argv(&["low", "medium", "high", "xhigh", "max"]))
        );
        assert_eq!(
            parse_choices(help, "--permission-mode"),
            Some(argv(&[
                "acceptEdits",
                "auto",
                "bypassPermissions",
                "default",
                "dontAsk",
                "plan"
            ]))
        );
        assert_eq!(parse_choices(help, "--model"), None);
    }

    #[test]
    fn the_wiring_names_fleet_mcp_for_this_workspace_and_agent() {
        let mut cmd = argv(&["claude", "--print"]);
        let task = TaskId::parse("TASK-20260101-000000-00000000").unwrap();
        let agent = AgentId::parse("builder-000000-000000").unwrap();
        wire(&mut cmd, &config(), &task, &agent).unwrap();
        let json = cmd[2].strip_prefix("--mcp-config=").unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let server = &v["mcpServers"]["fleet"];
        assert_eq!(server["args"], json!(["mcp"]));
        assert_eq!(server["env"]["FLEET_ROOT"], "/ws");
        assert_eq!(server["env"]["FLEET_TMUX_SOCKET"], "s");
        assert_eq!(server["env"]["FLEET_AGENT_ID"], agent.as_str());
        assert_eq!(server["env"]["FLEET_TASK_ID"], task.as_str());
        assert_eq!(
            server["env"].get("FLEET_HOST"),
            None,
            "no host identity here"
        );
        let mut on_host = argv(&["claude", "--print"]);
        let mut hosted = config();
        hosted.host = Some(deploy_core::HostName::parse("host-a").unwrap());
        wire(&mut on_host, &hosted, &task, &agent).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(on_host[2].strip_prefix("--mcp-config=").unwrap()).unwrap();
        assert_eq!(v["mcpServers"]["fleet"]["env"]["FLEET_HOST"], "host-a");
        assert_eq!(
            cmd[3],
            "--allowedTools=mcp__fleet__update_agent_progress,mcp__fleet__report_agent_finding,mcp__fleet__spawn_child_agent,mcp__fleet__get_agent_output"
        );
        let mut other = argv(&["sh", "agent.sh"]);
        wire(&mut other, &config(), &task, &agent).unwrap();
        assert_eq!(other, argv(&["sh", "agent.sh"]));
    }

    #[test]
    fn bypassing_permissions_as_root_needs_a_sandbox() {
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(skips_permissions(&argv(&[
            "claude",
            "--permission-mode=bypassPermissions"
        ])));
        assert!(skips_permissions(&argv(&[
            "claude",
            "--permission-mode",
            "bypassPermissions"
        ])));
        assert!(skips_permissions(&argv(&[
            "claude",
            "--dangerously-skip-permissions"
        ])));
        assert!(!skips_permissions(&argv(&[
            "claude",
            "--permission-mode=acceptEdits"
        ])));
        assert!(!refused_to_root(false, None, &[]).unwrap());
        let sandboxed = [(SANDBOX_ENV.to_owned(), "1".to_owned())];
        assert!(!refused_to_root(true, None, &sandboxed).unwrap());
        assert!(refused_to_root(true, Some("1"), &[]).unwrap(), "passed on");
        let e = refused_to_root(true, None, &[]).unwrap_err().to_string();
        assert!(
            e.contains("IS_SANDBOX=1") && e.contains("--permission-mode"),
            "{e}"
        );
        let e = refused_to_root(true, Some("yes"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("IS_SANDBOX is \"yes\"; Claude Code takes only 1"),
            "{e}"
        );
    }
}
