//! `fleet host add | list | remove`: the workspace's other hosts.

#![allow(clippy::disallowed_types)] // the host list's own command

use std::time::Duration;

use serde::Serialize;
use ssh_hosts::{HostEntry, Hosts};

use crate::cli::{HostAddArgs, HostCommand};
use crate::config::Config;
use crate::error::Error;
use crate::output::{emit, safe};

/// How long `host list` waits for any one host.
const PROBE_BOUND: Duration = Duration::from_secs(15);

pub(crate) fn run(config: &Config, command: HostCommand, json_mode: bool) -> Result<(), Error> {
    match command {
        HostCommand::Add(args) => add(config, args, json_mode),
        HostCommand::List => list(config, json_mode),
        HostCommand::Remove { name } => {
            let entry = Hosts::remove(&config.layout(), &name)?;
            // Its master connection, if one is open, goes with it.
            crate::ops::remote::ssh(config)?.stop_master(&name, &entry);
            emit(json_mode, &serde_json::json!({ "removed": name }), || {
                format!("removed host {name}\n")
            });
            Ok(())
        }
    }
}

fn add(config: &Config, args: HostAddArgs, json_mode: bool) -> Result<(), Error> {
    let entry = HostEntry {
        ssh: args.ssh,
        root: args.remote_root,
        socket: args.remote_socket,
        fleet: args.fleet,
    };
    Hosts::add(&config.layout(), &args.name, entry.clone())?;
    emit(
        json_mode,
        &serde_json::json!({ "added": args.name, "host": entry }),
        || format!("added host {} (ssh {})\n", args.name, safe(&entry.ssh)),
    );
    Ok(())
}

/// One host, as `host list` shows it.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    ssh: String,
    reachable: bool,
    /// The round trip of one call to the remote fleet (`fleet --version`), in milliseconds.
    rtt_ms: Option<f64>,
    /// The remote fleet's version.
    fleet: Option<String>,
    /// Why it is not reachable.
    error: Option<String>,
    /// Its agents in the registry, and how many of them are active.
    agents: Option<usize>,
    active: Option<usize>,
}

/// Every host, probed in parallel, each within [`PROBE_BOUND`]: one that does not answer is
/// shown as unreachable without holding up the others.
fn list(config: &Config, json_mode: bool) -> Result<(), Error> {
    let hosts = Hosts::load(&config.layout())?;
    let ssh = crate::ops::remote::ssh(config)?;
    let counts = agent_counts(config);
    let listed: Vec<Listed> = std::thread::scope(|s| {
        let probes: Vec<_> = hosts
            .iter()
            .map(|(name, entry)| {
                let ssh = &ssh;
                s.spawn(move || {
                    let fleet = entry.fleet.clone().unwrap_or_else(|| "fleet".to_owned());
                    let reply = ssh.run(
                        name,
                        entry,
                        &[fleet, "--version".to_owned()],
                        b"",
                        PROBE_BOUND,
                    );
                    match reply {
                        Ok(r) if r.code == Some(0) => (
                            true,
                            Some(r.took.as_secs_f64() * 1e3),
                            Some(String::from_utf8_lossy(&r.stdout).trim().to_owned()),
                            None,
                        ),
                        Ok(r) => (
                            false,
                            None,
                            None,
                            Some(format!("its fleet did not run: {}", r.stderr.trim())),
                        ),
                        Err(e) => (false, None, None, Some(e.to_string())),
                    }
                })
            })
            .collect();
        hosts
            .iter()
            .zip(probes)
            .map(|((name, entry), probe)| {
                let (reachable, rtt_ms, fleet, error) =
                    probe
                        .join()
                        .unwrap_or((false, None, None, Some("the probe panicked".into())));
                let (agents, active) = counts
                    .as_ref()
                    .map(|c| c.get(name.as_str()).copied().unwrap_or((0, 0)))
                    .unzip();
                Listed {
                    name: name.to_string(),
                    ssh: entry.ssh.clone(),
                    reachable,
                    rtt_ms,
                    fleet,
                    error,
                    agents,
                    active,
                }
            })
            .collect()
    });
    emit(json_mode, &listed, || {
        if listed.is_empty() {
            return "no other hosts: add one with `fleet host add NAME --ssh DEST`\n".to_owned();
        }
        let mut out = String::new();
        for h in &listed {
            let state = match (&h.rtt_ms, &h.error) {
                (Some(ms), _) => format!("reachable, {ms:.0} ms"),
                (None, Some(e)) => format!("unreachable: {e}"),
                (None, None) => "unreachable".to_owned(),
            };
            let agents = match (h.agents, h.active) {
                (Some(n), Some(a)) => format!(", {n} agents ({a} active)"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "{}\t{}\t{}{agents}\n",
                h.name,
                safe(&h.ssh),
                safe(&state)
            ));
        }
        out
    });
    Ok(())
}

/// Each host's agents and active agents in the registry, when it can be read.
fn agent_counts(config: &Config) -> Option<std::collections::HashMap<String, (usize, usize)>> {
    let services = crate::config::Services::new(config).ok()?;
    let mut counts = std::collections::HashMap::new();
    for task in services.registry.task_ids().ok()? {
        for a in services.registry.read_task(&task).ok()?.agents {
            if let Some(host) = a.host() {
                let c = counts.entry(host.to_string()).or_insert((0, 0));
                c.0 += 1;
                if a.status.is_active() {
                    c.1 += 1;
                }
            }
        }
    }
    Some(counts)
}
