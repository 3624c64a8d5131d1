//! The script: which reply each conversation gets at each turn.

use crate::{Reply, Request};

/// Replies per conversation. A conversation is recognised by a marker in its first user
/// message; its turn `k` gets its `k`-th reply (past the last, the last again). A request no
/// conversation claims — Claude Code's own side requests, such as a title — gets the fallback.
#[derive(Debug, Clone)]
pub struct Script {
    conversations: Vec<(String, Vec<Reply>)>,
    fallback: Reply,
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// A script with no conversation: every request gets the fallback, a short text.
    pub fn new() -> Script {
        Script {
            conversations: Vec::new(),
            fallback: Reply::text("ok"),
        }
    }

    /// Adds the conversation whose first user message contains `marker`, answered turn by
    /// turn by `replies`. The first conversation whose marker matches wins.
    pub fn conversation(
        mut self,
        marker: impl Into<String>,
        replies: impl IntoIterator<Item = Reply>,
    ) -> Script {
        self.conversations
            .push((marker.into(), replies.into_iter().collect()));
        self
    }

    /// The reply to requests no conversation claims.
    pub fn fallback(mut self, reply: Reply) -> Script {
        self.fallback = reply;
        self
    }

    /// The reply to `request`.
    pub(crate) fn reply(&self, request: &Request) -> Reply {
        let first = request.first_user_text();
        let replies = self
            .conversations
            .iter()
            .find(|(marker, _)| first.contains(marker.as_str()))
            .map(|(_, replies)| replies.as_slice());
        match replies {
            Some(replies) if !replies.is_empty() => {
                let turn = request.turn().min(replies.len() - 1);
                replies[turn].resolve(request)
            }
            _ => self.fallback.resolve(request),
        }
    }
}
