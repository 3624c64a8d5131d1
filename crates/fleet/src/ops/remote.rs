//! fleet on other hosts: one command run there, over ssh, by that host's own fleet.
//!
//! The controller sends a [`Request`] — the command's argv, the host's identity, the database
//! URL and the prompt — as one JSON line on the remote fleet's stdin (`fleet remote`), never on
//! a command line; the ssh command line holds only the remote fleet's path and `remote`. The
//! remote host runs the command as its own: a deployment there makes and owns every resource,
//! with its intents and its reconcile. Its stdin stays open until it answers: its end (the
//! controller killed, the connection cut, ssh killed) is the remote's SIGHUP, which rolls a
//! deployment in flight back. The controller reports Live only from the remote's answer.

#![allow(clippy::disallowed_types)] // the one place other hosts are reached

use std::time::Duration;

use deploy_core::{AgentId, AgentRecord, HostName, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssh_hosts::{HostEntry, Hosts, Ssh};

use crate::config::{Config, RegistryKind, Services};
use crate::error::Error;
use crate::ops::activity::Totals;
use crate::ops::deploy::DeployOptions;
use crate::ops::status::{Sighting, TaskStatus};

/// How long a look (`status`, `top`) waits for another host's answer before it shows that
/// host's agents as unreachable.
pub(crate) const LOOK_BOUND: Duration = Duration::from_secs(10);

/// The bound of a remote call that is not a deployment.
pub(crate) const CALL_BOUND: Duration = Duration::from_secs(60);

/// The ssh exit status of a remote shell that found no such command.
const NOT_FOUND: i32 = 127;

/// What a controller asks a remote fleet, on its stdin. (Its `Debug` shows neither the database
/// URL, which may hold a password, nor the prompt.)
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The remote's host identity (its `FLEET_HOST`).
    pub(crate) host: String,
    /// The shared registry's database (a password never on a command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) database_url: Option<String>,
    /// The command, after `fleet`: global options first.
    pub(crate) argv: Vec<String>,
    /// The prompt, for `--prompt-file -`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) input: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("host", &self.host)
            .field("argv", &self.argv)
            .finish_non_exhaustive()
    }
}

/// The ssh client of this workspace: master connections in `.fleet/ssh`, ssh's configuration
/// from `FLEET_SSH_CONFIG` if set, else the user's own.
pub(crate) fn ssh(config: &Config) -> Result<Ssh, Error> {
    let file = std::env::var("FLEET_SSH_CONFIG")
        .ok()
        .filter(|v| !v.is_empty())
        .map(camino::Utf8PathBuf::from);
    Ok(Ssh::new(config.layout().ssh_dir(), file)?)
}

/// What a remote fleet runs for `command` on `host`: its global options, then `command`.
fn argv(config: &Config, host: &HostEntry, command: Vec<String>) -> Vec<String> {
    let mut argv = vec!["--json".to_owned()];
    argv.extend(globals(config, host));
    argv.extend(command);
    argv
}

/// The remote fleet's global options: its root and socket, if set, and the registry.
fn globals(config: &Config, host: &HostEntry) -> Vec<String> {
    let mut argv = Vec::new();
    if let Some(root) = &host.root {
        argv.extend(["--root".to_owned(), root.clone()]);
    }
    if let Some(socket) = &host.socket {
        argv.extend(["--socket".to_owned(), socket.clone()]);
    }
    let registry = match config.registry {
        RegistryKind::Json => "json",
        RegistryKind::Sqlite => "sqlite",
        RegistryKind::Postgres => "postgres",
    };
    argv.extend(["--registry".to_owned(), registry.to_owned()]);
    argv
}

/// `fleet attach` of `agent` on host `name`, in this terminal (`ssh -t`): the remote fleet finds
/// its database in its workspace (`.fleet/database-url`, written when it first deployed).
pub(crate) fn attach(
    services: &Services,
    name: &HostName,
    agent: &AgentId,
) -> Result<std::process::Command, Error> {
    let hosts = Hosts::load(&services.layout)?;
    let host = hosts.get(name)?;
    let mut remote = vec![host.fleet.clone().unwrap_or_else(|| "fleet".into())];
    remote.extend(globals(&services.config, host));
    remote.extend(["attach".into(), "--agent".into(), agent.to_string()]);
    Ok(ssh(&services.config)?.interactive(name, host, &remote))
}

/// The host `agent` runs on, in whichever task, when that is another host this workspace
/// reaches (for commands that name no task: `attach`).
pub(crate) fn owner_anywhere(
    services: &Services,
    agent: &AgentId,
) -> Result<Option<HostName>, Error> {
    let Some(hosts) = listed(services)? else {
        return Ok(None);
    };
    for task in services.registry.task_ids()? {
        if let Some(record) = services.registry.read_task(&task)?.agent(agent) {
            return Ok(elsewhere(services, &hosts, record));
        }
    }
    Ok(None)
}

