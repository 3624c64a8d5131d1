//! Claude Code's `--print --output-format stream-json --verbose`: `system`/`init` (session id,
//! model), `assistant` messages (text and `tool_use` blocks, with their usage), `user` messages
//! (tool results), and a final `result` (its text, `is_error`, `num_turns`, `total_cost_usd`,
//! the whole run's usage).

use serde_json::Value;

use crate::tracker::Tracker;
use crate::{LINE_CHARS, RESULT_CHARS, Retry, State, ToolUse, truncate};

/// Whether `kind` is a Claude Code event type.
pub fn is_event(kind: &str) -> bool {
    matches!(
        kind,
        "system" | "assistant" | "user" | "result" | "stream_event"
    )
}

/// Input tokens of a usage object, cached ones included, and output tokens.
fn tokens(usage: &Value) -> (u64, u64) {
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    (
        n("input_tokens") + n("cache_creation_input_tokens") + n("cache_read_input_tokens"),
        n("output_tokens"),
    )
}

/// A short summary of a tool's input: the field that says what it does, else its JSON.
pub(crate) fn summarize(input: &Value) -> String {
    let named = [
        "command",
        "file_path",
        "pattern",
        "url",
        "query",
        "path",
        "description",
        "prompt",
    ]
    .iter()
    .find_map(|k| input[*k].as_str());
    match named {
        Some(s) => truncate(s, LINE_CHARS),
        None => truncate(&input.to_string(), LINE_CHARS),
    }
}

pub(crate) fn apply(t: &mut Tracker, kind: &str, event: &Value) {
    if let Some(id) = event["session_id"].as_str() {
        t.activity.session_id = Some(id.to_owned());
    }
    if kind != "system" {
        t.activity.retry = None;
    }
    match kind {
        "system" if event["subtype"] == "api_retry" => {
            t.activity.retry = Some(Retry {
                attempt: event["attempt"].as_u64().unwrap_or(0),
                max_retries: event["max_retries"].as_u64().unwrap_or(0),
                error_status: event["error_status"].as_u64(),
                error: truncate(event["error"].as_str().unwrap_or("unknown"), LINE_CHARS),
            });
            t.activity.state = State::Retrying;
        }
        "system" => {
            if let Some(model) = event["model"].as_str() {
                t.activity.model = Some(model.to_owned());
            }
            if let Some(cwd) = event["cwd"].as_str() {
                t.context.cwd = Some(cwd.to_owned());
            }
        }
        "assistant" => {
            let message = &event["message"];
            let id = message["id"].as_str().map(str::to_owned);
            if id.is_none() || id != t.message {
                let (ci, co) = t.committed_tokens;
                let (mi, mo) = t.message_tokens;
                t.committed_tokens = (ci + mi, co + mo);
                t.message_tokens = (0, 0);
                t.message = id;
                t.activity.turns += 1;
            }
            t.message_tokens = tokens(&message["usage"]);
            if let Some(model) = message["model"].as_str().filter(|m| !m.starts_with('<')) {
                t.activity.model = Some(model.to_owned());
            }
            for block in message["content"].as_array().into_iter().flatten() {
                if block["type"] == "text"
                    && let Some(text) = block["text"].as_str().filter(|t| !t.trim().is_empty())
                {
                    t.context.last_text = Some(truncate(text, LINE_CHARS));
                }
                if block["type"] == "tool_use" {
                    t.activity.last_tool = Some(ToolUse {
                        name: block["name"].as_str().unwrap_or("tool").to_owned(),
                        summary: summarize(&block["input"]),
                    });
                }
            }
            t.activity.state = State::Working;
        }
        "user" | "stream_event" => t.activity.state = State::Working,
        "result" => {
            let is_error = event["is_error"].as_bool().unwrap_or(false)
                || event["subtype"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("error"));
            let text = event["result"]
                .as_str()
                .or_else(|| event["subtype"].as_str())
                .unwrap_or_default();
            t.activity.result = Some(truncate(text, RESULT_CHARS));
            t.activity.is_error = Some(is_error);
            t.activity.state = if is_error {
                State::Failed
            } else {
                State::Finished
            };
            if let Some(turns) = event["num_turns"].as_u64() {
                t.activity.turns = turns;
            }
            if let Some(cost) = event["total_cost_usd"].as_f64() {
                t.activity.cost_usd = Some(cost);
            }
            if event["usage"].is_object() {
                t.committed_tokens = tokens(&event["usage"]);
                t.message_tokens = (0, 0);
                t.message = None;
            }
        }
        _ => {}
    }
}
