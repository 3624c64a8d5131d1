//! Each fixture's summary (insta), and the reader's promises: incremental reads give the same
//! summary as one read, a line still being written waits, a replaced log is read from its
//! start, and a 50 MB log is read once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use activity::{Activity, State, Tracker};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read_tracker(name: &str) -> Tracker {
    let mut t = Tracker::new();
    t.read_file(&fixture(name), Some("2026-11-25T10:00:00"))
        .unwrap();
    t
}

fn read(name: &str) -> Activity {
    read_tracker(name).activity().clone()
}

/// The summary and the context, as snapshotted.
fn seen(name: &str) -> serde_json::Value {
    let t = read_tracker(name);
    serde_json::json!({ "activity": t.activity(), "context": t.context() })
}

#[test]
fn claude_code_not_logged_in_recorded_from_the_real_cli() {
    // Claude Code 2.1.197 without credentials: system/init, an assistant message, an error result.
    let a = read("claude_not_logged_in.jsonl");
    assert_eq!(a.state, State::Failed);
    assert_eq!(
        a.result.as_deref(),
        Some("Not logged in · Please run /login")
    );
    insta::assert_json_snapshot!("claude_not_logged_in", seen("claude_not_logged_in.jsonl"));
}

#[test]
fn claude_code_retrying_a_failed_api_call_recorded_from_the_real_cli() {
    // Claude Code 2.1.197 answered 529 twice by the scripted model: it says so, and retries.
    let a = read("claude_api_retry.jsonl");
    assert_eq!(a.state, State::Retrying);
    let retry = a.retry.clone().unwrap();
    assert_eq!(
        (retry.attempt, retry.max_retries, retry.error_status),
        (2, 10, Some(529))
    );
    assert_eq!(retry.error, "overloaded");
    insta::assert_json_snapshot!("claude_api_retry", seen("claude_api_retry.jsonl"));
    // Once the model answers, the retry is over.
    let a = read("claude_api_retry_then_success.jsonl");
    assert_eq!(a.state, State::Finished);
    assert_eq!(a.retry, None);
    assert_eq!(a.result.as_deref(), Some("done after retries"));
}

#[test]
fn claude_code_success_with_tools() {
    let a = read("claude_success_with_tools.jsonl");
    assert_eq!(a.state, State::Finished);
    assert_eq!(a.turns, 4);
    assert_eq!(a.input_tokens, 72 + 2000 + 6300);
    assert_eq!(a.output_tokens, 239);
    insta::assert_json_snapshot!(
        "claude_success_with_tools",
        seen("claude_success_with_tools.jsonl")
    );
}

#[test]
fn claude_code_error_result() {
    let a = read("claude_error_max_turns.jsonl");
    assert_eq!(a.state, State::Failed);
    assert_eq!(a.is_error, Some(true));
    insta::assert_json_snapshot!(
        "claude_error_max_turns",
        seen("claude_error_max_turns.jsonl")
    );
}

#[test]
fn claude_code_while_it_works_counts_each_streamed_message_once() {
    // The first five lines of the success fixture: two messages, the first streamed in two
    // events carrying its usage so far.
    let text = fs_err_read(&fixture("claude_success_with_tools.jsonl"));
    let mut t = Tracker::new();
    for line in text.lines().take(5) {
        t.feed_line(line, None);
    }
    let a = t.activity();
    assert_eq!(a.state, State::Working);
    assert_eq!(a.turns, 2);
    assert_eq!(a.input_tokens, (12 + 2000) + (30 + 2000));
    assert_eq!(a.output_tokens, 41 + 120);
    assert_eq!(a.last_tool.as_ref().unwrap().name, "Edit");
    assert_eq!(a.result, None);
}

#[test]
fn a_truncated_last_line_waits_and_is_never_an_error() {
    let a = read("claude_truncated.jsonl");
    assert_eq!(a.state, State::Working);
    assert_eq!(a.turns, 1, "the cut message is not read yet");
    insta::assert_json_snapshot!("claude_truncated", seen("claude_truncated.jsonl"));
}

#[test]
fn codex_exec_json() {
    let a = read("codex_exec.jsonl");
    assert_eq!(a.state, State::Finished);
    insta::assert_json_snapshot!("codex_exec", seen("codex_exec.jsonl"));
    let failed = read("codex_failed.jsonl");
    assert_eq!(failed.state, State::Failed);
    insta::assert_json_snapshot!("codex_failed", seen("codex_failed.jsonl"));
}