/// Runs fleet `command` on host `name` (with `input` for `--prompt-file -`), bounded by
/// `bound`; returns its JSON answer. A failure there is [`Error::Remote`], with the remote's
/// line, JSON and exit status.
pub(crate) fn call(
    config: &Config,
    name: &HostName,
    command: Vec<String>,
    input: Option<String>,
    bound: Duration,
) -> Result<Value, Error> {
    let stdout = call_for_output(config, name, command, input, bound)?;
    serde_json::from_slice(&stdout).map_err(|_| Error::Remote {
        host: name.clone(),
        code: 1,
        line: format!(
            "its answer is not JSON: {}",
            String::from_utf8_lossy(&stdout).trim()
        ),
        json: None,
    })
}

/// [`call`] of a command whose output is text (`diff`): its stdout as it is.
pub(crate) fn call_for_output(
    config: &Config,
    name: &HostName,
    command: Vec<String>,
    input: Option<String>,
    bound: Duration,
) -> Result<Vec<u8>, Error> {
    let hosts = Hosts::load(&config.layout())?;
    let host = hosts.get(name)?;
    let request = Request {
        host: name.to_string(),
        database_url: config.database_url.as_ref().map(|u| u.0.clone()),
        argv: argv(config, host, command),
        input,
    };
    let mut line = serde_json::to_vec(&request)
        .map_err(|e| Error::Environment(format!("cannot encode the request to {name}: {e}")))?;
    line.push(b'\n');
    let fleet = host.fleet.clone().unwrap_or_else(|| "fleet".to_owned());
    let reply = ssh(config)?.run(
        name,
        host,
        &[fleet.clone(), "remote".to_owned()],
        &line,
        bound,
    )?;
    if reply.code == Some(0) {
        return Ok(reply.stdout);
    }
    let answer: Option<Value> = serde_json::from_slice(&reply.stdout).ok();
    let said = reply
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("fleet: "))
        .map(str::to_owned);
    let line = match (reply.code, said) {
        (_, Some(said)) => said,
        (Some(NOT_FOUND), None) => format!(
            "no fleet binary {fleet:?} there ({}): give its path with `fleet host add {name} \
             --fleet PATH`",
            reply.stderr.trim()
        ),
        (code, None) => format!(
            "its fleet failed ({}) and said: {}",
            code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
            reply.stderr.trim()
        ),
    };
    Err(Error::Remote {
        host: name.clone(),
        code: reply
            .code
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1),
        line,
        json: answer,
    })
}

/// The host `agent` of `task` runs on, when that is another host this workspace reaches
/// (`fleet host add`): commands on the agent are then run there. Without a host list, the
/// registry is not read for it.
pub(crate) fn owner(
    services: &Services,
    task: &TaskId,
    agent: &AgentId,
) -> Result<Option<HostName>, Error> {
    let Some(hosts) = listed(services)? else {
        return Ok(None);
    };
    let record = crate::ops::agent_record(services, task, agent)?;
    Ok(elsewhere(services, &hosts, &record))
}

/// The workspace's host list, unless it lists none.
fn listed(services: &Services) -> Result<Option<Hosts>, Error> {
    let hosts = Hosts::load(&services.layout)?;
    Ok((!hosts.is_empty()).then_some(hosts))
}

/// The host `record` runs on, when that is not this one and `hosts` lists it.
fn elsewhere(services: &Services, hosts: &Hosts, record: &AgentRecord) -> Option<HostName> {
    let host = record.host()?;
    (services.config.host.as_ref() != Some(&host) && hosts.contains(&host)).then_some(host)
}

/// What a remote deployment deploys.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Members<'a> {
    /// `options`, `count` times (one batch) if given.
    Like(Option<u32>),
    /// The members of this plan (JSON, prompts inline), over `options`' batch-wide settings.
    Plan(&'a str),
}

/// Deploys `members` on host `name`, by that host's fleet, and returns its answer (what its
/// `deploy --json` prints): Live there, or an error with what its rollback did. It needs a
/// registry every host shares.
pub(crate) fn deploy(
    config: &Config,
    name: &HostName,
    options: &DeployOptions,
    members: Members<'_>,
) -> Result<Value, Error> {
    if config.registry != RegistryKind::Postgres {
        return Err(Error::Refused(format!(
            "deploying on host {name} needs a registry every host shares: use the postgres \
             registry (`fleet migrate --to postgres`, then --database-url)"
        )));
    }
    let grace = options.startup_grace.unwrap_or(config.startup_grace);
    let input = match members {
        Members::Like(_) => options.prompt.clone(),
        Members::Plan(plan) => plan.to_owned(),
    };
    call(
        config,
        name,
        deploy_argv(options, members),
        Some(input),
        CALL_BOUND + grace,
    )
}

