//! `fleet kill`.

use serde_json::json;

use crate::cli::KillArgs;
use crate::config::{Config, Services};
use crate::{Error, emit, ops};

pub(crate) fn run(cfg: &Config, args: &KillArgs, json_mode: bool) -> Result<(), Error> {
    let services = Services::new(cfg)?;
    // The CLI keeps the logs where they are (`fleet logs` reads them).
    let k = ops::kill(&services, &args.task, &args.agent, &args.reason, false)?;
    let value = json!({
        "agent_id": args.agent,
        "task_id": args.task,
        "session": k.session,
        "session_killed": k.report.session_existed,
        "killed": k.report.killed,
        "status": k.status,
        "reason": args.reason,
    });
    emit(json_mode, &value, || {
        format!(
            "{} {} (session {}, {} process(es) ended)\n",
            args.agent,
            k.status,
            if k.report.session_existed {
                "killed"
            } else {
                "already gone"
            },
            k.report.killed.len()
        )
    });
    Ok(())
}
