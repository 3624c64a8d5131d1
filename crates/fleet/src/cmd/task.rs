//! `fleet task create|list`.

use serde_json::json;

use crate::cli::TaskCreateArgs;
use crate::config::Services;
use crate::error::Error;
use crate::ops::task::{self, TaskOptions};
use crate::output::{emit, safe};

pub(crate) fn create(
    services: &Services,
    args: &TaskCreateArgs,
    json_mode: bool,
) -> Result<(), Error> {
    let t = task::create(
        services,
        TaskOptions {
            description: args.description.clone(),
            priority: Some(args.priority.clone()),
            limits: deploy_core::Limits {
                max_agents: args.max_agents,
                max_concurrent: args.max_concurrent,
                max_depth: args.max_depth,
            },
            context: None,
        },
    )?;
    let value = json!({ "task_id": t.id, "workspace": t.workspace });
    emit(json_mode, &value, || format!("{}\n", t.id));
    Ok(())
}

pub(crate) fn list(services: &Services, json_mode: bool) -> Result<(), Error> {
    let rows = task::list(services)?;
    emit(json_mode, &rows, || {
        let mut out = format!(
            "{:<32} {:<12} {:>6} {:>6}  DESCRIPTION\n",
            "TASK", "STATUS", "ACTIVE", "TOTAL"
        );
        for r in &rows {
            out.push_str(&format!(
                "{:<32} {:<12} {:>6} {:>6}  {}\n",
                r.id.as_str(),
                safe(&r.status),
                r.active_count,
                r.total_spawned,
                safe(&r.description)
            ));
        }
        out
    });
    Ok(())
}
