//! The resources the Python server served: `tasks://list` (every task, one line each) and
//! `task://{task_id}/status` (what `get_real_task_status` returns), as JSON text.

use deploy_core::TaskId;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::json;

use crate::config::Services;
use crate::error::Error;
use crate::ops;

/// Every task.
pub(crate) const TASKS: &str = "tasks://list";
const JSON: &str = "application/json";

fn status_uri(task: &TaskId) -> String {
    format!("task://{task}/status")
}

/// An operation's error as a resource error: an unknown task or a bad id is "not found".
fn failed(uri: &str, e: &Error) -> McpError {
    match e {
        Error::Core(deploy_core::Error::UnknownTask(_) | deploy_core::Error::InvalidId { .. }) => {
            McpError::resource_not_found(format!("{uri}: {}", e.line()), None)
        }
        _ => McpError::internal_error(format!("{uri}: {}", e.line()), None),
    }
}

/// `tasks://list`, and the status of each task.
pub(crate) fn list(services: &Services) -> Result<ListResourcesResult, McpError> {
    let tasks = ops::task::list(services).map_err(|e| failed(TASKS, &e))?;
    let mut resources = vec![
        Resource::new(TASKS, "tasks")
            .with_description("Every task: id, description, status, priority, agent counts.")
            .with_mime_type(JSON),
    ];
    resources.extend(tasks.iter().map(|t| {
        Resource::new(status_uri(&t.id), format!("{} status", t.id))
            .with_description(t.description.clone())
            .with_mime_type(JSON)
    }));
    Ok(ListResourcesResult::with_all_items(resources))
}

/// `task://{task_id}/status`.
pub(crate) fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new("task://{task_id}/status", "task status")
            .with_description(
                "A task's status, as get_real_task_status returns it: its agents with their liveness, hierarchy, reports, limits.",
            )
            .with_mime_type(JSON),
    ])
}

/// Reads `uri`; one fleet does not serve is "not found", naming it.
pub(crate) fn read(services: &Services, uri: &str) -> Result<ReadResourceResult, McpError> {
    let value = if uri == TASKS {
        let tasks = ops::task::list(services).map_err(|e| failed(uri, &e))?;
        json!({ "success": true, "total_tasks": tasks.len(), "tasks": tasks })
    } else if let Some(id) = uri
        .strip_prefix("task://")
        .and_then(|rest| rest.strip_suffix("/status"))
    {
        let task = TaskId::parse(id).map_err(|e| failed(uri, &Error::from(e)))?;
        let status = super::task_status(services, &task).map_err(|e| failed(uri, &e))?;
        super::views::to_value(&status)
    } else {
        return Err(McpError::resource_not_found(
            format!("no resource {uri:?}: fleet serves {TASKS} and task://{{task_id}}/status"),
            None,
        ));
    };
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(JSON),
    ]))
}