/// The `deploy` command a remote fleet runs for `options`, with the prompt (`--prompt-file -`)
/// or the plan (`--plan -`) on its stdin. Paths (`--workdir`, `--repo`) are the remote's,
/// passed as given; with no command, the remote's own default runs.
pub(crate) fn deploy_argv(options: &DeployOptions, members: Members<'_>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["deploy".into(), "--task".into(), options.task.to_string()];
    let mut opt = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            argv.push(format!("--{flag}"));
            argv.push(v);
        }
    };
    // A plan's members name their own type, prompt, checkout, model and directory.
    let one = match members {
        Members::Like(count) => {
            opt("type", Some(options.agent_type.to_string()));
            opt("prompt-file", Some("-".into()));
            opt("count", count.map(|n| n.to_string()));
            true
        }
        Members::Plan(_) => {
            opt("plan", Some("-".into()));
            false
        }
    };
    let worktree = options.worktree.as_ref().filter(|_| one);
    opt("parent", Some(options.parent.to_string()));
    opt(
        "workdir",
        options
            .workdir
            .as_ref()
            .filter(|_| one)
            .map(ToString::to_string),
    );
    opt(
        "repo",
        worktree
            .and_then(|w| w.repo.as_ref())
            .map(ToString::to_string),
    );
    opt("base", worktree.and_then(|w| w.base.clone()));
    opt(
        "startup-grace-ms",
        options.startup_grace.map(|d| d.as_millis().to_string()),
    );
    opt("model", options.model.clone().filter(|_| one));
    opt("effort", options.effort.clone());
    opt("permission-mode", options.permission_mode.clone());
    for (k, v) in &options.env {
        opt("env", Some(format!("{k}={v}")));
    }
    for (flag, on) in [
        ("--worktree", worktree.is_some()),
        ("--keep-worktree", worktree.is_some_and(|w| w.keep)),
        ("--allow-duplicate", options.allow_duplicate),
        ("--no-preamble", options.preamble == Some(false)),
    ] {
        if on {
            argv.push(flag.into());
        }
    }
    if let Some(command) = &options.command {
        argv.push("--".into());
        argv.extend(command.iter().cloned());
    }
    argv
}

/// Fills in what the other hosts this workspace reaches see of their own agents in `tasks` —
/// liveness, exit, activity, last output, and an end they recorded — asking every such host at
/// once (its fleet's `status`, one call per task), each bounded by [`LOOK_BOUND`]. A host that
/// does not answer leaves its agents as the registry has them, `unreachable`, and holds up
/// none of the others.
pub(crate) fn gather(services: &Services, tasks: &mut [TaskStatus]) {
    let Ok(hosts) = Hosts::load(&services.layout) else {
        return;
    };
    let mut asks: std::collections::BTreeMap<HostName, Vec<TaskId>> = Default::default();
    for t in tasks.iter() {
        for a in &t.agents {
            if let Some(h) = &a.host
                && a.liveness == Sighting::Elsewhere
                && hosts.contains(h)
            {
                let ids = asks.entry(h.clone()).or_default();
                if !ids.contains(&t.task_id) {
                    ids.push(t.task_id.clone());
                }
            }
        }
    }
    if asks.is_empty() {
        return;
    }
    let answers: Vec<(HostName, Option<Vec<Value>>)> = std::thread::scope(|s| {
        let threads: Vec<_> = asks
            .iter()
            .map(|(host, ids)| {
                s.spawn(move || {
                    let mut views = Vec::new();
                    for id in ids {
                        let command =
                            vec!["status".to_owned(), "--task".to_owned(), id.to_string()];
                        match call(&services.config, host, command, None, LOOK_BOUND) {
                            Ok(Value::Array(answer)) => views.extend(answer),
                            Ok(_) => return None,
                            Err(e) => {
                                tracing::warn!(%host, error = %e.line(), "host did not answer");
                                return None;
                            }
                        }
                    }
                    Some(views)
                })
            })
            .collect();
        asks.keys()
            .cloned()
            .zip(threads)
            .map(|(host, t)| (host, t.join().unwrap_or(None)))
            .collect()
    });
    for (host, answer) in answers {
        let seen: std::collections::HashMap<String, &Value> = answer
            .iter()
            .flatten()
            .flat_map(|task| task["agents"].as_array().into_iter().flatten())
            .filter_map(|a| Some((a["agent_id"].as_str()?.to_owned(), a)))
            .collect();
        for t in tasks.iter_mut() {
            for a in t
                .agents
                .iter_mut()
                .filter(|a| a.host.as_ref() == Some(&host) && a.liveness == Sighting::Elsewhere)
            {
                if answer.is_none() {
                    a.liveness = Sighting::Unreachable;
                    continue;
                }
                let Some(view) = seen.get(a.agent_id.as_str()) else {
                    continue;
                };
                if let Ok(sighting) = serde_json::from_value(view["liveness"].clone()) {
                    a.liveness = sighting;
                }
                if let Ok(status) = serde_json::from_value(view["status"].clone()) {
                    a.status = status;
                }
                a.exit = serde_json::from_value(view["exit"].clone()).unwrap_or(a.exit);
                if let Ok(activity) = serde_json::from_value(view["activity"].clone()) {
                    a.activity = activity;
                }
                a.last_line = view["last_line"].as_str().map(str::to_owned);
                a.last_text = view["last_text"].as_str().map(str::to_owned);
            }
            t.totals = Totals::of(t.agents.iter().map(|a| &a.activity));
        }
    }
}
