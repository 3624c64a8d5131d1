//! `fleet wait`.

use std::time::Duration;

use crate::cli::WaitArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::status::Only;
use crate::ops::wait;
use crate::output::{emit, safe};

pub(crate) fn run(services: &Services, args: &WaitArgs, json_mode: bool) -> Result<(), Error> {
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