#[test]
fn plain_output_takes_its_state_from_the_process() {
    let mut t = Tracker::new();
    t.read_file(&fixture("plain_output.txt"), None).unwrap();
    assert_eq!(t.activity().state, State::Working);
    assert_eq!(t.settled(Some(true)).state, State::Finished);
    assert_eq!(t.settled(Some(false)).state, State::Failed);
    assert_eq!(t.settled(None).state, State::Working);
    insta::assert_json_snapshot!(
        "plain_output",
        serde_json::json!({ "activity": t.settled(Some(true)), "context": t.context() })
    );
}

fn fs_err_read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn unknown_events_and_garbage_are_skipped() {
    let mut t = Tracker::new();
    for line in [
        "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\",\"model\":\"m\"}",
        "{\"type\":\"rate_limit_event\",\"x\":1}",
        "not json at all {",
        "[1,2,3]",
        "{\"type\":\"assistant\",\"message\":\"not an object\"}",
        "{\"type\":\"result\",\"is_error\":\"yes\",\"num_turns\":\"many\"}",
    ] {
        t.feed_line(line, None);
    }
    let a = t.activity();
    assert_eq!(a.session_id.as_deref(), Some("s"));
    assert_eq!(
        a.state,
        State::Finished,
        "a result without a boolean is_error"
    );
}

/// Reading in pieces, each time the file grew (also in the middle of a line), gives the summary
/// of one read.
#[test]
fn incremental_reads_match_one_read() {
    let whole = fs_err_read(&fixture("claude_success_with_tools.jsonl"));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let mut file = std::fs::File::create(&log).unwrap();
    let mut t = Tracker::new();
    for chunk in whole.as_bytes().chunks(97) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        t.read_file(&log, Some("2026-11-25T10:00:00")).unwrap();
        // Kept between looks as a caller keeps it.
        t = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    }
    assert_eq!(t.activity(), &read("claude_success_with_tools.jsonl"));
    assert_eq!(t.offset, whole.len() as u64);
}

#[test]
fn a_stamped_read_asks_the_time_only_for_new_lines_from_the_open_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::copy(fixture("claude_success_with_tools.jsonl"), &log).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    let mut t = Tracker::new();
    let mut asked = Vec::new();
    let read = t
        .read_file_stamped(&log, |meta| {
            asked.push(meta.len());
            Some("2026-11-25T10:00:00".to_owned())
        })
        .unwrap();
    assert!(read);
    assert_eq!(asked, [size], "asked once, with the open log's metadata");
    assert_eq!(
        t.activity().last_event_at.as_deref(),
        Some("2026-11-25T10:00:00")
    );
    let again = t
        .read_file_stamped(&log, |_| panic!("nothing new: no time needed"))
        .unwrap();
    assert!(!again);
    let missing = dir.path().join("missing.jsonl");
    assert!(!t.read_file_stamped(&missing, |_| panic!("no log")).unwrap());
}

#[test]
fn a_replaced_or_shorter_log_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::copy(fixture("claude_success_with_tools.jsonl"), &log).unwrap();
    let mut t = Tracker::new();
    t.read_file(&log, None).unwrap();
    std::fs::remove_file(&log).unwrap();
    std::fs::copy(fixture("codex_failed.jsonl"), &log).unwrap();
    t.read_file(&log, None).unwrap();
    assert_eq!(t.activity().state, State::Failed);
    assert_eq!(t.activity().turns, 0, "nothing of the old log is kept");
}

/// A 50 MB log — thousands of turns — is read once; a second look reads nothing.
#[test]
fn a_fifty_megabyte_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    writeln!(
        file,
        "{{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"big\",\"model\":\"m\"}}"
    )
    .unwrap();
    let padding = "x".repeat(900);
    let mut turns = 0u64;
    let mut written = 0usize;
    while written < 50 << 20 {
        turns += 1;
        let line = format!(
            "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_{turns}\",\"content\":[{{\"type\":\"tool_use\",\"name\":\"Bash\",\"input\":{{\"command\":\"echo {padding}\"}}}}],\"usage\":{{\"input_tokens\":10,\"output_tokens\":2}}}}}}\n"
        );
        written += line.len();
        file.write_all(line.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let mut t = Tracker::new();
    assert!(t.read_file(&log, None).unwrap());
    assert_eq!(t.activity().turns, turns);
    assert_eq!(t.activity().input_tokens, 10 * turns);
    assert_eq!(t.activity().output_tokens, 2 * turns);
    assert!(!t.read_file(&log, None).unwrap(), "nothing new");
}

#[test]
fn condense_quotes_the_result_of_a_dead_claude_code() {
    let lines: Vec<String> = fs_err_read(&fixture("claude_not_logged_in.jsonl"))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        activity::condense(&lines),
        ["Not logged in · Please run /login"]
    );
    let plain = vec!["segfault".to_owned()];
    assert_eq!(activity::condense(&plain), plain);
}
