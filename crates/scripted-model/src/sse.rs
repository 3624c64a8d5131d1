//! A reply as the Messages API sends it: server-sent events for a streaming request, one
//! message object otherwise, the API's error body for an error status.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::{Reply, Request};

/// Input tokens every answer reports.
pub(crate) const INPUT_TOKENS: u64 = 100;
/// Output tokens every answer reports.
pub(crate) const OUTPUT_TOKENS: u64 = 20;

/// An HTTP answer: status, content type, body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
}

/// `reply` (resolved) to `request`; `id` makes its message and tool ids unique.
pub(crate) fn answer(request: &Request, reply: &Reply, id: u64) -> Answer {
    let (block, stop_reason) = match reply {
        Reply::Error {
            status,
            kind,
            message,
        } => return error(*status, kind, message),
        Reply::Text(text) => (json!({"type": "text", "text": text}), "end_turn"),
        Reply::Tool { name, input } => (
            json!({"type": "tool_use", "id": format!("toolu_scripted_{id}"), "name": name, "input": input}),
            "tool_use",
        ),
        // Resolved before it gets here; answered as text should one slip through.
        Reply::With(_) | Reply::After(..) => (json!({"type": "text", "text": ""}), "end_turn"),
    };
    let usage = json!({
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": OUTPUT_TOKENS,
    });
    let message = json!({
        "id": format!("msg_scripted_{id}"),
        "type": "message",
        "role": "assistant",
        "model": request.model(),
        "content": [block],
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage,
    });
    if request.streaming() {
        Answer {
            status: 200,
            content_type: "text/event-stream",
            body: events(&message, &block, stop_reason, &usage),
        }
    } else {
        Answer {
            status: 200,
            content_type: "application/json",
            body: message.to_string(),
        }
    }
}

/// `count_tokens`: a count that grows with the request.
pub(crate) fn count_tokens(request: &Request) -> Answer {
    let tokens = 1 + request.body.to_string().len() / 4;
    Answer {
        status: 200,
        content_type: "application/json",
        body: json!({ "input_tokens": tokens }).to_string(),
    }
}

/// The API's error body with `status`.
pub(crate) fn error(status: u16, kind: &str, message: &str) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
    }
}

/// The streaming events of one message holding one content block.
fn events(message: &Value, block: &Value, stop_reason: &str, usage: &Value) -> String {
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let (empty, delta) = match block["type"].as_str() {
        Some("tool_use") => {
            let mut empty = block.clone();
            empty["input"] = json!({});
            let delta =
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()});
            (empty, delta)
        }
        _ => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": block["text"]}),
        ),
    };
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": start}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": empty}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage,
            }),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let mut out = String::new();
    for (name, data) in events {
        // Writing to a String cannot fail.
        let _ = write!(out, "event: {name}\ndata: {data}\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stream: bool) -> Request {
        Request {
            path: "/v1/messages".into(),
            body: json!({"model": "claude-test", "stream": stream, "messages": []}),
        }
    }

    #[test]
    fn a_tool_call_streams_its_input_as_one_json_delta() {
        let reply = Reply::tool("Bash", json!({"command": "true"}));
        let a = answer(&request(true), &reply, 7);
        assert_eq!(a.content_type, "text/event-stream");
        let data: Vec<Value> = a
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap_or(Value::Null))
            .collect();
        let types: Vec<&str> = data.iter().filter_map(|d| d["type"].as_str()).collect();
        assert_eq!(
            types,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(data[1]["content_block"]["name"], "Bash");
        assert_eq!(data[1]["content_block"]["id"], "toolu_scripted_7");
        let partial = data[2]["delta"]["partial_json"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Value>(partial).unwrap_or(Value::Null),
            json!({"command": "true"})
        );
        assert_eq!(data[4]["delta"]["stop_reason"], "tool_use");
        assert_eq!(data[0]["message"]["model"], "claude-test");
    }

    #[test]
    fn an_error_is_the_apis_error_body() {
        let a = answer(
            &request(true),
            &Reply::error(529, "overloaded_error", "Overloaded"),
            1,
        );
        assert_eq!(a.status, 529);
        let body: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
    }

    #[test]
    fn a_request_that_does_not_stream_gets_one_message() {
        let a = answer(&request(false), &Reply::text("hi"), 2);
        let body: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        assert_eq!(body["content"][0]["text"], "hi");
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["output_tokens"], OUTPUT_TOKENS);
    }
}
