//! `fleet kill`.

use crate::cli::KillArgs;
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
