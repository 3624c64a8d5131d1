//! Creating and listing tasks.

use deploy_core::{Limits, NewTask, TaskContext, TaskSnapshot, TaskSummary};

use crate::config::Services;
use crate::error::Error;

/// What a surface gives to create a task.
#[derive(Debug, Clone)]
pub(crate) struct TaskOptions {
    pub(crate) description: String,
    pub(crate) priority: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) context: Option<TaskContext>,
}

/// Creates a task, recording the caller's directory as the Python server did.
pub(crate) fn create(services: &Services, options: TaskOptions) -> Result<TaskSnapshot, Error> {
    let new = NewTask {
        description: options.description,
        priority: options.priority.unwrap_or_default(),
        limits: options.limits,
        client_cwd: std::env::current_dir()
            .ok()
            .map(|d| d.to_string_lossy().into_owned()),
        context: options.context.filter(|c| !c.is_empty()),
    };
    Ok(services.registry.create_task(&new)?)
}

/// Every task, its status reflecting its agents ([`status_word`]).
pub(crate) fn list(services: &Services) -> Result<Vec<TaskSummary>, Error> {
    let mut tasks = services.registry.list_tasks()?;
    for t in &mut tasks {
        t.status = status_word(&t.status, t.active_count, t.total_spawned);
    }
    Ok(tasks)
}

/// A task's status as fleet shows it: the registry's word unless it is the initial one, which
/// the Python server never changed — then `INITIALIZED` while no agent was deployed, `ACTIVE`
/// while one is, `COMPLETED` once none is. The registry keeps its word.
pub(crate) fn status_word(stored: &str, active: usize, total: usize) -> String {
    match (stored, active, total) {
        ("INITIALIZED", _, 0) => stored.to_owned(),
        ("INITIALIZED", 0, _) => "COMPLETED".to_owned(),
        ("INITIALIZED", _, _) => "ACTIVE".to_owned(),
        _ => stored.to_owned(),
    }
}
