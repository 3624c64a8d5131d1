//! What the CLI prints: a command's result on stdout (JSON, or text for people), nothing else.

use std::io::Write;

use ::activity::{Format, State};
use serde::Serialize;

/// Prints `value` as JSON, or the text `text` makes, on stdout.
pub(crate) fn emit<T: Serialize>(json_mode: bool, value: &T, text: impl FnOnce() -> String) {
    let printed = if json_mode {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .unwrap_or_default()
    } else {
        text()
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(printed.as_bytes());
    let _ = out.flush();
}

/// Text that came from outside (task descriptions, agent output) made safe for a terminal:
/// control characters (C0 and C1 — escape sequences included) and the bidirectional overrides
/// that reorder what a reader sees are shown escaped, never interpreted. JSON output is exact
/// and does not go through this.
pub(crate) fn safe(text: &str) -> String {
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Whether a terminal would interpret `c` rather than show it: a control character, or a
/// bidirectional mark, embedding, override or isolate.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Token counts for people: `12`, `4.2k`, `1.3M`.
pub(crate) fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// A cost for people: `$0.04`, or `-` when unknown.
pub(crate) fn cost(usd: Option<f64>) -> String {
    usd.map_or_else(|| "-".to_owned(), |c| format!("${c:.2}"))
}

/// The last thing an agent did: its result once it said it was done; while its model API
/// fails, that and the retry; while it works, its last tool, else its last text; the raw last
/// line only of plain output — a stream's events are never shown raw (unescaped: the caller
/// makes it safe).
pub(crate) fn last_done(a: &crate::ops::status::AgentView) -> String {
    let act = &a.activity;
    if let (Some(result), true) = (&act.result, act.state.is_final()) {
        return result.clone();
    }
    if let (Some(r), State::Retrying) = (&act.retry, act.state) {
        let status = r.error_status.map(|s| format!("{s} ")).unwrap_or_default();
        return format!(
            "model API error {status}{}: retry {}/{}",
            r.error, r.attempt, r.max_retries
        );
    }
    if let Some(tool) = &act.last_tool {
        return format!("{}: {}", tool.name, tool.summary);
    }
    match a.format {
        Format::Plain | Format::Unknown => a.last_line.clone(),
        Format::ClaudeCode | Format::Codex => a.last_text.clone().or_else(|| act.result.clone()),
    }
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(safe("plain é"), "plain é");
        assert_eq!(
            safe("\u{1b}[31mred\u{7}\ttab\n\u{9b}"),
            "\\u{1b}[31mred\\u{7}\\u{9}tab\\u{a}\\u{9b}"
        );
        assert_eq!(safe("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert_eq!(safe("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }
}
