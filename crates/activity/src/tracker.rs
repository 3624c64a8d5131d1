//! The incremental reader: complete lines from a saved offset, each applied to the summary.

use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent_file::{self, Line};
use crate::{Activity, Context, Format, LINE_CHARS, State, claude, codex, truncate};

/// An [`Activity`] and how far into the log it has read; serializable, so a caller keeps it
/// between looks and reads only what was appended since.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// Bytes of the log consumed: complete lines only (a line still being written is read when
    /// its newline arrives).
    pub offset: u64,
    /// The log's identity (device, inode) when it was read: another file at the same path —
    /// or a shorter one — is read from its start.
    pub file: Option<(u64, u64)>,
    pub(crate) activity: Activity,
    pub(crate) context: Context,
    /// Claude Code streams one assistant message as several events with the same id and its
    /// usage so far: the message being streamed and its usage, counted into the totals when the
    /// next message begins.
    pub(crate) message: Option<String>,
    pub(crate) message_tokens: (u64, u64),
    pub(crate) committed_tokens: (u64, u64),
    /// In the middle of a line over [`LINE_CAP`](crate::agent_file::LINE_CAP), skipped up to
    /// its newline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) skipping: bool,
}

impl Tracker {
    /// Nothing read yet.
    pub fn new() -> Self {
        Tracker::default()
    }

    /// The summary so far.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// What the stream told beyond the summary.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The summary, settled with how the agent's process ended, if it did: an agent that ended
    /// without saying it finished or failed is finished for exit status 0 (`Some(true)`), failed
    /// otherwise.
    pub fn settled(&self, ended: Option<bool>) -> Activity {
        let mut a = self.activity.clone();
        if let Some(success) = ended
            && !a.state.is_final()
        {
            a.state = if success {
                State::Finished
            } else {
                State::Failed
            };
        }
        a
    }

    /// Applies one line of the agent's output, read at `at` (the caller's clock). Unknown
    /// events and lines that are not JSON change only the last line.
    pub fn feed_line(&mut self, line: &str, at: Option<&str>) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        self.context.last_line = Some(truncate(line, LINE_CHARS));
        let event = match serde_json::from_str::<Value>(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                if self.context.format == Format::Unknown {
                    self.context.format = Format::Plain;
                }
                if self.context.format == Format::Plain {
                    self.activity.state = State::Working;
                    self.activity.last_event_at = at.map(str::to_owned);
                }
                return;
            }
        };
        let kind = event["type"].as_str().unwrap_or_default();
        let recognised = if claude::is_event(kind) {
            self.context.format = Format::ClaudeCode;
            claude::apply(self, kind, &event);
            true
        } else if codex::is_event(kind) {
            self.context.format = Format::Codex;
            codex::apply(self, kind, &event);
            true
        } else {
            false
        };
        if recognised {
            self.activity.last_event_at = at.map(str::to_owned);
            let (ci, co) = self.committed_tokens;
            let (mi, mo) = self.message_tokens;
            self.activity.input_tokens = ci + mi;
            self.activity.output_tokens = co + mo;
        }
    }

    /// Reads what was appended to the log at `path` since the last read, at `at`; whether
    /// anything new was read. A missing log is nothing new.
    pub fn read_file(&mut self, path: &Path, at: Option<&str>) -> std::io::Result<bool> {
        self.read_file_stamped(path, |_| at.map(str::to_owned))
    }

    /// [`read_file`](Self::read_file), the time the new lines were read at given by `at` from
    /// the open log's metadata (its modification time, say) — asked only when there is
    /// something new, and without a second look at the path.
    pub fn read_file_stamped(
        &mut self,
        path: &Path,
        at: impl FnOnce(&std::fs::Metadata) -> Option<String>,
    ) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let mut file = match agent_file::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        let id = (meta.dev(), meta.ino());
        if self.file.is_some_and(|f| f != id) || meta.len() < self.offset {
            *self = Tracker::new();
        }
        self.file = Some(id);
        if meta.len() == self.offset {
            return Ok(false);
        }
        let at = at(&meta);
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut any = false;
        loop {
            if self.skipping {
                let (n, ended) = agent_file::skip_line(&mut reader)?;
                self.offset += n;
                self.skipping = !ended;
                if !ended {
                    return Ok(any);
                }
            }
            match agent_file::read_line(&mut reader, &mut buf)? {
                // The end, or a line still being written.
                Line::End => return Ok(any),
                Line::Whole(n) => {
                    self.offset += n as u64;
                    self.feed_line(&String::from_utf8_lossy(&buf), at.as_deref());
                }
                Line::Skipped { bytes, ended } => {
                    self.offset += bytes;
                    self.skipping = !ended;
                    self.context.last_line = Some(format!(
                        "(a line of over {} MiB was skipped)",
                        agent_file::LINE_CAP >> 20
                    ));
                }
            }
            any = true;
        }
    }
}
