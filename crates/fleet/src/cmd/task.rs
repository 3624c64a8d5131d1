//! `fleet task create|list`.

use registry::NewTask;
use serde_json::json;

use crate::cli::TaskCreateArgs;
use crate::config::Config;
use crate::{Error, emit};

pub(crate) fn create(cfg: &Config, args: &TaskCreateArgs, json_mode: bool) -> Result<(), Error> {
    if args.description.trim().is_empty() {
        return Err(Error::Usage("the task description is empty".into()));
    }
    let task = cfg.registry().create_task(&NewTask {
        description: args.description.clone(),
        priority: args.priority.clone(),
        limits: deploy_core::Limits {
            max_agents: args.max_agents,
            max_concurrent: args.max_concurrent,
            max_depth: args.max_depth,
        },
        client_cwd: std::env::current_dir()
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        context: None,
    })?;
    let value = json!({ "task_id": task.task_id, "workspace": task.workspace });
    emit(json_mode, &value, || format!("{}\n", task.task_id));
    Ok(())
}

pub(crate) fn list(cfg: &Config, json_mode: bool) -> Result<(), Error> {
    let registry = cfg.registry();
    let mut rows = Vec::new();
    for id in registry.task_ids()? {
        let t = registry.read_task_file(&id)?;
        rows.push(json!({
            "task_id": t.task_id,
            "description": t.task_description,
            "status": t.status,
            "priority": t.priority,
            "created_at": t.created_at,
            "active_count": t.active_count,
            "total_spawned": t.total_spawned,
        }));
    }
    emit(json_mode, &json!(rows), || {
        let mut out = format!(
            "{:<32} {:<12} {:>6} {:>6}  DESCRIPTION\n",
            "TASK", "STATUS", "ACTIVE", "TOTAL"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<32} {:<12} {:>6} {:>6}  {}\n",
                r["task_id"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["active_count"],
                r["total_spawned"],
                r["description"].as_str().unwrap_or_default()
            ));
        }
        out
    });
    Ok(())
}
