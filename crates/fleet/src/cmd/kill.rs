//! `fleet kill`.

use crate::cli::{EndAgentArgs, KillArgs};
use crate::config::Services;
use crate::error::Error;
use crate::ops::kill::{self, Logs};
use crate::output::emit;

pub(crate) fn run(services: &Services, args: &KillArgs, json_mode: bool) -> Result<(), Error> {
    // The CLI keeps the logs where they are (`fleet logs` reads them).
    let k = kill::run(services, &args.task, &args.agent, &args.reason, Logs::Keep)?;
    emit(json_mode, &k, || {
        format!(
            "{} {} (session {}, {} process(es) ended)\n",
            k.agent_id,
            k.status,
            if k.session_killed {
                "killed"
            } else {
                "already gone"
            },
            k.killed.len()
        )
    });
    Ok(())
}

/// `fleet end-agent`: ends an agent as its last final report says (status and message), its
/// files archived as for any end reported through MCP. Run detached, outside the agent's
/// process tree, by the `fleet mcp` that took the report; what it did goes to the log.
pub(crate) fn end_agent(services: &Services, args: &EndAgentArgs) -> Result<(), Error> {
    let Some((status, message)) = kill::final_report(services, &args.task, &args.agent) else {
        return Err(Error::Invalid(format!(
            "agent {} of task {} has made no final report: nothing to end",
            args.agent, args.task
        )));
    };
    let k = kill::end(
        services,
        &args.task,
        &args.agent,
        status,
        &message,
        Logs::Archive,
    )?;
    tracing::info!(agent = %k.agent_id, status = %k.status, processes = k.killed.len(), "ended after its final report");
    Ok(())
}
