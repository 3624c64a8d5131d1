//! Codex's `exec --json`: `thread.started` (the thread id, which resumes it), `turn.started`,
//! `item.started` / `item.updated` / `item.completed` (commands, MCP tool calls, file changes,
//! web searches, agent messages), `turn.completed` (the turn's usage), `turn.failed` and
//! `error`. Item kinds are read from `type`, or `item_type` as early versions wrote.

use serde_json::Value;

use crate::tracker::Tracker;
use crate::{LINE_CHARS, RESULT_CHARS, State, ToolUse, truncate};

/// Whether `kind` is a Codex event type.
pub fn is_event(kind: &str) -> bool {
    kind.starts_with("thread.")
        || kind.starts_with("turn.")
        || kind.starts_with("item.")
        || kind == "error"
}

fn tool(item: &Value, kind: &str) -> Option<ToolUse> {
    let s = |k: &str| item[k].as_str().unwrap_or_default();
    let (name, summary) = match kind {
        "command_execution" => ("command_execution".to_owned(), s("command").to_owned()),
        "mcp_tool_call" => (format!("{}.{}", s("server"), s("tool")), String::new()),
        "web_search" => ("web_search".to_owned(), s("query").to_owned()),
        "file_change" => {
            let paths: Vec<&str> = item["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["path"].as_str())
                .collect();
            ("file_change".to_owned(), paths.join(", "))
        }
        _ => return None,
    };
    Some(ToolUse {
        name,
        summary: truncate(&summary, LINE_CHARS),
    })
}

pub(crate) fn apply(t: &mut Tracker, kind: &str, event: &Value) {
    let a = &mut t.activity;
    match kind {
        "thread.started" => {
            if let Some(id) = event["thread_id"].as_str() {
                a.session_id = Some(id.to_owned());
            }
        }
        "turn.started" => a.state = State::Working,
        "item.started" | "item.updated" | "item.completed" => {
            a.state = State::Working;
            let item = &event["item"];
            let item_kind = item["type"]
                .as_str()
                .or_else(|| item["item_type"].as_str())
                .unwrap_or_default();
            if let Some(used) = tool(item, item_kind) {
                a.last_tool = Some(used);
            }
            if kind == "item.completed"
                && matches!(item_kind, "agent_message" | "assistant_message")
                && let Some(text) = item["text"].as_str()
            {
                a.result = Some(truncate(text, RESULT_CHARS));
            }
        }
        "turn.completed" => {
            let usage = &event["usage"];
            let (ci, co) = t.committed_tokens;
            t.committed_tokens = (
                ci + usage["input_tokens"].as_u64().unwrap_or(0),
                co + usage["output_tokens"].as_u64().unwrap_or(0),
            );
            a.turns += 1;
            a.is_error = Some(false);
            a.state = State::Finished;
        }
        "turn.failed" | "error" => {
            let message = event["error"]["message"]
                .as_str()
                .or_else(|| event["message"].as_str())
                .unwrap_or(kind);
            a.result = Some(truncate(message, RESULT_CHARS));
            a.is_error = Some(true);
            a.state = State::Failed;
        }
        _ => {}
    }
}
