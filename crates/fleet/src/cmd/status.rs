//! `fleet status`.

use crate::cli::StatusArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::status::{self, AgentView};
use crate::output::{emit, safe};

pub(crate) fn run(services: &Services, args: &StatusArgs, json_mode: bool) -> Result<(), Error> {
    let tasks = status::run(services, args.task.as_ref(), args.agent.as_ref())?;
    emit(json_mode, &tasks, || {
        let mut out = String::new();
        for t in &tasks {
            out.push_str(&format!(
                "{}  {}  {} active / {} total (max {} / {})  {}\n",
                t.task_id,
                safe(&t.status),
                t.active_count,
                t.total_spawned,
                t.max_concurrent,
                t.max_agents,
                safe(&t.description)
            ));
            for a in &t.agents {
                out.push_str(&format!("  {}\n", row(a)));
            }
        }
        out
    });
    Ok(())
}

fn row(a: &AgentView) -> String {
    let live = match a.exit {
        Some(exit) => exit.to_string(),
        None => a.liveness.as_str().to_owned(),
    };
    let age = a
        .age_seconds
        .map_or_else(|| "?".to_owned(), |s| format!("{s}s"));
    format!(
        "{:<36} {:<14} {:<11} {:<28} {:>7}  parent {}",
        a.agent_id.as_str(),
        a.agent_type.as_str(),
        safe(a.status.as_str()),
        live,
        age,
        a.parent
    )
}
