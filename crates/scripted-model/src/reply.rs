//! What the model answers at one turn.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::Request;

/// One answer of the model.
#[derive(Clone)]
pub enum Reply {
    /// A text block, and the turn ends (`end_turn`).
    Text(String),
    /// A `tool_use` block calling `name` with `input` (`stop_reason: tool_use`).
    Tool {
        /// The tool's name as the client offered it (`mcp__fleet__…`, `Bash`).
        name: String,
        /// Its arguments.
        input: Value,
    },
    /// An error status with the API's error body (`{"type":"error","error":{…}}`).
    Error {
        /// The HTTP status: 400, 401, 429, 500, 529, ...
        status: u16,
        /// The API's error type: `invalid_request_error`, `overloaded_error`, ...
        kind: String,
        /// Its message.
        message: String,
    },
    /// The reply computed from the request (e.g. from a tool's result the model was shown).
    With(Arc<dyn Fn(&Request) -> Reply + Send + Sync>),
    /// The reply, sent after a delay: a model that takes its time (other conversations are
    /// answered meanwhile).
    After(Duration, Box<Reply>),
}

impl Reply {
    /// A text answer that ends the turn.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text(text.into())
    }

    /// A call of tool `name` with `input`.
    pub fn tool(name: impl Into<String>, input: Value) -> Reply {
        Reply::Tool {
            name: name.into(),
            input,
        }
    }

    /// An error status with the API's error body.
    pub fn error(status: u16, kind: impl Into<String>, message: impl Into<String>) -> Reply {
        Reply::Error {
            status,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// `reply`, sent `delay` later.
    pub fn after(delay: Duration, reply: Reply) -> Reply {
        Reply::After(delay, Box::new(reply))
    }

    /// A reply computed from the request it answers.
    pub fn with(f: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Reply {
        Reply::With(Arc::new(f))
    }

    /// This reply for `request`, computed replies resolved and delays waited out.
    pub(crate) fn resolve(&self, request: &Request) -> Reply {
        match self {
            Reply::With(f) => f(request).resolve(request),
            Reply::After(delay, reply) => {
                std::thread::sleep(*delay);
                reply.resolve(request)
            }
            other => other.clone(),
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Reply::Tool { name, input } => f
                .debug_struct("Tool")
                .field("name", name)
                .field("input", input)
                .finish(),
            Reply::Error {
                status,
                kind,
                message,
            } => f
                .debug_struct("Error")
                .field("status", status)
                .field("kind", kind)
                .field("message", message)
                .finish(),
            Reply::With(_) => f.write_str("With(..)"),
            Reply::After(delay, reply) => f.debug_tuple("After").field(delay).field(reply).finish(),
        }
    }
}
