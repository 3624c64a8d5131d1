//! A request the model was sent, as logged: what a test asserts the model was shown.

use serde_json::Value;

/// One request to the API.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its path, without the query (`/v1/messages`).
    pub path: String,
    /// Its JSON body (`Null` when it had none or it was not JSON).
    pub body: Value,
}

impl Request {
    /// The names of the tools the model was offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The conversation's turn: how many assistant messages its history holds.
    pub fn turn(&self) -> usize {
        self.messages()
            .iter()
            .filter(|m| m["role"] == "assistant")
            .count()
    }

    /// The text of the first user message (its text blocks joined): where a conversation's
    /// marker is looked for.
    pub fn first_user_text(&self) -> String {
        self.messages()
            .iter()
            .find(|m| m["role"] == "user")
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default()
    }

    /// The whole history's text — every text block and tool result — for asserting what the
    /// model was shown.
    pub fn history_text(&self) -> String {
        self.messages()
            .iter()
            .map(|m| text_of(&m["content"]))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every tool result in the history, in order, as text.
    pub fn tool_results(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|block| block["type"] == "tool_result")
            .map(|block| text_of(&block["content"]))
            .collect()
    }

    /// The content of the last tool result in the history, as text.
    pub fn last_tool_result(&self) -> Option<String> {
        self.tool_results().pop()
    }

    /// The `n`-th tool result (from 0) parsed as JSON, `Null` if there is none or it is not.
    pub fn tool_json(&self, n: usize) -> Value {
        self.tool_results()
            .get(n)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null)
    }

    /// The last tool result parsed as JSON (what an MCP tool answered), `Null` if it is not.
    pub fn last_tool_json(&self) -> Value {
        self.last_tool_result()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }

    /// Whether this is a streaming request.
    pub fn streaming(&self) -> bool {
        self.body["stream"] == true
    }

    /// The model asked for.
    pub fn model(&self) -> &str {
        self.body["model"].as_str().unwrap_or("claude-sonnet-4-5")
    }

    fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }
}

/// The text of a message's content: a string, or its text (and tool result) blocks joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("text") => b["text"].as_str().unwrap_or_default().to_owned(),
                Some("tool_result") => text_of(&b["content"]),
                _ => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}
