//! A scripted stand-in for the Anthropic Messages API, as Claude Code uses it: test support.
//!
//! The real Claude Code, pointed at [`ModelServer::url`] with `ANTHROPIC_BASE_URL` (and any
//! `ANTHROPIC_API_KEY`), runs whole turns against it — tool calls, MCP tools, Bash, results,
//! cost — with no credentials and no network. What the model answers comes from a [`Script`]:
//! each conversation is recognised by a marker in its first user message, and answered by the
//! reply at its turn (the number of assistant messages in its history). Every request is
//! logged ([`ModelServer::requests`]), so a test asserts what the model was shown: its tools,
//! its history.
//!
//! Served: `POST /v1/messages`, streaming (server-sent events: `message_start`,
//! `content_block_start`/`delta`/`stop` with `text_delta` or `input_json_delta`,
//! `message_delta` with usage, `message_stop`) and not; error statuses with the API's error
//! bodies; `POST /v1/messages/count_tokens`. Anything else is a 404 in the API's error shape.
//!
//! ```
//! use scripted_model::{ModelServer, Reply, Script};
//! let server = ModelServer::start(
//!     Script::new().conversation("MARKER", [Reply::text("hello")]),
//! )?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! # Ok::<(), scripted_model::Error>(())
//! ```

mod reply;
mod request;
mod script;
mod server;
mod sse;

pub use reply::Reply;
pub use request::Request;
pub use script::Script;
pub use server::ModelServer;

/// What can go wrong starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No loopback port could be bound.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(String),
    /// The serving thread could not be started.
    #[error("cannot start the serving thread: {0}")]
    Thread(#[from] std::io::Error),
}
