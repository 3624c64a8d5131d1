//! `fleet wait`.

use std::time::Duration;

use crate::cli::WaitArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::status::Only;
use crate::ops::wait;
use crate::output::{emit, safe};

pub(crate) fn run(services: &Services, args: &WaitArgs, json_mode: bool) -> Result<(), Error> {
    if let (Some(task), Some(agent)) = (&args.task, &args.agent)
        && let Some(host) = crate::ops::remote::owner(services, task, agent)?
    {
        return on_host(services, args, task, agent, &host, json_mode);
    }
    let ended = wait::run(
        services,
        args.task.as_ref(),
        match (&args.agent, &args.batch) {
            (Some(agent), _) => Only::Agent(agent),
            (None, Some(batch)) => Only::Batch(batch),
            (None, None) => Only::Every,
        },
        args.timeout.map(Duration::from_secs),
    )?;
    emit(json_mode, &ended, || {
        ended
            .iter()
            .map(|e| {
                let a = &e.agent;
                let said = a.activity.result.as_deref().unwrap_or_default();
                format!(
                    "{} {} {} {}\n",
                    a.agent_id,
                    a.status,
                    a.activity.state.as_str(),
                    safe(&activity::truncate(said, 100))
                )
            })
            .collect()
    });
    let failed: Vec<String> = ended
        .iter()
        .filter(|e| !e.completed())
        .map(|e| format!("{} {}", e.agent.agent_id, e.agent.status))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::NotCompleted(format!(
            "{} agent(s) did not complete: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}

/// `wait` for one agent of another host, by that host's fleet: it is the one that sees the
/// agent's process end and records it.
fn on_host(
    services: &Services,
    args: &WaitArgs,
    task: &deploy_core::TaskId,
    agent: &deploy_core::AgentId,
    host: &deploy_core::HostName,
    json_mode: bool,
) -> Result<(), Error> {
    let mut command = vec![
        "wait".to_owned(),
        "--task".to_owned(),
        task.to_string(),
        "--agent".to_owned(),
        agent.to_string(),
    ];
    if let Some(t) = args.timeout {
        command.extend(["--timeout".to_owned(), t.to_string()]);
    }
    // Bounded by the wait's own timeout; without one, by a day.
    let bound =
        Duration::from_secs(args.timeout.unwrap_or(86_400)) + crate::ops::remote::CALL_BOUND;
    let ended = crate::ops::remote::call(&services.config, host, command, None, bound)?;
    emit(json_mode, &ended, || {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        ended
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {} {} {}\n",
                    text(&e["agent_id"]),
                    text(&e["status"]),
                    text(&e["activity"]["state"]),
                    safe(&activity::truncate(&text(&e["activity"]["result"]), 100))
                )
            })
            .collect()
    });
    Ok(())
}
