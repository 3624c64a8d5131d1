//! What the CLI prints: a command's result on stdout (JSON, or text for people), nothing else.

use std::io::Write;

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
/// control characters — escape sequences included — are shown escaped, never interpreted.
/// JSON output is exact and does not go through this.
pub(crate) fn safe(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
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

/// The last thing an agent did: its result once it said it was done, its last tool while it
/// works, else its last line of output (unescaped: the caller makes it safe).
pub(crate) fn last_done(a: &crate::ops::status::AgentView) -> String {
    let act = &a.activity;
    match (&act.result, &act.last_tool, &a.last_line) {
        (Some(result), _, _) if act.state.is_final() => result.clone(),
        (_, Some(tool), _) => format!("{}: {}", tool.name, tool.summary),
        (_, _, Some(line)) => line.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(safe("plain é"), "plain é");
        assert_eq!(
            safe("\u{1b}[31mred\u{7}\ttab\n"),
            "\\u{1b}[31mred\\u{7}\\ttab\\n"
        );
    }
}
