//! # activity
//!
//! What an agent is doing, read from its own output stream rather than scraped from a screen:
//! a [`Tracker`] is fed the agent's log line by line — incrementally, from a saved offset — and
//! keeps an [`Activity`] summary: its [`State`], session id, model, turns, tokens, cost, last
//! tool, and for a finished agent its result.
//!
//! Formats, detected from the first event: Claude Code `--print --output-format stream-json
//! --verbose` ([`claude`]), Codex `exec --json` ([`codex`]); any other output is
//! [`Format::Plain`]: its state comes from the agent's liveness, and its last line is kept.
//! Unknown event types and malformed or truncated lines are skipped, never an error.
//!
//! Pure: no clock, no process; files only in [`Tracker::read_file`] and
//! [`Tracker::read_file_stamped`].

#![warn(missing_docs)]

pub mod agent_file;
pub mod claude;
pub mod codex;
mod tracker;

use serde::{Deserialize, Serialize};

pub use tracker::Tracker;

/// How far along an agent is, by its own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No event yet, or only its start.
    #[default]
    Starting,
    /// It works: events arrive.
    Working,
    /// Its model API failed and it waits to try again (Claude Code's `api_retry`): what
    /// failed is in [`Activity::retry`].
    Retrying,
    /// It said it finished (Claude Code: a `result` that is not an error; Codex: a completed
    /// turn), or — plain output — its process ended with status 0.
    Finished,
    /// It said it failed (an error result, a failed turn), or its process ended otherwise.
    Failed,
}

impl State {
    /// `starting`, `working`, `retrying`, `finished`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Working => "working",
            State::Retrying => "retrying",
            State::Finished => "finished",
            State::Failed => "failed",
        }
    }

    /// Whether the agent said it is done (finished or failed).
    pub fn is_final(self) -> bool {
        matches!(self, State::Finished | State::Failed)
    }
}

/// Which stream the agent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Nothing recognised yet.
    #[default]
    Unknown,
    /// Claude Code's stream-json.
    ClaudeCode,
    /// Codex's `exec --json`.
    Codex,
    /// Anything else.
    Plain,
}

/// The last tool the agent used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// Its name (`Bash`, `Edit`, `command_execution`, `mcp__fleet__update_agent_progress`).
    pub name: String,
    /// A short summary of its input (the command, the file, ...).
    pub summary: String,
}

/// A failed call of the model API that the agent will try again (Claude Code's `system`
/// `api_retry` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Which try failed, from 1.
    pub attempt: u64,
    /// How many it makes before it gives up.
    pub max_retries: u64,
    /// The HTTP status of the failure, if there was one.
    pub error_status: Option<u64>,
    /// What failed, as the agent says it (`overloaded`, `rate_limit`, ...), truncated to
    /// [`LINE_CHARS`].
    pub error: String,
}

/// An agent's activity, as its events tell it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Activity {
    /// How far along it is.
    pub state: State,
    /// Its conversation's id (Claude Code's `session_id`, Codex's `thread_id`): what resumes it.
    pub session_id: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Model turns so far.
    pub turns: u64,
    /// Input tokens so far, cached ones included.
    pub input_tokens: u64,
    /// Output tokens so far.
    pub output_tokens: u64,
    /// What it cost, in US dollars, once the agent says (Claude Code's `total_cost_usd`).
    pub cost_usd: Option<f64>,
    /// The last tool it used.
    pub last_tool: Option<ToolUse>,
    /// When its last event was read (the caller's clock: the log's modification time).
    pub last_event_at: Option<String>,
    /// Its final text, truncated to [`RESULT_CHARS`], once finished or failed.
    pub result: Option<String>,
    /// Whether its final result is an error.
    pub is_error: Option<bool>,
    /// While [`State::Retrying`]: the failed call it will try again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// What the stream tells beyond the summary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Context {
    /// Its last line of output, whatever it was, truncated to [`LINE_CHARS`].
    pub last_line: Option<String>,
    /// The last text it wrote to the user (Claude Code's assistant text), truncated to
    /// [`LINE_CHARS`]: what a summary shows of a stream, never a raw event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_text: Option<String>,
    /// Which stream it writes.
    pub format: Format,
    /// Its working directory, if it said (Claude Code's `system`/`init` `cwd`): where its
    /// conversation is resumed.
    pub cwd: Option<String>,
}

/// How much of a final result an [`Activity`] keeps.
pub const RESULT_CHARS: usize = 500;
/// How much of a line (a tool input summary, the last line) an [`Activity`] keeps.
pub const LINE_CHARS: usize = 160;

/// `text` cut to `max` characters, with `…` when cut; on one line.
pub fn truncate(text: &str, max: usize) -> String {
    let one_line = text.trim().replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The summary of the output lines of an agent that died: what it wrote that is not an event
/// (its stderr) and its Claude Code or Codex result or error if it wrote one — the lines a
/// person needs, not kilobytes of events — else the lines as they are.
pub fn condense(lines: &[String]) -> Vec<String> {
    let mut tracker = Tracker::new();
    for line in lines {
        tracker.feed_line(line, None);
    }
    match tracker.activity().result.clone() {
        // What it wrote beside its events (its stderr: "No conversation found …") says why.
        Some(result) => lines
            .iter()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('{'))
            .cloned()
            .chain([result])
            .collect(),
        None => lines.to_vec(),
    }
}
