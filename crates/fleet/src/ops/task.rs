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

/// Every task.
pub(crate) fn list(services: &Services) -> Result<Vec<TaskSummary>, Error> {
    Ok(services.registry.list_tasks()?)
}
