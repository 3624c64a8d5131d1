//! `fleet status`.

use serde_json::json;

use crate::cli::StatusArgs;
use crate::config::{Config, Services};
use deploy_core::reconcile::sessions_by_name;

use crate::observe::{AgentView, observe_task};
use crate::{Error, emit};

pub(crate) fn run(cfg: &Config, args: &StatusArgs, json_mode: bool) -> Result<(), Error> {
    let services = Services::new(cfg)?;
    let env = services.deployer();
    let registry = &services.registry;
    let ids = match &args.task {
        Some(t) => vec![t.clone()],
        None => registry.task_ids()?,
    };
    let live = sessions_by_name(env.backend)?;
    let mut tasks = Vec::new();
    for id in ids {
        let mut task = registry.read_task_file(&id)?;
        let (mut agents, recorded) = observe_task(&env, &task, &live)?;
        if let Some(only) = &args.agent {
            agents.retain(|a| a.agent_id == only.as_str());
        }
        if recorded {
            task = registry.read_task_file(&id)?; // the counters after the recorded ends
        }
        tasks.push((task, agents));
    }
    if let Some(only) = &args.agent
        && tasks.iter().all(|(_, agents)| agents.is_empty())
    {
        return Err(Error::Usage(format!("no agent {only} in {}", scope(args))));
    }
    let value = json!(
        tasks
            .iter()
            .map(|(t, agents)| json!({
                "task_id": t.task_id,
                "description": t.task_description,
                "status": t.status,
                "active_count": t.active_count,
                "total_spawned": t.total_spawned,
                "completed_count": t.completed_count,
                "max_concurrent": t.max_concurrent,
                "max_agents": t.max_agents,
                "agents": agents,
            }))
            .collect::<Vec<_>>()
    );
    emit(json_mode, &value, || {
        let mut out = String::new();
        for (t, agents) in &tasks {
            out.push_str(&format!(
                "{}  {}  {} active / {} total (max {} / {})  {}\n",
                t.task_id,
                t.status,
                t.active_count,
                t.total_spawned,
                t.max_concurrent,
                t.max_agents,
                t.task_description
            ));
            for a in agents {
                out.push_str(&format!("  {}\n", row(a)));
            }
        }
        out
    });
    Ok(())
}

fn scope(args: &StatusArgs) -> String {
    args.task
        .as_ref()
        .map_or_else(|| "any task".to_owned(), |t| format!("task {t}"))
}

fn row(a: &AgentView) -> String {
    let live = match (a.liveness, a.exit) {
        (_, Some(exit)) => exit.to_string(),
        (l, None) => l.to_owned(),
    };
    let age = a
        .age_seconds
        .map_or_else(|| "?".to_owned(), |s| format!("{s}s"));
    format!(
        "{:<36} {:<14} {:<11} {:<28} {:>7}  parent {}",
        a.agent_id, a.agent_type, a.status, live, age, a.parent
    )
}
