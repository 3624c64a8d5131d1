//! `fleet kill`.

use std::time::Duration;

use crate::cli::{EndAgentArgs, KillArgs};
use crate::config::Services;
use crate::error::Error;
use deploy_core::end::Files;

use crate::ops::reports;
use crate::ops::{self, kill, remote};
use crate::output::emit;

pub(crate) fn run(services: &Services, args: &KillArgs, json_mode: bool) -> Result<(), Error> {
    let agents = match (&args.agent, &args.batch) {
        (Some(agent), _) => vec![agent.clone()],
        (None, Some(batch)) => ops::batch_members(services, Some(&args.task), batch)?
            .into_iter()
            .map(|(_, a)| a.id)
            .collect(),
        // clap requires one of the two.
        (None, None) => return Err(Error::Invalid("give --agent or --batch".into())),
    };
    if args.batch.is_none() {
        return kill_one(services, args, &agents[0], json_mode);
    }
    // Every member is ended, each where it runs, even after one fails; the failures are then
    // reported.
    let mut killed = Vec::new();
    let mut lines = String::new();
    let mut failed = Vec::new();
    for agent in &agents {
        match kill_where_it_runs(services, args, agent) {
            Ok((k, text)) => {
                killed.push(k);
                lines.push_str(&text);
            }
            Err(e) => failed.push(format!("{agent}: {}", e.line())),
        }
    }
    emit(json_mode, &killed, || lines);
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "{} member(s) not killed: {}",
        failed.len(),
        failed.join("; ")
    )))
}

fn kill_one(
    services: &Services,
    args: &KillArgs,
    agent: &deploy_core::AgentId,
    json_mode: bool,
) -> Result<(), Error> {
    let (k, text) = kill_where_it_runs(services, args, agent)?;
    emit(json_mode, &k, || text);
    Ok(())
}

/// Kills `agent` here, or on its host by that host's fleet; what the kill did (as JSON), and
/// its line for the terminal.
fn kill_where_it_runs(
    services: &Services,
    args: &KillArgs,
    agent: &deploy_core::AgentId,
) -> Result<(serde_json::Value, String), Error> {
    if let Some(host) = remote::owner(services, &args.task, agent)? {
        let command = vec![
            "kill".to_owned(),
            "--task".to_owned(),
            args.task.to_string(),
            "--agent".to_owned(),
            agent.to_string(),
            "--reason".to_owned(),
            args.reason.clone(),
        ];
        let k = remote::call(&services.config, &host, command, None, remote::CALL_BOUND)?;
        let ended = k
            .get("killed")
            .and_then(|p| p.as_array())
            .map_or(0, Vec::len);
        let status = k.get("status").and_then(|s| s.as_str()).unwrap_or("ended");
        let text = format!("{agent} {status} on host {host} ({ended} process(es) ended)\n");
        return Ok((k, text));
    }
    // The CLI keeps the logs where they are (`fleet logs` reads them).
    let k = kill::run(services, &args.task, agent, &args.reason, Files::Keep)?;
    let text = line(&k);
    let k = serde_json::to_value(&k)
        .map_err(|e| Error::Environment(format!("cannot encode what the kill did: {e}")))?;
    Ok((k, text))
}

/// What a kill did, for the terminal.
fn line(k: &kill::Killed) -> String {
    let mut out = format!(
        "{} {} (session {}, {} process(es) ended)\n",
        k.agent_id,
        k.status,
        if k.session_killed {
            "killed"
        } else {
            "already gone"
        },
        k.killed.len()
    );
    if let Some(w) = &k.worktree {
        out.push_str(&worktree_line(w));
    }
    out
}

/// What an agent's end left of its checkout, in one line.
fn worktree_line(c: &deploy_core::Checkout) -> String {
    use deploy_core::CheckoutState::*;
    match c.state {
        Active => format!(
            "worktree {} stays as it was (it could not be retired; see the log)\n",
            c.path
        ),
        KeptDirty => format!("worktree {} kept: it holds uncommitted changes\n", c.path),
        BranchOnly => format!(
            "worktree removed; branch {} kept: it has commits\n",
            c.branch
        ),
        Kept => format!(
            "worktree {} and branch {} kept, as asked\n",
            c.path, c.branch
        ),
        Removed => "worktree and branch removed: no work in them\n".to_owned(),
    }
}

/// `fleet end-agent`: ends an agent as its last final report says (status and message), its
/// files archived as for any end reported through MCP. Run detached, outside the agent's
/// process tree, by the `fleet mcp` that took the report; what it did goes to the log. The
/// agent first gets up to `--finish-grace-ms` to finish its turn and exit by itself, so that
/// what it says last — Claude Code's result, tokens and cost — is in its log when its end is
/// recorded.
pub(crate) fn end_agent(services: &Services, args: &EndAgentArgs) -> Result<(), Error> {
    let Some((status, message)) = reports::final_report(services, &args.task, &args.agent) else {
        return Err(Error::Invalid(format!(
            "agent {} of task {} has made no final report: nothing to end",
            args.agent, args.task
        )));
    };
    kill::await_exit(
        services,
        &args.task,
        &args.agent,
        Duration::from_millis(args.finish_grace_ms),
    )?;
    let k = kill::end(
        services,
        &args.task,
        &args.agent,
        status,
        &message,
        Files::Archive,
    )?;
    tracing::info!(agent = %k.agent_id, status = %k.status, processes = k.killed.len(), "ended after its final report");
    Ok(())
}
